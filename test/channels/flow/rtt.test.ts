/**
 * The session's RTT estimate (src/channels/flow/rtt.ts): the smallest sample
 * sizes windows (never below the floor), RFC 6298's smoothing is shown.
 */
import test from 'ava';
import { MIN_SIZING_RTT_MS, RttEstimator } from '../../../src/channels/flow.js';

test('no sample: the sizing RTT is 0 (unknown) and the minimum Infinity', (t) => {
  const r = new RttEstimator();
  t.is(r.sizing, 0);
  t.is(r.min, Infinity);
  t.is(r.count, 0);
});

test('windows are sized from the smallest sample, not the latest or the smoothed one', (t) => {
  const r = new RttEstimator();
  for (const ms of [120, 100, 180, 250]) r.sample(ms);
  t.is(r.sizing, 100);
  t.is(r.last, 250);
  t.true(r.srtt > 100, `smoothed ${r.srtt} carries the larger samples`);
  t.is(r.count, 4);
});

test('the sizing RTT never goes below the floor (an event loop\'s turn-around)', (t) => {
  const r = new RttEstimator();
  r.sample(0.2);
  t.is(r.min, 0.2);
  t.is(r.sizing, MIN_SIZING_RTT_MS);
});

test('RFC 6298: the first sample sets srtt = R and rttvar = R/2, later ones smooth by 1/8 and 1/4', (t) => {
  const r = new RttEstimator();
  r.sample(100);
  t.is(r.srtt, 100);
  t.is(r.rttvar, 50);
  r.sample(200);
  t.is(r.rttvar, 0.75 * 50 + 0.25 * 100);
  t.is(r.srtt, 0.875 * 100 + 0.125 * 200);
});

test('negative, NaN and infinite samples are ignored', (t) => {
  const r = new RttEstimator();
  r.sample(-1);
  r.sample(Number.NaN);
  r.sample(Infinity);
  t.is(r.count, 0);
  r.sample(50);
  t.is(r.count, 1);
  t.is(r.min, 50);
});
