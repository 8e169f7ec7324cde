/**
 * `Channel.exchange(body, onReply)`: a request whose reply is handed whole to
 * a callback, without a promise. Over real sockets on 127.0.0.1 (a
 * BeepServer and a client Session in one process, or a scripted raw-socket
 * listener where the peer must misbehave). Every callback must be called
 * exactly once, never before `exchange()` returns, with a stable error code
 * when there is no reply to hand over.
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { BeepError, BeepReplyError, ErrorCodes } from '../../src/errors.js';
import { connect, createServer, type ConnectOptions, type ServerOptions, type Session } from '../../src/channels/session.js';
import type { BodyInit, Channel, IncomingMessage, RequestOptions, Responder } from '../../src/channels/index.js';
import { ANSWERS_URI, ECHO_URI, answersProfile, defineProfile, echoProfile } from '../../src/profiles/index.js';
import { onMsgFrames, scriptedListener } from '../helpers/raw-peer.js';

/** Bounds of the waits, not measurements. */
const BOUND_MS = 30_000;

async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${BOUND_MS} ms: ${what}`)), BOUND_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Let pending I/O callbacks and microtasks run (a few event-loop turns): a second call would show by then. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

/** One outcome a callback received, and how many times it was called. */
interface Outcome {
  calls: number;
  err: BeepError | null;
  body: Buffer | undefined;
  reply: IncomingMessage | undefined;
  /** The callback ran before exchange() returned. */
  early: boolean;
  /** Resolves at the first call. */
  done: Promise<void>;
}

/** Send `body` with exchange() and record every call of its callback. */
function ex(ch: Channel, body: BodyInit, options?: RequestOptions): Outcome {
  let returned = false;
  let first!: () => void;
  const o: Outcome = { calls: 0, err: null, body: undefined, reply: undefined, early: false, done: new Promise<void>((r) => (first = r)) };
  ch.exchange(
    body,
    (err, b, reply) => {
      o.calls++;
      if (!returned) o.early = true;
      o.err = err;
      o.body = b;
      o.reply = reply;
      first();
    },
    options,
  );
  returned = true;
  return o;
}

/** A profile that keeps every MSG unanswered until the test replies (`held`). */
const HOLD_URI = 'urn:beepstream:test:hold';
function holdProfile(held: { msg: IncomingMessage; res: Responder }[]) {
  return defineProfile({
    uri: HOLD_URI,
    onMessage(msg, res) {
      held.push({ msg, res });
      return new Promise<void>(() => undefined); // replies later, from the test
    },
  });
}

/** A profile that answers ERR 550 with a diagnostic. */
const REFUSE_URI = 'urn:beepstream:test:refuse';
const refuseProfile = defineProfile({
  uri: REFUSE_URI,
  onMessage(_msg, res) {
    return res.error(550, 'no such key');
  },
});

async function setup(t: ExecutionContext, serverOptions: ServerOptions = {}, clientOptions: Omit<ConnectOptions, 'port' | 'host'> = {}): Promise<{ client: Session; peer: Session }> {
  t.timeout(BOUND_MS, 'exchange test took too long');
  const server = createServer({ profiles: [echoProfile, answersProfile, refuseProfile], ...serverOptions });
  const { port } = await within(server.listen(0, '127.0.0.1'), 'listen');
  const peerP = new Promise<Session>((resolve) => server.once('session', resolve));
  let client: Session | undefined;
  t.teardown(async () => {
    client?.destroy();
    for (const s of server.sessions) s.destroy();
    await server.close(200).catch(() => undefined);
  });
  client = await within(connect({ host: '127.0.0.1', port, ...clientOptions }), 'connect');
  const peer = await within(peerP, 'server session');
  return { client, peer };
}

test('RPY: the whole body, the reply message and no error, once, after exchange() returned', async (t) => {
  const { client } = await setup(t);
  const ch = await within(client.startChannel(ECHO_URI), 'start');
  const o = ex(ch, 'hello', { contentType: 'text/plain' });
  t.is(o.calls, 0, 'not called inside exchange()');
  await within(o.done, 'reply');
  await settle();
  t.is(o.calls, 1);
  t.false(o.early);
  t.is(o.err, null);
  t.is(o.body?.toString(), 'hello');
  t.is(o.reply?.type, 'RPY');
  t.is(o.reply?.contentType, 'text/plain', 'the echo returns the entity headers');
  t.is(ch.outstanding.size, 0, 'nothing left pending');
});

test('ERR: a BeepReplyError with the peer’s reply code and diagnostic, and the ERR message', async (t) => {
  const { client } = await setup(t);
  const ch = await within(client.startChannel(REFUSE_URI), 'start');
  const o = ex(ch, 'k');
  await within(o.done, 'reply');
  await settle();
  t.is(o.calls, 1);
  t.true(o.err instanceof BeepReplyError);
  const e = o.err as BeepReplyError;
  t.is(e.code, ErrorCodes.REPLY_ERROR);
  t.is(e.replyCode, 550);
  t.is(e.diagnostic, 'no such key');
  t.is(e.origin, 'remote');
  t.is(o.body, undefined);
  t.is(o.reply?.type, 'ERR');
  // The channel is still usable.
  const o2 = ex(ch, 'k2');
  await within(o2.done, 'second reply');
  t.is((o2.err as BeepReplyError).replyCode, 550);
});

test('requests made from callbacks: 4 channels × 200 chained exchanges, every body intact and in order', async (t) => {
  const { client } = await setup(t);
  const chans = await within(Promise.all([0, 1, 2, 3].map(() => client.startChannel(ECHO_URI))), 'start');
  const results = await within(
    Promise.all(
      chans.map(
        (ch, c) =>
          new Promise<string[]>((resolve, reject) => {
            const got: string[] = [];
            const step = (i: number): void => {
              if (i === 200) return resolve(got);
              ch.exchange(`c${c}-${i}`, (err, body) => {
                if (err) return reject(err);
                got.push((body as Buffer).toString());
                step(i + 1);
              });
            };
            step(0);
          }),
      ),
    ),
    'chains',
  );
  for (let c = 0; c < 4; c++) t.deepEqual(results[c], Array.from({ length: 200 }, (_, i) => `c${c}-${i}`));
});

test('a long reply (2 MiB, many reads) and a streamed request body are delivered whole', async (t) => {
  const { client } = await setup(t);
  const ch = await within(client.startChannel(ECHO_URI), 'start');
  const big = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const o = ex(ch, big);
  await within(o.done, 'big reply');
  t.is(o.err, null);
  t.true(o.body?.equals(big), 'the body came back intact');
  const streamed = ex(ch, Readable.from([Buffer.from('a'), Buffer.from('bc')]));
  await within(streamed.done, 'streamed');
  await settle();
  t.is(streamed.body?.toString(), 'abc');
  t.is(o.calls + streamed.calls, 2);
});

test('a reply larger than maxMessageSize: BEEP_ERR_MESSAGE_TOO_LARGE once, and the channel stays usable', async (t) => {
  const { client } = await setup(t, {}, { limits: { maxMessageSize: 1000 } });
  const ch = await within(client.startChannel(ECHO_URI), 'start');
  const o = ex(ch, Buffer.alloc(5000, 1));
  await within(o.done, 'too large');
  await settle();
  t.is(o.calls, 1);
  t.is(o.err?.code, ErrorCodes.MESSAGE_TOO_LARGE);
  const o2 = ex(ch, 'small');
  await within(o2.done, 'next');
  t.is(o2.body?.toString(), 'small');
});

test('a one-to-many reply (ANS…NUL): BEEP_ERR_BAD_REPLY once, the answers are discarded, the channel stays usable', async (t) => {
  const { client } = await setup(t);
  const ch = await within(client.startChannel(ANSWERS_URI), 'start');
  const o = ex(ch, '3:20000');
  await within(o.done, 'answers');
  const o2 = ex(ch, '0');
  await within(o2.done, 'NUL only');
  await settle();
  t.is(o.calls, 1);
  t.is(o.err?.code, ErrorCodes.BAD_REPLY);
  t.is(o2.calls, 1);
  t.is(o2.err?.code, ErrorCodes.BAD_REPLY, 'a bare NUL is no RPY either');
  for await (const a of ch.requestAnswers('1')) t.is(await a.text(), 'answer 1 of 1');
});

test('session destroyed locally while exchanges are pending: each callback once, BEEP_ERR_SESSION_CLOSED', async (t) => {
  const held: { msg: IncomingMessage; res: Responder }[] = [];
  const { client } = await setup(t, { profiles: [holdProfile(held)] });
  const chans = await within(Promise.all([client.startChannel(HOLD_URI), client.startChannel(HOLD_URI)]), 'start');
  const outs: Outcome[] = [];
  for (const ch of chans) for (let i = 0; i < 5; i++) outs.push(ex(ch, `m${i}`));
  // Wait until the server holds at least one MSG (so requests are in flight, not only queued).
  for (let i = 0; i < 6000 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.true(held.length > 0, 'the server received a MSG');
  client.destroy();
  await within(Promise.all(outs.map((o) => o.done)), 'callbacks');
  await settle();
  for (const o of outs) {
    t.is(o.calls, 1);
    t.false(o.early);
    t.is(o.err?.code, ErrorCodes.SESSION_CLOSED);
    t.is(o.body, undefined);
  }
  // After the session ended: refused at once with the same code, still after exchange() returns.
  const late = ex(chans[0]!, 'late');
  t.is(late.calls, 0);
  await within(late.done, 'late');
  t.is(late.err?.code, ErrorCodes.SESSION_CLOSED);
});

test('AbortSignal: BEEP_ERR_ABORTED once; the reply that comes later is dropped; the channel stays usable', async (t) => {
  const held: { msg: IncomingMessage; res: Responder }[] = [];
  const { client } = await setup(t, { profiles: [holdProfile(held), echoProfile] });
  const ch = await within(client.startChannel(HOLD_URI), 'start');
  const ac = new AbortController();
  const o = ex(ch, 'wait', { signal: ac.signal });
  for (let i = 0; i < 6000 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  ac.abort();
  await within(o.done, 'aborted');
  t.is(o.err?.code, ErrorCodes.ABORTED);
  // The server answers after all: the callback is not called again.
  held[0]!.res.send('too late');
  const o2 = ex(ch, 'next');
  for (let i = 0; i < 6000 && held.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  held[1]!.res.send('answer');
  await within(o2.done, 'next');
  await settle();
  t.is(o.calls, 1);
  t.is(o2.calls, 1);
  t.is(o2.body?.toString(), 'answer');
  // Aborted before it was sent: refused without a MSG.
  const o3 = ex(ch, 'x', { signal: AbortSignal.abort() });
  await within(o3.done, 'pre-aborted');
  t.is(o3.err?.code, ErrorCodes.ABORTED);
});

/** A profile that streams a reply: a first part at once, the rest when the test calls `finish`. */
const STREAM_URI = 'urn:beepstream:test:stream-reply';
function streamReplyProfile(finishers: (() => void)[]) {
  return defineProfile({
    uri: STREAM_URI,
    onMessage(_msg, res) {
      const w = res.replyStream();
      w.write(Buffer.alloc(10_000, 0x61));
      finishers.push(() => w.end(Buffer.alloc(10_000, 0x62)));
    },
  });
}

test('an abort after the reply began to arrive does not cut it (as with request()): the whole reply, once', async (t) => {
  const finishers: (() => void)[] = [];
  const { client } = await setup(t, { profiles: [streamReplyProfile(finishers), echoProfile] });
  const ch = await within(client.startChannel(STREAM_URI), 'start');
  const ac = new AbortController();
  const o = ex(ch, 'go', { signal: ac.signal });
  // Wait until the reply's first part is here (its message exists) and the server holds the rest.
  for (let i = 0; i < 6000 && (finishers.length === 0 || !ch.outstanding.get(0)?.reply); i++) await new Promise((r) => setTimeout(r, 5));
  t.truthy(ch.outstanding.get(0)?.reply, 'the reply began to arrive');
  t.is(o.calls, 0, 'not called while the reply is incomplete');
  ac.abort();
  await settle();
  t.is(o.calls, 0, 'the abort came after the reply began: it is still collected');
  finishers[0]!();
  await within(o.done, 'reply');
  await settle();
  t.is(o.calls, 1);
  t.is(o.err, null);
  t.is(o.body?.length, 20_000);
  t.is(o.body?.[0], 0x61);
  t.is(o.body?.[19_999], 0x62);
});

test('refused before sending: a closed channel gives BEEP_ERR_INVALID_STATE, bad headers BEEP_ERR_INVALID_ARGUMENT, a missing callback throws', async (t) => {
  const { client } = await setup(t);
  const ch = await within(client.startChannel(ECHO_URI), 'start');
  const bad = ex(ch, 'x', { contentType: 'text/plain\r\nX-Injected: 1' });
  await within(bad.done, 'bad headers');
  t.is(bad.err?.code, ErrorCodes.INVALID_ARGUMENT);
  t.false(bad.early);
  t.throws(() => ch.exchange('x', undefined as unknown as () => void), { code: ErrorCodes.INVALID_ARGUMENT });
  await within(ch.close(), 'close');
  const o = ex(ch, 'after close');
  t.is(o.calls, 0);
  await within(o.done, 'refused');
  await settle();
  t.is(o.calls, 1);
  t.is(o.err?.code, ErrorCodes.INVALID_STATE);
});

test('a callback that throws: the session emits handlerError with it and carries on', async (t) => {
  const { client } = await setup(t);
  const ch = await within(client.startChannel(ECHO_URI), 'start');
  const boom = new Error('boom in the callback');
  const seen = new Promise<unknown>((resolve) => client.once('handlerError', resolve));
  ch.exchange('a', () => {
    throw boom;
  });
  t.is(await within(seen, 'handlerError'), boom);
  const o = ex(ch, 'b');
  await within(o.done, 'next');
  t.is(o.body?.toString(), 'b');
});

/**
 * A raw listener: greeting, start reply, and to a MSG on channel 1 with body
 * `pair` the RPY followed, in the same write, by a frame for a message
 * number never sent (RFC 3080 §2.2.1.1: the session is terminated). To body
 * `bye` it answers nothing and half-closes the connection (FIN).
 */
async function scriptedPeer(t: ExecutionContext): Promise<number> {
  const URI = 'urn:beepstream:test:scripted';
  const wire = (kw: string, ch: number, msgno: number, seqno: number, payload: string): string => `${kw} ${ch} ${msgno} . ${seqno} ${Buffer.byteLength(payload, 'latin1')}\r\n${payload}END\r\n`;
  return scriptedListener(t, (socket) => {
    let seq0 = 0;
    let seq1 = 0;
    const xml = (s: string): string => `Content-Type: application/beep+xml\r\n\r\n${s}\r\n`;
    const g = xml(`<greeting><profile uri='${URI}' /></greeting>`);
    socket.write(wire('RPY', 0, 0, seq0, g));
    seq0 += Buffer.byteLength(g);
    onMsgFrames(socket, (ch, msgno, payload) => {
      if (ch === 0 && payload.includes('<start')) {
        const p = xml(`<profile uri='${URI}' />`);
        socket.write(wire('RPY', 0, msgno, seq0, p));
        seq0 += Buffer.byteLength(p);
      } else if (ch === 1 && payload.endsWith('pair')) {
        const r = '\r\nreply';
        socket.write(wire('RPY', 1, msgno, seq1, r) + wire('RPY', 1, 4242, seq1 + r.length, '\r\nx'));
        seq1 += r.length;
      } else if (ch === 1 && payload.endsWith('bye')) {
        socket.end();
      }
    });
  });
}

/** A session to {@link scriptedPeer} and its channel 1 (the scripted profile). */
async function scriptedChannel(t: ExecutionContext): Promise<{ session: Session; ch: Channel }> {
  const port = await scriptedPeer(t);
  const session = await within(connect({ host: '127.0.0.1', port }), 'connect');
  t.teardown(() => session.destroy());
  return { session, ch: await within(session.startChannel('urn:beepstream:test:scripted'), 'start') };
}

test('a complete reply followed in the same read by a poorly-formed frame: the reply is handed over once, the other pending exchange fails once with BEEP_ERR_PROTOCOL', async (t) => {
  t.timeout(BOUND_MS);
  const { session, ch } = await scriptedChannel(t);
  const other = ex(ch, 'wait'); // never answered: pending when the session ends
  const o = ex(ch, 'pair');
  await within(Promise.all([o.done, other.done]), 'callbacks');
  await settle();
  t.is(o.calls, 1);
  t.is(o.err, null, 'the reply arrived whole before the bad frame');
  t.is(o.body?.toString(), 'reply');
  t.is(other.calls, 1);
  t.is(other.err?.code, ErrorCodes.PROTOCOL);
  t.true(session.core.isClosed);
});

test('the peer closes the connection while an exchange is pending: called once with BEEP_ERR_SESSION_CLOSED', async (t) => {
  t.timeout(BOUND_MS);
  const { ch } = await scriptedChannel(t);
  const o = ex(ch, 'bye');
  await within(o.done, 'callback');
  await settle();
  t.is(o.calls, 1);
  t.is(o.err?.code, ErrorCodes.SESSION_CLOSED);
  t.is(o.err?.origin, 'remote');
});
