/**
 * The SASL profiles over real sockets (and real TLS where a mechanism needs
 * it): every mechanism succeeding and failing, the identity reaching other
 * profiles, 530 before authentication, rate limiting, blob syntax.
 */
import test, { type ExecutionContext } from 'ava';
import { Buffer } from 'node:buffer';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { AuthFailureLimiter, BeepError, BeepReplyError, ErrorCodes, anonymousClient, anonymousServer, authenticate, connect, createServer, createUserEntry, defineProfile, externalClient, externalServer, jwksValidator, oauthBearerClient, oauthBearerServer, plainClient, plainServer, saslProfiles, saslUri, scramSha256Client, scramSha256Server, startTls, tlsProfile, type ChannelProfile, type SaslServerOptions, type Session } from '../../src/index.js';
import { buildBlob, parseSaslElement, type ScramCredentials } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';
import { listenForTest } from '../helpers/transport.js';

const pki = testPki();
const users = new Map<string, ScramCredentials>([['alice', await createUserEntry('correct horse', 4096)]]);

const whoami = defineProfile({
  uri: 'urn:test:whoami',
  requires: { authentication: true },
  onMessage: (_m, res, ch) => res.reply(`${ch.core.identity?.authzid} via ${ch.core.identity?.mechanism}`),
});

async function setup(t: ExecutionContext, sasl: SaslServerOptions, tls = false): Promise<{ client: Session; server: Session }> {
  t.timeout(120_000);
  const profiles: ChannelProfile[] = [whoami, ...saslProfiles(sasl)];
  if (tls) profiles.push(tlsProfile({ cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, clientCertOptional: true }));
  const server = createServer({ profiles });
  const at = await listenForTest(t, server);
  const serverSession = new Promise<Session>((r) => server.once('session', r));
  const client = await connect({ ...at });
  t.teardown(async () => {
    client.destroy();
    await server.close(200).catch(() => undefined);
  });
  return { client, server: await serverSession };
}

async function whoAmI(client: Session): Promise<string> {
  const ch = await client.startChannel('urn:test:whoami');
  return (await ch.request('')).text();
}

test('blob syntax: base64 content, status attribute, empty blob, error element', (t) => {
  t.is(buildBlob(Buffer.from('hi')), '<blob>aGk=</blob>');
  t.is(buildBlob(undefined, 'complete'), "<blob status='complete' />");
  t.is(buildBlob(Buffer.alloc(0), 'abort'), "<blob status='abort' />");
  t.deepEqual(parseSaslElement('<blob>aGk=</blob>'), { kind: 'blob', status: 'continue', data: Buffer.from('hi') });
  t.deepEqual(parseSaslElement('<blob status="complete"/>'), { kind: 'blob', status: 'complete', data: Buffer.alloc(0) });
  t.deepEqual(parseSaslElement("<error code='535'>no &amp; no</error>"), { kind: 'error', code: 535, diagnostic: 'no & no' });
  t.throws(() => parseSaslElement('<blob>not base64!</blob>'));
  t.throws(() => parseSaslElement('<!DOCTYPE a><blob/>'));
});

test('SCRAM-SHA-256: the right password authenticates; the identity reaches a profile that required it', async (t) => {
  const { client, server } = await setup(t, { mechanisms: [scramSha256Server({ store: users })] });
  t.true(client.peerProfiles.includes(saslUri('SCRAM-SHA-256')));
  const e530 = await t.throwsAsync(client.startChannel('urn:test:whoami'));
  t.true(e530 instanceof BeepReplyError && e530.replyCode === 530, 'authentication required first');
  await authenticate(client, scramSha256Client({ username: 'alice', password: 'correct horse' }));
  t.deepEqual(server.core.identity, { authcid: 'alice', authzid: 'alice', mechanism: 'SCRAM-SHA-256' });
  t.is(await whoAmI(client), 'alice via SCRAM-SHA-256');
  await client.whenGreeted();
  t.false(server.core.advertisedProfiles().includes(saslUri('SCRAM-SHA-256')), 'no longer offered once authenticated');
});

test('SCRAM-SHA-256: a wrong password and an unknown user both fail with 535 and reveal nothing', async (t) => {
  for (const [username, password] of [['alice', 'wrong'], ['nobody', 'whatever']] as const) {
    const { client, server } = await setup(t, { mechanisms: [scramSha256Server({ store: users })] });
    const err = await t.throwsAsync(authenticate(client, scramSha256Client({ username, password })));
    t.true(err instanceof BeepReplyError, String(err));
    t.is((err as BeepReplyError).code, ErrorCodes.AUTH);
    t.is((err as BeepReplyError).replyCode, 535);
    t.false(err!.message.includes(password), 'the password is not in the error');
    t.is(server.core.identity, undefined);
  }
});

test('PLAIN: refused with 538 without TLS; over TLS the right password works and a wrong one gets 535', async (t) => {
  {
    const { client } = await setup(t, { mechanisms: [plainServer({ store: users })] }, true);
    t.false(client.peerProfiles.includes(saslUri('PLAIN')), 'not offered before TLS');
    const err = await t.throwsAsync(authenticate(client, plainClient({ username: 'alice', password: 'correct horse', allowWithoutTls: true })));
    t.true(err instanceof BeepReplyError && err.replyCode === 538, String(err));
  }
  {
    const { client } = await setup(t, { mechanisms: [plainServer({ store: users })] }, true);
    await startTls(client, { ca: pki.ca, serverName: 'localhost' });
    t.true(client.peerProfiles.includes(saslUri('PLAIN')));
    await authenticate(client, plainClient({ username: 'alice', password: 'correct horse' }));
    t.is(await whoAmI(client), 'alice via PLAIN');
  }
  {
    const { client } = await setup(t, { mechanisms: [plainServer({ store: users })] }, true);
    await startTls(client, { ca: pki.ca, serverName: 'localhost' });
    const err = await t.throwsAsync(authenticate(client, plainClient({ username: 'alice', password: 'nope' })));
    t.true(err instanceof BeepReplyError && err.replyCode === 535);
  }
});

test('ANONYMOUS: refused unless enabled; enabled it authenticates as anonymous', async (t) => {
  {
    const { client } = await setup(t, { mechanisms: [anonymousServer()] });
    const err = await t.throwsAsync(authenticate(client, anonymousClient({ trace: 'tester' })));
    t.true(err instanceof BeepError);
  }
  {
    const { client } = await setup(t, { mechanisms: [anonymousServer({ enabled: true })] });
    await authenticate(client, anonymousClient({ trace: 'tester' }));
    t.is(await whoAmI(client), 'anonymous via ANONYMOUS');
  }
});

test('EXTERNAL: the TLS client certificate is the identity; without one it fails', async (t) => {
  {
    const { client } = await setup(t, { mechanisms: [externalServer()] }, true);
    await startTls(client, { ca: pki.ca, serverName: 'localhost', cert: pki.clientCert, key: pki.clientKey });
    await authenticate(client, externalClient());
    t.is(await whoAmI(client), 'alice via EXTERNAL');
  }
  {
    const { client } = await setup(t, { mechanisms: [externalServer()] }, true);
    await startTls(client, { ca: pki.ca, serverName: 'localhost' });
    const err = await t.throwsAsync(authenticate(client, externalClient()));
    t.true(err instanceof BeepError);
  }
});

test('OAUTHBEARER with a JWKS: a valid token authenticates; expired, forged and wrong-audience tokens fail', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const validator = jwksValidator({ jwks: { keys: [jwk] }, issuer: 'https://issuer.test', audience: 'beepstream' });
  const sign = (key: Parameters<SignJWT['sign']>[0], claims: { aud?: string; exp?: number }) =>
    new SignJWT({ scope: 'stream' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://issuer.test')
      .setSubject('carol')
      .setAudience(claims.aud ?? 'beepstream')
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 300)
      .sign(key);
  const mechanisms = [oauthBearerServer({ validateToken: validator })];
  {
    const { client } = await setup(t, { mechanisms }, true);
    await startTls(client, { ca: pki.ca, serverName: 'localhost' });
    await authenticate(client, oauthBearerClient({ token: await sign(privateKey, {}) }));
    t.is(await whoAmI(client), 'carol via OAUTHBEARER');
  }
  for (const [what, token] of [
    ['expired', await sign(privateKey, { exp: Math.floor(Date.now() / 1000) - 60 })],
    ['forged', await sign(other.privateKey, {})],
    ['wrong audience', await sign(privateKey, { aud: 'someone-else' })],
  ] as const) {
    const { client } = await setup(t, { mechanisms }, true);
    await startTls(client, { ca: pki.ca, serverName: 'localhost' });
    const err = await t.throwsAsync(authenticate(client, oauthBearerClient({ token })), undefined, what);
    t.true(err instanceof BeepReplyError && err.replyCode === 535, `${what}: ${String(err)}`);
    t.false(err!.message.includes(token), `${what}: the token is not in the error`);
  }
});

test('repeated failures on a session are rate-limited with 454', async (t) => {
  const limiter = new AuthFailureLimiter({ maxPerSession: 2, maxPerAddress: 100 });
  const { client } = await setup(t, { mechanisms: [scramSha256Server({ store: users })], limiter });
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const err = await t.throwsAsync(authenticate(client, scramSha256Client({ username: 'alice', password: `guess ${i}` })));
    codes.push((err as BeepReplyError).replyCode ?? 0);
  }
  t.deepEqual(codes, [535, 535, 454]);
  // Even the right password is now refused for a while.
  const err = await t.throwsAsync(authenticate(client, scramSha256Client({ username: 'alice', password: 'correct horse' })));
  t.is((err as BeepReplyError).replyCode, 454);
});

test('a second authentication on an authenticated session is refused', async (t) => {
  const { client } = await setup(t, { mechanisms: [scramSha256Server({ store: users }), anonymousServer({ enabled: true })] });
  await authenticate(client, scramSha256Client({ username: 'alice', password: 'correct horse' }));
  const err = await t.throwsAsync(authenticate(client, anonymousClient()));
  t.true(err instanceof BeepReplyError && err.replyCode === 550, String(err));
});
