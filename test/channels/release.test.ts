/**
 * `onReleased` (RequestOptions / ReplyOptions): the session tells the
 * producer of a body when it no longer references its octets, so their memory
 * can be reused. Over real TCP and TLS sockets: senders rewrite their buffers
 * as soon as they are released, so a release that came before the transport
 * was done with the memory would corrupt the bytes the peer hashes; a paused
 * receiver holds the writes back (nothing unwritten is released); and every
 * octet is released when the exchange is aborted or the session ends.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { Duplex } from 'node:stream';
import test from 'ava';
import { Session, connect, createServer, type Session as SessionT } from '../../src/channels/session.js';
import type { Channel } from '../../src/channels/channel.js';
import type { IncomingMessage } from '../../src/channels/message.js';
import { defineProfile, startTls, tlsProfile } from '../../src/profiles/index.js';
import { ReleaseLedger, type Releasing } from '../../src/channels/release.js';
import { testPki } from '../helpers/certs.js';

const HASH_URI = 'urn:beepstream:test:hash';
const SOURCE_URI = 'urn:beepstream:test:source';
const BOUND_MS = 30_000;
const MiB = 1024 * 1024;

/** Reject if `p` does not settle within the bound. */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), BOUND_MS)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll `cond` every 10 ms, for at most the bound. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + BOUND_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A sender's memory: `slots` buffers of `size` octets, block i written into
 * slot i % slots once block i - slots is released. What was meant to be sent
 * is hashed as it is written.
 */
class Ring {
  readonly bufs: Buffer[];
  readonly hash = createHash('sha256');
  given = 0;
  released = 0;
  /** Every value `onReleased` was called with, in order. */
  readonly reports: number[] = [];
  private wake: (() => void) | null = null;
  constructor(
    readonly slots: number,
    readonly size: number,
  ) {
    this.bufs = Array.from({ length: slots }, () => Buffer.alloc(size));
  }
  readonly onReleased = (n: number): void => {
    this.reports.push(n);
    this.released = n;
    const w = this.wake;
    this.wake = null;
    w?.();
  };
  /** Block `i`, written into its slot once the slot's previous block is released. */
  async block(i: number): Promise<Buffer> {
    const need = (i - this.slots + 1) * this.size;
    while (this.released < need) await new Promise<void>((r) => (this.wake = r));
    const b = this.bufs[i % this.slots] as Buffer;
    b.fill(i % 251);
    for (let o = 0; o + 4 <= b.length; o += 4096) b.writeUInt32BE(i, o);
    this.hash.update(b);
    this.given += b.length;
    return b;
  }
  async *body(blocks: number): AsyncGenerator<Buffer> {
    for (let i = 0; i < blocks; i++) yield await this.block(i);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Replies `<sha256 hex> <length>` of the body; waits for `gate` first when set. */
function hashProfile(gate: { wait: Promise<void> | null; entered?: () => void }) {
  return defineProfile({
    uri: HASH_URI,
    async onMessage(msg, res) {
      gate.entered?.();
      if (gate.wait) await gate.wait;
      const h = createHash('sha256');
      let n = 0;
      for await (const c of msg.stream() as AsyncIterable<Buffer>) {
        h.update(c);
        n += c.length;
      }
      res.send(`${h.digest('hex')} ${n}`);
    },
  });
}

/** Answers a MSG `blocks slots size` with a RPY from a ring it reuses as released; the ring goes to `rings`. */
function sourceProfile(rings: Ring[]) {
  return defineProfile({
    uri: SOURCE_URI,
    async onMessage(msg, res) {
      const [blocks, slots, size] = (await msg.text()).split(' ').map(Number) as [number, number, number];
      const ring = new Ring(slots, size);
      rings.push(ring);
      await res.reply(ring.body(blocks), { onReleased: ring.onReleased });
    },
  });
}

/** A gate the test opens. */
function gate(): { wait: Promise<void>; open: () => void; entered: () => void; inside: Promise<void> } {
  let open!: () => void;
  let entered!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  const inside = new Promise<void>((r) => (entered = r));
  return { wait, open, entered, inside };
}

const BIG_WINDOW = { receiveWindow: 32 * MiB, maxReceiveWindow: 32 * MiB };

async function pair(t: import('ava').ExecutionContext, g: { wait: Promise<void> | null; entered?: () => void }, tlsToo = false) {
  const pki = testPki();
  const sessions: SessionT[] = [];
  const rings: Ring[] = [];
  const profiles = [hashProfile(g), sourceProfile(rings), ...(tlsToo ? [tlsProfile({ cert: pki.serverCert, key: pki.serverKey })] : [])];
  const server = createServer({ profiles, limits: BIG_WINDOW });
  server.on('session', (s) => sessions.push(s));
  const { port } = await server.listen(0, '127.0.0.1');
  const client = await connect({ port, limits: BIG_WINDOW });
  t.teardown(async () => {
    client.destroy();
    await server.close(200);
  });
  if (tlsToo) await startTls(client, { ca: pki.ca, serverName: 'localhost' });
  await until(() => sessions.length === 1, 'the server session');
  return { client, server: sessions[0] as SessionT, rings };
}

function hashOf(reply: string): [string, number] {
  const [h, n] = reply.split(' ');
  return [h as string, Number(n)];
}

test('TCP: with the receiver paused, octets held in the socket are not released; resumed, all are, and the reused buffers arrive intact', async (t) => {
  const g = gate();
  const { client, server } = await pair(t, g);
  const ch = await client.startChannel(HASH_URI);
  // Small blocks: the core queues little ahead of the socket, so what is unreleased while the
  // writes are held is what the socket holds (a release at framing time would show here).
  const B = 64 * 1024;
  const ring = new Ring(384, B);
  const blocks = 640;
  const reply = ch.request(ring.body(blocks), { onReleased: ring.onReleased });
  await within(g.inside, 'the MSG reached the server');
  server.socket.pause();
  // The peer reads nothing: the kernel's buffers fill, then Node's.
  await until(() => client.socket.writableLength >= 512 * 1024, 'the client socket to hold unwritten octets');
  const held = client.socket.writableLength;
  // Every octet in a write not yet completed is still referenced: none of them is released.
  // (`held` counts frames: their headers and trailers are under 1 KiB here.)
  t.true(ring.given - ring.released >= held - 1024, `given ${ring.given}, released ${ring.released}, unwritten ${held}`);
  t.true(ring.released < ring.given);
  server.socket.resume();
  g.open();
  const [h, n] = hashOf(await within((await within(reply, 'the reply')).text(), 'the reply body'));
  t.is(n, blocks * B);
  t.is(h, ring.digest(), 'the peer hashed exactly what was meant, although every buffer was reused');
  await until(() => ring.released === blocks * B, 'every octet released');
  t.deepEqual([...ring.reports].sort((a, b) => a - b), ring.reports, 'the count only grows');
  t.true(ring.reports.length <= blocks, 'batched: no more calls than chunks');
});

test('TLS (after tuning): a createRequest() Writable with onReleased; a paused receiver holds releases back; the reused buffers arrive intact', async (t) => {
  const g = gate();
  const { client, server } = await pair(t, g, true);
  t.true(client.handle.security.tls);
  const ch = await client.startChannel(HASH_URI);
  const B = 64 * 1024;
  const ring = new Ring(384, B);
  const blocks = 640;
  const { body, reply } = ch.createRequest({ onReleased: ring.onReleased });
  const writer = (async () => {
    for (let i = 0; i < blocks; i++) {
      const b = await ring.block(i);
      if (!body.write(b)) await new Promise((r) => body.once('drain', r));
    }
    body.end();
  })();
  await within(g.inside, 'the MSG reached the server');
  server.socket.pause();
  await until(() => client.socket.writableLength >= 512 * 1024, 'the TLS socket to hold unwritten octets');
  const held = client.socket.writableLength;
  t.true(ring.given - ring.released >= held - 1024, `given ${ring.given}, released ${ring.released}, unwritten ${held}`);
  server.socket.resume();
  g.open();
  await within(writer, 'the writer');
  const [h, n] = hashOf(await within((await within(reply, 'the reply')).text(), 'the reply body'));
  t.is(n, blocks * B);
  t.is(h, ring.digest());
  await until(() => ring.released === blocks * B, 'every octet released');
});

test('a reply body (Responder onReleased) reused as released reaches a slow reader intact', async (t) => {
  const { client, rings } = await pair(t, { wait: null });
  const ch = await client.startChannel(SOURCE_URI);
  const blocks = 64;
  const size = 256 * 1024;
  const msg: IncomingMessage = await within(ch.request(`${blocks} 4 ${size}`), 'the reply');
  const h = createHash('sha256');
  let n = 0;
  let k = 0;
  for await (const c of msg.stream() as AsyncIterable<Buffer>) {
    h.update(c);
    n += c.length;
    // A slow reader: every 16th chunk waits a little.
    if (++k % 16 === 0) await new Promise((r) => setTimeout(r, 2));
  }
  const ring = rings[0] as Ring;
  t.is(n, blocks * size);
  t.is(h.digest('hex'), ring.digest());
  await until(() => ring.released === blocks * size, 'every octet released');
});

test('aborting a request whose writes are held back releases every octet taken once the transport is done with them', async (t) => {
  const g = gate();
  const { client, server } = await pair(t, g);
  const ch = await client.startChannel(HASH_URI);
  const ring = new Ring(24, MiB);
  const ctl = new AbortController();
  const reply = ch.request(ring.body(1000), { onReleased: ring.onReleased, signal: ctl.signal });
  reply.catch(() => undefined);
  await within(g.inside, 'the MSG reached the server');
  server.socket.pause();
  await until(() => client.socket.writableLength >= 512 * 1024, 'held writes');
  ctl.abort();
  await t.throwsAsync(reply, { code: 'BEEP_ERR_ABORTED' });
  t.true(ring.released < ring.given, 'the octets in held writes are not released by the abort');
  server.socket.resume();
  g.open();
  await until(() => ring.released === ring.given, 'every octet taken released');
  t.true(ring.given < 1000 * MiB, 'the body stopped being read');
});

for (const how of ['destroyed locally', 'reset by the peer'] as const) {
  test(`a session ${how} with writes held back releases every octet taken`, async (t) => {
    const g = gate();
    const { client, server } = await pair(t, g);
    const ch = await client.startChannel(HASH_URI);
    const ring = new Ring(24, MiB);
    const reply = ch.request(ring.body(1000), { onReleased: ring.onReleased });
    reply.catch(() => undefined);
    await within(g.inside, 'the MSG reached the server');
    server.socket.pause();
    await until(() => client.socket.writableLength >= 512 * 1024, 'held writes');
    t.true(ring.released < ring.given);
    if (how === 'destroyed locally') client.destroy();
    else server.destroy();
    await t.throwsAsync(within(reply, 'the request fails'));
    await until(() => ring.released === ring.given, 'every octet taken released');
    g.open();
  });
}

test('a whole-body request (Uint8Array) with onReleased is released in full once written', async (t) => {
  const { client } = await pair(t, { wait: null });
  const ch: Channel = await client.startChannel(HASH_URI);
  const body = Buffer.alloc(3 * MiB, 7);
  const seen: number[] = [];
  const m = await within(ch.request(body, { onReleased: (n) => seen.push(n) }), 'the reply');
  const [h, n] = hashOf(await m.text());
  t.is(n, body.length);
  t.is(h, createHash('sha256').update(body).digest('hex'));
  await until(() => seen.at(-1) === body.length, 'released in full');
});

test('a request withdrawn before its first frame (queued behind another MSG, then aborted) releases its whole body at once, not when the session ends', async (t) => {
  const g = gate();
  const { client } = await pair(t, g);
  const ch: Channel = await client.startChannel(HASH_URI);
  // A first MSG the peer does not read yet: it holds the channel's send queue (MSGs go in order).
  const ring = new Ring(1024, 64 * 1024);
  const first = ch.request(ring.body(640), { onReleased: ring.onReleased });
  await within(g.inside, 'the first MSG reached the server');
  await until(() => ring.given >= 8 * MiB, 'the first MSG under way');
  const body = Buffer.alloc(MiB, 1);
  const seen: number[] = [];
  const ctl = new AbortController();
  const second = ch.request(body, { onReleased: (n) => seen.push(n), signal: ctl.signal });
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  t.deepEqual(seen, [], 'queued, not sent: nothing released');
  ctl.abort(); // withdrawn unsent
  await t.throwsAsync(second, { code: 'BEEP_ERR_ABORTED' });
  await until(() => seen.at(-1) === body.length, 'released in full while the first MSG is still held');
  t.false(client.core.isClosed, 'the session is still up');
  g.open();
  const [h, n] = hashOf(await within((await within(first, 'the first reply')).text(), 'its body'));
  t.is(n, 640 * 64 * 1024);
  t.is(h, ring.digest());
});

/**
 * A transport pair whose writes reach the other end at once but whose write
 * callbacks the test holds: releases must wait for the callbacks, not for
 * the peer to have the octets.
 */
class HeldEnd extends Duplex {
  peer!: HeldEnd;
  hold = false;
  readonly held: (() => void)[] = [];
  completed = 0;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.deliver(chunk, cb);
  }
  private deliver(chunk: Buffer, cb: (err?: Error | null) => void): void {
    this.peer.push(Buffer.from(chunk));
    const done = (): void => {
      this.completed += chunk.length;
      cb();
    };
    if (this.hold) this.held.push(done);
    else done();
  }
  // A corked batch (the session writes one per flush) arrives whole: header, payload and trailer.
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.deliver(Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }
  override _final(cb: () => void): void {
    this.peer.push(null);
    cb();
  }
}

test('released only once the write callback fired, although the peer already has the octets', async (t) => {
  const a = new HeldEnd();
  const b = new HeldEnd();
  a.peer = b;
  b.peer = a;
  const g = gate();
  const server = new Session(b, 'listener', { profiles: [hashProfile({ wait: null, entered: g.entered })] });
  const client = new Session(a, 'initiator');
  t.teardown(() => {
    client.destroy();
    server.destroy();
  });
  await within(client.whenGreeted(), 'greeting');
  const ch = await within(client.startChannel(HASH_URI), 'channel');
  a.hold = true;
  const ring = new Ring(8, 64 * 1024);
  const reply = ch.request(ring.body(32), { onReleased: ring.onReleased });
  reply.catch(() => undefined);
  let entered = false;
  void g.inside.then(() => (entered = true));
  let sawEntered = false;
  // Complete held writes one at a time (each completion lets the next write start): a release
  // never exceeds the octets of completed writes, and none comes while the only writes that
  // carried body octets are held, although the peer has them already.
  const end = Date.now() + BOUND_MS;
  let settled = false;
  void reply.then(() => (settled = true), () => (settled = true));
  while (!settled && Date.now() < end) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    if (entered && !sawEntered) {
      sawEntered = true;
      t.true(a.held.length > 0, 'the write that carried the MSG is held');
      t.is(ring.released, 0, 'nothing released before its write callback, though the peer has the octets');
    }
    const cb = a.held.shift();
    if (cb) cb();
    t.true(ring.released <= a.completed, `released ${ring.released} > completed ${a.completed}`);
  }
  t.true(sawEntered);
  a.hold = false;
  for (const cb of a.held.splice(0)) cb();
  const [h, n] = hashOf(await within((await within(reply, 'reply')).text(), 'reply body'));
  t.is(n, 32 * 64 * 1024);
  t.is(h, ring.digest());
  await until(() => ring.released === 32 * 64 * 1024, 'all released');
});

// ---------------------------------------------------------------- the ledger alone

class Rec implements Releasing {
  got: number[] = [];
  deliverRelease(mark: number): void {
    this.got.push(mark);
  }
}

test('ledger: marks of one write are coalesced and released by that write’s callback, in order', (t) => {
  const l = new ReleaseLedger(() => undefined);
  const m1 = new Rec();
  const m2 = new Rec();
  l.note(m1, 10);
  l.note(m1, 20);
  l.note(m2, 5);
  t.true(l.due);
  const cb1 = l.seal(true);
  t.truthy(cb1);
  t.false(l.due);
  l.note(m1, 30);
  const cb2 = l.seal(true);
  t.deepEqual(m1.got, []);
  cb1?.();
  t.deepEqual(m1.got, [20]);
  t.deepEqual(m2.got, [5]);
  cb2?.();
  t.deepEqual(m1.got, [20, 30]);
  t.is(l.pending, 0);
});

test('ledger: octets dropped with no write go with the newest write in flight, or at once when none is', (t) => {
  const l = new ReleaseLedger(() => undefined);
  const m = new Rec();
  l.note(m, 10);
  const cb = l.seal(true);
  l.note(m, 50); // dropped: no write carries it
  t.is(l.seal(false), undefined);
  t.deepEqual(m.got, []);
  cb?.();
  t.deepEqual(m.got, [10, 50]);
  l.note(m, 60);
  l.seal(false);
  t.deepEqual(m.got, [10, 50, 60], 'nothing in flight: released at once');
});

test('ledger: the transport closing releases everything, and later notes at once; a retired ledger holds nothing back', (t) => {
  const l = new ReleaseLedger(() => undefined);
  const m = new Rec();
  l.note(m, 10);
  l.seal(true);
  l.note(m, 20);
  l.transportClosed();
  t.deepEqual(m.got, [10, 20]);
  l.note(m, 30);
  t.deepEqual(m.got, [10, 20, 30]);
  const r = new ReleaseLedger(() => undefined);
  const n = new Rec();
  r.note(n, 5);
  const cb = r.seal(true);
  r.retire();
  r.note(n, 8);
  t.deepEqual(n.got, []);
  cb?.();
  t.deepEqual(n.got, [5, 8]);
});
