/**
 * Server behaviour beyond single transfers: the token's bandwidth weight
 * becomes the SDT channel's scheduling weight, the per-account transfer
 * limit, TTL expiry (injected clock), a client that vanishes mid-PUT, and
 * the profiles behind TLS.
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DecadeClient, nameOf, SDT_URI } from '../../src/decade/index.js';
import { heldPut, octets, rejectsWith, startDecade, until } from '../helpers/decade.js';

test("a transfer's SDT channel is scheduled with its token's bandwidth weight (GET: server side, PUT: client side)", async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const data = octets(2 * 1024 * 1024);
  await c.put(await h.token(), data);
  const weights = async (bw: number): Promise<number[]> => {
    const { body } = await c.getStream(await h.token({ weight: bw }), nameOf(data).name);
    // The range answer has arrived, so the server has set the weight; look at its SDT channels.
    const ws: number[] = [];
    for (const s of h.server.sessions) for (const ch of s.core.channels.values()) if (ch.profile === SDT_URI) ws.push(ch.weight);
    body.destroy();
    return ws;
  };
  t.true((await weights(3)).includes(3));
  t.true((await weights(1)).includes(1));
  // A PUT's channel is weighted by the client (the sender of its octets) from the same claim.
  const more = octets(300_000, 77);
  const { done: put, release } = heldPut(t, c, await h.token({ weight: 5 }), nameOf(more).name, more, 1000);
  await until('the PUT channel', () => [...c.session.core.channels.values()].some((ch) => ch.profile === SDT_URI && ch.weight === 5));
  release();
  t.is((await put).size, more.length);
});

test('at most maxTransfersPerAccount transfers at once per account: NOT_AVAILABLE beyond, other accounts unaffected', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { maxTransfersPerAccount: 1 });
  const { c, token } = await h.session();
  const data = octets(200_000, 4);
  const { done: first, release } = heldPut(t, c, token, nameOf(data).name, data, 100_000);
  await until('the first PUT to be under way', async () => (await c.status(token, nameOf(data).name).then(() => true, () => false)));
  await rejectsWith(t, c.put(token, octets(10, 1)), 'NOT_AVAILABLE');
  await c.put(await h.token({ account: 'bob' }), octets(10, 1));
  release();
  t.is((await first).name, nameOf(data).name);
  await c.put(token, octets(10, 1));
});

test('an object past its TTL is gone: NOT_FOUND, not listed, not counted in use', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  let now = Date.now();
  const h = await startDecade(t, { now: () => now });
  const { c, token } = await h.session();
  const brief = octets(1000, 1);
  const lasting = octets(2000, 2);
  await c.put(token, brief, { ttl: 10 });
  await c.put(token, lasting);
  t.is((await c.status(token)).used, 3000);
  now += 11_000;
  await rejectsWith(t, c.get(token, nameOf(brief).name), 'NOT_FOUND');
  const s = await c.status(token);
  t.deepEqual(s.objects.map((o) => o.name), [nameOf(lasting).name]);
  t.is(s.used, 2000);
});

test('a client that vanishes mid-PUT leaves no object and no temporary file; its unsent octets go back to the budget', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const token = await h.token({ budget: 10_000_000, id: 'vanishing-1' });
  const data = octets(1_000_000, 8);
  heldPut(t, c, token, nameOf(data).name, data, 300_000);
  await until('octets in temporary space', async () => (await readdir(join(h.dir, 'tmp'))).length === 1);
  c.session.destroy();
  await until('the temporary file to go', async () => (await readdir(join(h.dir, 'tmp'))).length === 0);
  await until('the refund', async () => (await h.store.tokenUsed('vanishing-1')) < data.length);
  t.true((await h.store.tokenUsed('vanishing-1')) <= 300_000);
  t.is(await h.store.get('alice', nameOf(data).hex), undefined);
  const c2 = await h.client();
  await rejectsWith(t, c2.get(token, nameOf(data).name), 'NOT_FOUND');
});

test('over TLS: a server that requires TLS offers DECADE only after tuning; the client tunes, then PUT and GET work', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { tls: true });
  await rejectsWith(t, DecadeClient.connect({ port: h.port }), 'NOT_AVAILABLE');
  const { c, token } = await h.session({ operations: ['put', 'get'] });
  t.true(c.session.core.security.tls);
  const data = octets(300_000, 12);
  await c.put(token, data);
  t.true((await c.get(token, nameOf(data).name)).equals(data));
});
