/**
 * The DECADE server on the NATS JetStream object store (JetStreamDecadeStore)
 * against a real nats-server process (JetStream, file storage) on 127.0.0.1:
 * PUT/GET with SHA-256 checked at both ends (the server end read back through
 * @nats-io/obj, which checks the object's own digest), ranges and a resumed
 * GET, a GET while the PUT streams (from memory and read back from the
 * stored chunks), VALIDATION_FAILED with nothing stored, identical content
 * stored once (also when two servers commit it at once), a quota refusal that
 * stores nothing, token ledgers shared by servers, and an interrupted upload's
 * chunks swept at open. Each test has a bucket of its own.
 */
import test, { type ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { JetStreamDecadeStore, nameOf } from '../../src/decade/index.js';
import { startNats, type NatsCluster } from '../helpers/nats.js';
import { gated, octets, readSome, rejectsWith, sha, startDecadeOn, startPut, tempDir, until, type Harness } from '../helpers/decade.js';

let nats: NatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;
const cleanups: (() => Promise<void>)[] = [];
test.before(async () => {
  nats = await startNats((fn) => cleanups.push(fn), 1);
  nc = await connect({ servers: nats.servers });
  jsm = await jetstreamManager(nc);
});
test.after.always(async () => {
  await nc?.close();
  for (const fn of cleanups) await fn();
});

let buckets = 0;
function bucketName(): string {
  return `t${process.pid}-${++buckets}`;
}

function store(bucket: string, extra: Partial<ConstructorParameters<typeof JetStreamDecadeStore>[0]> = {}): JetStreamDecadeStore {
  return new JetStreamDecadeStore({ servers: nats.servers, bucket, timeoutMs: 20_000, ...extra });
}

async function start(t: ExecutionContext, options: Parameters<typeof startDecadeOn>[2] & { bucket?: string } = {}): Promise<Harness<JetStreamDecadeStore> & { bucket: string; os: ObjectStore }> {
  const bucket = options.bucket ?? bucketName();
  const h = await startDecadeOn(t, store(bucket), options);
  const os = await new Objm(nc).open(bucket);
  return Object.assign(h, { bucket, os });
}

/** The bucket as @nats-io/obj sees it: live object names, and the chunk messages in its stream. */
async function contents(bucket: string, os: ObjectStore): Promise<{ objects: string[]; chunkMessages: number; bytes: number }> {
  const objects = (await os.list()).filter((i) => !i.deleted).map((i) => i.name).sort();
  const si = await jsm.streams.info(`OBJ_${bucket}`, { subjects_filter: `$O.${bucket}.C.>` });
  const chunkMessages = Object.values(si.state.subjects ?? {}).reduce((a, n) => a + n, 0);
  return { objects, chunkMessages, bytes: si.state.bytes };
}

/** The object read back through @nats-io/obj (which fails unless its SHA-256 digest matches). */
async function objBlob(os: ObjectStore, hex: string): Promise<Uint8Array | null> {
  return os.getBlob(hex);
}

for (const size of [0, 1, 5 * 1024 * 1024 + 3]) {
  test(`jetstream: PUT then GET of ${size} octets: CREATED, the octets back, SHA-256 equal at both ends`, async (t) => {
    const h = await start(t);
    const { c, token } = await h.session();
    const data = octets(size, size + 7);
    const { name, hex } = nameOf(data);
    t.deepEqual(await c.put(token, data, { type: 'application/x-test' }), { name, size, fresh: true });
    const stored = await objBlob(h.os, hex);
    t.not(stored, null, 'the object is in the bucket under its digest');
    t.is(sha(stored as Uint8Array), sha(data), 'server end: what the bucket holds hashes to the name');
    const back = await c.get(token, name);
    t.is(back.length, size);
    t.is(sha(back), sha(data), 'client end');
    const info = await c.attributes(token, name);
    t.like(info, { size, type: 'application/x-test', gets: 1, state: 'complete' });
  });
}

test('jetstream: a GET cut off mid-transfer resumes from the middle; ranges across chunk boundaries; INVALID_RANGE beyond the end', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await start(t);
  const dir = await tempDir(t);
  const token = await h.token();
  const data = octets(3 * 1024 * 1024 + 17, 21);
  const { name } = nameOf(data);
  const c1 = await h.client();
  await c1.put(token, data);
  const out = join(dir, 'obj');
  const { body } = await c1.getStream(token, name);
  const got: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    got.push(chunk);
    n += chunk.length;
    if (n >= 1024 * 1024) break;
  }
  c1.session.destroy();
  const partial = Buffer.concat(got);
  t.true(partial.length > 0 && partial.length < data.length);
  await writeFile(out, partial);
  const c2 = await h.client();
  const r = await c2.getFile(token, name, out, { resume: true });
  t.is(r.resumedFrom, partial.length);
  t.is(sha(await readFile(out)), sha(data));
  const chunk = 256 * 1024;
  for (const [offset, length] of [[1000, 5000], [chunk - 10, 20], [5 * chunk + 3, 2 * chunk + 5], [data.length - 7, 7], [data.length, 0]] as const) {
    const { range, body: part } = await c2.getStream(token, name, { offset, length });
    t.deepEqual([range.offset, range.length], [offset, length]);
    const parts: Buffer[] = [];
    for await (const x of part as AsyncIterable<Buffer>) parts.push(x);
    t.true(Buffer.concat(parts).equals(data.subarray(offset, offset + length)), `range ${offset}+${length}`);
  }
  await rejectsWith(t, c2.getStream(token, name, { offset: data.length + 1 }), 'INVALID_RANGE');
});

test('jetstream: a GET while the PUT streams gets the octets as they arrive; a reader that starts late reads the stored chunks back', async (t) => {
  t.timeout(180_000);
  const h = await start(t);
  const token = await h.token();
  const MiB = 1024 * 1024;
  // 10 MiB before anyone reads (more than an upload keeps in memory), then 2 more one at a time.
  const chunks = [octets(10 * MiB, 1), octets(MiB, 2), octets(MiB + 5, 3)];
  const data = Buffer.concat(chunks);
  const { name } = nameOf(data);
  const up = await h.client();
  const down = await h.client();
  const gate = gated(chunks);
  gate.release();
  const put = startPut(up, token, name, data.length, gate.source);
  // The first 10 MiB are in the bucket's stream (acknowledged chunks), under no name yet.
  await until('the first chunks to be stored', async () => (await contents(h.bucket, h.os)).bytes >= 9 * MiB);
  t.deepEqual((await contents(h.bucket, h.os)).objects, [], 'nothing visible under the name while it streams');
  const { range, body } = await down.getStream(token, name);
  t.is(range.state, 'uploading');
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = await readSome(it, 10 * MiB);
  t.true(first.equals(data.subarray(0, first.length)), 'read back from the stored chunks while the PUT waits');
  gate.release();
  gate.release();
  const rest = await readSome(it, data.length);
  t.true(Buffer.concat([first, rest]).equals(data));
  t.is((await it.next()).done, true);
  t.is((await put).name, name);
  t.is(sha((await objBlob(h.os, nameOf(data).hex)) as Uint8Array), sha(data));
});

test('jetstream: content that does not match its name is VALIDATION_FAILED (also to a GET following it); nothing stored, no chunk left', async (t) => {
  t.timeout(120_000);
  const h = await start(t);
  const { c, token } = await h.session();
  const data = octets(700_000, 3);
  const wrong = nameOf(octets(700_000, 4)).name;
  await rejectsWith(t, c.putStream(token, wrong, data.length, [data]), 'VALIDATION_FAILED');
  const right = nameOf(data).name;
  await rejectsWith(t, c.putStream(token, right, data.length - 1, [data]), 'VALIDATION_FAILED');
  await rejectsWith(t, c.putStream(token, right, data.length + 1, [data]), 'VALIDATION_FAILED');
  // A GET that followed a bad upload fails with it.
  const gate = gated([data.subarray(0, 400_000), data.subarray(400_000)]);
  gate.release();
  const put = startPut(c, token, wrong, data.length, gate.source);
  const down = await h.client();
  await until('the server to see the upload', () => down.status(token, wrong).then(() => true, () => false));
  const { body } = await down.getStream(token, wrong);
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  await readSome(it, 100_000);
  gate.release();
  await rejectsWith(t, (async () => { for (;;) if ((await it.next()).done) break; })(), 'VALIDATION_FAILED');
  await rejectsWith(t, put, 'VALIDATION_FAILED');
  await until('the aborted chunks to be purged', async () => (await contents(h.bucket, h.os)).chunkMessages === 0);
  t.deepEqual(await contents(h.bucket, h.os), { objects: [], chunkMessages: 0, bytes: 0 });
  await rejectsWith(t, c.get(token, right), 'NOT_FOUND');
  t.is(await h.store.usage('alice'), 0);
  t.true((await c.put(token, data)).fresh, 'the session is still good');
});

test('jetstream: identical content is stored once whichever account PUTs it; the object goes with its last reference', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await start(t);
  const c = await h.client();
  const alice = await h.token();
  const bob = await h.token({ account: 'bob' });
  const data = octets(600_000, 9);
  const { name, hex } = nameOf(data);
  t.true((await c.put(alice, data)).fresh);
  const once = await contents(h.bucket, h.os);
  t.false((await c.put(alice, data)).fresh, 'a second PUT by the same account finds it there');
  t.true((await c.put(bob, data)).fresh, 'new for bob');
  t.deepEqual(await contents(h.bucket, h.os), once, 'one object, the chunks of one copy');
  t.deepEqual(once.objects, [hex]);
  t.is(once.chunkMessages, 3);
  t.is(await h.store.usage('alice'), data.length);
  t.is(await h.store.usage('bob'), data.length);
  await c.remove(alice, name);
  await rejectsWith(t, c.get(alice, name), 'NOT_FOUND');
  t.is(sha(await c.get(bob, name)), sha(data));
  await c.remove(bob, name);
  t.like(await contents(h.bucket, h.os), { objects: [], chunkMessages: 0 }, 'the object and its chunks went with the last reference');
  await rejectsWith(t, c.remove(bob, name), 'NOT_FOUND');
  // Stored again after the deletion (the meta subject holds a deletion marker): fresh, readable.
  t.true((await c.put(bob, data)).fresh);
  t.is(sha(await c.get(bob, name)), sha(data));
});

test('jetstream: two servers sharing a bucket commit the same content at once: one copy is kept, both accounts hold it', async (t) => {
  t.timeout(120_000);
  const bucket = bucketName();
  const a = await start(t, { bucket });
  const b = await start(t, { bucket, keys: a.keys });
  const data = octets(2 * 1024 * 1024, 31);
  const { name, hex } = nameOf(data);
  const [ca, cb] = [await a.client(), await b.client()];
  const [ra, rb] = await Promise.all([ca.put(await a.token(), data), cb.put(await b.token({ account: 'bob' }), data)]);
  t.true(ra.fresh && rb.fresh);
  await until('the losing copy to be purged', async () => (await contents(bucket, a.os)).chunkMessages === 8);
  t.deepEqual((await contents(bucket, a.os)).objects, [hex]);
  t.is(sha(await cb.get(await b.token({ account: 'bob' }), name)), sha(data));
  t.is(sha(await ca.get(await a.token({ account: 'bob' }), name)), sha(data), "server a serves bob's record written by server b");
});

test('jetstream: a PUT beyond the quota is QUOTA_EXCEEDED and stores nothing (also of two at once that only fit one at a time); a single-use token is charged once across two servers', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const bucket = bucketName();
  const h = await start(t, { quota: 1_000_000, bucket });
  const { c, token } = await h.session();
  const a = octets(800_000, 1);
  await c.put(token, a);
  const before = await contents(h.bucket, h.os);
  const b = octets(300_000, 2);
  await rejectsWith(t, c.put(token, b), 'QUOTA_EXCEEDED');
  t.deepEqual(await contents(h.bucket, h.os), before, 'nothing of the refused object in the bucket');
  t.is(await h.store.usage('alice'), 800_000);
  t.is((await c.status(token)).available, 200_000);
  // Two PUTs at once that fit one at a time but not together: exactly one is refused, whatever the store's answers interleave.
  const [x, y] = [octets(150_000, 3), octets(150_000, 4)];
  const both = await Promise.allSettled([c.put(token, x), (await h.client()).put(token, y)]);
  t.deepEqual(both.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const refused = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.is((refused.reason as { decadeCode?: string }).decadeCode, 'QUOTA_EXCEEDED');
  t.is(await h.store.usage('alice'), 950_000);
  await until('the refused PUT\'s chunks to be purged', async () => (await contents(h.bucket, h.os)).chunkMessages === 4 + 1);
  t.is((await contents(h.bucket, h.os)).objects.length, 2, 'the first object and one of the two: nothing of the refused one');
  // The token ledger is in the bucket's record stream: a single-use token spent at one server is spent at the other.
  const other = await start(t, { bucket, keys: h.keys });
  const once = await h.token({ once: true, id: `once-${bucket}` });
  const c2 = await other.client();
  const results = await Promise.allSettled([c.status(once), c2.status(once), c.status(once), c2.status(once)]);
  t.is(results.filter((r) => r.status === 'fulfilled').length, 1, 'served exactly once');
  for (const r of results) if (r.status === 'rejected') t.is((r.reason as { decadeCode?: string }).decadeCode, 'TOKEN_REPLAYED');
  const budget = await h.token({ budget: 1_000_000, id: `budget-${bucket}` });
  await c.get(budget, nameOf(a).name);
  t.is(await other.store.tokenUsed(`budget-${bucket}`), 800_000);
  await rejectsWith(t, c2.get(budget, nameOf(a).name), 'TOKEN_BUDGET');
});

test('jetstream: an upload interrupted without an abort (its server gone) leaves chunks under no name, which the next open purges (one with a grace period leaves a young upload alone)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const bucket = bucketName();
  const s1 = store(bucket);
  await s1.open();
  const w = await s1.createWriter(nameOf(octets(10, 1)).hex);
  await w.write(octets(1024 * 1024, 5));
  await until('chunks to be stored', () => w.written >= 768 * 1024);
  const os = await new Objm(nc).open(bucket);
  // Another server on the bucket with a grace period leaves an upload that young alone.
  const patient = store(bucket, { orphanGraceMs: 600_000 });
  t.like(await patient.open(), { tempFiles: 0, orphans: 0 });
  await patient.close();
  t.true((await contents(bucket, os)).chunkMessages >= 3, 'the upload under way kept its chunks');
  await s1.close(); // as a crash: no abort, no commit
  t.true((await contents(bucket, os)).chunkMessages >= 3);
  const s2 = store(bucket);
  const report = await s2.open();
  t.teardown(() => s2.close());
  t.is(report.tempFiles, 1);
  t.true(report.tempOctets >= 768 * 1024);
  t.deepEqual(await contents(bucket, os), { objects: [], chunkMessages: 0, bytes: 0 });
});

test('jetstream: open drops expired records and removes objects no record references (a crash between meta and record); referenced objects stay', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await start(t);
  const { c, token } = await h.session();
  const kept = octets(300_000, 41);
  const expiring = octets(300_000, 42);
  await c.put(token, kept);
  await c.put(token, expiring, { ttl: 60 });
  // An object with no record, as a crash after its meta and before its record leaves it.
  const stray = octets(100_000, 43);
  await h.os.putBlob({ name: nameOf(stray).hex }, stray);
  t.deepEqual((await contents(h.bucket, h.os)).objects, [nameOf(kept).hex, nameOf(expiring).hex, nameOf(stray).hex].sort());
  const later = store(h.bucket);
  const report = await later.open(Date.now() + 120_000);
  t.teardown(() => later.close());
  t.is(report.orphans, 2, 'the expired object and the stray one');
  t.is(report.tempFiles, 0);
  const after = await contents(h.bucket, h.os);
  t.deepEqual(after.objects, [nameOf(kept).hex]);
  t.is(after.chunkMessages, 2, 'only the kept object\'s chunks remain');
  t.is(await later.get('alice', nameOf(expiring).hex, 0), undefined, 'the expired record is gone, not just hidden');
  t.is(sha(await c.get(token, nameOf(kept).name)), sha(kept));
});
