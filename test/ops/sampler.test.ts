/**
 * The ring buffer and the throughput sampler, with a fake registry and an
 * injected clock: octets per second over each interval, capacity, sessions
 * forgotten once gone, and views that never carry the uid.
 */
import test from 'ava';
import { Ring, ThroughputSampler } from '../../src/ops/sampler.js';
import { newUid, sessionTag, type SessionRegistry, type SessionSnapshot } from '../../src/scistream/control/index.js';

test('Ring keeps the newest `capacity` items, oldest first', (t) => {
  const r = new Ring<number>(3);
  t.deepEqual(r.toArray(), []);
  t.is(r.last(), undefined);
  for (let i = 1; i <= 7; i++) r.push(i);
  t.deepEqual(r.toArray(), [5, 6, 7]);
  t.is(r.last(), 7);
  t.is(r.size, 3);
  t.throws(() => new Ring(0));
});

test('the sampler turns counters into octets per second, keeps `capacity` samples, forgets ended sessions, and never shows the uid', (t) => {
  const uid = newUid();
  let now = 1_000_000;
  let list: SessionSnapshot[] = [];
  const snap = (toProducer: number, toConsumer: number): SessionSnapshot => ({
    uid, tag: sessionTag(uid), state: 'active', owner: 'alice', role: 'PROD', listeners: ['127.0.0.1:5100'], attached: true, numConn: 2,
    stats: { connections: 3, open: 1, bytesToProducer: toProducer, bytesToConsumer: toConsumer },
  });
  const registry = { list: () => list } as unknown as SessionRegistry;
  const s = new ThroughputSampler(registry, { sampleMs: 500, capacity: 4, now: () => now });
  list = [snap(0, 0)];
  s.sample();
  t.deepEqual(s.throughput(sessionTag(uid)), { toProducer: 0, toConsumer: 0 }, 'one reading: no rate yet');
  for (let i = 1; i <= 6; i++) {
    now += 500;
    list = [snap(i * 1000, i * 4000)];
    s.sample();
  }
  t.deepEqual(s.throughput(sessionTag(uid)), { toProducer: 2000, toConsumer: 8000 });
  const [view] = s.sessions();
  t.is(view?.samples.length, 4, 'capacity');
  t.deepEqual(view?.connections, { open: 1, total: 3 });
  t.deepEqual(view?.octets, { toProducer: 6000, toConsumer: 24000 });
  t.is(view?.owner, 'alice');
  t.false(JSON.stringify(s.sessions()).includes(uid));
  list = [];
  s.sample();
  t.deepEqual(s.sessions(), []);
  t.deepEqual(s.throughput(sessionTag(uid)), { toProducer: 0, toConsumer: 0 }, 'forgotten');
});

test('sessionTag: 12 hex digits, stable, distinct per uid, and no piece of the uid', (t) => {
  const uids = Array.from({ length: 200 }, () => newUid());
  const tags = uids.map(sessionTag);
  t.is(new Set(tags).size, uids.length);
  uids.forEach((u, i) => {
    const tag = tags[i] as string;
    t.is(sessionTag(u), tag);
    t.regex(tag, /^[0-9a-f]{12}$/);
    t.false(u.includes(tag.slice(0, 8)), 'not a piece of the uid');
  });
});
