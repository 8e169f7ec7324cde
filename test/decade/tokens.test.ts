/**
 * Tokens over real sockets: each restriction refused with its own code
 * (operation, object, client, expiry, byte budget, replay), invalid tokens,
 * quota refusal leaving nothing stored, and no token in any log record or
 * error the server or client produces.
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { createToken, nameOf, type DecadeError } from '../../src/decade/index.js';
import { octets, rejectsWith, startDecade } from '../helpers/decade.js';

test('operation: a token for get only cannot PUT, stat or rm (TOKEN_OPERATION)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const data = octets(1000);
  await c.put(await h.token(), data);
  const getOnly = await h.token({ operations: ['get'] });
  await rejectsWith(t, c.put(getOnly, octets(10, 2)), 'TOKEN_OPERATION');
  await rejectsWith(t, c.status(getOnly), 'TOKEN_OPERATION');
  await rejectsWith(t, c.remove(getOnly, nameOf(data).name), 'TOKEN_OPERATION');
  t.true((await c.get(getOnly, nameOf(data).name)).equals(data));
});

test('object: a token for certain names or a prefix refuses others (TOKEN_OBJECT)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const all = await h.token();
  const a = octets(500, 1);
  const b = octets(500, 2);
  await c.put(all, a);
  await c.put(all, b);
  const onlyA = await h.token({ objects: [nameOf(a).name] });
  t.true((await c.get(onlyA, nameOf(a).name)).equals(a));
  await rejectsWith(t, c.get(onlyA, nameOf(b).name), 'TOKEN_OBJECT');
  await rejectsWith(t, c.status(onlyA), 'TOKEN_OBJECT'); // the whole account is more than its objects
  const prefix = `${nameOf(b).name.slice(0, 20)}*`;
  const byPrefix = await h.token({ objects: [prefix] });
  t.true((await c.get(byPrefix, nameOf(b).name)).equals(b));
  if (!nameOf(a).name.startsWith(prefix.slice(0, -1))) await rejectsWith(t, c.get(byPrefix, nameOf(a).name), 'TOKEN_OBJECT');
});

test('client: a token for other addresses is refused (TOKEN_CLIENT); one for 127.0.0.0/8 is served', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const data = octets(100);
  await c.put(await h.token(), data);
  await rejectsWith(t, c.get(await h.token({ clients: ['10.9.8.7', '2001:db8::/32', 'id:carol'] }), nameOf(data).name), 'TOKEN_CLIENT');
  t.true((await c.get(await h.token({ clients: ['127.0.0.0/8'] }), nameOf(data).name)).equals(data));
  t.true((await c.get(await h.token({ clients: ['127.0.0.1'] }), nameOf(data).name)).equals(data));
});

test('expiry: an expired token is refused (TOKEN_EXPIRED)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  await rejectsWith(t, c.put(await h.token({ expiresIn: -5 }), octets(10)), 'TOKEN_EXPIRED');
  await rejectsWith(t, c.status(await h.token({ expiresIn: -5 })), 'TOKEN_EXPIRED');
});

test('byte budget: octets moved by all operations count; beyond the budget TOKEN_BUDGET, nothing charged for the refusal', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const data = octets(1000);
  const name = nameOf(data).name;
  const token = await h.token({ budget: 2500, id: 'budget-token-1' });
  await c.put(token, data); // 1000
  t.true((await c.get(token, name)).equals(data)); // 2000
  await rejectsWith(t, c.get(token, name), 'TOKEN_BUDGET'); // would be 3000
  t.is(await h.store.tokenUsed('budget-token-1'), 2000);
  const { body } = await c.getStream(token, name, { offset: 0, length: 500 }); // exactly 2500
  for await (const _ of body) void _;
  await rejectsWith(t, c.getStream(token, name, { offset: 0, length: 1 }), 'TOKEN_BUDGET');
  t.is(await h.store.tokenUsed('budget-token-1'), 2500);
});

test('replay: a single-use token works once, then TOKEN_REPLAYED, also after a reconnect', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const once = await h.token({ once: true });
  await c.put(once, octets(10));
  await rejectsWith(t, c.put(once, octets(11)), 'TOKEN_REPLAYED');
  const c2 = await h.client();
  await rejectsWith(t, c2.status(once), 'TOKEN_REPLAYED');
});

test('invalid tokens: none, garbage, another account key, another algorithm or type — PERMISSION_DENIED / TOKEN_INVALID', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  await rejectsWith(t, c.put('', octets(10)), 'PERMISSION_DENIED');
  await rejectsWith(t, c.put('not-a-token', octets(10)), 'TOKEN_INVALID');
  // alice's claims signed with bob's key
  const forged = await createToken({ account: 'alice', operations: ['put'] }, h.keys.bob.privateJwk);
  await rejectsWith(t, c.put(forged, octets(10)), 'TOKEN_INVALID');
  // an account the server does not have
  const stranger = await createToken({ account: 'mallory', operations: ['put'] }, h.keys.alice.privateJwk);
  await rejectsWith(t, c.put(stranger, octets(10)), 'TOKEN_INVALID');
  // HS256 with a made-up secret, and EdDSA without the decade+jwt type
  const hs = await new SignJWT({ ops: ['put'] }).setProtectedHeader({ alg: 'HS256', typ: 'decade+jwt' }).setIssuer('alice').setJti('abcdefgh12').setExpirationTime('1h').sign(new Uint8Array(32));
  await rejectsWith(t, c.put(hs, octets(10)), 'TOKEN_INVALID');
  const untyped = await new SignJWT({ ops: ['put'] }).setProtectedHeader({ alg: 'EdDSA' }).setIssuer('alice').setJti('abcdefgh12').setExpirationTime('1h')
    .sign(generateKeyPairSync('ed25519').privateKey);
  await rejectsWith(t, c.put(untyped, octets(10)), 'TOKEN_INVALID');
  t.deepEqual(await readdir(join(h.dir, 'tmp')), []);
});

test('quota: a PUT beyond the account quota is refused (QUOTA_EXCEEDED) and leaves nothing stored; a single-use token is not spent', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { quota: 100_000 });
  const { c, token } = await h.session();
  await c.put(token, octets(60_000, 1));
  const once = await h.token({ once: true });
  const big = octets(50_000, 2);
  const err = await rejectsWith(t, c.put(once, big), 'QUOTA_EXCEEDED');
  t.is(err.replyCode, 450);
  t.is(await h.store.usage('alice'), 60_000);
  const blobs: string[] = [];
  for (const shard of await readdir(join(h.dir, 'blobs'))) blobs.push(...(await readdir(join(h.dir, 'blobs', shard))));
  t.deepEqual(blobs, [nameOf(octets(60_000, 1)).hex]);
  t.deepEqual(await readdir(join(h.dir, 'tmp')), []);
  await rejectsWith(t, c.get(token, nameOf(big).name), 'NOT_FOUND');
  // Within the quota the same single-use token still works: the refusal did not spend it.
  await c.put(once, octets(40_000, 3));
  t.is((await c.status(token)).available, 0);
});

test('a token never appears in a log record, an error message or an error body, whatever the outcome', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { quota: 10_000 });
  const c = await h.client();
  const handlerErrors: unknown[] = [];
  c.session.on('handlerError', (e) => handlerErrors.push(e));
  const tokens = [
    await h.token(),
    await h.token({ operations: ['get'] }),
    await h.token({ expiresIn: -1 }),
    await h.token({ once: true }),
    await h.token({ budget: 1 }),
    await h.token({ clients: ['10.0.0.1'] }),
    await createToken({ account: 'alice', operations: ['put'] }, h.keys.bob.privateJwk),
  ];
  const seen: string[] = [];
  const data = octets(5000);
  for (const tok of tokens) {
    for (const op of [
      () => c.put(tok, data), () => c.put(tok, data), () => c.get(tok, nameOf(data).name), () => c.status(tok), () => c.remove(tok, nameOf(octets(3, 3)).name),
      () => c.putStream(tok, nameOf(octets(9, 9)).name, 5000, [data]), () => c.put(tok, octets(20_000, 4)),
    ]) {
      try {
        await op();
      } catch (err) {
        const e = err as DecadeError & { body?: Uint8Array };
        seen.push(e.message, String(e.stack), JSON.stringify(e), e.body ? Buffer.from(e.body).toString() : '');
      }
    }
  }
  seen.push(...h.events.map((e) => JSON.stringify(e)), ...handlerErrors.map(String));
  t.true(h.events.length >= tokens.length * 7);
  t.true(seen.length > 20);
  for (const tok of tokens) {
    for (const s of seen) t.false(s.includes(tok) || s.includes(tok.split('.')[2] as string), `token found in: ${s.slice(0, 120)}`);
  }
});
