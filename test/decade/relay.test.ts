/**
 * Server to server (spec/decade.md §8): a GET at one DECADE server (the relay)
 * with `DECADE-Source` makes it fetch the object from another (the origin)
 * with the client's source token, store it, and stream it to the client while
 * the fetch runs. Behaviour only (never timing): the client's GET streams
 * before the fetch has completed, the content is verified, tokens are scoped.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isDecadeError, nameOf, type DecadeClient, type DecadeEvent } from '../../src/decade/index.js';
import { octets, rejectsWith, startDecade, until, type Harness } from '../helpers/decade.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** An origin and a relay allowed to fetch from it (each with its own accounts and keys). */
async function pair(t: Parameters<typeof startDecade>[0]): Promise<{ origin: Harness; relay: Harness; source: string }> {
  const origin = await startDecade(t);
  const source = `127.0.0.1:${origin.port}`;
  const relay = await startDecade(t, { relay: { allow: [source] } });
  return { origin, relay, source };
}

/** Read a GET body to the end (bounded by its length); the octets, or the error it failed with. */
async function drain(body: AsyncIterable<Buffer>): Promise<{ data: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const c of body) parts.push(c);
    return { data: Buffer.concat(parts), error: undefined };
  } catch (error) {
    return { data: Buffer.concat(parts), error };
  }
}

const fetches = (events: DecadeEvent[]): DecadeEvent[] => events.filter((e) => e.op === 'put' && e.source !== undefined);

test("a GET through a relay streams to the client while the relay's fetch from the origin is still running; both ends verify; the relay keeps the copy", async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { origin, relay, source } = await pair(t);
  const first = octets(1024 * 1024, 21);
  const rest = octets(3 * 1024 * 1024 + 5, 22);
  const data = Buffer.concat([first, rest]);
  const { name, hex } = nameOf(data);
  // The origin receives the object slowly: its PUT sends the first MiB, then waits for `release`.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const oc = await origin.client();
  const put = oc.putStream(await origin.token(), name, data.length, (async function* () {
    yield first;
    await gate;
    yield rest;
  })());
  put.catch(() => undefined);
  // NOT_FOUND until the PUT has begun.
  await until('the origin to have the first MiB', () => origin.decade.status('alice', nameOf(data)).then((s) => s.objects[0]?.state === 'uploading', () => false));
  // The client holds a token for the relay (get + put: the copy is stored in its account there)
  // and one for the origin, which the relay shows it.
  const rc = await relay.client();
  const relayToken = await relay.token({ operations: ['get', 'put'] });
  const originToken = await origin.token({ operations: ['get'], objects: [name] });
  const { range, body } = await rc.getStream(relayToken, name, { source: { origin: source, token: originToken } });
  t.is(range.size, data.length);
  t.is(range.state, 'uploading');
  // Octets arrive at the client although the origin cannot have sent the whole object yet.
  const got: Buffer[] = [];
  let n = 0;
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (let i = 0; i < 10_000 && n < first.length; i++) {
    const r = await it.next();
    if (r.done) break;
    got.push(r.value);
    n += r.value.byteLength;
  }
  t.is(n, first.length, 'the first MiB reached the client before the origin had the rest');
  t.is(await relay.store.get('alice', hex), undefined, 'the fetch has not completed');
  t.deepEqual(fetches(relay.events), [], 'no fetch finished yet');
  release();
  for (let i = 0; i < 100_000; i++) {
    const r = await it.next();
    if (r.done) break;
    got.push(r.value);
  }
  const back = Buffer.concat(got);
  t.is(sha(back), sha(data), 'SHA-256 at the client equals the original');
  t.deepEqual(await put, { name, size: data.length, fresh: true });
  await until('the relay to commit its copy', async () => (await relay.store.get('alice', hex)) !== undefined);
  const fetched = fetches(relay.events);
  t.is(fetched.length, 1);
  t.is(fetched[0]?.outcome, 'CREATED');
  t.is(fetched[0]?.source, source);
  // The relay's copy verifies and is served from there: no second fetch from the origin.
  const originGets = origin.events.filter((e) => e.op === 'get').length;
  t.is(sha(await rc.get(relayToken, name)), sha(data));
  t.is(sha(await rc.get(relayToken, name)), sha(data));
  t.is(origin.events.filter((e) => e.op === 'get').length, originGets);
  // Neither token appears in any event of either server.
  const log = JSON.stringify([...relay.events, ...origin.events]);
  t.false(log.includes(originToken));
  t.false(log.includes(relayToken));
});

test('relayed GETs are scoped by both tokens: the relay token must permit get and put, the origin checks its own, other accounts see nothing', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { origin, relay, source } = await pair(t);
  const data = octets(200_000, 31);
  const other = octets(1000, 32);
  const { name, hex } = nameOf(data);
  const oc = await origin.client();
  await oc.put(await origin.token(), data);
  await oc.put(await origin.token(), other);
  const rc = await relay.client();
  const originToken = await origin.token({ operations: ['get'], objects: [name] });
  const get = (relayToken: string, sourceToken: string, n = name): Promise<Buffer> =>
    (async () => {
      const { body } = await rc.getStream(relayToken, n, { source: { origin: source, token: sourceToken } });
      const r = await drain(body as AsyncIterable<Buffer>);
      if (r.error) throw r.error;
      return r.data;
    })();
  // The relay token lacks put: refused before the origin is asked.
  await rejectsWith(t, get(await relay.token({ operations: ['get'] }), originToken), 'TOKEN_OPERATION');
  t.is(origin.events.filter((e) => e.op === 'get').length, 0, 'the origin was not asked');
  // The origin token covers another object only: the origin refuses, the refusal reaches the client.
  await rejectsWith(t, get(await relay.token(), originToken, nameOf(other).name), 'TOKEN_OBJECT');
  // A source token the origin did not issue (signed with the relay's key): TOKEN_INVALID from the origin.
  await rejectsWith(t, get(await relay.token(), await relay.token({ operations: ['get'] })), 'TOKEN_INVALID');
  // The origin token is read-only: enough for the fetch.
  t.is(sha(await get(await relay.token(), originToken)), sha(data));
  // The client's GET ends once the octets verified; the copy is recorded right after (fsync, rename).
  await until("the relay's copy", async () => (await relay.store.get('alice', hex)) !== undefined);
  t.is(await relay.store.get('alice', nameOf(other).hex), undefined, 'nothing stored from the refused fetch');
  // Bob, at the relay, does not get alice's copy (and his own fetch needs his own origin token).
  await rejectsWith(t, rc.get(await relay.token({ account: 'bob' }), name), 'NOT_FOUND');
  await rejectsWith(t, get(await relay.token({ account: 'bob' }), await origin.token({ account: 'bob', operations: ['get'] })), 'NOT_FOUND');
});

test('a relay fetches only from the origins it is configured with, and only with a source token; an unreachable origin is NOT_AVAILABLE', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { origin, relay } = await pair(t);
  const data = octets(5000, 41);
  const { name } = nameOf(data);
  await (await origin.client()).put(await origin.token(), data);
  const rc = await relay.client();
  const originToken = await origin.token({ operations: ['get'] });
  const via = async (c: DecadeClient, token: string, src: { origin: string; token: string }): Promise<unknown> => (await c.getStream(token, name, { source: src })).range;
  // The same origin by another spelling (localhost) is not on the list: the relay never dials it.
  await rejectsWith(t, via(rc, await relay.token(), { origin: `localhost:${origin.port}`, token: originToken }), 'PERMISSION_DENIED');
  await rejectsWith(t, via(rc, await relay.token(), { origin: 'not an origin', token: originToken }), 'BAD_REQUEST');
  await rejectsWith(t, via(rc, await relay.token(), { origin: `127.0.0.1:${origin.port}`, token: '' }), 'PERMISSION_DENIED');
  // A server without relay options fetches from nowhere.
  const plain = await startDecade(t);
  await rejectsWith(t, via(await plain.client(), await plain.token(), { origin: `127.0.0.1:${origin.port}`, token: originToken }), 'PERMISSION_DENIED');
  t.is(origin.events.filter((e) => e.op === 'get').length, 0, 'the origin was never asked');
  // An allowed origin that cannot be reached (nothing listens on port 1): NOT_AVAILABLE, and the relay serves on.
  const lonely = await startDecade(t, { relay: { allow: ['127.0.0.1:1'] } });
  const lc = await lonely.client();
  await rejectsWith(t, via(lc, await lonely.token(), { origin: '127.0.0.1:1', token: originToken }), 'NOT_AVAILABLE');
  await rejectsWith(t, lc.get(await lonely.token(), name), 'NOT_FOUND');
});

test('an origin that sends octets not matching the name: the client gets VALIDATION_FAILED, the relay stores nothing', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { origin, relay, source } = await pair(t);
  const data = octets(2 * 1024 * 1024, 51);
  const { name, hex } = nameOf(data);
  await (await origin.client()).put(await origin.token(), data);
  // Corrupt the origin's copy on disk (the origin serves its blob as stored).
  const fh = await open(origin.store.blobPath(hex), 'r+');
  await fh.write(Buffer.from('corrupted'), 0, 9, 1_000_000);
  await fh.close();
  const rc = await relay.client();
  const { body } = await rc.getStream(await relay.token(), name, { source: { origin: source, token: await origin.token({ operations: ['get'] }) } });
  const r = await drain(body as AsyncIterable<Buffer>);
  t.true(isDecadeError(r.error, 'VALIDATION_FAILED'), String(r.error));
  await until('the failed fetch to be reported', () => fetches(relay.events).length === 1);
  t.is(fetches(relay.events)[0]?.outcome, 'VALIDATION_FAILED');
  t.is(await relay.store.get('alice', hex), undefined);
  t.deepEqual(await readdir(join(relay.dir, 'tmp')), [], 'no temporary file left');
});
