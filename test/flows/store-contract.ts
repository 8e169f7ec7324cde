/**
 * The FlowStore contract (`src/flows/store.ts`), as ava tests any backend
 * runs: `storeContract('sqlite', open)` registers them for one backend. Each
 * test opens a fresh store (or fresh flow names) through `open`.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { FlowsError, type FlowStore, type NewEvent, type StoredEvent, type TypeFilter } from '../../src/flows/index.js';

export const acl = { publish: ['a'], subscribe: ['a'], admin: ['a'] };
/** Event `seq` of a test producer (id `id-seq`, ~100-octet payload). */
export const ev = (seq: number, extra: Partial<NewEvent> = {}): NewEvent => ({
  seq, id: `id-${seq}`, ns: 'urn:t', name: 'n', source: 'a', time: '2026-01-01T00:00:00Z', contentType: 'text/plain', text: true, payload: Buffer.from(`p${seq}:${'x'.repeat(96)}`), ...extra,
});

/** Every event of a flow from `from` (no follow), bounded. */
export async function readAll(store: FlowStore, flow: string, from = 1, max = 100, filters: TypeFilter[] = []): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  const ac = new AbortController();
  for await (const p of store.pages(flow, from, { max, filters, follow: false, signal: ac.signal })) {
    out.push(...p.events);
    if (out.length > 1_000_000) break;
  }
  return out;
}

let counter = 0;
/** A fresh flow name. */
export const fresh = (p: string): string => `${p}-${process.pid}-${++counter}`;

/** Register the contract tests for one backend. */
export function storeContract(kind: string, open: (t: import('ava').ExecutionContext) => Promise<FlowStore>): void {
  test(`${kind}: create, describe, list, FLOW_EXISTS, delete`, async (t) => {
    const s = await open(t);
    const name = fresh('c');
    const info = await s.createFlow(name, 'desc é', acl, { maxAgeSeconds: 3600 });
    t.like(info, { name, description: 'desc é', firstOffset: 1, nextOffset: 1, events: 0, acl, retention: { maxAgeSeconds: 3600 } });
    t.like(await s.describe(name), { name, events: 0 });
    t.true((await s.list()).some((f) => f.name === name));
    const dup = await t.throwsAsync(s.createFlow(name, '', acl), { instanceOf: FlowsError });
    t.is(dup?.flowsCode, 'FLOW_EXISTS');
    t.true(await s.deleteFlow(name));
    t.is(await s.describe(name), undefined);
    t.false(await s.deleteFlow(name));
  });

  test(`${kind}: append assigns offsets; a retry is stored once; a gap or a reused number stores nothing`, async (t) => {
    const s = await open(t);
    const name = fresh('a');
    await s.createFlow(name, '', acl);
    t.deepEqual((await s.append(name, 'a', 'p', [ev(1), ev(2), ev(3)])).offsets, [1, 2, 3]);
    const retry = await s.append(name, 'a', 'p', [ev(2), ev(3), ev(4)]);
    t.deepEqual(retry, { offsets: [2, 3, 4], duplicates: 2 });
    const gap = await t.throwsAsync(s.append(name, 'a', 'p', [ev(5), ev(7)]), { instanceOf: FlowsError });
    t.is(gap?.flowsCode, 'SEQUENCE_GAP');
    t.is(gap?.details.expected, 6);
    const conflict = await t.throwsAsync(s.append(name, 'a', 'p', [ev(4, { id: 'other' })]), { instanceOf: FlowsError });
    t.is(conflict?.flowsCode, 'SEQUENCE_CONFLICT');
    t.is(await s.lastSeq(name, 'a', 'p'), 4);
    t.is(await s.lastSeq(name, 'b', 'p'), 0, 'per publisher identity');
    t.deepEqual((await s.append(name, 'b', 'p', [ev(1)])).offsets, [5]);
    t.is(await s.committedNext(name), 6);
    const all = await readAll(s, name);
    t.deepEqual(all.map((e) => [e.offset, e.publisher, e.seq]), [[1, 'a', 1], [2, 'a', 2], [3, 'a', 3], [4, 'a', 4], [5, 'b', 1]]);
    const nf = await t.throwsAsync(s.append(fresh('none'), 'a', 'p', [ev(1)]), { instanceOf: FlowsError });
    t.is(nf?.flowsCode, 'FLOW_NOT_FOUND');
  });

  test(`${kind}: an event repeated within one batch is stored once (a duplicate at the same offset); repeated with another id it is SEQUENCE_CONFLICT and nothing of the batch is stored`, async (t) => {
    const s = await open(t);
    const name = fresh('rep');
    await s.createFlow(name, '', acl);
    t.deepEqual(await s.append(name, 'a', 'p', [ev(1), ev(2), ev(1), ev(3), ev(2)]), { offsets: [1, 2, 1, 3, 2], duplicates: 2 });
    const c = await t.throwsAsync(s.append(name, 'a', 'p', [ev(4), ev(4, { id: 'other' })]), { instanceOf: FlowsError });
    t.is(c?.flowsCode, 'SEQUENCE_CONFLICT');
    t.is(c?.details.index, 1);
    t.deepEqual((await readAll(s, name)).map((e) => e.seq), [1, 2, 3]);
  });

  test(`${kind}: events keep every field (Unicode, bytes, lang, to) and pages filter by type`, async (t) => {
    const s = await open(t);
    const name = fresh('f');
    await s.createFlow(name, '', acl);
    await s.append(name, 'a', 'p', [
      ev(1, { ns: 'urn:x', name: 'créé', lang: 'fr', to: 'bob' }),
      ev(2, { ns: 'urn:y', name: 'n', text: false, payload: Buffer.from([0, 255, 1]) }),
      ev(3, { ns: 'urn:x', name: 'other' }),
    ]);
    const all = await readAll(s, name);
    t.like(all[0], { offset: 1, ns: 'urn:x', name: 'créé', lang: 'fr', to: 'bob', text: true, producer: 'p', publisher: 'a', source: 'a', contentType: 'text/plain' });
    t.deepEqual([...(all[1] as StoredEvent).payload], [0, 255, 1]);
    t.false((all[1] as StoredEvent).text);
    t.true(typeof (all[0] as StoredEvent).stored === 'number' && (all[0] as StoredEvent).stored > 0);
    t.deepEqual((await readAll(s, name, 1, 100, [{ ns: 'urn:x' }])).map((e) => e.offset), [1, 3]);
    t.deepEqual((await readAll(s, name, 1, 100, [{ ns: 'urn:x', name: 'other' }, { ns: 'urn:y', name: 'n' }])).map((e) => e.offset), [2, 3]);
    t.deepEqual((await readAll(s, name, 2, 1)).map((e) => e.offset), [2, 3], 'pages of one, from an offset');
  });

  test(`${kind}: a following reader wakes for new events and ends when the flow is deleted`, async (t) => {
    const s = await open(t);
    const name = fresh('w');
    await s.createFlow(name, '', acl);
    const ac = new AbortController();
    const seen: number[] = [];
    const reading = (async () => {
      for await (const p of s.pages(name, 1, { max: 10, filters: [], follow: true, signal: ac.signal })) {
        seen.push(...p.events.map((e) => e.offset));
        if (seen.length >= 3) break;
      }
    })();
    await s.append(name, 'a', 'p', [ev(1)]);
    await s.append(name, 'a', 'p', [ev(2), ev(3)]);
    await reading;
    t.deepEqual(seen, [1, 2, 3]);
    const tail = (async () => {
      let n = 0;
      for await (const p of s.pages(name, 4, { max: 10, filters: [], follow: true, signal: ac.signal })) n += p.events.length;
      return n;
    })();
    await new Promise((r) => setTimeout(r, 100));
    await s.deleteFlow(name);
    const timer = setTimeout(() => ac.abort(), 30_000); // bound only: the deletion must end it first
    t.is(await tail, 0);
    clearTimeout(timer);
    t.false(ac.signal.aborted, 'ended by the deletion, not by the bound');
  });

  test(`${kind}: setAcl replaces a flow's ACL (describe and list show it); FLOW_NOT_FOUND for an unknown flow`, async (t) => {
    const s = await open(t);
    const name = fresh('acl');
    await s.createFlow(name, 'd', acl);
    const next = { publish: ['a', 'b'], subscribe: ['*'], admin: ['c'] };
    t.like(await s.setAcl(name, next), { name, description: 'd', acl: next });
    t.deepEqual((await s.describe(name))?.acl, next);
    t.deepEqual((await s.list()).find((f) => f.name === name)?.acl, next);
    const nf = await t.throwsAsync(s.setAcl(fresh('none'), next), { instanceOf: FlowsError });
    t.is(nf?.flowsCode, 'FLOW_NOT_FOUND');
  });

  test(`${kind}: consumer positions never move back`, async (t) => {
    const s = await open(t);
    const name = fresh('k');
    await s.createFlow(name, '', acl);
    await s.append(name, 'a', 'p', [ev(1), ev(2), ev(3)]);
    t.is(await s.acked(name, 'c'), 0);
    t.is(await s.ack(name, 'c', 2), 2);
    t.is(await s.ack(name, 'c', 1), 2);
    t.is(await s.acked(name, 'c'), 2);
    t.is(await s.ack(name, 'd', 3), 3);
  });

  test(`${kind}: retention by bytes removes the oldest events; offsets are never reused`, async (t) => {
    const s = await open(t);
    const name = fresh('r');
    await s.createFlow(name, '', acl, { maxBytes: 2048 });
    for (let i = 0; i < 10; i++) await s.append(name, 'a', 'p', Array.from({ length: 10 }, (_, k) => ev(i * 10 + k + 1)));
    let info = await s.describe(name);
    for (let i = 0; i < 100 && info && info.firstOffset === 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      info = await s.describe(name);
    }
    t.truthy(info);
    t.true((info?.firstOffset ?? 1) > 1, `the oldest events went (first ${info?.firstOffset})`);
    t.is(info?.nextOffset, 101);
    const kept = await readAll(s, name);
    t.true(kept.reduce((n, e) => n + e.payload.length, 0) <= 2048, 'what is kept fits the limit');
    t.is(kept[kept.length - 1]?.offset, 100, 'the newest are kept');
    t.is(kept[0]?.offset, info?.firstOffset);
    t.deepEqual((await s.append(name, 'a', 'p', [ev(101)])).offsets, [101], 'offsets go on');
  });
}
