import test from 'ava';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import {
  AuthFailureLimiter,
  SaslReasons,
  createUserEntry,
  scramSha256Client,
  scramSha256Server,
  type SaslServerMechanism,
} from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('per-session limit: the 4th attempt after 3 failures gets 454 until the window passes', (t) => {
  const c = clock();
  const l = new AuthFailureLimiter({ maxPerSession: 3, maxPerAddress: 100, windowMs: 60_000, now: c.now });
  const key = { session: 's1', address: '192.0.2.1' };
  for (let i = 0; i < 3; i++) {
    t.deepEqual(l.check(key), { allowed: true });
    l.recordFailure(key);
    c.t += 1000;
  }
  const v = l.check(key);
  t.false(v.allowed);
  if (!v.allowed) t.is(v.retryAfterMs, 60_000 - 3000);
  t.deepEqual(l.check({ session: 's2', address: '192.0.2.1' }), { allowed: true }); // another session on that address is fine
  c.t += 57_000; // first failure ages out
  t.deepEqual(l.check(key), { allowed: true });
  l.endSession('s1');
  l.recordFailure(key);
  t.deepEqual(l.check(key), { allowed: true });
});

test('per-address limit spans sessions', (t) => {
  const c = clock();
  const l = new AuthFailureLimiter({ maxPerSession: 100, maxPerAddress: 5, windowMs: 10_000, now: c.now });
  for (let i = 0; i < 5; i++) l.recordFailure({ session: {}, address: '198.51.100.7' });
  const v = l.check({ session: {}, address: '198.51.100.7' });
  t.false(v.allowed);
  if (!v.allowed) t.is(v.retryAfterMs, 10_000);
  t.deepEqual(l.check({ session: {}, address: '198.51.100.8' }), { allowed: true });
  t.deepEqual(l.check({ session: {} }), { allowed: true });
  c.t += 10_000;
  t.deepEqual(l.check({ session: {}, address: '198.51.100.7' }), { allowed: true });
});

test('tracking is bounded: the least recently failed addresses are forgotten', (t) => {
  const l = new AuthFailureLimiter({ maxPerAddress: 1, maxTracked: 3, now: clock().now });
  for (const a of ['a', 'b', 'c', 'd']) l.recordFailure({ session: a, address: a });
  t.true(l.check({ session: 'x', address: 'a' }).allowed); // forgotten
  t.false(l.check({ session: 'x', address: 'd' }).allowed);
});

test('guard: refuses with 454 once limited, counts only 535 failures', async (t) => {
  const c = clock();
  const l = new AuthFailureLimiter({ maxPerSession: 2, now: c.now });
  const users = new Map([['alice', await createUserEntry('pw', 4096)]]);
  const server = scramSha256Server({ store: users });
  const key = { session: 'sess', address: '203.0.113.9' };
  const attempt = (password: string) =>
    runExchange(scramSha256Client({ username: 'alice', password }).create({ tls: false }), l.guard(server.create({ tls: false }), key));
  assertFailure(t, (await attempt('wrong')).server, 535, SaslReasons.AUTH_FAILED);
  t.is((await attempt('pw')).server.status, 'success');
  assertFailure(t, (await attempt('wrong')).server, 535, SaslReasons.AUTH_FAILED);
  // Limited now, even with the right password.
  assertFailure(t, (await attempt('pw')).server, 454, SaslReasons.RATE_LIMITED);
  c.t += 60_001;
  t.is((await attempt('pw')).server.status, 'success');
  // 454 and 538 outcomes are not counted as guesses.
  const temp: SaslServerMechanism = { name: 'X', step: async () => ({ status: 'failure', code: 454, reason: SaslReasons.TEMPORARY }) };
  for (let i = 0; i < 5; i++) await l.guard(temp, { session: 'other' }).step(undefined);
  t.true(l.check({ session: 'other' }).allowed);
});

test('bad options throw', (t) => {
  for (const o of [{ maxPerSession: 0 }, { maxPerAddress: -1 }, { windowMs: 1.5 }, { maxTracked: 0 }]) {
    t.throws(() => new AuthFailureLimiter(o), { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT });
  }
});
