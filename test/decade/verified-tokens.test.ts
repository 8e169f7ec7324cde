/**
 * The cache of verified tokens (VerifiedTokens, DecadeServer's
 * `verifiedTokens`): a token seen before skips its signature check, but its
 * expiry (and nbf) are checked every time, failures are never cached, the
 * cache is bounded (least recently used dropped), and over a server every
 * per-operation check — single use, byte budget, operation and object scope —
 * still applies to a token answered from the cache.
 */
import test from 'ava';
import { SignJWT } from 'jose';
import { createPrivateKey } from 'node:crypto';
import {
  createToken, generateAccountKey, importPublicKey, nameOf, TOKEN_TYPE, verifyToken, VerifiedTokens, type DecadeError,
} from '../../src/decade/index.js';
import { octets, rejectsWith, startDecade } from '../helpers/decade.js';

const key = generateAccountKey();
const pub = importPublicKey(key.publicJwk);
const keyOf = (a: string): ReturnType<typeof importPublicKey> | undefined => (a === 'alice' ? pub : undefined);

test('a token verified once is answered from the cache (same scope); another token is verified', async (t) => {
  const cache = new VerifiedTokens();
  const now = Date.now();
  const token = await createToken({ account: 'alice', operations: ['get'], expiresIn: 60 }, key.privateJwk, now);
  const first = await verifyToken(token, { keyOf, now, cache });
  t.is(cache.hits, 0);
  t.is(cache.size, 1);
  const second = await verifyToken(token, { keyOf, now: now + 1000, cache });
  t.is(cache.hits, 1);
  t.is(second, first);
  const other = await createToken({ account: 'alice', operations: ['put'], expiresIn: 60 }, key.privateJwk, now);
  t.true((await verifyToken(other, { keyOf, now, cache })).operations.has('put'));
  t.is(cache.hits, 1);
  t.is(cache.size, 2);
});

test('expiry is checked on every lookup: a cached token past its exp is TOKEN_EXPIRED (and forgotten)', async (t) => {
  const cache = new VerifiedTokens();
  const now = Date.now();
  const token = await createToken({ account: 'alice', operations: ['get'], expiresIn: 10 }, key.privateJwk, now);
  await verifyToken(token, { keyOf, now, cache });
  const exp = Math.floor(now / 1000) + 10;
  // Just before exp: served; at exp (as jose: exp <= now is expired): refused.
  await verifyToken(token, { keyOf, now: exp * 1000 - 1, cache });
  const e = await t.throwsAsync(verifyToken(token, { keyOf, now: exp * 1000, cache }));
  t.is((e as DecadeError).decadeCode, 'TOKEN_EXPIRED');
  t.is(cache.size, 0);
  // Without the cache the same answer.
  const e2 = await t.throwsAsync(verifyToken(token, { keyOf, now: exp * 1000 }));
  t.is((e2 as DecadeError).decadeCode, 'TOKEN_EXPIRED');
});

test('nbf is checked on every lookup', async (t) => {
  const cache = new VerifiedTokens();
  const now = Date.now();
  const secs = Math.floor(now / 1000);
  const token = await new SignJWT({ ops: ['get'] })
    .setProtectedHeader({ alg: 'EdDSA', typ: TOKEN_TYPE })
    .setIssuer('alice').setJti('nbf-token-1').setIssuedAt(secs).setNotBefore(secs).setExpirationTime(secs + 60)
    .sign(createPrivateKey({ key: key.privateJwk, format: 'jwk' }));
  await verifyToken(token, { keyOf, now, cache });
  await verifyToken(token, { keyOf, now, cache });
  t.is(cache.hits, 1);
  // A clock set back before nbf: refused from the cache as by jose.
  const e = await t.throwsAsync(verifyToken(token, { keyOf, now: (secs - 5) * 1000, cache }));
  t.is((e as DecadeError).decadeCode, 'TOKEN_INVALID');
  const e2 = await t.throwsAsync(verifyToken(token, { keyOf, now: (secs - 5) * 1000 }));
  t.is((e2 as DecadeError).decadeCode, 'TOKEN_INVALID');
});

test('failed verifications are not cached; a bad signature under a cached token\'s claims is refused', async (t) => {
  const cache = new VerifiedTokens();
  const now = Date.now();
  const token = await createToken({ account: 'alice', operations: ['get'], expiresIn: 60 }, key.privateJwk, now);
  await verifyToken(token, { keyOf, now, cache });
  const [h, p, s] = token.split('.') as [string, string, string];
  const forged = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
  for (let i = 0; i < 2; i++) {
    const e = await t.throwsAsync(verifyToken(forged, { keyOf, now, cache }));
    t.is((e as DecadeError).decadeCode, 'TOKEN_INVALID');
  }
  const stranger = await createToken({ account: 'alice', operations: ['get'], expiresIn: 60 }, generateAccountKey().privateJwk, now);
  await t.throwsAsync(verifyToken(stranger, { keyOf, now, cache }));
  t.is(cache.size, 1);
  t.is(cache.hits, 0);
});

test('bounded: beyond max the least recently used token is dropped; max 0 holds none', async (t) => {
  const now = Date.now();
  const tokens = await Promise.all([0, 1, 2].map((i) => createToken({ account: 'alice', operations: ['get'], id: `lru-token-${i}` }, key.privateJwk, now)));
  const [a, b, c] = tokens as [string, string, string];
  const cache = new VerifiedTokens(2);
  await verifyToken(a, { keyOf, now, cache });
  await verifyToken(b, { keyOf, now, cache });
  await verifyToken(a, { keyOf, now, cache }); // a is now the most recent
  t.is(cache.hits, 1);
  await verifyToken(c, { keyOf, now, cache }); // drops b
  t.is(cache.size, 2);
  await verifyToken(a, { keyOf, now, cache });
  t.is(cache.hits, 2);
  await verifyToken(b, { keyOf, now, cache }); // verified again, not a hit
  t.is(cache.hits, 2);
  const none = new VerifiedTokens(0);
  await verifyToken(a, { keyOf, now, cache: none });
  await verifyToken(a, { keyOf, now, cache: none });
  t.is(none.size, 0);
  t.is(none.hits, 0);
  t.throws(() => new VerifiedTokens(-1));
});

test('over a server: a cached token still meets single use, byte budget, scope and expiry per operation', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  let now = Date.now();
  const h = await startDecade(t, { now: () => now });
  const c = await h.client();
  const data = octets(1000, 3);
  const name = nameOf(data).name;
  const all = await h.token({ expiresIn: 30 });
  await c.put(all, data);
  await c.status(all); // verified twice now: the second from the cache
  // Single use: the second operation is a replay, though the signature is not checked again.
  const once = await h.token({ once: true, operations: ['get', 'stat'] });
  await c.status(once);
  await rejectsWith(t, c.status(once), 'TOKEN_REPLAYED');
  await rejectsWith(t, c.get(once, name), 'TOKEN_REPLAYED');
  // Budget: counted per operation.
  const budget = await h.token({ budget: 1500, id: 'cached-budget-1', operations: ['get'] });
  t.true((await c.get(budget, name)).equals(data));
  await rejectsWith(t, c.get(budget, name), 'TOKEN_BUDGET');
  // Scope: a cached get-only token still cannot PUT or stat.
  const getOnly = await h.token({ operations: ['get'] });
  t.true((await c.get(getOnly, name)).equals(data));
  await rejectsWith(t, c.put(getOnly, octets(10, 4)), 'TOKEN_OPERATION');
  await rejectsWith(t, c.status(getOnly), 'TOKEN_OPERATION');
  // Expiry by the server's clock, though the token is in the cache.
  now += 31_000;
  await rejectsWith(t, c.status(all), 'TOKEN_EXPIRED');
});

test('verifiedTokens: 0 verifies every time (same outcomes)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t, { verifiedTokens: 0 });
  const c = await h.client();
  const data = octets(500, 5);
  const once = await h.token({ once: true });
  await c.put(once, data);
  await rejectsWith(t, c.put(once, data), 'TOKEN_REPLAYED');
  const all = await h.token();
  t.true((await c.get(all, nameOf(data).name)).equals(data));
  t.true((await c.get(all, nameOf(data).name)).equals(data));
});
