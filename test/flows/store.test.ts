/**
 * The SQLite store on its own: group commit (appends of one event-loop turn
 * become visible together, only once durable), and a reopened store carries
 * on exactly where the file is (offsets, producer sequence numbers, consumer
 * positions). Also: the package's `beepstream/flows` entry point.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowsError, openSqliteStore, type NewEvent } from '../../src/flows/index.js';

const acl = { publish: ['a'], subscribe: ['a'], admin: ['a'] };
const e = (seq: number): NewEvent => ({ seq, id: `id-${seq}`, ns: 'urn:t', name: 'n', source: 'a', time: '2026-01-01T00:00:00Z', contentType: 'text/plain', text: true, payload: Buffer.from(`p${seq}`) });

function tmp(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('group commit: appends made in one event-loop turn on several flows are invisible to readers until their one commit, then all visible', async (t) => {
  const store = await openSqliteStore({ path: join(tmp(t), 'f.db') });
  t.teardown(() => store.close());
  for (const f of ['f1', 'f2', 'f3']) await store.createFlow(f, '', acl);
  const results = [];
  for (let i = 1; i <= 30; i++) results.push(store.append(`f${(i % 3) + 1}`, 'a', 'p', [e(Math.ceil(i / 3))]));
  t.deepEqual(results.slice(0, 3).map((r) => r.offsets), [[1], [1], [1]]);
  // Same turn: assigned, not committed — a subscriber sees nothing yet.
  t.is(store.committedNext('f1'), 1);
  t.deepEqual(store.read('f1', 1, 100, []).events, []);
  t.is(store.lastSeq('f1', 'a', 'p'), 10, 'sequence state moves at once (a retry in the same turn is a duplicate)');
  await Promise.all(results.map((r) => r.committed));
  for (const f of ['f1', 'f2', 'f3']) {
    t.is(store.committedNext(f), 11);
    t.deepEqual(store.read(f, 1, 100, []).events.map((x) => x.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }
  // A duplicate of a row still pending gets its offset too.
  const a = store.append('f1', 'a', 'p', [e(11)]);
  const dup = store.append('f1', 'a', 'p', [e(11)]);
  t.deepEqual(dup.offsets, a.offsets);
  t.is(dup.duplicates, 1);
  await Promise.all([a.committed, dup.committed]);
  t.is(store.committedNext('f1'), 12);
});

test('reopening the store file rebuilds offsets, producer sequence numbers and consumer positions; a deleted flow stays deleted', async (t) => {
  const path = join(tmp(t), 'nested', 'dir', 'f.db');
  const s1 = await openSqliteStore({ path });
  await s1.createFlow('keep', 'kept', acl);
  await s1.createFlow('drop', '', acl);
  await s1.append('keep', 'a', 'p', [e(1), e(2), e(3)]).committed;
  await s1.append('drop', 'a', 'p', [e(1)]).committed;
  t.is(await s1.ack('keep', 'c', 2), 2);
  t.true(await s1.deleteFlow('drop'));
  await s1.close();
  await t.throwsAsync(async () => s1.append('keep', 'a', 'p', [e(4)]), { instanceOf: FlowsError, message: /UNAVAILABLE/ });

  const s2 = await openSqliteStore({ path });
  t.teardown(() => s2.close());
  t.deepEqual(s2.list().map((f) => [f.name, f.description, f.events, f.nextOffset]), [['keep', 'kept', 3, 4]]);
  t.is(s2.lastSeq('keep', 'a', 'p'), 3);
  t.is(s2.acked('keep', 'c'), 2);
  t.throws(() => s2.append('keep', 'a', 'p', [e(5)]), { instanceOf: FlowsError, message: /SEQUENCE_GAP/ });
  t.deepEqual((await (async () => { const r = s2.append('keep', 'a', 'p', [e(3), e(4)]); await r.committed; return r; })()).offsets, [3, 4]);
  const recreated = await s2.createFlow('drop', '', acl);
  t.is(recreated.events, 0, 'a flow created again under a deleted name starts empty');
  t.is(s2.lastSeq('drop', 'a', 'p'), 0);
});

test('the package entry point beepstream/flows exports the flows API; the root entry point does not', async (t) => {
  const flows = (await import('beepstream/flows')) as Record<string, unknown>;
  for (const name of ['connectFlows', 'createFlowsServer', 'openSqliteStore', 'FlowsClient', 'FlowsError', 'FLOWS_URI']) t.truthy(flows[name], name);
  const root = (await import('beepstream')) as Record<string, unknown>;
  t.is(root.connectFlows, undefined);
  t.is(root.FLOWS_URI, undefined);
});
