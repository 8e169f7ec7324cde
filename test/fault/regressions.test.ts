/**
 * Deterministic regressions of bugs the fault proxy found.
 *
 * 1. A channel-0 MSG read before the peer's greeting was processed. The
 *    greeting's body is read asynchronously; when its entity headers end one
 *    TCP read and its body (with END) comes in the next read together with a
 *    `<start>`, the start was handled first, with the session still in state
 *    'greeting', and refused "550 session is being released". Found by
 *    sessions.test.ts (split writes); fixed in src/channels/management.ts
 *    (handleMgmtMessage waits for the greeting).
 * 2. An unhandled rejection (which ends a Node process) from `void m.dump()`:
 *    answers a consumer left unread when it stopped iterating
 *    `requestAnswers()` early are dumped, and `dump()` rejects when the
 *    session then fails before they complete. Found by sessions.test.ts
 *    (seed 1592590373: stop early, then a FIN drop); fixed in
 *    src/channels/channel.ts (and the same pattern in request()'s ANS branch
 *    and management.ts).
 * 3. A reply body whose stream was destroyed before its end (the
 *    application's `msg.destroy()`, a `pipeline` whose destination failed,
 *    `break` out of `for await` over `msg.stream()`) kept its queued octets,
 *    the octets in the stream's buffer and every later frame uncredited: the
 *    sender waited for window for good, and every later reply on the channel
 *    behind it (replies go in order, RFC 3080 §2.6.1). The same for a loop
 *    over `msg.views()` or `msg` itself left early. Found reviewing the
 *    receive path beside the recycled-reads change; fixed in
 *    src/channels/message.ts (MessageStream._destroy, and the two iterators'
 *    `finally`, discard the rest).
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test from 'ava';
import { connect, createServer, Session } from '../../src/channels/session.js';
import { ECHO_URI, defineProfile, echoProfile } from '../../src/profiles/index.js';
import { sleep, within } from '../helpers/fault-proxy.js';

const XML_HEAD = 'Content-Type: application/beep+xml\r\n\r\n';

function startMsg(channel: number, msgno: number, seqno: number): string {
  const body = `${XML_HEAD}<start number='${channel}'><profile uri='${ECHO_URI}' /></start>`;
  return `MSG 0 ${msgno} . ${seqno} ${body.length}\r\n${body}END\r\n`;
}

/** Greeting frame pieces: header line + entity headers in separate writes, the body and END with `then` in the last. */
function splitGreeting(greetingXml: string, then: string): string[] {
  const payload = `${XML_HEAD}${greetingXml}`;
  return [`RPY 0 0 . 0 ${payload.length}\r\n`, XML_HEAD, `${greetingXml}END\r\n${then}`];
}

async function writeSlowly(socket: net.Socket, pieces: string[]): Promise<void> {
  for (const p of pieces) {
    socket.write(p);
    await sleep(20); // separate reads at the receiver
  }
}

test('listener: a <start> in the same read as the end of a greeting whose headers came earlier is accepted', async (t) => {
  const server = createServer({ profiles: [echoProfile] });
  const { port } = await server.listen(0);
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  try {
    await within(new Promise((r) => socket.once('connect', r)), 5000, 'connect');
    const greeting = '<greeting />';
    await writeSlowly(socket, splitGreeting(greeting, startMsg(1, 1, XML_HEAD.length + greeting.length)));
    await within((async () => { while (!/(RPY|ERR) 0 1 /.test(got)) await sleep(5); })(), 5000, 'reply to the start');
    t.regex(got, /RPY 0 1 [^\r]*\r\nContent-Type: application\/beep\+xml\r\n\r\n<profile uri='http:\/\/xml.resource.org\/profiles\/NULL\/ECHO' \/>END\r\n/);
    t.notRegex(got, /ERR 0 1 /);
  } finally {
    socket.destroy();
    for (const s of server.sessions) s.destroy();
    await server.close(100);
  }
});

test('initiator: a listener\'s <start> in the same read as the end of its greeting is accepted', async (t) => {
  // A raw listener: greets in pieces, the last carrying a start of channel 2.
  let got = '';
  const raw = net.createServer((s) => {
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    const greeting = `<greeting><profile uri='${ECHO_URI}' /></greeting>`;
    void writeSlowly(s, splitGreeting(greeting, startMsg(2, 1, XML_HEAD.length + greeting.length)));
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const socket = net.connect((raw.address() as net.AddressInfo).port, '127.0.0.1');
  const session = new Session(socket, 'initiator', { profiles: [echoProfile] });
  try {
    const opened = new Promise((r) => session.once('channel', r));
    await within(opened, 5000, 'channel 2 opened by the listener');
    t.is(session.channels.get(2)?.profile, ECHO_URI);
    await within((async () => { while (!/(RPY|ERR) 0 1 /.test(got)) await sleep(5); })(), 5000, 'reply to the start');
    t.regex(got, /RPY 0 1 [^\r]*\r\n[^]*<profile uri='http:\/\/xml.resource.org\/profiles\/NULL\/ECHO' \/>END\r\n/);
  } finally {
    session.destroy();
    await new Promise<void>((r) => raw.close(() => r()));
  }
});

test.serial('requestAnswers: answers left unread by a consumer that stopped early cause no unhandled rejection when the session then fails', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown): void => void unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  // ANS 0 whole, ANS 1 begun and never finished.
  let resolveBegun!: () => void;
  const begun = { promise: new Promise<void>((r) => (resolveBegun = r)), resolve: () => resolveBegun() };
  const profile = defineProfile({
    uri: 'urn:beepstream:test:fault:half-answers',
    async onMessage(_msg, res) {
      await res.answer('first');
      const w = res.answerStream();
      w.write(Buffer.alloc(1000, 0x62));
      begun.resolve();
    },
  });
  const server = createServer({ profiles: [profile] });
  const peerP = new Promise<Session>((r) => server.once('session', r));
  const { port } = await server.listen(0);
  const client = await connect({ port });
  try {
    const peer = await peerP;
    const ch = await client.startChannel(profile.uri);
    let seen = 0;
    for await (const a of ch.requestAnswers('go')) {
      seen++;
      t.is(await a.text(), 'first');
      await within(begun.promise, 5000, 'second answer begun');
      await sleep(50); // its first frame is in: queued, unread
      break;
    }
    t.is(seen, 1);
    peer.destroy(); // the session fails while the unread answer is being dumped
    await within(client.whenClosed(), 5000, 'client closed');
    await sleep(50);
    t.deepEqual(unhandled.map(String), []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    client.destroy();
    for (const s of server.sessions) s.destroy();
    await server.close(100);
  }
});

/** A 4 MiB echo (far more than a window), its reply's stream ended by `stop`; then the channel must still carry a reply. */
async function destroyMidBody(stop: (reply: import('../../src/channels/message.js').IncomingMessage) => Promise<void>): Promise<string> {
  const server = createServer({ profiles: [echoProfile] });
  const { port } = await server.listen(0);
  const client = await connect({ port });
  try {
    const ch = await client.startChannel(ECHO_URI);
    const reply = await within(ch.request(Buffer.alloc(4 * 1024 * 1024, 0x61)), 10_000, 'the big reply begins');
    await within(stop(reply), 10_000, 'stopping the big reply');
    const next = await within(ch.request('next'), 10_000, 'the next reply on the channel (behind the destroyed one)');
    return await within(next.text(), 10_000, 'the next body');
  } finally {
    client.destroy();
    for (const s of server.sessions) s.destroy();
    await server.close(100);
  }
}

test('a reply body destroyed part-way (msg.destroy()) is thrown away: the channel\'s next reply arrives', async (t) => {
  t.is(await destroyMidBody(async (reply) => {
    const s = reply.stream();
    while (s.read(1000) === null) await new Promise((r) => s.once('readable', r));
    reply.destroy();
  }), 'next');
});

test('a reply body piped to a destination that fails is thrown away: the channel\'s next reply arrives', async (t) => {
  t.is(await destroyMidBody(async (reply) => {
    let n = 0;
    const failing = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        cb(n > 100_000 ? new Error('disk full') : null);
      },
    });
    await t.throwsAsync(pipeline(reply, failing), { message: 'disk full' });
  }), 'next');
});

test('leaving `for await` over a reply\'s stream early throws the body away: the channel\'s next reply arrives', async (t) => {
  t.is(await destroyMidBody(async (reply) => {
    for await (const chunk of reply.stream()) {
      t.true((chunk as Buffer).length > 0);
      break;
    }
  }), 'next');
});

test('leaving `for await` over a reply\'s views() early throws the body away: the channel\'s next reply arrives', async (t) => {
  t.is(await destroyMidBody(async (reply) => {
    for await (const view of reply.views()) {
      t.true(view.length > 0);
      break;
    }
  }), 'next');
});

test('leaving `for await` over a reply itself early throws the body away: the channel\'s next reply arrives', async (t) => {
  t.is(await destroyMidBody(async (reply) => {
    for await (const chunk of reply) {
      t.true((chunk as Buffer).length > 0);
      break;
    }
  }), 'next');
});
