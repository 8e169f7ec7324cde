/**
 * PUT and GET over real sockets: round trips with SHA-256 checked at both
 * ends, VALIDATION_FAILED with nothing stored, identical content stored once,
 * ranged GET resuming after the connection was cut, GET while the PUT streams.
 */
import test from 'ava';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nameOf, type ObjectInfo } from '../../src/decade/index.js';
import { gated, octets, readSome, rejectsWith, sha, startDecade, startPut, tempDir, until } from '../helpers/decade.js';

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const shard of await readdir(join(dir, 'blobs'))) for (const f of await readdir(join(dir, 'blobs', shard))) out.push(f);
  return out;
}

for (const size of [0, 1, 5 * 1024 * 1024 + 3]) {
  test(`PUT then GET of ${size} octets: CREATED, the octets back, SHA-256 equal at both ends`, async (t) => {
    const h = await startDecade(t);
    const { c, token } = await h.session();
    const data = octets(size, size + 7);
    const name = nameOf(data).name;
    const created = await c.put(token, data, { type: 'application/x-test' });
    t.deepEqual(created, { name, size, fresh: true });
    // What the server stored hashes to the name (server end)...
    const stored = await readFile(h.store.blobPath(nameOf(data).hex));
    t.is(sha(stored), sha(data));
    // ...and what the client gets back too (client end; get() verifies and we check again).
    const back = await c.get(token, name);
    t.is(back.length, size);
    t.is(sha(back), sha(data));
    const info = await c.attributes(token, name);
    t.is(info.size, size);
    t.is(info.type, 'application/x-test');
    t.is(info.gets, 1);
    t.is(info.state, 'complete');
  });
}

test('content that does not match its name: VALIDATION_FAILED, nothing stored, no temporary file left', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const { c, token } = await h.session();
  const data = octets(300_000, 3);
  const wrong = nameOf(octets(300_000, 4)).name;
  await rejectsWith(t, c.putStream(token, wrong, data.length, [data]), 'VALIDATION_FAILED');
  // Longer and shorter than declared, too.
  const right = nameOf(data).name;
  await rejectsWith(t, c.putStream(token, right, data.length - 1, [data]), 'VALIDATION_FAILED');
  await rejectsWith(t, c.putStream(token, right, data.length + 1, [data]), 'VALIDATION_FAILED');
  t.deepEqual(await files(h.dir), []);
  t.deepEqual(await readdir(join(h.dir, 'tmp')), []);
  await rejectsWith(t, c.get(token, wrong), 'NOT_FOUND');
  await rejectsWith(t, c.get(token, right), 'NOT_FOUND');
  t.is(await h.store.usage('alice'), 0);
  // The session is still good: the right content goes in.
  t.true((await c.put(token, data)).fresh);
});

test('identical content is stored once, whichever account PUTs it; removing one reference keeps it for the other', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const alice = await h.token();
  const bob = await h.token({ account: 'bob' });
  const data = octets(100_000, 9);
  const { name } = nameOf(data);
  t.true((await c.put(alice, data)).fresh);
  t.false((await c.put(alice, data)).fresh, 'a second PUT by the same account finds it there');
  t.true((await c.put(bob, data)).fresh, 'new for bob');
  t.deepEqual(await files(h.dir), [nameOf(data).hex]);
  t.is(await h.store.usage('alice'), data.length);
  t.is(await h.store.usage('bob'), data.length);
  await c.remove(alice, name);
  await rejectsWith(t, c.get(alice, name), 'NOT_FOUND');
  t.is(sha(await c.get(bob, name)), sha(data));
  await c.remove(bob, name);
  t.deepEqual(await files(h.dir), [], 'the blob goes with its last reference');
  await rejectsWith(t, c.remove(bob, name), 'NOT_FOUND');
});

test('a GET cut off mid-transfer resumes from the middle on a new connection; the file verifies', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const dir = await tempDir(t);
  const token = await h.token();
  const data = octets(3 * 1024 * 1024, 21);
  const { name } = nameOf(data);
  const c1 = await h.client();
  await c1.put(token, data);
  // Read about a third, write it out, then cut the connection under the transfer.
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
  // Resume: only the rest is asked for, and the whole file checks out.
  const c2 = await h.client();
  const r = await c2.getFile(token, name, out, { resume: true });
  t.is(r.resumedFrom, partial.length);
  t.is(r.size, data.length);
  t.is(sha(await readFile(out)), sha(data));
  // A range by hand, too.
  const { range, body: mid } = await c2.getStream(token, name, { offset: 1000, length: 5000 });
  t.deepEqual([range.offset, range.length, range.size], [1000, 5000, data.length]);
  const parts: Buffer[] = [];
  for await (const chunk of mid as AsyncIterable<Buffer>) parts.push(chunk);
  t.true(Buffer.concat(parts).equals(data.subarray(1000, 6000)));
  await rejectsWith(t, c2.getStream(token, name, { offset: data.length + 1 }), 'INVALID_RANGE');
  await rejectsWith(t, c2.getStream(token, name, { offset: 10, length: data.length }), 'INVALID_RANGE');
});

test('a GET of an object whose PUT is still streaming is served as the octets arrive', async (t) => {
  t.timeout(120_000); // a wait that never ends (octets held back until the PUT completes) fails here
  const h = await startDecade(t);
  const token = await h.token();
  const chunks = [octets(200_000, 1), octets(200_000, 2), octets(200_000, 3)];
  const data = Buffer.concat(chunks);
  const { name } = nameOf(data);
  const up = await h.client();
  const down = await h.client();
  const gate = gated(chunks);
  gate.release();
  const put = startPut(up, token, name, data.length, gate.source);
  // Wait (bounded) until the server sees the upload, then GET it: it answers at once with state uploading.
  let info: ObjectInfo | undefined;
  await until('the server to see the upload', async () => (info = await down.status(token, name).then((s) => s.objects[0], () => undefined)) !== undefined);
  t.is(info?.state, 'uploading');
  const { range, body } = await down.getStream(token, name);
  t.is(range.state, 'uploading');
  t.is(range.length, data.length);
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  // The first chunk comes through while the rest has not even been sent.
  const first = await readSome(it, 200_000);
  t.true(first.equals(data.subarray(0, first.length)));
  gate.release();
  gate.release();
  const rest = await readSome(it, data.length);
  t.true(Buffer.concat([first, rest]).equals(data));
  t.is((await it.next()).done, true);
  t.is((await put).name, name);
});

test('a GET following a PUT that fails validation ends with VALIDATION_FAILED, and nothing is stored', async (t) => {
  t.timeout(120_000);
  const h = await startDecade(t);
  const token = await h.token();
  const chunks = [octets(100_000, 5), octets(100_000, 6)];
  const name = nameOf(octets(200_000, 99)).name; // not the content
  const up = await h.client();
  const down = await h.client();
  const gate = gated(chunks);
  gate.release();
  const put = startPut(up, token, name, 200_000, gate.source);
  await until('the server to see the upload', () => down.status(token, name).then(() => true, () => false));
  const { body } = await down.getStream(token, name);
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  await readSome(it, 50_000);
  gate.release();
  await rejectsWith(t, (async () => { for (;;) if ((await it.next()).done) break; })(), 'VALIDATION_FAILED');
  await rejectsWith(t, put, 'VALIDATION_FAILED');
  t.deepEqual(await files(h.dir), []);
  await rejectsWith(t, down.get(token, name), 'NOT_FOUND');
});

test('object attributes and account status: size, type, TTL, access counts, used and available', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { quota: 1_000_000 });
  const { c, token } = await h.session();
  const a = octets(1000, 1);
  const b = octets(2000, 2);
  await c.put(token, a, { type: 'text/plain', ttl: 3600 });
  await c.put(token, b);
  await c.get(token, nameOf(a).name);
  await c.get(token, nameOf(a).name);
  const s = await c.status(token);
  t.is(s.account, 'alice');
  t.is(s.used, 3000);
  t.is(s.quota, 1_000_000);
  t.is(s.available, 997_000);
  t.is(s.objects.length, 2);
  const oa = s.objects.find((o) => o.name === nameOf(a).name);
  t.is(oa?.type, 'text/plain');
  t.is(oa?.gets, 2);
  t.true(oa !== undefined && oa.expires !== null && oa.expires - oa.created === 3600_000);
  const ob = s.objects.find((o) => o.name === nameOf(b).name);
  t.is(ob?.expires, null);
  t.is(ob?.type, 'application/octet-stream');
  void stat;
});
