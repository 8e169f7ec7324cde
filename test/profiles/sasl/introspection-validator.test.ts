import test from 'ava';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { introspectionValidator, oauthBearerClient, oauthBearerServer, type IntrospectionValidatorOptions } from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

const CLIENT_ID = 'beep:server';
const CLIENT_SECRET = 's3cr3t&=+ %';
const NOW = 1_700_000_000_000;
const GOOD = 'good+token/with=';

let http: Server;
let endpoint: string;
const seen: { authorization?: string; contentType?: string; body: string }[] = [];

async function body(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of req) s += String(chunk);
  return s;
}

test.before(async () => {
  http = createServer(async (req, res) => {
    const text = await body(req);
    seen.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body: text });
    // RFC 6749 §2.3.1: id and secret are form-urlencoded, then base64 in Basic.
    const expected = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID).replace(/%20/g, '+')}:${new URLSearchParams({ v: CLIENT_SECRET }).toString().slice(2)}`).toString('base64')}`;
    if (req.method !== 'POST' || req.headers.authorization !== expected) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', 'Basic');
      return res.end('{"error":"invalid_client"}');
    }
    const token = new URLSearchParams(text).get('token');
    if (req.url === '/hang') return; // never answers
    const exp = NOW / 1000 + 300;
    const answers: Record<string, object> = {
      [GOOD]: { active: true, sub: 'alice', scope: 'openid beep:control', exp, aud: 'beep', iss: 'https://as.example' },
      inactive: { active: false },
      expired: { active: true, sub: 'alice', scope: 'beep:control', exp: NOW / 1000 - 10 },
      future: { active: true, sub: 'alice', scope: 'beep:control', nbf: NOW / 1000 + 100 },
      noscope: { active: true, sub: 'alice', scope: 'openid', exp },
      username: { active: true, username: 'bob', scope: 'beep:control' },
      nosub: { active: true, scope: 'beep:control' },
      truthy: { active: 'true', sub: 'alice', scope: 'beep:control' },
    };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(answers[token ?? ''] ?? { active: false }));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(http.address() as AddressInfo).port}/introspect`;
});

test.after.always(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
});

const opts = (extra: Partial<IntrospectionValidatorOptions> = {}): IntrospectionValidatorOptions => ({
  endpoint,
  clientId: CLIENT_ID,
  clientSecret: CLIENT_SECRET,
  requiredScope: 'beep:control',
  now: () => NOW,
  ...extra,
});

test('an active token is accepted; the request is a form POST with HTTP basic client authentication', async (t) => {
  const v = introspectionValidator(opts());
  t.deepEqual(await v(GOOD, {}), { valid: true, subject: 'alice', scope: ['openid', 'beep:control'] });
  // Tests run concurrently: find our request by its (form-decoded) token.
  const last = seen.find((s) => new URLSearchParams(s.body).get('token') === GOOD);
  t.is(last?.contentType, 'application/x-www-form-urlencoded');
  t.true(last?.body.includes(`token=${encodeURIComponent(GOOD)}`));
  t.is(new URLSearchParams(last?.body).get('token_type_hint'), 'access_token');
  t.deepEqual(await v('username', {}), { valid: true, subject: 'bob', scope: ['beep:control'] });
});

test('inactive, expired, not yet valid, no subject, non-boolean active: invalid_token', async (t) => {
  const v = introspectionValidator(opts());
  for (const tok of ['inactive', 'expired', 'future', 'nosub', 'truthy', 'unknown']) {
    t.deepEqual(await v(tok, {}), { valid: false, status: 'invalid_token' }, tok);
  }
  t.is((await introspectionValidator(opts({ clockTolerance: 30 }))('expired', {})).valid, true);
});

test('a missing scope gives insufficient_scope; audience and issuer are checked when configured', async (t) => {
  t.deepEqual(await introspectionValidator(opts())('noscope', {}), { valid: false, status: 'insufficient_scope', scope: 'beep:control' });
  t.is((await introspectionValidator(opts({ audience: 'beep', issuer: 'https://as.example' }))(GOOD, {})).valid, true);
  t.is((await introspectionValidator(opts({ audience: ['x', 'y'] }))(GOOD, {})).valid, false);
  t.is((await introspectionValidator(opts({ issuer: 'https://other.example' }))(GOOD, {})).valid, false);
});

test('a wrong client secret (HTTP 401) rejects without leaking the secret or token, and the mechanism fails 454', async (t) => {
  const v = introspectionValidator(opts({ clientSecret: 'wrong-secret' }));
  const err = await t.throwsAsync(v(GOOD, {}), { instanceOf: BeepError, code: ErrorCodes.TRANSPORT });
  t.regex(err?.message ?? '', /HTTP 401/);
  t.false(err?.message.includes('wrong-secret') ?? true);
  t.false(err?.message.includes(GOOD) ?? true);
  const r = await runExchange(oauthBearerClient({ token: GOOD }).create({ tls: true }), oauthBearerServer({ validateToken: v }).create({ tls: true }));
  assertFailure(t, r.server, 454);
});

test('end to end: OAUTHBEARER with the introspection validator', async (t) => {
  const server = oauthBearerServer({ validateToken: introspectionValidator(opts()) });
  const ok = await runExchange(oauthBearerClient({ token: GOOD }).create({ tls: true }), server.create({ tls: true }));
  t.is(ok.server.status, 'success');
  const bad = await runExchange(oauthBearerClient({ token: 'inactive' }).create({ tls: true }), server.create({ tls: true }));
  assertFailure(t, bad.server, 535);
});

test('a hanging endpoint times out and rejects', async (t) => {
  const v = introspectionValidator(opts({ endpoint: endpoint.replace('/introspect', '/hang'), timeoutMs: 200 }));
  await t.throwsAsync(v(GOOD, {}), { instanceOf: BeepError, code: ErrorCodes.TRANSPORT });
});

test('options: https required off loopback; id and secret required', (t) => {
  const invalid = { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT };
  t.throws(() => introspectionValidator(opts({ endpoint: 'http://as.example/introspect' })), invalid);
  t.notThrows(() => introspectionValidator(opts({ endpoint: 'http://as.example/introspect', allowHttp: true })));
  t.notThrows(() => introspectionValidator(opts({ endpoint: 'https://as.example/introspect' })));
  t.throws(() => introspectionValidator(opts({ endpoint: 'not a url' })), invalid);
  t.throws(() => introspectionValidator(opts({ clientId: '' })), invalid);
});
