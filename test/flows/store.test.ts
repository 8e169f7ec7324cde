/**
 * The SQLite store: the FlowStore contract (`store-contract.ts`), group
 * commit (appends of one event-loop turn become visible together, only once
 * durable), a reopened store carrying on exactly where the file is (offsets,
 * producer sequence numbers, consumer positions, retention's high-water
 * mark), age retention. Also: the package's `beepstream/flows` entry point.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowsError, openSqliteStore } from '../../src/flows/index.js';
import { acl, ev as e, readAll, storeContract } from './store-contract.js';

function tmp(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

storeContract('sqlite', async (t) => {
  const s = await openSqliteStore({ path: join(tmp(t), 'f.db') });
  t.teardown(() => s.close());
  return s;
});

test('group commit: appends made in one event-loop turn on several flows are invisible to readers until their one commit, then all visible', async (t) => {
  const store = await openSqliteStore({ path: join(tmp(t), 'f.db') });
  t.teardown(() => store.close());
  for (const f of ['f1', 'f2', 'f3']) await store.createFlow(f, '', acl);
  const results = [];
  for (let i = 1; i <= 30; i++) results.push(store.append(`f${(i % 3) + 1}`, 'a', 'p', [e(Math.ceil(i / 3))]));
  // Same turn: assigned, not committed — nothing is visible yet.
  t.is(await store.committedNext('f1'), 1);
  t.deepEqual(await readAll(store, 'f1'), []);
  t.is(await store.lastSeq('f1', 'a', 'p'), 10, 'sequence state moves at once (a retry in the same turn is a duplicate)');
  const done = await Promise.all(results);
  t.deepEqual(done.slice(0, 3).map((r) => r.offsets), [[1], [1], [1]]);
  for (const f of ['f1', 'f2', 'f3']) {
    t.is(await store.committedNext(f), 11);
    t.deepEqual((await readAll(store, f)).map((x) => x.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }
  // A duplicate of a row still pending gets its offset too.
  const [a, dup] = await Promise.all([store.append('f1', 'a', 'p', [e(11)]), store.append('f1', 'a', 'p', [e(11)])]);
  t.deepEqual(dup.offsets, a.offsets);
  t.is(dup.duplicates, 1);
  t.is(await store.committedNext('f1'), 12);
});

test('reopening the store file rebuilds offsets, producer sequence numbers, consumer positions and ACL changes; a deleted flow stays deleted', async (t) => {
  const path = join(tmp(t), 'nested', 'dir', 'f.db');
  const s1 = await openSqliteStore({ path });
  await s1.createFlow('keep', 'kept', acl);
  await s1.createFlow('drop', '', acl);
  await s1.append('keep', 'a', 'p', [e(1), e(2), e(3)]);
  await s1.append('drop', 'a', 'p', [e(1)]);
  t.is(await s1.ack('keep', 'c', 2), 2);
  await s1.setAcl('keep', { publish: ['x'], subscribe: ['y'], admin: ['z'] });
  t.true(await s1.deleteFlow('drop'));
  await s1.close();
  await t.throwsAsync(async () => s1.append('keep', 'a', 'p', [e(4)]), { instanceOf: FlowsError, message: /UNAVAILABLE/ });

  const s2 = await openSqliteStore({ path });
  t.teardown(() => s2.close());
  t.deepEqual((await s2.list()).map((f) => [f.name, f.description, f.events, f.nextOffset]), [['keep', 'kept', 3, 4]]);
  t.is(await s2.lastSeq('keep', 'a', 'p'), 3);
  t.is(await s2.acked('keep', 'c'), 2);
  t.deepEqual((await s2.describe('keep'))?.acl, { publish: ['x'], subscribe: ['y'], admin: ['z'] }, 'an ACL change is kept');
  await t.throwsAsync(s2.append('keep', 'a', 'p', [e(5)]), { instanceOf: FlowsError, message: /SEQUENCE_GAP/ });
  t.deepEqual((await s2.append('keep', 'a', 'p', [e(3), e(4)])).offsets, [3, 4]);
  const recreated = await s2.createFlow('drop', '', acl);
  t.is(recreated.events, 0, 'a flow created again under a deleted name starts empty');
  t.is(await s2.lastSeq('drop', 'a', 'p'), 0);
});

test('retention by age: events older than maxAgeSeconds go; after every event went and a reopen, offsets and producer numbers carry on', async (t) => {
  const path = join(tmp(t), 'age.db');
  const s1 = await openSqliteStore({ path });
  await s1.createFlow('short', '', acl, { maxAgeSeconds: 1 });
  await s1.append('short', 'a', 'p', [e(1), e(2), e(3)]);
  let info = await s1.describe('short');
  for (let i = 0; i < 300 && info?.events !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100)); // bounded: 30 s at most
    info = await s1.describe('short');
  }
  t.like(info, { firstOffset: 4, nextOffset: 4, events: 0, retention: { maxAgeSeconds: 1 } });
  await s1.close();
  const s2 = await openSqliteStore({ path });
  t.teardown(() => s2.close());
  t.like(await s2.describe('short'), { nextOffset: 4, events: 0 });
  t.is(await s2.lastSeq('short', 'a', 'p'), 3, 'the producer state outlives its events');
  t.deepEqual((await s2.append('short', 'a', 'p', [e(4)])).offsets, [4]);
});

test('the package entry point beepstream/flows exports the flows API; the root entry point does not', async (t) => {
  const flows = (await import('beepstream/flows')) as Record<string, unknown>;
  for (const name of ['connectFlows', 'createFlowsServer', 'openSqliteStore', 'FlowsClient', 'FlowsError', 'FLOWS_URI', 'connectFlowUri']) t.truthy(flows[name], name);
  const root = (await import('beepstream')) as Record<string, unknown>;
  t.is(root.connectFlows, undefined);
  t.is(root.FLOWS_URI, undefined);
});

test('pages of fresh events (kept in memory) equal the pages the database returns for every start, size and filter', async (t) => {
  const path = join(tmp(t), 'mem.db');
  const s1 = await openSqliteStore({ path });
  await s1.createFlow('m', '', acl);
  const types = [['urn:x', 'a'], ['urn:x', 'b'], ['urn:y', 'a']] as const;
  for (let b = 0; b < 6; b++) {
    await s1.append('m', 'a', 'p', Array.from({ length: 7 }, (_, i) => {
      const seq = b * 7 + i + 1;
      const [ns, name] = types[seq % 3] as readonly [string, string];
      return e(seq, { ns, name, ...(seq % 5 === 0 ? { lang: 'fr', to: 'bob' } : {}) });
    }));
  }
  const filterSets = [[], [{ ns: 'urn:x' }], [{ ns: 'urn:y', name: 'a' }, { ns: 'urn:x', name: 'b' }], [{ ns: 'urn:none' }]];
  const shapes: [number, number, number][] = [];
  for (let from = 1; from <= 44; from += 3) for (const max of [1, 4, 100]) for (let k = 0; k < filterSets.length; k++) shapes.push([from, max, k]);
  const fromMemory = [];
  for (const [from, max, k] of shapes) fromMemory.push(await readAll(s1, 'm', from, max, filterSets[k]));
  await s1.close();
  const s2 = await openSqliteStore({ path }); // nothing in memory after a reopen: every page comes from the database
  t.teardown(() => s2.close());
  for (const [i, [from, max, k]] of shapes.entries()) {
    const fromDb = await readAll(s2, 'm', from, max, filterSets[k]);
    t.deepEqual(fromMemory[i], fromDb, `from ${from}, max ${max}, filter ${JSON.stringify(filterSets[k])}`);
  }
  t.is(fromMemory[0]?.length, 42);
});

test('offsetAtTime finds the first event stored at or after a time (binary search over offsets, no index on the stored time): equal to a scan of every event, for every time, also after retention removed the oldest', async (t) => {
  const store = await openSqliteStore({ path: join(tmp(t), 'time.db') });
  t.teardown(() => store.close());
  await store.createFlow('t', '', acl);
  // 12 commits of 1–5 events, a few milliseconds apart: runs of equal stored times.
  let seq = 0;
  for (let c = 0; c < 12; c++) {
    await store.append('t', 'a', 'p', Array.from({ length: (c % 5) + 1 }, () => e(++seq)));
    await new Promise((r) => setTimeout(r, 3));
  }
  const all = await readAll(store, 't');
  t.is(all.length, seq);
  const stamps = [...new Set(all.map((x) => x.stored))].sort((a, b) => a - b);
  t.true(stamps.length >= 6, 'several distinct stored times');
  const scan = (ms: number, from = 1): number => all.find((x) => x.offset >= from && x.stored >= ms)?.offset ?? seq + 1;
  for (const ms of [0, ...stamps.flatMap((s) => [s - 1, s, s + 1]), Date.now() + 60_000]) t.is(await store.offsetAtTime('t', ms), scan(ms), `time ${ms}`);
  // After retention removed the oldest events (the first offset moved), the search starts there.
  const reopened = await openSqliteStore({ path: join(tmp(t), 'time2.db') });
  t.teardown(() => reopened.close());
  await reopened.createFlow('r', '', acl, { maxBytes: 1024 });
  for (let i = 1; i <= 40; i++) await reopened.append('r', 'a', 'p', [e(i, { payload: Buffer.alloc(100, i) })]);
  const kept = await readAll(reopened, 'r');
  const info = await reopened.describe('r');
  t.true((info?.firstOffset ?? 0) > 1, 'retention removed the oldest events');
  t.is(await reopened.offsetAtTime('r', 0), info?.firstOffset ?? -1);
  for (const x of kept) t.is(await reopened.offsetAtTime('r', x.stored), kept.find((y) => y.stored >= x.stored)?.offset ?? -1, `time ${x.stored}`);
});
