import test from 'ava';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import {
  SaslReasons,
  buildBearerResponse,
  oauthBearerClient,
  oauthBearerServer,
  parseBearerResponse,
  type BearerErrorChallenge,
  type TokenValidator,
} from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

const tls = { tls: true };
const K = '\x01';

/** Accepts "good-token" as alice with scope beep:control. */
const stub: TokenValidator = async (token) =>
  token === 'good-token' ? { valid: true, subject: 'alice', scope: ['beep:control'] } : { valid: false, status: 'invalid_token' };

test('RFC 7628 §4.1 example client response parses', (t) => {
  const m = Buffer.from(`n,a=user@example.com,${K}host=server.example.com${K}port=143${K}auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==${K}${K}`);
  t.deepEqual(parseBearerResponse(m), {
    token: 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==',
    authzid: 'user@example.com',
    host: 'server.example.com',
    port: '143',
  });
  t.deepEqual(buildBearerResponse('vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==', { authzid: 'user@example.com', host: 'server.example.com', port: '143' }), m);
  t.deepEqual(parseBearerResponse(Buffer.from(`n,,${K}auth=bearer  abc${K}${K}`)), { token: 'abc' });
});

test('malformed client responses are refused', (t) => {
  for (const s of [
    '', K, `n,,${K}${K}`, `n,,auth=Bearer abc${K}${K}`, `n,,${K}auth=Bearer abc${K}`, `n,,${K}auth=Bearer abc${K}${K}${K}`,
    `n,,${K}auth=Basic abc${K}${K}`, `n,,${K}auth=Bearer${K}${K}`, `n,,${K}auth=Bearer a b${K}${K}`, `n,,${K}auth=Bearer a=b${K}${K}`,
    `n,,${K}auth=Bearer abc${K}auth=Bearer abc${K}${K}`, `n,,${K}host=x${K}${K}`, `p=tls-exporter,,${K}auth=Bearer abc${K}${K}`,
    `n,,${K}1=2${K}auth=Bearer abc${K}${K}`, `n,,${K}host=\x7f${K}auth=Bearer abc${K}${K}`, `x,,${K}auth=Bearer abc${K}${K}`,
    `n,a=b=c,${K}auth=Bearer abc${K}${K}`, `n,,${K}auth=Bearer abc${K}trailing`,
  ]) {
    t.is(parseBearerResponse(Buffer.from(s)), undefined, JSON.stringify(s));
  }
});

test('OAUTHBEARER: a valid token authenticates its subject with its scopes', async (t) => {
  const r = await runExchange(oauthBearerClient({ token: 'good-token', host: 'h', port: 10288 }).create(tls), oauthBearerServer({ validateToken: stub }).create(tls));
  t.is(r.server.status, 'success');
  if (r.server.status === 'success') t.deepEqual(r.server.identity, { authcid: 'alice', mechanism: 'OAUTHBEARER', scope: ['beep:control'] });
  t.deepEqual(r.client, { status: 'success' });
  t.is(r.transcript[0], `C: n,,${K}host=h${K}port=10288${K}auth=Bearer good-token${K}${K}`);
});

test('OAUTHBEARER: a refused token gets the JSON error challenge, then 535 after the client\'s kvsep', async (t) => {
  const errors: BearerErrorChallenge[] = [];
  const server = oauthBearerServer({ validateToken: stub, scope: 'beep:control', openidConfiguration: 'https://as.example/.well-known/openid-configuration' });
  const r = await runExchange(oauthBearerClient({ token: 'bad-token', onError: (e) => errors.push(e) }).create(tls), server.create(tls));
  assertFailure(t, r.server, 535, SaslReasons.AUTH_FAILED);
  t.deepEqual(errors, [{ status: 'invalid_token', scope: 'beep:control', 'openid-configuration': 'https://as.example/.well-known/openid-configuration' }]);
  t.is(r.transcript[2], `C: ${K}`);
  t.false(JSON.stringify(r.server).includes('bad-token'));
  t.false(r.transcript.slice(1).join('').includes('bad-token')); // the challenge never echoes the token
  // Anything but a lone kvsep after the error is malformed.
  const s = server.create(tls);
  t.is((await s.step(Buffer.from(`n,,${K}auth=Bearer bad${K}${K}`))).status, 'continue');
  assertFailure(t, await s.step(Buffer.from(`n,,${K}auth=Bearer good-token${K}${K}`)), 535, SaslReasons.MALFORMED);
});

test('OAUTHBEARER: insufficient_scope from the validator is reported with its scope', async (t) => {
  const v: TokenValidator = async () => ({ valid: false, status: 'insufficient_scope', scope: 'a b' });
  const s = oauthBearerServer({ validateToken: v }).create(tls);
  const r = await s.step(buildBearerResponse('tok'));
  t.is(r.status, 'continue');
  if (r.status === 'continue') t.deepEqual(JSON.parse(r.challenge.toString()), { status: 'insufficient_scope', scope: 'a b' });
});

test('OAUTHBEARER: authzid must be the subject unless authorized', async (t) => {
  const refused = await runExchange(oauthBearerClient({ token: 'good-token', authzid: 'root' }).create(tls), oauthBearerServer({ validateToken: stub }).create(tls));
  assertFailure(t, refused.server, 535, SaslReasons.AUTH_FAILED);
  const ok = await runExchange(
    oauthBearerClient({ token: 'good-token', authzid: 'root' }).create(tls),
    oauthBearerServer({ validateToken: stub, authorize: (s, z) => s === 'alice' && z === 'root' }).create(tls),
  );
  t.is(ok.server.status, 'success');
  if (ok.server.status === 'success') t.is(ok.server.identity.authzid, 'root');
  const same = await runExchange(oauthBearerClient({ token: 'good-token', authzid: 'alice' }).create(tls), oauthBearerServer({ validateToken: stub }).create(tls));
  t.is(same.server.status, 'success');
});

test('OAUTHBEARER: a validator that cannot decide gives 454; no TLS gives 538', async (t) => {
  const down: TokenValidator = () => Promise.reject(new BeepError(ErrorCodes.TRANSPORT, 'jwks down'));
  assertFailure(t, await oauthBearerServer({ validateToken: down }).create(tls).step(buildBearerResponse('x')), 454, SaslReasons.TEMPORARY);
  const f = oauthBearerServer({ validateToken: stub });
  t.false(f.available({ tls: false }));
  assertFailure(t, await f.create({ tls: false }).step(buildBearerResponse('good-token')), 538, SaslReasons.BEARER_NEEDS_TLS);
  t.is((await oauthBearerServer({ validateToken: stub, allowWithoutTls: true }).create({ tls: false }).step(buildBearerResponse('good-token'))).status, 'success');
  t.throws(() => oauthBearerClient({ token: 't' }).create({ tls: false }), { instanceOf: BeepError, code: ErrorCodes.INVALID_STATE });
});

test('OAUTHBEARER: absent initial response, token functions, bad tokens', async (t) => {
  let calls = 0;
  const client = oauthBearerClient({ token: async () => { calls++; return 'good-token'; } });
  const r = await runExchange(client.create(tls), oauthBearerServer({ validateToken: stub }).create(tls), { initial: false });
  t.is(r.server.status, 'success');
  t.is(calls, 1);
  await t.throwsAsync(oauthBearerClient({ token: 'not a token' }).create(tls).initial(), { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT });
  const e = await t.throwsAsync(oauthBearerClient({ token: () => Promise.reject(new Error('idp down')) }).create(tls).initial(), { instanceOf: BeepError });
  t.regex(e?.message ?? '', /token function failed/);
  t.throws(() => oauthBearerServer({} as never), { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT });
  const c = oauthBearerClient({ token: 'x' }).create(tls);
  await c.initial();
  t.is((await c.step(Buffer.from('not json'))).status, 'failure');
});
