import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { jwksValidator, oauthBearerClient, oauthBearerServer, type JwksValidatorOptions } from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

const ISS = 'https://issuer.example';
const AUD = 'urn:beepstream:control';
const dir = mkdtempSync(join(tmpdir(), 'beepstream-jwks-'));

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let key: KeyPair;
let rogue: KeyPair;
let jwks: { keys: Record<string, unknown>[] };
let jwksPath: string;
let http: Server;
let jwksUrl: string;

test.before(async () => {
  key = await generateKeyPair('ES256');
  rogue = await generateKeyPair('ES256');
  jwks = { keys: [{ ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
  jwksPath = join(dir, 'jwks.json');
  writeFileSync(jwksPath, JSON.stringify(jwks));
  http = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/jwks.json`;
});

test.after.always(async () => {
  rmSync(dir, { recursive: true, force: true });
  await new Promise((resolve) => http.close(resolve));
});

interface TokenSpec {
  iss?: string;
  aud?: string;
  sub?: string | null;
  scope?: string;
  exp?: number | null;
  signer?: KeyPair;
  kid?: string;
}

async function token(spec: TokenSpec = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {};
  if (spec.scope !== undefined) claims['scope'] = spec.scope;
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: spec.kid ?? 'k1' })
    .setIssuer(spec.iss ?? ISS)
    .setAudience(spec.aud ?? AUD)
    .setIssuedAt(now - 10);
  if (spec.sub !== null) jwt = jwt.setSubject(spec.sub ?? 'alice');
  if (spec.exp !== null) jwt = jwt.setExpirationTime(spec.exp ?? now + 300);
  return jwt.sign((spec.signer ?? key).privateKey);
}

const base = (extra: Partial<JwksValidatorOptions> = {}): JwksValidatorOptions => ({
  jwks: jwksPath,
  issuer: ISS,
  audience: AUD,
  requiredScope: 'beep:control',
  ...extra,
});

test('a valid token is accepted (key set from a file, inline JSON, an object, a URL)', async (t) => {
  const tok = await token({ scope: 'openid beep:control' });
  for (const source of [jwksPath, JSON.stringify(jwks), jwks, jwksUrl, new URL(jwksUrl)]) {
    const v = jwksValidator(base({ jwks: source as JwksValidatorOptions['jwks'] }));
    t.deepEqual(await v(tok, {}), { valid: true, subject: 'alice', scope: ['openid', 'beep:control'] });
  }
});

test('expired, forged, wrong audience, wrong issuer, no exp, no sub: invalid_token', async (t) => {
  const v = jwksValidator(base());
  const now = Math.floor(Date.now() / 1000);
  const cases: Record<string, string> = {
    expired: await token({ scope: 'beep:control', exp: now - 60 }),
    forgedSameKid: await token({ scope: 'beep:control', signer: rogue }),
    forgedOtherKid: await token({ scope: 'beep:control', signer: rogue, kid: 'k2' }),
    audience: await token({ scope: 'beep:control', aud: 'urn:other' }),
    issuer: await token({ scope: 'beep:control', iss: 'https://evil.example' }),
    noExp: await token({ scope: 'beep:control', exp: null }),
    noSub: await token({ scope: 'beep:control', sub: null }),
    garbage: 'abc.def.ghi',
    notJwt: 'opaque-token',
  };
  for (const [name, tok] of Object.entries(cases)) {
    t.deepEqual(await v(tok, {}), { valid: false, status: 'invalid_token' }, name);
  }
});

test('clockTolerance admits a just-expired token', async (t) => {
  const tok = await token({ scope: 'beep:control', exp: Math.floor(Date.now() / 1000) - 5 });
  t.is((await jwksValidator(base())(tok, {})).valid, false);
  t.is((await jwksValidator(base({ clockTolerance: 60 }))(tok, {})).valid, true);
});

test('a missing scope gives insufficient_scope naming the required scope', async (t) => {
  const v = jwksValidator(base({ requiredScope: ['beep:control', 'beep:data'] }));
  t.deepEqual(await v(await token({ scope: 'beep:control' }), {}), { valid: false, status: 'insufficient_scope', scope: 'beep:control beep:data' });
  t.deepEqual(await v(await token({}), {}), { valid: false, status: 'insufficient_scope', scope: 'beep:control beep:data' });
  t.is((await v(await token({ scope: 'beep:data beep:control' }), {})).valid, true);
  t.is((await jwksValidator(base({ requiredScope: undefined }))(await token({}), {})).valid, true);
});

test('symmetric algorithms are refused by default', async (t) => {
  const secret = new Uint8Array(32).fill(1);
  const hs = await new SignJWT({ scope: 'beep:control' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISS).setAudience(AUD).setSubject('alice').setExpirationTime('5m')
    .sign(secret);
  const v = jwksValidator(base({ jwks: { keys: [{ kty: 'oct', k: Buffer.from(secret).toString('base64url') }] } }));
  t.deepEqual(await v(hs, {}), { valid: false, status: 'invalid_token' });
});

test('an unreachable remote key set rejects (→ 454 in the mechanism), without the token in the message', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const v = jwksValidator(base({ jwks: `http://127.0.0.1:${port}/jwks.json`, timeoutMs: 2000 }));
  const tok = await token({ scope: 'beep:control' });
  const err = await t.throwsAsync(v(tok, {}), { instanceOf: BeepError, code: ErrorCodes.TRANSPORT });
  t.false(err?.message.includes(tok) ?? true);
  const s = oauthBearerServer({ validateToken: v }).create({ tls: true });
  const r = await runExchange(oauthBearerClient({ token: tok }).create({ tls: true }), s);
  assertFailure(t, r.server, 454);
});

test('end to end: OAUTHBEARER with the JWKS validator', async (t) => {
  const server = oauthBearerServer({ validateToken: jwksValidator(base()), scope: 'beep:control' });
  const ok = await runExchange(oauthBearerClient({ token: await token({ scope: 'beep:control' }) }).create({ tls: true }), server.create({ tls: true }));
  t.is(ok.server.status, 'success');
  if (ok.server.status === 'success') t.deepEqual(ok.server.identity, { authcid: 'alice', mechanism: 'OAUTHBEARER', scope: ['beep:control'] });
  const challenges: unknown[] = [];
  const bad = await runExchange(
    oauthBearerClient({ token: await token({ scope: 'beep:control', aud: 'x' }), onError: (e) => challenges.push(e) }).create({ tls: true }),
    server.create({ tls: true }),
  );
  assertFailure(t, bad.server, 535);
  t.deepEqual(challenges, [{ status: 'invalid_token', scope: 'beep:control' }]);
});

test('bad options throw BEEP_ERR_INVALID_ARGUMENT', (t) => {
  const invalid = { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT };
  t.throws(() => jwksValidator(base({ jwks: join(dir, 'missing.json') })), invalid);
  t.throws(() => jwksValidator(base({ jwks: '{not json' })), invalid);
  t.throws(() => jwksValidator(base({ jwks: { keys: 'nope' } as never })), invalid);
  t.throws(() => jwksValidator(base({ issuer: [] })), invalid);
  t.throws(() => jwksValidator({ issuer: ISS, audience: AUD } as never), invalid);
});
