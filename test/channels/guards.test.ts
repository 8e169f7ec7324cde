/**
 * The token bucket of the core's hostile-peer limits (src/channels/guards.ts),
 * driven by a hand-set clock.
 */
import test from 'ava';
import { RateBucket } from '../../src/channels/guards.js';

test('take(): starts full at its first use, refuses once empty, refills at its rate up to the burst', (t) => {
  const b = new RateBucket(2, 2);
  t.true(b.take(1000));
  t.true(b.take(1000));
  t.false(b.take(1000));
  t.false(b.take(1000), 'a refused take does not overdraw');
  t.false(b.take(1400), '0.8 of a token after 400 ms at 2/s');
  t.true(b.take(1500), 'a whole token after 500 ms');
  t.false(b.take(1500));
  // A long pause refills to the burst, no further.
  t.true(b.take(100_000));
  t.true(b.take(100_000));
  t.false(b.take(100_000));
});

test('charge(): overdraws below zero and keeps counting down on a frozen clock', (t) => {
  const b = new RateBucket(1, 5);
  const left: number[] = [];
  for (let i = 0; i < 8; i++) left.push(b.charge(0));
  // Past -1 too: the bucket must not mistake an overdraft of exactly one token for "never used".
  t.deepEqual(left, [4, 3, 2, 1, 0, -1, -2, -3]);
  t.is(b.level(0), -3);
  t.true(b.level(2000) < 0);
  t.is(b.level(3000), 0);
});

test('level(): full before first use, follows the clock without charging', (t) => {
  const b = new RateBucket(10, 50);
  t.is(b.level(123), 50);
  b.charge(0);
  t.is(b.level(0), 49);
  t.is(b.level(0), 49, 'level() does not charge');
  t.is(b.level(100), 50);
});
