/**
 * Property tests: server mechanisms never throw or reject on arbitrary input — they
 * only return well-formed outcomes with fixed reasons — and neither do the clients
 * or the parsers.
 */
import test from 'ava';
import fc from 'fast-check';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import {
  anonymousServer,
  createUserEntry,
  escapeSaslname,
  externalServer,
  oauthBearerClient,
  oauthBearerServer,
  parseBearerResponse,
  parseGs2Header,
  parsePlainMessage,
  parseUsersFile,
  plainServer,
  scramSha256Client,
  scramSha256Server,
  unescapeSaslname,
  type SaslClientMechanismFactory,
  type SaslContext,
  type SaslServerMechanismFactory,
  type ScramCredentials,
} from '../../../src/profiles/sasl/index.js';
import { isWellFormed } from './helpers.js';

let users: Map<string, ScramCredentials>;
test.before(async () => {
  users = new Map([['user', await createUserEntry('pencil', 4096)]]);
});

/** Bytes that look like the mechanisms' grammars, so the parsers get past their first checks. */
const pieces = ['n', 'y', 'p=tls-exporter', ',', '=', 'a=', 'n=', 'r=', 's=', 'i=', 'c=', 'p=', 'v=', 'e=', 'm=', 'user', '=2C', '=3D',
  'biws', 'QUJD', '4096', '\x01', 'auth=', 'Bearer ', 'good-token', 'host=', '\0', 'anonymous', '\xff', 'é'];
const soup = fc.array(fc.constantFrom(...pieces), { maxLength: 16 }).map((p) => Buffer.from(p.join(''), 'latin1'));
const input = fc.option(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)), soup), { nil: undefined });
const ctxArb: fc.Arbitrary<SaslContext> = fc.record({
  tls: fc.boolean(),
  channelBinding: fc.option(fc.record({ type: fc.constant('tls-exporter' as const), data: fc.uint8Array({ maxLength: 8 }) }), { nil: undefined }),
  advertisedMechanisms: fc.option(fc.constant(['SCRAM-SHA-256-PLUS']), { nil: undefined }),
});

function servers(): SaslServerMechanismFactory[] {
  return [
    scramSha256Server({ store: users }),
    scramSha256Server({ store: users, plus: true }),
    plainServer({ store: users, allowWithoutTls: true }),
    plainServer({ verify: (u, p) => u === 'user' && p === 'pencil' }),
    anonymousServer({ enabled: true }),
    anonymousServer(),
    externalServer(),
    oauthBearerServer({ validateToken: async (t) => (t === 'good-token' ? { valid: true, subject: 'user' } : { valid: false }) }),
  ];
}

test('server mechanisms never throw on arbitrary step sequences; outcomes are well formed and final', async (t) => {
  const factories = servers();
  await fc.assert(
    fc.asyncProperty(fc.nat(factories.length - 1), ctxArb, fc.array(input, { minLength: 1, maxLength: 5 }), async (i, ctx, inputs) => {
      const mech = (factories[i] as SaslServerMechanismFactory).create(ctx);
      let ended = false;
      for (const data of inputs) {
        const r = await mech.step(data);
        if (!isWellFormed(r)) return false;
        if (ended && r.status !== 'failure') return false; // nothing after a final outcome
        if (r.status !== 'continue') ended = true;
      }
      return true;
    }),
    { numRuns: 600 },
  );
  t.pass();
});

test('SCRAM server: a valid client-first followed by arbitrary client-final never throws', async (t) => {
  const f = scramSha256Server({ store: users });
  const final = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
    fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 50 })).map(([c, p]) => Buffer.from(`c=${c},r=abc${'x'},p=${p}`)),
    soup,
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('user', 'nobody'), final, async (name, data) => {
      const mech = f.create({ tls: false });
      const first = await mech.step(Buffer.from(`n,,n=${name},r=abc`));
      if (first.status !== 'continue') return false;
      const r = await mech.step(data);
      return r.status === 'failure' && isWellFormed(r);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('client mechanisms never reject on arbitrary challenges or final data', async (t) => {
  const clients: SaslClientMechanismFactory[] = [
    scramSha256Client({ username: 'user', password: 'pencil', maxIterations: 8192 }),
    oauthBearerClient({ token: 'good-token' }),
  ];
  await fc.assert(
    fc.asyncProperty(
      fc.nat(clients.length - 1),
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 120 }).map((u) => Buffer.from(u)), soup), { maxLength: 3 }),
      fc.option(fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u)), { nil: undefined }),
      async (i, challenges, additional) => {
        const c = (clients[i] as SaslClientMechanismFactory).create({ tls: true });
        await c.initial();
        for (const ch of challenges) {
          const r = await c.step(ch);
          if (r.status !== 'continue' && r.status !== 'failure') return false;
        }
        const out = await c.finish(additional);
        return out.status === 'success' || out.status === 'failure';
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('SCRAM round trip for arbitrary user names and passwords', async (t) => {
  const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
  await fc.assert(
    fc.asyncProperty(name, name, async (username, password) => {
      let factory: SaslClientMechanismFactory;
      let entry: ScramCredentials;
      try {
        factory = scramSha256Client({ username, password });
        entry = await createUserEntry(password, 4096);
      } catch (err) {
        // SASLprep refused one of them: both sides must agree that it is invalid input.
        return err instanceof BeepError && err.code === ErrorCodes.INVALID_ARGUMENT;
      }
      const server = scramSha256Server({ store: { get: () => entry } }).create({ tls: false });
      const client = factory.create({ tls: false });
      const s1 = await server.step(await client.initial());
      if (s1.status !== 'continue') return false;
      const c1 = await client.step(s1.challenge);
      if (c1.status !== 'continue') return false;
      const s2 = await server.step(c1.response);
      return s2.status === 'success' && (await client.finish(s2.additional)).status === 'success';
    }),
    { numRuns: 25 },
  );
  t.pass();
});

test('parsers never throw; saslname escaping round-trips', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.uint8Array({ maxLength: 80 }), (s, u) => {
      parseGs2Header(s);
      unescapeSaslname(s);
      parseBearerResponse(u);
      parseBearerResponse(Buffer.from(s));
      parsePlainMessage(u);
      const escaped = escapeSaslname(s);
      return s.length === 0 || s.includes('\0') || (unescapeSaslname(escaped) === s && !escaped.includes(','));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('parseUsersFile throws only BEEP_ERR_INVALID_ARGUMENT on arbitrary JSON', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), fc.record({ version: fc.constant(1), 'scram-sha-256': fc.dictionary(fc.string(), fc.jsonValue()) })), (data) => {
      try {
        parseUsersFile(data);
        return true;
      } catch (err) {
        return err instanceof BeepError && err.code === ErrorCodes.INVALID_ARGUMENT;
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
