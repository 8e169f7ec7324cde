import test from 'ava';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import {
  SaslReasons,
  createUserEntry,
  parsePlainMessage,
  plainClient,
  plainServer,
  type ScramCredentials,
} from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

const tls = { tls: true };
let users: Map<string, ScramCredentials>;

test.before(async () => {
  users = new Map([
    ['alice', await createUserEntry('correct horse', 4096)],
    ['IX', await createUserEntry('I\u00ADX', 4096)],
  ]);
});

const msg = (s: string) => Buffer.from(s, 'utf8');

test('PLAIN over TLS succeeds against the SCRAM store', async (t) => {
  const r = await runExchange(plainClient({ username: 'alice', password: 'correct horse' }).create(tls), plainServer({ store: users }).create(tls));
  t.is(r.server.status, 'success');
  if (r.server.status === 'success') t.deepEqual(r.server.identity, { authcid: 'alice', mechanism: 'PLAIN' });
  t.deepEqual(r.client, { status: 'success' });
  t.is(r.transcript[0], 'C: \0alice\0correct horse');
});

test('PLAIN: wrong password and unknown user fail alike with 535', async (t) => {
  const s = () => plainServer({ store: users }).create(tls);
  const wrong = await s().step(msg('\0alice\0wrong'));
  const unknown = await s().step(msg('\0mallory\0correct horse'));
  assertFailure(t, wrong, 535, SaslReasons.AUTH_FAILED);
  t.deepEqual(unknown, wrong);
});

test('PLAIN applies SASLprep to user name and password', async (t) => {
  const s = () => plainServer({ store: users }).create(tls);
  for (const m of ['\0IX\0IX', '\0I\u00ADX\0IX', '\0IX\0I\u00ADX']) {
    const r = await s().step(msg(m));
    t.is(r.status, 'success', JSON.stringify(m));
    if (r.status === 'success') t.is(r.identity.authcid, 'IX');
  }
});

test('PLAIN is refused with 538 without TLS, unless allowWithoutTls', async (t) => {
  const f = plainServer({ store: users });
  t.false(f.available({ tls: false }));
  t.true(f.available(tls));
  assertFailure(t, await f.create({ tls: false }).step(msg('\0alice\0correct horse')), 538, 'PLAIN requires TLS');
  assertFailure(t, await f.create({ tls: false }).step(undefined), 538, 'PLAIN requires TLS');
  const open = plainServer({ store: users, allowWithoutTls: true });
  t.true(open.available({ tls: false }));
  t.is((await open.create({ tls: false }).step(msg('\0alice\0correct horse'))).status, 'success');
  // The client will not even send the password in the clear.
  t.false(plainClient({ username: 'a', password: 'b' }).available({ tls: false }));
  t.throws(() => plainClient({ username: 'a', password: 'b' }).create({ tls: false }), { instanceOf: BeepError, code: ErrorCodes.INVALID_STATE });
  t.notThrows(() => plainClient({ username: 'a', password: 'b', allowWithoutTls: true }).create({ tls: false }));
});

test('PLAIN with a verify callback; authzid needs authorize', async (t) => {
  const seen: string[] = [];
  const verify = (u: string, p: string) => {
    seen.push(u);
    return u === 'bob' && p === 'pw';
  };
  t.is((await plainServer({ verify }).create(tls).step(msg('\0bob\0pw'))).status, 'success');
  assertFailure(t, await plainServer({ verify }).create(tls).step(msg('\0bob\0nope')), 535, SaslReasons.AUTH_FAILED);
  assertFailure(t, await plainServer({ verify }).create(tls).step(msg('admin\0bob\0pw')), 535, SaslReasons.NOT_AUTHORIZED);
  t.is((await plainServer({ verify }).create(tls).step(msg('bob\0bob\0pw'))).status, 'success');
  const r = await plainServer({ verify, authorize: (c, z) => c === 'bob' && z === 'admin' }).create(tls).step(msg('admin\0bob\0pw'));
  t.is(r.status, 'success');
  if (r.status === 'success') t.deepEqual(r.identity, { authcid: 'bob', authzid: 'admin', mechanism: 'PLAIN' });
  assertFailure(t, await plainServer({ verify: () => Promise.reject(new Error('ldap down')) }).create(tls).step(msg('\0bob\0pw')), 454, SaslReasons.TEMPORARY);
  t.deepEqual(seen, ['bob', 'bob', 'bob', 'bob', 'bob']);
});

test('PLAIN: malformed messages fail with 535', async (t) => {
  for (const m of ['', 'alice', '\0alice', '\0alice\0', '\0\0pw', '\0alice\0pw\0', 'a\0b\0c\0d', `\0${'a'.repeat(1025)}\0pw`]) {
    assertFailure(t, await plainServer({ store: users }).create(tls).step(msg(m)), 535, SaslReasons.MALFORMED);
  }
  assertFailure(t, await plainServer({ store: users }).create(tls).step(Buffer.from([0, 0xc3, 0x28, 0, 0x41])), 535, SaslReasons.MALFORMED);
  t.is(parsePlainMessage(Buffer.from('z\0c\0p'))?.authzid, 'z');
});

test('PLAIN: absent initial response gets an empty challenge', async (t) => {
  const r = await runExchange(plainClient({ username: 'alice', password: 'correct horse' }).create(tls), plainServer({ store: users }).create(tls), { initial: false });
  t.deepEqual(r.transcript, ['S: ', 'C: \0alice\0correct horse']);
  t.is(r.server.status, 'success');
});

test('PLAIN: options are checked', (t) => {
  const invalid = { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT };
  t.throws(() => plainServer({}), invalid);
  t.throws(() => plainServer({ store: users, verify: () => true }), invalid);
  t.throws(() => plainClient({ username: '', password: 'x' }), invalid);
  t.throws(() => plainClient({ username: 'u', password: 'x', authzid: 'a\0b' }), invalid);
});
