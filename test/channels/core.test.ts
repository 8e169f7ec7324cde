/**
 * The sans-IO core on its own: two SessionCores wired back to back in memory,
 * frames moved by hand, no sockets and no timers.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { defineProfile, ErrorCodes, type Channel } from '../../src/index.js';
import { FrameDecoder, type Frame } from '../../src/framing/index.js';
import { SessionCore } from '../../src/channels/index.js';

const ECHO = defineProfile({
  uri: 'urn:test:echo',
  async onMessage(msg, res) {
    await res.reply(await msg.bytes());
  },
});

/** Move frames between two cores until both are idle; returns the frames A sent, decoded. */
async function pump(a: SessionCore, b: SessionCore, rounds = 10000): Promise<{ aToB: Frame[]; bToA: Frame[] }> {
  const aToB: Frame[] = [];
  const bToA: Frame[] = [];
  const da = new FrameDecoder({ maxFrameSize: 1 << 30 });
  const db = new FrameDecoder({ maxFrameSize: 1 << 30 });
  for (let i = 0; i < rounds; i++) {
    let moved = false;
    for (const [from, to, dec, log] of [[a, b, da, aToB], [b, a, db, bToA]] as const) {
      const bufs = from.pull();
      if (bufs) {
        moved = true;
        const chunk = Buffer.concat(bufs);
        dec.push(chunk, (f) => log.push(f.type === 'SEQ' ? f : { ...f, payload: Buffer.from(f.payload) }));
        to.receive(chunk);
      }
    }
    // Let promise callbacks (handlers, body reads) run.
    await new Promise((r) => setImmediate(r));
    if (!moved && !a.hasOutput && !b.hasOutput) {
      await new Promise((r) => setImmediate(r));
      if (!a.hasOutput && !b.hasOutput) return { aToB, bToA };
    }
  }
  throw new Error('pump did not settle');
}

/** Two cores; their flow policy sees a frozen clock, so window sizing does not depend on how fast the machine runs. */
function pair(limits = {}, clock = (): number => 0): { client: SessionCore; server: SessionCore } {
  const client = new SessionCore({ role: 'initiator', profiles: [ECHO], limits, clock });
  const server = new SessionCore({ role: 'listener', profiles: [ECHO], limits, clock });
  return { client, server };
}

async function openEcho(client: SessionCore, server: SessionCore): Promise<Channel> {
  const p = client.startChannel('urn:test:echo');
  await pump(client, server);
  return p;
}

test('greetings cross without either side waiting, and a channel starts with an odd number', async (t) => {
  const { client, server } = pair();
  // Both greetings are queued at construction, before anything is received.
  t.truthy(client.pull());
  t.truthy(server.pull());
  const { client: c2, server: s2 } = pair();
  await pump(c2, s2);
  t.deepEqual(c2.peerGreeting?.profiles, ['urn:test:echo']);
  t.deepEqual(s2.peerGreeting?.profiles, ['urn:test:echo']);
  const ch = await openEcho(c2, s2);
  t.is(ch.number % 2, 1);
  t.is(s2.channels.get(ch.number)?.profile, 'urn:test:echo');
});

test('message numbers wrap from 2147483647 to 0 on a channel', async (t) => {
  const { client, server } = pair();
  await pump(client, server);
  const ch = await openEcho(client, server);
  ch.nextMsgno = 2147483646;
  const replies = [ch.request('a'), ch.request('b'), ch.request('c')];
  const { aToB } = await pump(client, server);
  const msgnos = aToB.filter((f) => f.type === 'MSG' && f.channel === ch.number).map((f) => (f as { msgno: number }).msgno);
  t.deepEqual(msgnos, [2147483646, 2147483647, 0]);
  t.deepEqual(await Promise.all(replies.map(async (r) => (await r).text())), ['a', 'b', 'c']);
});

test('sequence numbers wrap at 2^32 on both sides and data stays intact', async (t) => {
  const { client, server } = pair();
  await pump(client, server);
  const ch = await openEcho(client, server);
  const peer = server.channels.get(ch.number) as Channel;
  // Place both directions 1000 octets before the wrap, consistently on each side.
  const start = 4294967296 - 1000;
  for (const [send, recv] of [[ch.send, peer.recv], [peer.send, ch.recv]] as const) {
    send.nextSeq = start;
    send.ackno = start;
    send.edge = (start + 4096) >>> 0;
    recv.expected = start;
    recv.edge = (start + 4096) >>> 0;
  }
  const body = Buffer.alloc(100_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
  // Read the reply as it arrives, so the window keeps reopening during the pump.
  const reply = ch.request(body).then((m) => m.bytes());
  const { aToB, bToA } = await pump(client, server);
  const got = await reply;
  t.true(got.equals(body));
  const seqnos = aToB.filter((f) => f.type === 'MSG' && f.channel === ch.number).map((f) => (f as { seqno: number }).seqno);
  t.true(seqnos.some((s) => s > 4294967296 - 4096), 'frames before the wrap');
  t.true(seqnos.some((s) => s < 200_000), 'frames after the wrap');
  const acks = bToA.filter((f) => f.type === 'SEQ' && f.channel === ch.number).map((f) => (f as { ackno: number }).ackno);
  t.true(acks.some((x) => x < 200_000), 'SEQ acknowledgements wrapped too');
});

test('frames of two bulk channels are interleaved round-robin', async (t) => {
  const { client, server } = pair({ receiveWindow: 1 << 20, maxSendFrame: 4096 });
  await pump(client, server);
  const a = await openEcho(client, server);
  const b = await openEcho(client, server);
  const ra = a.request(Buffer.alloc(64 * 1024, 1));
  const rb = b.request(Buffer.alloc(64 * 1024, 2));
  const { aToB } = await pump(client, server);
  await Promise.all([(await ra).dump(), (await rb).dump()]);
  const order = aToB.filter((f) => f.type === 'MSG' && (f.channel === a.number || f.channel === b.number)).map((f) => f.channel);
  // Within the first 8 frames both channels must appear, alternating.
  const head = order.slice(0, 8);
  t.true(head.includes(a.number) && head.includes(b.number), `order ${head.join(',')}`);
  let switches = 0;
  for (let i = 1; i < order.length; i++) if (order[i] !== order[i - 1]) switches++;
  t.true(switches >= order.length / 2 - 2, `only ${switches} switches in ${order.length} frames`);
});

test('a SEQ goes out ahead of the data of the same batch', async (t) => {
  const { client, server } = pair({ receiveWindow: 8192 });
  await pump(client, server);
  const ch = await openEcho(client, server);
  // A full window of request: the server consumes it and must reopen the window
  // (SEQ) before (or with) its reply data.
  const reply = ch.request(Buffer.alloc(8000, 7));
  const { bToA } = await pump(client, server);
  await (await reply).dump();
  const onCh = bToA.filter((f) => f.channel === ch.number && !(f.type === 'SEQ' && f.ackno === 0));
  const firstSeq = onCh.findIndex((f) => f.type === 'SEQ');
  const firstRpy = onCh.findIndex((f) => f.type === 'RPY');
  t.true(firstSeq >= 0 && firstRpy >= 0);
  t.true(firstSeq < firstRpy, 'SEQ precedes the reply data');
});

test('the receive window reopens only as the application reads', async (t) => {
  const { client, server } = pair({ receiveWindow: 8192 });
  await pump(client, server);
  const ch = await openEcho(client, server);
  // Ask for a 200 KB echo but do not read the reply.
  const reply = ch.request(Buffer.alloc(200_000, 3));
  await pump(client, server);
  const msg = await reply;
  // Unread, the reply holds at most the receive window (8192) plus what the
  // stream had buffered ahead of the reader.
  t.true(msg.received <= 8192 + 64 * 1024, `received ${msg.received}`);
  const before = msg.received;
  const body = msg.bytes();
  await pump(client, server);
  t.is((await body).length, 200_000);
  t.true(msg.received > before);
});

test('a poorly-formed frame terminates the session and rejects pending requests with a typed error', async (t) => {
  const { client, server } = pair();
  await pump(client, server);
  const ch = await openEcho(client, server);
  const pending = ch.request('never answered');
  client.pull();
  let closedWith: unknown;
  client.on('close', (e) => (closedWith = e));
  client.receive(Buffer.from('BOGUS 1 2 3\r\n'));
  const err = await t.throwsAsync(pending);
  t.is((err as { code?: string }).code, ErrorCodes.FRAME_SYNTAX);
  t.is((closedWith as { code?: string }).code, ErrorCodes.FRAME_SYNTAX);
  t.is(client.state, 'closed');
  t.is(client.pull(), null, 'nothing is sent after termination');
  // Further input is ignored, never thrown.
  t.notThrows(() => client.receive(Buffer.from('MSG 0 1 . 0 0\r\nEND\r\n')));
});

test('session release: both sides end cleanly with no error', async (t) => {
  const { client, server } = pair();
  await pump(client, server);
  await openEcho(client, server);
  const errs: unknown[] = [];
  client.on('close', (e) => errs.push(e));
  server.on('close', (e) => errs.push(e));
  const p = client.release();
  for (let i = 0; i < 5 && (client.state !== 'closed' || server.state !== 'closed'); i++) await pump(client, server);
  await p;
  t.is(client.state, 'closed');
  t.is(server.state, 'closed');
  t.true(client.wasReleased && server.wasReleased);
  t.deepEqual(errs, [undefined, undefined]);
});

test('window auto-tuning: a window-limited channel whose reader keeps up grows its buffer up to the ceiling', async (t) => {
  // Time passes as the two cores work (50 µs per look at the clock): the policy
  // grows past one doubling only once the reader has shown a rate over an epoch.
  let now = 0;
  const { client, server } = pair({ receiveWindow: 16384, maxReceiveWindow: 1 << 20, maxSendFrame: 16384 }, () => (now += 0.05));
  await pump(client, server);
  const ch = await openEcho(client, server);
  const peer = server.channels.get(ch.number) as Channel;
  t.is(peer.recv.size, 16384);
  const reply = ch.request(Buffer.alloc(4 << 20, 1)).then((m) => m.bytes());
  const { bToA } = await pump(client, server);
  t.is((await reply).length, 4 << 20);
  t.is(peer.recv.size, 1 << 20, 'grew to the ceiling');
  const windows = bToA.filter((f) => f.type === 'SEQ' && f.channel === ch.number).map((f) => (f as { window: number }).window);
  t.true(Math.max(...windows) > 16384 * 4, `advertised windows grew (max ${Math.max(...windows)})`);
  t.true(windows.every((w) => w <= 1 << 20), 'never beyond the ceiling');
});

test('window auto-tuning: the session budget caps growth across channels', async (t) => {
  const { client, server } = pair({ receiveWindow: 16384, maxReceiveWindow: 1 << 20, sessionReceiveBudget: 64 * 1024, maxSendFrame: 16384 });
  await pump(client, server);
  const a = await openEcho(client, server);
  const b = await openEcho(client, server);
  const ra = a.request(Buffer.alloc(2 << 20, 1)).then((m) => m.bytes());
  const rb = b.request(Buffer.alloc(2 << 20, 2)).then((m) => m.bytes());
  await pump(client, server);
  await Promise.all([ra, rb]);
  const pa = server.channels.get(a.number) as Channel;
  const pb = server.channels.get(b.number) as Channel;
  t.true(pa.recv.size - 16384 + (pb.recv.size - 16384) <= 64 * 1024, `extra buffer ${pa.recv.size + pb.recv.size - 32768} within the budget`);
});

test('a control channel is served before bulk channels: its frame goes out at the next batch', async (t) => {
  const control = defineProfile({ uri: 'urn:test:control', control: true, onMessage: async (m, res) => res.reply(await m.bytes()) });
  const client = new SessionCore({ role: 'initiator', profiles: [ECHO, control], limits: { maxSendFrame: 4096, receiveWindow: 1 << 20 } });
  const server = new SessionCore({ role: 'listener', profiles: [ECHO, control], limits: { receiveWindow: 1 << 20 } });
  await pump(client, server);
  const bulk = await openEcho(client, server);
  const ctlP = client.startChannel('urn:test:control');
  await pump(client, server);
  const ctl = await ctlP;
  t.true(ctl.control);
  // Queue a large bulk message first, then a small control one; one batch of 64 KiB.
  const r1 = bulk.request(Buffer.alloc(512 * 1024, 1));
  const r2 = ctl.request('urgent');
  const batch = client.pull(64 * 1024);
  const dec = new FrameDecoder({ maxFrameSize: 1 << 30 });
  const frames: Frame[] = [];
  dec.push(Buffer.concat(batch ?? []), (f) => frames.push(f));
  const firstCtl = frames.findIndex((f) => f.channel === ctl.number);
  const firstBulk = frames.findIndex((f) => f.channel === bulk.number);
  t.true(firstCtl >= 0, 'the control frame is in the first batch');
  t.true(firstBulk < 0 || firstCtl < firstBulk, 'and ahead of the bulk frames');
  server.receive(Buffer.concat(batch ?? []));
  await pump(client, server);
  t.is(await (await r2).text(), 'urgent');
  await (await r1).dump();
});

test('weighted round-robin: a channel of weight 3 sends three frames per turn', async (t) => {
  const { client, server } = pair({ receiveWindow: 1 << 20, maxSendFrame: 4096 });
  await pump(client, server);
  const a = await openEcho(client, server);
  const b = await openEcho(client, server);
  a.weight = 3;
  const ra = a.request(Buffer.alloc(256 * 1024, 1));
  const rb = b.request(Buffer.alloc(256 * 1024, 2));
  const batch = client.pull(256 * 1024) ?? [];
  const dec = new FrameDecoder({ maxFrameSize: 1 << 30 });
  const order: number[] = [];
  dec.push(Buffer.concat(batch), (f) => {
    if (f.type === 'MSG' && f.channel !== 0) order.push(f.channel);
  });
  const head = order.slice(0, 8).map((c) => (c === a.number ? 'a' : 'b')).join('');
  t.is(head, 'aaabaaab', `order ${head}`);
  server.receive(Buffer.concat(batch));
  const p = Promise.all([ra.then((m) => m.dump()), rb.then((m) => m.dump())]);
  await pump(client, server);
  await p;
});

test('the start-rate bucket runs on the injected clock: a fourth start in the same instant is refused (554), one after 1 s of that clock is accepted', async (t) => {
  let now = 1000;
  const clock = (): number => now;
  const { client, server } = pair({ maxStartRate: 3 }, clock);
  await pump(client, server);
  const starts = [1, 2, 3, 4].map(() => client.startChannel('urn:test:echo').then(() => 200, (e: { replyCode?: number }) => e.replyCode));
  await pump(client, server);
  t.deepEqual(await Promise.all(starts), [200, 200, 200, 554]);
  // No real time passes; only the injected clock moves.
  now += 1000;
  const later = client.startChannel('urn:test:echo').then(() => 200, (e: { replyCode?: number }) => e.replyCode);
  await pump(client, server);
  t.is(await later, 200);
});

test('weights hold when one frame fills a batch: channels weighted 3 and 1 send their frames 3:1, a turn carried from one pull to the next', async (t) => {
  const frame = 256 * 1024;
  const { client, server } = pair({ maxSendFrame: frame, receiveWindow: 16 * 1024 * 1024, maxReceiveWindow: 16 * 1024 * 1024 });
  await pump(client, server);
  const heavy = await openEcho(client, server);
  const light = await openEcho(client, server);
  heavy.weight = 3;
  const body = Buffer.alloc(16 * frame, 7);
  const replies = [heavy.request(body), light.request(body)];
  const { aToB } = await pump(client, server);
  const order = aToB.filter((f) => f.type === 'MSG' && (f.channel === heavy.number || f.channel === light.number)).map((f) => (f.channel === heavy.number ? 'H' : 'L'));
  // While both have frames to send (the first 16 of the heavy one's), the heavy one sends three for each of the other's.
  const both = order.slice(0, 20).join('');
  t.is((both.match(/H/g) ?? []).length, 15, both);
  t.is((both.match(/L/g) ?? []).length, 5, both);
  t.deepEqual((await Promise.all(replies.map(async (r) => (await r).bytes()))).map((b) => b.length), [body.length, body.length]);
});
