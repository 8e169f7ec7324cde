/**
 * Channel management (src/channels/management.ts) over two sans-IO cores:
 * the peer's start and close are answered at once when the profile's hooks
 * decide synchronously, and after the promise when they return one; a hook
 * that throws or rejects counts as a local error (RFC 3080 §2.3.1.2: the next
 * profile offered is tried; §2.3.1.3: the close is declined with 451).
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { BeepReplyError, defineProfile, type ChannelProfile } from '../../src/index.js';
import { FrameDecoder } from '../../src/framing/index.js';
import { SessionCore } from '../../src/channels/index.js';
import { fastMgmt } from '../../src/channels/mgmtfast.js';

/** Move frames between two cores until both are idle. */
async function pump(a: SessionCore, b: SessionCore, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    let moved = false;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const bufs = from.pull();
      if (bufs) {
        moved = true;
        to.receive(Buffer.concat(bufs));
      }
    }
    await new Promise((r) => setImmediate(r));
    if (!moved && !a.hasOutput && !b.hasOutput) {
      await new Promise((r) => setImmediate(r));
      if (!a.hasOutput && !b.hasOutput) return;
    }
  }
  throw new Error('pump did not settle');
}

function pair(serverProfiles: ChannelProfile[]): { client: SessionCore; server: SessionCore } {
  const client = new SessionCore({ role: 'initiator', profiles: [], clock: () => 0 });
  const server = new SessionCore({ role: 'listener', profiles: serverProfiles, clock: () => 0 });
  return { client, server };
}

/** Pump until `p` settles (hooks may decide on a timer), at most 200 rounds. */
async function settle<T>(a: SessionCore, b: SessionCore, p: Promise<T>): Promise<T> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 200 && !done; i++) {
    await pump(a, b);
    if (!done) await new Promise((r) => setTimeout(r, 2));
  }
  await pump(a, b);
  return p;
}

/** Start a channel offering `uris` and settle: the channel's profile, or the refusal's reply code. */
async function start(client: SessionCore, server: SessionCore, uris: string[]): Promise<string | number> {
  const p = client.startChannel(uris).then(
    (ch) => ch.profile,
    (err: unknown) => (err instanceof BeepReplyError ? (err.replyCode ?? -1) : -1),
  );
  return settle(client, server, p);
}

const later = <T>(v: T): Promise<T> => new Promise((r) => setTimeout(() => r(v), 1));

test('onStart deciding at once or by a promise: accepted, refused, thrown and rejected (the next profile is tried)', async (t) => {
  const errors: unknown[] = [];
  const mk = (uri: string, onStart: ChannelProfile['onStart']): ChannelProfile => defineProfile({ uri, onStart, onMessage: async (_m, r) => void (await r.reply('')) });
  const profiles = [
    mk('urn:t:sync-yes', () => undefined),
    mk('urn:t:sync-no', () => ({ accept: false, code: 554, diagnostic: 'sync no' })),
    mk('urn:t:async-yes', () => later({ accept: true as const })),
    mk('urn:t:async-no', () => later({ accept: false as const, code: 553, diagnostic: 'async no' })),
    mk('urn:t:throws', () => {
      throw new Error('boom');
    }),
    mk('urn:t:rejects', () => Promise.reject(new Error('boom later'))),
  ];
  const { client, server } = pair(profiles);
  server.on('handlerError', (e) => errors.push(e));
  await pump(client, server);
  t.is(await start(client, server, ['urn:t:sync-yes']), 'urn:t:sync-yes');
  t.is(await start(client, server, ['urn:t:sync-no']), 554);
  t.is(await start(client, server, ['urn:t:async-yes']), 'urn:t:async-yes');
  t.is(await start(client, server, ['urn:t:async-no']), 553);
  t.is(await start(client, server, ['urn:t:throws']), 451);
  t.is(await start(client, server, ['urn:t:rejects']), 451);
  // Refusals and local errors move on to the next profile offered, synchronous or not.
  t.is(await start(client, server, ['urn:t:async-no', 'urn:t:sync-yes']), 'urn:t:sync-yes');
  t.is(await start(client, server, ['urn:t:throws', 'urn:t:async-yes']), 'urn:t:async-yes');
  t.is(await start(client, server, ['urn:t:rejects', 'urn:t:sync-no', 'urn:t:unknown']), 554);
  t.is(errors.length, 4, 'each throw and rejection is reported as a handlerError');
  // Every accepted channel exists on both sides with the same profile.
  const open = [...server.channels.values()].filter((c) => c.number !== 0).map((c) => c.profile);
  t.deepEqual(open.sort(), ['urn:t:async-yes', 'urn:t:async-yes', 'urn:t:sync-yes', 'urn:t:sync-yes']);
  t.deepEqual([...client.channels.keys()].sort((a, b) => a - b), [...server.channels.keys()].sort((a, b) => a - b));
});

test('onCloseRequest deciding at once or by a promise: agreed, declined, thrown and rejected (declined with 451)', async (t) => {
  type Decision = ReturnType<NonNullable<ChannelProfile['onCloseRequest']>>;
  let decide: () => Decision = () => undefined;
  const errors: unknown[] = [];
  const prof = defineProfile({ uri: 'urn:t:close', onCloseRequest: () => decide(), onMessage: async (_m, r) => void (await r.reply('')) });
  const { client, server } = pair([prof]);
  server.on('handlerError', (e) => errors.push(e));
  await pump(client, server);
  const close = async (d: () => Decision): Promise<string | number> => {
    const p = client.startChannel('urn:t:close');
    await pump(client, server);
    const ch = await p;
    decide = d;
    const outcome = ch.close().then(
      () => 'closed',
      (err: unknown) => (err instanceof BeepReplyError ? (err.replyCode ?? -1) : -1),
    );
    const r = await settle(client, server, outcome);
    t.is(server.channels.has(ch.number), r !== 'closed', `server side of channel ${ch.number}`);
    t.is(client.channels.has(ch.number), r !== 'closed', `client side of channel ${ch.number}`);
    return r;
  };
  t.is(await close(() => undefined), 'closed');
  t.is(await close(() => later(undefined)), 'closed');
  t.is(await close(() => ({ accept: false, code: 550, diagnostic: 'busy' })), 550);
  t.is(await close(() => later({ accept: false as const, code: 421, diagnostic: 'later' })), 421);
  t.is(
    await close(() => {
      throw new Error('boom');
    }),
    451,
  );
  t.is(await close(() => Promise.reject(new Error('boom later'))), 451);
  t.is(errors.length, 2);
});

test('our close asked while our MSG awaits its reply goes out once the reply has come (RFC 3080 §2.3.1.3)', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const prof = defineProfile({
    uri: 'urn:t:slow',
    async onMessage(_m, r) {
      await gate;
      await r.reply('done');
    },
  });
  const { client, server } = pair([prof]);
  await pump(client, server);
  const p = client.startChannel('urn:t:slow');
  await pump(client, server);
  const ch = await p;
  const reply = ch.request('x');
  await pump(client, server);
  // The client closes once its MSG is acknowledged; the server agrees only once its reply is out.
  const order: string[] = [];
  const closed = ch.close().then(() => order.push('closed'));
  void reply.then(async (m) => order.push(`reply ${(await m.bytes()).toString()}`));
  await pump(client, server);
  t.deepEqual(order, [], 'nothing completes while the reply is pending');
  t.true(server.channels.has(ch.number));
  release();
  await pump(client, server);
  await closed;
  t.deepEqual(order, ['reply done', 'closed']);
  t.false(server.channels.has(ch.number));
});

test("the <start> beepstream writes is the shape the peer's octet fast path takes", async (t) => {
  const prof = defineProfile({ uri: 'urn:t:plain', onMessage: async (_m, r) => void (await r.reply('')) });
  const { client, server } = pair([prof]);
  await pump(client, server);
  const sent: string[] = [];
  const dec = new FrameDecoder({ maxFrameSize: 1 << 20 });
  const p = client.startChannel('urn:t:plain');
  for (let i = 0; i < 50 && sent.length < 1; i++) {
    const bufs = client.pull();
    if (bufs) {
      const chunk = Buffer.concat(bufs);
      dec.push(chunk, (f) => {
        if (f.type !== 'SEQ' && f.channel === 0) sent.push(Buffer.from(f.payload).toString('latin1'));
      });
      server.receive(chunk);
    }
    await new Promise((r) => setImmediate(r));
  }
  await pump(client, server);
  await p;
  const msg = sent[0] ?? '';
  t.regex(msg, /\r\n\r\n<start number='1'><profile uri='urn:t:plain' \/><\/start>$/);
  const body = Buffer.from(msg.slice(msg.indexOf('\r\n\r\n') + 4), 'latin1');
  t.deepEqual(fastMgmt(body, 65536, 8), { kind: 'start', number: 1, profiles: [{ uri: 'urn:t:plain' }] });
});
