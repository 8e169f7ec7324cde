/**
 * The flows metrics through the ops metrics registry (`createMetrics({ flows })`):
 * events in and out per flow and duplicates counted from the flows
 * diagnostics channels, live subscriptions and the slowest subscriber's lag
 * read at scrape time — over a real TLS + SCRAM FNAA.
 */
import test from 'ava';
import { createMetrics } from '../../src/ops/index.js';
import { NS, fnua, startFnaa } from './harness.js';

function value(text: string, metric: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

test('flows metrics: events in/out per flow, duplicates, subscriptions and subscriber lag on the metrics registry', async (t) => {
  t.timeout(300_000);
  const fnaa = await startFnaa(t);
  const metrics = createMetrics({ flows: fnaa.flows, defaultMetrics: false });
  t.teardown(() => metrics.close());
  const c = await fnua(t, fnaa.port);
  await c.create('m');
  const batch = Array.from({ length: 10 }, (_, i) => ({ seq: i + 1, id: `e${i + 1}`, type: `{${NS}}t`, source: 'alice', data: 'x' }));
  await c.publish('m', 'p', batch);
  await c.publish('m', 'p', batch.slice(5)); // a retry: 5 duplicates
  const sub = await c.subscribe('m', { from: 'start', follow: false });
  let n = 0;
  for await (const _ of sub) n++;
  t.is(n, 10);
  let text = await metrics.register.metrics();
  t.is(value(text, 'beepstream_flows_events_total', 'flow="m",direction="in"'), 10);
  t.is(value(text, 'beepstream_flows_events_total', 'flow="m",direction="out"'), 10);
  t.is(value(text, 'beepstream_flows_duplicates_total', 'flow="m"'), 5);

  // A live subscriber that reads nothing while 20 MB arrive: its lag shows.
  await c.create('lag');
  const idle = await c.subscribe('lag', { from: 'start' });
  const p = await c.producer('lag', 'p');
  for (let i = 0; i < 20; i++) await p.publish(Array.from({ length: 1000 }, () => ({ type: `{${NS}}t`, source: 'alice', data: 'y'.repeat(1000) })));
  text = await metrics.register.metrics();
  t.is(value(text, 'beepstream_flows_subscriptions', 'flow="lag"'), 1);
  const lag = value(text, 'beepstream_flows_subscriber_lag_events', 'flow="lag"') ?? -1;
  t.true(lag > 0 && lag <= 20_000, `the idle subscriber's lag is visible (${lag})`);
  t.false(/alice|yyyy/.test(text), 'no identity and no payload in the metrics');
  await idle.close();
});
