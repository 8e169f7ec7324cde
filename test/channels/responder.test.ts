/**
 * `Responder.send()` (a reply that makes no promise) and
 * `IncomingMessage.takeBytes()` over real TCP sockets on 127.0.0.1: replies
 * arrive whole and in order, misuse throws the stable codes, a reply to a
 * session that ended is dropped without a throw, and the old promise API
 * keeps working beside them.
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import { BeepError, ErrorCodes } from '../../src/errors.js';
import { connect, createServer, defineProfile, type IncomingMessage, type Responder } from '../../src/index.js';

const URI = 'urn:beepstream:test:responder-send';

async function pair(onMessage: (msg: IncomingMessage, res: Responder) => unknown) {
  const server = createServer({ profiles: [defineProfile({ uri: URI, onMessage: onMessage as never })] });
  const errors: unknown[] = [];
  let serverClosed!: Promise<unknown>;
  server.on('session', (s) => {
    s.on('handlerError', (e) => errors.push(e));
    serverClosed = new Promise((r) => s.once('close', r));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const session = await connect({ host: '127.0.0.1', port });
  const ch = await session.startChannel(URI);
  return {
    ch,
    session,
    errors,
    server,
    serverClosed: () => serverClosed,
    async close() {
      session.destroy();
      await server.close(1000);
    },
  };
}

test('send(): a synchronous handler echoes with takeBytes()/send(); many requests in flight get their own replies, in order', async (t) => {
  t.timeout(30_000);
  const p = await pair((msg, res) => {
    const b = msg.takeBytes();
    if (b !== null) return res.send(b);
    return msg.bytes().then((x) => res.send(x));
  });
  try {
    const bodies = Array.from({ length: 200 }, (_, i) => `m${i}-${'x'.repeat(i % 37)}`);
    const replies = await Promise.all(bodies.map((b) => p.ch.request(b).then((r) => r.text())));
    t.deepEqual(replies, bodies);
    // A large body (many frames; it arrives over several reads): takeBytes() may say null, bytes() collects it.
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const r = await p.ch.request(big);
    t.true((await r.bytes()).equals(big));
    t.deepEqual(p.errors, []);
  } finally {
    await p.close();
  }
});

test('send(): a second reply throws INVALID_STATE; a header with CR LF throws INVALID_ARGUMENT before anything is queued', async (t) => {
  t.timeout(30_000);
  const seen: string[] = [];
  const p = await pair((msg, res) => {
    const kind = msg.takeBytes()?.toString();
    if (kind === 'twice') {
      res.send('first');
      try {
        res.send('second');
      } catch (e) {
        seen.push((e as BeepError).code);
      }
      try {
        void res.reply('third');
      } catch (e) {
        seen.push((e as BeepError).code);
      }
      return;
    }
    try {
      res.send('bad', { contentType: 'text/plain\r\nX-Evil: 1' });
    } catch (e) {
      seen.push((e as BeepError).code);
      res.send('recovered');
    }
  });
  try {
    t.is(await (await p.ch.request('twice')).text(), 'first');
    t.is(await (await p.ch.request('bad')).text(), 'recovered', 'the bad reply left nothing queued; a good one followed');
    t.deepEqual(seen, [ErrorCodes.INVALID_STATE, ErrorCodes.INVALID_STATE, ErrorCodes.INVALID_ARGUMENT]);
  } finally {
    await p.close();
  }
});

test('send() after the session ended drops the reply without throwing; reply() then rejects (unchanged)', async (t) => {
  t.timeout(30_000);
  let held: Responder[] = [];
  let arrived!: () => void;
  const both = new Promise<void>((r) => (arrived = r));
  const p = await pair((_msg, res) => {
    held.push(res);
    if (held.length === 2) arrived();
  });
  try {
    // Two MSGs on two channels (one at a time per channel), both held unanswered.
    const other = await p.session.startChannel(URI);
    p.ch.request('a').catch(() => undefined);
    other.request('b').catch(() => undefined);
    await both;
    const [r1, r2] = held as [Responder, Responder];
    held = [];
    p.session.destroy();
    await p.serverClosed();
    t.notThrows(() => r1.send('too late'));
    t.true(r1.replied);
    const err = await t.throwsAsync(r2.reply('too late'));
    t.true(err instanceof BeepError);
  } finally {
    await p.close();
  }
});

test('send() with a streamed body (an iterable) is pumped like reply()', async (t) => {
  t.timeout(30_000);
  const p = await pair((_msg, res) => {
    res.send((function* () {
      yield 'one,';
      yield Buffer.from('two,');
      yield 'three';
    })());
  });
  try {
    t.is(await (await p.ch.request('x')).text(), 'one,two,three');
  } finally {
    await p.close();
  }
});

test('reply() still resolves once the reply is written, beside send() on the same channel', async (t) => {
  t.timeout(30_000);
  let n = 0;
  const resolved: number[] = [];
  const p = await pair(async (msg, res) => {
    const i = n++;
    const b = await msg.bytes();
    if (i % 2 === 0) res.send(b);
    else {
      await res.reply(b);
      resolved.push(i);
    }
  });
  try {
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => p.ch.request(`r${i}`).then((r) => r.text())));
    t.deepEqual(out, Array.from({ length: 10 }, (_, i) => `r${i}`));
    t.deepEqual(resolved.sort((a, b) => a - b), [1, 3, 5, 7, 9]);
  } finally {
    await p.close();
  }
});
