import test from 'ava';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { SaslReasons, anonymousClient, anonymousServer } from '../../../src/profiles/sasl/index.js';
import { assertFailure, runExchange } from './helpers.js';

const ctx = { tls: false };

test('ANONYMOUS is off unless enabled (534)', async (t) => {
  const off = anonymousServer();
  t.false(off.available(ctx));
  assertFailure(t, await off.create(ctx).step(Buffer.from('')), 534, SaslReasons.DISABLED);
  assertFailure(t, await anonymousServer({ enabled: false }).create(ctx).step(undefined), 534, SaslReasons.DISABLED);
});

test('ANONYMOUS enabled: identity "anonymous", with or without a trace token', async (t) => {
  const on = anonymousServer({ enabled: true });
  t.true(on.available(ctx));
  const bare = await runExchange(anonymousClient().create(ctx), on.create(ctx));
  t.is(bare.server.status, 'success');
  if (bare.server.status === 'success') t.deepEqual(bare.server.identity, { authcid: 'anonymous', mechanism: 'ANONYMOUS' });
  const traced = await runExchange(anonymousClient({ trace: 'sirhc@example.com' }).create(ctx), on.create(ctx));
  if (traced.server.status === 'success') t.is(traced.server.identity.trace, 'sirhc@example.com');
  else t.fail();
  const utf8 = await on.create(ctx).step(Buffer.from('ΟΔΥΣΣΕΥΣ'.repeat(31), 'utf8'));
  t.is(utf8.status, 'success');
  const none = await runExchange(anonymousClient({ trace: 'x' }).create(ctx), on.create(ctx), { initial: false });
  t.deepEqual(none.transcript, ['S: ', 'C: x']);
});

test('ANONYMOUS: the trace is at most 255 characters of UTF-8 without controls', async (t) => {
  const on = anonymousServer({ enabled: true });
  t.is((await on.create(ctx).step(Buffer.from('é'.repeat(255)))).status, 'success');
  for (const bad of [Buffer.from('a'.repeat(256)), Buffer.from('é'.repeat(256)), Buffer.from('a\nb'), Buffer.from([0xff, 0xfe]), Buffer.from('a\0')]) {
    assertFailure(t, await on.create(ctx).step(bad), 535, SaslReasons.MALFORMED);
  }
  t.throws(() => anonymousClient({ trace: 'a'.repeat(256) }), { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT });
});
