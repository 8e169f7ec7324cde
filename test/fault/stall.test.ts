/**
 * A stalled direction: the proxy stops forwarding one way and stops reading,
 * so TCP backpressure reaches the sender. A writer that honours backpressure
 * must then be held back and the session must not buffer without bound: the
 * octets it accepted stop growing, what it holds in user space (socket write
 * queue + channel send queues) stays within the peer's window plus a little,
 * and the heap does not grow with the stall. Once the direction resumes, the
 * transfer completes intact; a stall ended by a drop settles everything.
 */
import { Buffer } from 'node:buffer';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { connect, createServer, type Session } from '../../src/channels/session.js';
import type { SessionLimits } from '../../src/channels/types.js';
import { defineProfile, sameHeaders } from '../../src/profiles/index.js';
import { FaultProxy, PromiseTracker, ResourceTracker, SeqChecker, activeResources, resourceExcess, seqPayload, sleep, until, within, type Direction } from '../helpers/fault-proxy.js';

const MiB = 1024 * 1024;
const SINK = 'urn:beepstream:test:fault:sink';
const ECHO = 'urn:beepstream:test:fault:echo';

/** Reads the whole body, checking it is `seqPayload(1, 0, …)`; replies "octets ok|bad". */
const sinkProfile = defineProfile({
  uri: SINK,
  async onMessage(msg, res) {
    const checker = new SeqChecker(1, 0);
    for await (const c of msg) checker.push(c as Buffer);
    await res.reply(`${checker.received} ${checker.error ? 'bad' : 'ok'}`);
  },
});

const echoProfile = defineProfile({
  uri: ECHO,
  async onMessage(msg, res) {
    await pipeline(msg, res.replyStream(sameHeaders(msg)));
  },
});

/** Octets a session holds in user space on the way out: its socket's write queue and every channel's send queue. */
function heldOutbound(s: Session): number {
  let n = s.socket.writableLength;
  for (const ch of s.core.channels.values()) for (const out of ch.outQueue) n += out.queued;
  return n;
}

/**
 * Writes `total` octets of `seqPayload(1, 0, …)` in 64 KiB chunks, honouring
 * backpressure; `accepted` counts what `write()` took. Never waits on a
 * 'drain' that cannot come (close/error end it).
 */
class Writer {
  accepted = 0;
  readonly done: Promise<void>;
  constructor(w: Writable, total: number) {
    this.done = new Promise<void>((resolve, reject) => {
      let over = false;
      const fail = (e: unknown): void => {
        if (!over) {
          over = true;
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
      w.once('error', fail);
      w.once('close', () => fail(new Error('closed before finishing')));
      w.once('finish', () => {
        over = true;
        resolve();
      });
      const pump = (): void => {
        while (!over && !w.destroyed) {
          if (this.accepted >= total) {
            w.end();
            return;
          }
          const n = Math.min(64 * 1024, total - this.accepted);
          const ok = w.write(seqPayload(1, 0, n, this.accepted));
          this.accepted += n;
          if (!ok) {
            w.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    this.done.catch(() => undefined);
  }
}

interface Rig {
  proxy: FaultProxy;
  client: Session;
  peer: Session;
  tracker: PromiseTracker;
  cleanup(): Promise<void>;
}

async function rig(direction: Direction, after: number, limits?: SessionLimits): Promise<Rig> {
  const server = createServer({ profiles: [sinkProfile, echoProfile], ...(limits ? { limits } : {}) });
  const peerP = new Promise<Session>((r) => server.once('session', r));
  const { port } = await server.listen(0);
  const proxy = new FaultProxy({ target: { port }, seed: 7, plan: { stall: { direction, after } } });
  await proxy.listen();
  const tracker = new PromiseTracker();
  const client = await tracker.track('connect', connect({ port: proxy.port, timeout: 5000, ...(limits ? { limits } : {}) }));
  const peer = await within(peerP, 5000, 'server session');
  let cleaned = false;
  return {
    proxy, client, peer, tracker,
    // Idempotent: a test calls it when done, and again from `finally`, so a failed
    // assertion never leaves listeners open (they would keep the ava worker alive).
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      client.destroy();
      peer.destroy();
      await proxy.close();
      await server.close(100);
    },
  };
}

interface Sample {
  ms: number;
  accepted: number;
  forwarded: number;
  clientHeld: number;
  peerHeld: number;
  heap: number;
}

/** Sample for `ms` while stalled (every 50 ms). */
async function sampleStall(r: Rig, writer: Writer, direction: Direction, ms: number): Promise<Sample[]> {
  const conn = r.proxy.connections[0];
  const out: Sample[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    out.push({
      ms: performance.now() - t0,
      accepted: writer.accepted,
      forwarded: conn?.[direction].stats.forwarded ?? 0,
      clientHeld: heldOutbound(r.client),
      peerHeld: heldOutbound(r.peer),
      heap: process.memoryUsage().heapUsed,
    });
    await sleep(50);
  }
  return out;
}

const mib = (n: number): string => `${(n / MiB).toFixed(2)} MiB`;

function report(t: ExecutionContext, what: string, s: Sample[]): { plateau: number; clientHeldMax: number; peerHeldMax: number; heapGrowth: number } {
  const first = s[0] as Sample;
  const last = s[s.length - 1] as Sample;
  const mid = s[Math.floor(s.length / 3)] as Sample;
  const r = {
    plateau: last.accepted - mid.accepted,
    clientHeldMax: Math.max(...s.map((x) => x.clientHeld)),
    peerHeldMax: Math.max(...s.map((x) => x.peerHeld)),
    heapGrowth: Math.max(...s.map((x) => x.heap)) - first.heap,
  };
  t.log(
    `${what}: stalled after ${mib(first.forwarded)} forwarded; writer accepted ${mib(mid.accepted)} → ${mib(last.accepted)} over the last ${((last.ms - mid.ms) / 1000).toFixed(1)} s; ` +
      `held in user space: client ≤ ${mib(r.clientHeldMax)}, server ≤ ${mib(r.peerHeldMax)}; heap growth ${mib(r.heapGrowth)}`,
  );
  return r;
}

test.serial('client → server stalled: the streaming writer is held back, the client holds at most a window in user space, the heap stays flat; after resume all arrives intact', async (t) => {
  t.timeout(180_000);
  const before = activeResources();
  const resources = new ResourceTracker().enable();
  let r: Rig | undefined;
  try {
    // Well beyond what the stall can hold: the receiver saw 2 MiB before it, so
    // its window (right-sized from that rate, up to 6× a round trip's delivery)
    // plus the buffers on the way stay far below half of this.
    const TOTAL = 64 * MiB;
    r = await rig('c2s', 2 * MiB);
    const ch = await r.tracker.track('start', r.client.startChannel(SINK));
    const { body, reply } = ch.createRequest();
    r.tracker.track('reply', reply).catch(() => undefined);
    const writer = new Writer(body, TOTAL);
    r.tracker.track('writer', writer.done).catch(() => undefined);
    const conn = r.proxy.connections[0];
    t.true(await until(() => conn?.c2s.stats.stalled === true, 10_000), 'the proxy stalled c2s');
    await sleep(300); // let what was in flight settle into the buffers
    const s = await sampleStall(r, writer, 'c2s', 1500);
    const m = report(t, 'c2s stall', s);
    t.is(m.plateau, 0, 'nothing more accepted while stalled');
    t.true(writer.accepted < TOTAL / 2, `the writer was held back (accepted ${mib(writer.accepted)} of ${mib(TOTAL)})`);
    // The receiver's window (auto-tuned, at most maxReceiveWindow = 16 MiB) plus the pull budget and high-water marks.
    const window = r.peer.channels.get(ch.number)?.recv.size ?? 0;
    t.true(m.clientHeldMax <= window + 512 * 1024, `client holds ${mib(m.clientHeldMax)} with the server's window at ${mib(window)}`);
    t.true(m.heapGrowth < 32 * MiB, `heap grew by ${mib(m.heapGrowth)}`);
    r.proxy.resumeAll('c2s');
    await within(writer.done, 30_000, 'writer finished after resume');
    const msg = await within(reply, 30_000, 'sink reply');
    t.is(await msg.text(), `${TOTAL} ok`);
    await within(r.tracker.track('close', r.client.close()), 10_000, 'release');
    t.deepEqual(await r.tracker.settle(5000), []);
    await r.cleanup();
    t.true(await resources.until(() => resources.size === 0 && Object.keys(resourceExcess(before, activeResources())).length === 0, 3000), JSON.stringify(resources.counts()));
  } finally {
    resources.disable();
    await r?.cleanup();
  }
});

test.serial('client → server stalled with a small receive window: user-space buffering is bounded by that window, not by the kernel or the writer', async (t) => {
  t.timeout(180_000);
  const TOTAL = 16 * MiB;
  const WINDOW = 256 * 1024;
  const r = await rig('c2s', 1 * MiB, { maxReceiveWindow: WINDOW });
  try {
    const ch = await r.tracker.track('start', r.client.startChannel(SINK));
    const { body, reply } = ch.createRequest();
    r.tracker.track('reply', reply).catch(() => undefined);
    const writer = new Writer(body, TOTAL);
    const conn = r.proxy.connections[0];
    t.true(await until(() => conn?.c2s.stats.stalled === true, 10_000));
    await sleep(300);
    const m = report(t, 'c2s stall, 256 KiB window', await sampleStall(r, writer, 'c2s', 1000));
    t.is(m.plateau, 0);
    // window + the send high-water mark (64 KiB) + one pull budget (256 KiB) + the Writable's own buffer (64 KiB)
    t.true(m.clientHeldMax <= WINDOW + 512 * 1024, `client holds ${mib(m.clientHeldMax)}`);
    t.true(writer.accepted - (conn?.c2s.stats.forwarded ?? 0) <= 16 * MiB, 'beyond the window, only kernel buffers');
    // Now drop it while stalled: everything settles.
    r.proxy.dropAll('rst');
    await t.throwsAsync(within(writer.done, 5000, 'writer'));
    await t.throwsAsync(within(reply, 5000, 'reply'));
    await within(Promise.all([r.client.whenClosed(), r.peer.whenClosed()]), 5000, 'both closed');
    t.deepEqual(await r.tracker.settle(5000), []);
  } finally {
    await r.cleanup();
  }
});

test.serial('server → client stalled under an echo: the server holds at most a window, the client writer is held back through the flow-control chain; after resume the echo completes intact', async (t) => {
  t.timeout(180_000);
  const before = activeResources();
  const resources = new ResourceTracker().enable();
  let r: Rig | undefined;
  try {
    // Well above what windows and buffers can take before the stall reaches the writer: the
    // windows are the flow policy's (library defaults), sized from the RTT and rate it
    // measured, and a busy machine measures longer round trips (31 MiB were taken once
    // under load, against 2 MiB on a quiet one).
    const TOTAL = 128 * MiB;
    r = await rig('s2c', 1 * MiB);
    const ch = await r.tracker.track('start', r.client.startChannel(ECHO));
    const { body, reply } = ch.createRequest();
    const writer = new Writer(body, TOTAL);
    r.tracker.track('writer', writer.done).catch(() => undefined);
    const checker = new SeqChecker(1, 0);
    const read = r.tracker.track(
      'read echo',
      (async () => {
        const msg = await reply;
        for await (const c of msg) checker.push(c as Buffer);
      })(),
    );
    read.catch(() => undefined);
    const conn = r.proxy.connections[0];
    t.true(await until(() => conn?.s2c.stats.stalled === true, 10_000), 'the proxy stalled s2c');
    await sleep(300);
    const m = report(t, 's2c stall (echo)', await sampleStall(r, writer, 's2c', 1500));
    t.is(m.plateau, 0, 'the client writer is held back too');
    const clientWindow = r.client.channels.get(ch.number)?.recv.size ?? 0;
    const serverWindow = r.peer.channels.get(ch.number)?.recv.size ?? 0;
    // What the chain may hold: the server's receive window (the MSG), the client's (the
    // echo), what each side holds in user space, and the socket buffers of the path
    // (client, both sides of the proxy, server; loopback autotunes each to a few MiB).
    const chain = serverWindow + clientWindow + m.peerHeldMax + m.clientHeldMax + 32 * MiB;
    t.true(writer.accepted < TOTAL && writer.accepted <= chain, `accepted ${mib(writer.accepted)}; windows ${mib(serverWindow)} + ${mib(clientWindow)}, the chain at most ${mib(chain)}`);
    t.true(m.peerHeldMax <= clientWindow + 512 * 1024, `server holds ${mib(m.peerHeldMax)} with the client's window at ${mib(clientWindow)}`);
    t.true(m.clientHeldMax <= serverWindow + 512 * 1024, `client holds ${mib(m.clientHeldMax)} with the server's window at ${mib(serverWindow)}`);
    t.true(m.heapGrowth < 48 * MiB, `heap grew by ${mib(m.heapGrowth)}`);
    r.proxy.resumeAll('s2c');
    await within(Promise.all([writer.done, read]), 30_000, 'echo finished after resume');
    t.is(checker.error, undefined);
    t.is(checker.received, TOTAL);
    await within(r.tracker.track('close', r.client.close()), 10_000, 'release');
    t.deepEqual(await r.tracker.settle(5000), []);
    await r.cleanup();
    t.true(await resources.until(() => resources.size === 0 && Object.keys(resourceExcess(before, activeResources())).length === 0, 3000), JSON.stringify(resources.counts()));
  } finally {
    resources.disable();
    await r?.cleanup();
  }
});

test.serial('a release asked for while the connection is stalled settles when the connection is then dropped (FIN)', async (t) => {
  t.timeout(120_000);
  const r = await rig('c2s', 0);
  try {
    // c2s is stalled from its first octet: connect() completed (it waits only for
    // the server's greeting) but the server never got ours, nor anything after it.
    const start = r.tracker.track('start', r.client.startChannel(SINK));
    const close = r.tracker.track('close', r.client.close());
    start.catch(() => undefined);
    close.catch(() => undefined);
    await sleep(200);
    t.deepEqual(r.tracker.pending().sort(), ['close', 'start'], 'both wait on the stalled connection');
    r.proxy.dropAll('fin');
    await within(Promise.all([r.client.whenClosed(), r.peer.whenClosed()]), 5000, 'both closed');
    t.deepEqual(await r.tracker.settle(5000), []);
    // The FIN drop delivered the held greeting, start and release: what the
    // server made of them does not matter here — only that nothing hangs.
    t.true(r.client.core.isClosed && r.peer.core.isClosed);
  } finally {
    await r.cleanup();
  }
});
