import test from 'ava';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import {
  SaslReasons,
  createUserEntry,
  scramSha256Client,
  scramSha256Server,
  type SaslContext,
  type ScramCredentials,
  type ScramServerOptions,
} from '../../../src/profiles/sasl/index.js';
import { deriveKeys, hmac, saltedPassword, sha256, xor } from '../../../src/profiles/sasl/scram-crypto.js';
import { assertFailure, b64, runExchange } from './helpers.js';

// RFC 7677 §3 example exchange.
const RFC = {
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  cnonce: 'rOprNGfwEbeRWgbNEkqO',
  snonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const noTls: SaslContext = { tls: false };
let rfcEntry: ScramCredentials;
let alice: ScramCredentials;

test.before(async () => {
  rfcEntry = await createUserEntry('pencil', 4096, { salt: RFC.salt });
  alice = await createUserEntry('correct horse', 4096);
});

function server(extra: Partial<ScramServerOptions> = {}, users?: Map<string, ScramCredentials>) {
  return scramSha256Server({ store: users ?? new Map([['user', rfcEntry], ['alice', alice]]), ...extra });
}

test('RFC 7677 vector: the server produces the exact server-first and server-final messages', async (t) => {
  const s = server({ nonce: () => RFC.snonce }).create(noTls);
  const first = await s.step(Buffer.from(RFC.clientFirst));
  t.is(first.status, 'continue');
  if (first.status === 'continue') t.is(first.challenge.toString(), RFC.serverFirst);
  const final = await s.step(Buffer.from(RFC.clientFinal));
  t.is(final.status, 'success');
  if (final.status !== 'success') return;
  t.is(final.additional?.toString(), RFC.serverFinal);
  t.deepEqual(final.identity, { authcid: 'user', mechanism: 'SCRAM-SHA-256' });
});

test('RFC 7677 vector: the client produces the exact client messages and accepts the server signature', async (t) => {
  const c = scramSha256Client({ username: 'user', password: 'pencil', nonce: () => RFC.cnonce }).create(noTls);
  t.is((await c.initial())?.toString(), RFC.clientFirst);
  const r = await c.step(Buffer.from(RFC.serverFirst));
  t.is(r.status, 'continue');
  if (r.status === 'continue') t.is(r.response.toString(), RFC.clientFinal);
  t.deepEqual(await c.finish(Buffer.from(RFC.serverFinal)), { status: 'success' });
});

test('RFC 7677 vector: the stored keys match the RFC derivation', async (t) => {
  const salted = await saltedPassword('pencil', RFC.salt, 4096);
  const { storedKey, serverKey } = deriveKeys(salted);
  t.deepEqual(rfcEntry.storedKey, storedKey);
  t.deepEqual(rfcEntry.serverKey, serverKey);
  t.is(rfcEntry.iterations, 4096);
});

test('client and server agree; the client verifies the server', async (t) => {
  const r = await runExchange(scramSha256Client({ username: 'alice', password: 'correct horse' }).create(noTls), server().create(noTls));
  t.is(r.server.status, 'success', r.transcript.join('\n'));
  t.deepEqual(r.client, { status: 'success' });
  if (r.server.status === 'success') t.is(r.server.identity.authcid, 'alice');
});

test('wrong password fails with 535 and the generic reason, after the proof', async (t) => {
  const r = await runExchange(scramSha256Client({ username: 'alice', password: 'wrong' }).create(noTls), server().create(noTls));
  assertFailure(t, r.server, 535, SaslReasons.AUTH_FAILED);
  t.is(r.transcript.length, 4); // C first, S first, C final, S- failure: same shape as success
});

test('unknown user is indistinguishable from a wrong password', async (t) => {
  const secret = Buffer.alloc(32, 7);
  const attempt = async (username: string, factorySecret = secret) => {
    const r = await runExchange(
      scramSha256Client({ username, password: 'whatever' }).create(noTls),
      server({ secret: factorySecret }).create(noTls),
    );
    const serverFirst = r.transcript[1]?.slice(3) ?? '';
    return { r, serverFirst };
  };
  const known = await attempt('alice');
  const unknown = await attempt('mallory');
  assertFailure(t, known.r.server, 535, SaslReasons.AUTH_FAILED);
  assertFailure(t, unknown.r.server, 535, SaslReasons.AUTH_FAILED);
  t.deepEqual(unknown.r.server, known.r.server);
  t.is(unknown.r.transcript.length, known.r.transcript.length);
  // Same shape of server-first: a 16-octet salt and the usual iteration count.
  const shape = (s: string) => s.replace(/r=[^,]+/, 'r=*').replace(/s=[^,]+/, (m) => `s=${Buffer.from(m.slice(2), 'base64').length}`);
  t.is(shape(unknown.serverFirst), shape(known.serverFirst));
  t.regex(unknown.serverFirst, /,i=4096$/);
  // The dummy salt is stable per name (also across factories sharing the secret) and differs between names.
  const salt = (s: string) => /s=([^,]+)/.exec(s)?.[1];
  t.is(salt((await attempt('mallory')).serverFirst), salt(unknown.serverFirst));
  t.is(salt((await attempt('mallory', Buffer.from(secret))).serverFirst), salt(unknown.serverFirst));
  t.not(salt((await attempt('trudy')).serverFirst), salt(unknown.serverFirst));
  t.not(salt((await attempt('mallory', Buffer.alloc(32, 8))).serverFirst), salt(unknown.serverFirst));
});

test('dummyIterations sets the count announced for unknown users', async (t) => {
  const s = server({ dummyIterations: 8192 }).create(noTls);
  const r = await s.step(Buffer.from('n,,n=nobody,r=abc'));
  t.is(r.status, 'continue');
  if (r.status === 'continue') t.regex(r.challenge.toString(), /,i=8192$/);
});

/** A hand-rolled client (raw messages) to tamper with. */
async function manual(username: string, password: string, opts: { gs2?: string; cbData?: Buffer; users?: Map<string, ScramCredentials> } = {}) {
  const s = server({ nonce: () => 'SERVERNONCE' }, opts.users).create(noTls);
  const gs2 = opts.gs2 ?? 'n,,';
  const bare = `n=${username},r=CLIENTNONCE`;
  const first = await s.step(Buffer.from(gs2 + bare));
  if (first.status !== 'continue') return { s, first, final: undefined as unknown as string };
  const sf = first.challenge.toString();
  const salt = Buffer.from(/s=([^,]+)/.exec(sf)?.[1] ?? '', 'base64');
  const it = Number(/i=(\d+)/.exec(sf)?.[1]);
  const { clientKey, storedKey } = deriveKeys(await saltedPassword(password, salt, it));
  const withoutProof = (nonce: string, c = Buffer.concat([Buffer.from(gs2), opts.cbData ?? Buffer.alloc(0)]).toString('base64')) =>
    `c=${c},r=${nonce}`;
  const proofFor = (wp: string) => xor(clientKey, hmac(storedKey, `${bare},${sf},${wp}`));
  return { s, first, sf, withoutProof, proofFor };
}

test('a tampered proof fails with 535', async (t) => {
  const m = await manual('user', 'pencil');
  if (m.withoutProof === undefined) return t.fail();
  const wp = m.withoutProof('CLIENTNONCESERVERNONCE');
  const proof = m.proofFor(wp);
  proof[0] = (proof[0] ?? 0) ^ 1;
  assertFailure(t, await m.s.step(Buffer.from(`${wp},p=${proof.toString('base64')}`)), 535, SaslReasons.AUTH_FAILED);
});

test('a proof of the wrong length fails with 535', async (t) => {
  const m = await manual('user', 'pencil');
  if (m.withoutProof === undefined) return t.fail();
  const wp = m.withoutProof('CLIENTNONCESERVERNONCE');
  const proof = m.proofFor(wp).subarray(0, 31);
  assertFailure(t, await m.s.step(Buffer.from(`${wp},p=${proof.toString('base64')}`)), 535, SaslReasons.AUTH_FAILED);
});

test('the hand-rolled client succeeds untampered (control)', async (t) => {
  const m = await manual('user', 'pencil');
  if (m.withoutProof === undefined) return t.fail();
  const wp = m.withoutProof('CLIENTNONCESERVERNONCE');
  t.is((await m.s.step(Buffer.from(`${wp},p=${m.proofFor(wp).toString('base64')}`))).status, 'success');
});

test('a nonce mismatch in client-final fails with 535', async (t) => {
  for (const nonce of ['CLIENTNONCE', 'CLIENTNONCESERVERNONCEX', 'OTHERSERVERNONCE']) {
    const m = await manual('user', 'pencil');
    if (m.withoutProof === undefined) return t.fail();
    const wp = m.withoutProof(nonce);
    assertFailure(t, await m.s.step(Buffer.from(`${wp},p=${m.proofFor(wp).toString('base64')}`)), 535, SaslReasons.AUTH_FAILED);
  }
});

test('a c= that does not repeat the GS2 header fails with 535', async (t) => {
  const m = await manual('user', 'pencil');
  if (m.withoutProof === undefined) return t.fail();
  const wp = m.withoutProof('CLIENTNONCESERVERNONCE', b64('y,,'));
  assertFailure(t, await m.s.step(Buffer.from(`${wp},p=${m.proofFor(wp).toString('base64')}`)), 535, SaslReasons.CHANNEL_BINDING);
});

test('malformed client-first messages fail with 535 and the generic reason', async (t) => {
  const bad = [
    '', 'n', 'n,', 'n,,', 'x,,n=user,r=abc', 'F,n,,n=user,r=abc', 'n,,r=abc,n=user', 'n,,n=user', 'n,,n=user,r=',
    'n,,n=us=er,r=abc', 'n,,n=us=2Xer,r=abc', 'n,,n=,r=abc', 'n,,n=user,r=a b', 'n,,m=ext,n=user,r=abc',
    'n,,n=user,r=abc,m=ext', 'n,,n=user,r=abc,1=x', 'n,,n=user,r=abc,x=', 'n,a=,n=user,r=abc', 'n,b=x,n=user,r=abc',
    'p=,,n=user,r=abc', 'p=a b,,n=user,r=abc', 'n,,n=user\0,r=abc', 'n,,n=user,r=abc,',
  ];
  for (const msg of bad) {
    assertFailure(t, await server().create(noTls).step(Buffer.from(msg)), 535, SaslReasons.MALFORMED);
  }
  assertFailure(t, await server().create(noTls).step(Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61])), 535, SaslReasons.MALFORMED);
});

test('malformed client-final messages fail with 535 and the generic reason', async (t) => {
  const n = 'CLIENTNONCESERVERNONCE';
  const bad = [
    '', `c=biws,r=${n}`, `r=${n},c=biws,p=AAAA`, `c=biws,r=${n},p=!!!!`, `c=bi*s,r=${n},p=AAAA`, `c=,r=${n},p=AAAA`,
    `c=biws,r=${n},p=`, `c=biws,r=${n},p=AAAA,x=1`, `c=biws,r=${n},m=1,p=AAAA`, `c=biws,p=AAAA`, `c=biws,r=${n},p=AAA`,
  ];
  for (const msg of bad) {
    const m = await manual('user', 'pencil');
    assertFailure(t, await m.s.step(Buffer.from(msg)), 535, SaslReasons.MALFORMED);
  }
});

test('unknown extensions in client-final are ignored (RFC 5802 §5.1)', async (t) => {
  const m = await manual('user', 'pencil');
  if (m.withoutProof === undefined) return t.fail();
  const wp = `${m.withoutProof('CLIENTNONCESERVERNONCE')},x=future`;
  t.is((await m.s.step(Buffer.from(`${wp},p=${m.proofFor(wp).toString('base64')}`))).status, 'success');
});

test('SASLprep: "I\\u00ADX" and "IX" are the same password and the same user name', async (t) => {
  const ix = await createUserEntry('IX', 4096, { salt: RFC.salt });
  const ishy = await createUserEntry('I\u00ADX', 4096, { salt: RFC.salt });
  t.deepEqual(ishy, ix);
  const users = new Map([['IX', ix]]);
  for (const [username, password] of [['IX', 'I\u00ADX'], ['I\u00ADX', 'IX'], ['I\u00ADX', 'I\u00ADX']] as const) {
    const r = await runExchange(scramSha256Client({ username, password }).create(noTls), server({}, users).create(noTls));
    t.is(r.server.status, 'success', `${username}/${password}`);
    if (r.server.status === 'success') t.is(r.server.identity.authcid, 'IX');
  }
  // The server prepares the name itself too: a raw, unprepared name from a hand-rolled client.
  const m = await manual('I\u00ADX', 'IX', { users });
  if (m.withoutProof === undefined) return t.fail();
  const wp = m.withoutProof('CLIENTNONCESERVERNONCE');
  const final = await m.s.step(Buffer.from(`${wp},p=${m.proofFor(wp).toString('base64')}`));
  t.is(final.status, 'success');
  if (final.status === 'success') t.is(final.identity.authcid, 'IX');
});

test('user names with "," and "=" are escaped as =2C and =3D', async (t) => {
  const users = new Map([['a,b=c', alice]]);
  const r = await runExchange(scramSha256Client({ username: 'a,b=c', password: 'correct horse' }).create(noTls), server({}, users).create(noTls));
  t.true(r.transcript[0]?.startsWith('C: n,,n=a=2Cb=3Dc,r='));
  t.is(r.server.status, 'success');
  if (r.server.status === 'success') t.is(r.server.identity.authcid, 'a,b=c');
});

test('authzid: refused unless equal to the user or allowed by authorize', async (t) => {
  const client = (authzid: string) => scramSha256Client({ username: 'alice', password: 'correct horse', authzid }).create(noTls);
  const refused = await runExchange(client('admin'), server().create(noTls));
  assertFailure(t, refused.server, 535, SaslReasons.NOT_AUTHORIZED);
  t.true(refused.transcript[0]?.startsWith('C: n,a=admin,n=alice,'));
  const same = await runExchange(client('alice'), server().create(noTls));
  t.is(same.server.status, 'success');
  const allowed = await runExchange(client('ad,min'), server({ authorize: (c, z) => c === 'alice' && z === 'ad,min' }).create(noTls));
  t.is(allowed.server.status, 'success');
  if (allowed.server.status === 'success') t.deepEqual(allowed.server.identity, { authcid: 'alice', authzid: 'ad,min', mechanism: 'SCRAM-SHA-256' });
});

const binding = { type: 'tls-exporter' as const, data: Buffer.alloc(32, 0xab) };
const otherBinding = { type: 'tls-exporter' as const, data: Buffer.alloc(32, 0xcd) };

test('SCRAM-SHA-256-PLUS: matching channel binding succeeds; different binding data fails', async (t) => {
  const ctx: SaslContext = { tls: true, channelBinding: binding };
  const c = scramSha256Client({ username: 'alice', password: 'correct horse', plus: true });
  t.is(c.name, 'SCRAM-SHA-256-PLUS');
  const s = server({ plus: true });
  t.true(s.available(ctx));
  t.false(s.available({ tls: true }));
  const ok = await runExchange(c.create(ctx), s.create(ctx));
  t.true(ok.transcript[0]?.startsWith('C: p=tls-exporter,,n=alice,'));
  t.is(ok.server.status, 'success');
  t.deepEqual(ok.client, { status: 'success' });
  const mitm = await runExchange(c.create({ tls: true, channelBinding: otherBinding }), s.create(ctx));
  assertFailure(t, mitm.server, 535, SaslReasons.CHANNEL_BINDING);
});

test('channel binding flags: y is a downgrade when PLUS was advertised; n to PLUS and p= without data fail', async (t) => {
  const tls: SaslContext = { tls: true, channelBinding: binding };
  const plain = scramSha256Client({ username: 'alice', password: 'correct horse' });
  // Client could bind but the server did not advertise PLUS: "y" is fine.
  const y = await runExchange(plain.create(tls), server().create({ tls: true, advertisedMechanisms: ['SCRAM-SHA-256'] }));
  t.true(y.transcript[0]?.startsWith('C: y,,'));
  t.is(y.server.status, 'success');
  // The server did advertise PLUS: "y" means someone stripped it.
  const down = await runExchange(plain.create(tls), server().create({ ...tls, advertisedMechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] }));
  assertFailure(t, down.server, 535, SaslReasons.CHANNEL_BINDING);
  // "n" to the PLUS mechanism.
  assertFailure(t, await server({ plus: true }).create(tls).step(Buffer.from('n,,n=alice,r=abc')), 535, SaslReasons.CHANNEL_BINDING);
  // "p=" when the server has no binding data, or another type.
  assertFailure(t, await server().create({ tls: true }).step(Buffer.from('p=tls-exporter,,n=alice,r=abc')), 535, SaslReasons.CHANNEL_BINDING);
  assertFailure(t, await server().create(tls).step(Buffer.from('p=tls-unique,,n=alice,r=abc')), 535, SaslReasons.CHANNEL_BINDING);
  // A PLUS client on the plain mechanism with binding on both sides: c= is verified.
  const lenient = await runExchange(scramSha256Client({ username: 'alice', password: 'correct horse', plus: true }).create(tls), server().create(tls));
  t.is(lenient.server.status, 'success');
  const lenientBad = await runExchange(
    scramSha256Client({ username: 'alice', password: 'correct horse', plus: true }).create({ tls: true, channelBinding: otherBinding }),
    server().create(tls),
  );
  assertFailure(t, lenientBad.server, 535, SaslReasons.CHANNEL_BINDING);
  t.throws(() => scramSha256Client({ username: 'a', password: 'b', plus: true }).create({ tls: true }), { instanceOf: BeepError, code: ErrorCodes.INVALID_STATE });
});

test('the client refuses a wrong server signature, a server error, and a missing signature', async (t) => {
  const mk = async () => {
    const c = scramSha256Client({ username: 'user', password: 'pencil', nonce: () => RFC.cnonce }).create(noTls);
    await c.initial();
    await c.step(Buffer.from(RFC.serverFirst));
    return c;
  };
  const wrong = await (await mk()).finish(Buffer.from('v=' + Buffer.alloc(32).toString('base64')));
  t.is(wrong.status, 'failure');
  const err = await (await mk()).finish(Buffer.from('e=invalid-proof'));
  t.deepEqual(err, { status: 'failure', reason: 'server error: invalid-proof' });
  t.is((await (await mk()).finish(undefined)).status, 'failure');
  t.is((await (await mk()).finish(Buffer.from('garbage'))).status, 'failure');
  // Server-final as a challenge, then success without additional data.
  const asChallenge = await mk();
  const r = await asChallenge.step(Buffer.from(RFC.serverFinal));
  t.deepEqual(r, { status: 'continue', response: Buffer.alloc(0) });
  t.deepEqual(await asChallenge.finish(undefined), { status: 'success' });
});

test('the client refuses a server nonce that does not extend its own, and iteration counts out of range', async (t) => {
  const c = () => scramSha256Client({ username: 'user', password: 'pencil', nonce: () => 'abc' }).create(noTls);
  for (const sf of ['r=abc,s=QUJD,i=4096', 'r=xyzabc,s=QUJD,i=4096', 'r=abcd,s=QUJD,i=4095', 'r=abcd,s=QUJD,i=100000000', 'r=abcd,s=,i=4096', 'r=abcd,s=QUJD,i=0', 'm=x,r=abcd,s=QUJD,i=4096', 'garbage']) {
    const m = c();
    await m.initial();
    t.is((await m.step(Buffer.from(sf))).status, 'failure', sf);
  }
  const m = c();
  await m.initial();
  t.is((await m.step(Buffer.from('r=abcd,s=QUJD,i=4096,x=ext'))).status, 'continue');
});

test('absent initial response: empty challenge, then the client-first message', async (t) => {
  const r = await runExchange(scramSha256Client({ username: 'alice', password: 'correct horse' }).create(noTls), server().create(noTls), { initial: false });
  t.is(r.transcript[0], 'S: ');
  t.is(r.server.status, 'success');
  const s = server().create(noTls);
  t.is((await s.step(undefined)).status, 'continue');
  assertFailure(t, await s.step(undefined), 535, SaslReasons.MALFORMED);
});

test('steps after the outcome, or overlapping steps, fail', async (t) => {
  const s = server().create(noTls);
  assertFailure(t, await s.step(Buffer.from('junk')), 535);
  assertFailure(t, await s.step(Buffer.from(RFC.clientFirst)), 535, SaslReasons.OUT_OF_SEQUENCE);
  const s2 = server().create(noTls);
  const [a, b] = await Promise.all([s2.step(Buffer.from(RFC.clientFirst)), s2.step(Buffer.from(RFC.clientFirst))]);
  t.is(a.status, 'continue');
  assertFailure(t, b, 535, SaslReasons.OUT_OF_SEQUENCE);
});

test('a failing credential store gives 454 (temporary), never an exception', async (t) => {
  const s = scramSha256Server({ store: { get: () => Promise.reject(new Error('db down: password=hunter2')) } }).create(noTls);
  assertFailure(t, await s.step(Buffer.from(RFC.clientFirst)), 454, SaslReasons.TEMPORARY);
  const authz = server({ authorize: () => { throw new Error('boom'); } }).create(noTls);
  const r = await runExchange(scramSha256Client({ username: 'alice', password: 'correct horse', authzid: 'x' }).create(noTls), authz);
  assertFailure(t, r.server, 454, SaslReasons.TEMPORARY);
});

test('bad options throw BEEP_ERR_INVALID_ARGUMENT without echoing the password', async (t) => {
  const invalid = { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT };
  t.throws(() => scramSha256Server({} as ScramServerOptions), invalid);
  t.throws(() => scramSha256Server({ store: new Map(), dummyIterations: 10 }), invalid);
  t.throws(() => scramSha256Server({ store: new Map(), secret: Buffer.alloc(4) }), invalid);
  const e = t.throws(() => scramSha256Client({ username: 'u', password: 'secret\u0007pw' }), invalid);
  t.false(e?.message.includes('secret') ?? true);
  t.throws(() => scramSha256Client({ username: '', password: 'x' }), invalid);
  t.throws(() => scramSha256Client({ username: 'u', password: 'x', minIterations: 10, maxIterations: 5 }), invalid);
  await t.throwsAsync(createUserEntry('pw', 1000), invalid);
  await t.throwsAsync(createUserEntry('pw', 4096.5), invalid);
  const pe = await t.throwsAsync(createUserEntry('hunter2\u0000', 4096), invalid);
  t.false(pe?.message.includes('hunter2') ?? true);
  await t.throwsAsync(createUserEntry('', 4096), invalid);
});

test('createUserEntry: random 16-octet salts, default 4096 iterations, 32-octet keys', async (t) => {
  const a = await createUserEntry('pw');
  const b = await createUserEntry('pw', 5000);
  t.is(a.iterations, 4096);
  t.is(b.iterations, 5000);
  t.is(a.salt.length, 16);
  t.notDeepEqual(a.salt, b.salt);
  t.is(a.storedKey.length, 32);
  t.is(a.serverKey.length, 32);
  t.deepEqual(a.storedKey, sha256(hmac(await saltedPassword('pw', a.salt, 4096), 'Client Key')));
});
