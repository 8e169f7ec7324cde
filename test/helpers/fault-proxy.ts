/**
 * Fault injection for tests over real sockets: a TCP proxy on 127.0.0.1 that
 * sits between two real peers and misbehaves the way networks and kernels do.
 *
 * ```text
 *   client ──► FaultProxy (127.0.0.1:proxy.port) ──► target (127.0.0.1:port)
 *              c2s pipe: client → target
 *              s2c pipe: target → client
 * ```
 *
 * Per accepted connection it applies a {@link FaultPlan}:
 *
 * - **drop** the connection once a given number of octets (both directions
 *   together) has passed, or after a given time: a clean close (FIN both
 *   ways, after what was already accepted is delivered) or an abort
 *   (`socket.resetAndDestroy()` on both sides: RST, queued octets lost);
 * - **delay** every chunk by a random time (order is always kept);
 * - **split** writes into several pieces written on separate event-loop
 *   turns, so the receiver reads them separately (frame headers cut
 *   anywhere, down to one octet), or **shred** the first octets of each
 *   direction into 1–3-octet pieces;
 * - **coalesce** several chunks into one write, holding the first a little
 *   for more to arrive (several frames, or parts of them, in one read);
 * - **stall** one direction: stop forwarding and stop reading, so TCP
 *   backpressure reaches the sender (its kernel buffers fill, its socket's
 *   `write()` starts returning false); optionally resume after some time.
 *
 * Every random choice comes from a seeded PRNG ({@link createRng}); each
 * connection and each direction has its own stream derived from the proxy's
 * seed and the connection's index, so a failing case replays with the same
 * seed (the same plan, the same choices for the same sequence of reads; TCP
 * may still chunk differently from run to run). Everything the proxy holds —
 * sockets, timers, immediates — is released by {@link FaultProxy.close} or
 * when its connections end; nothing is left behind.
 *
 * Connections can also be driven by hand ({@link FaultConnection.drop},
 * {@link FaultConnection.stall}, {@link FaultProxy.dropAll}, …) and traced
 * ({@link FaultProxyOptions.trace}) for post-mortems.
 *
 * The second half of this module holds helpers shared by the fault tests:
 * sequence-numbered payloads ({@link seqPayload}, {@link SeqChecker}), a
 * {@link PromiseTracker} (which promises are still pending) and a
 * {@link ResourceTracker} (sockets, timers and immediates left behind,
 * unref'd timers included).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { createHook } from 'node:async_hooks';

// ------------------------------------------------------------------ PRNG

/** A seeded pseudo-random source. */
export interface Rng {
  /** A float in [0, 1). */
  (): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** An integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T;
}

/** Mix two 32-bit values into a seed (for per-connection / per-direction streams). */
export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return h >>> 0;
}

/** mulberry32: small, fast and good enough for test choices. */
export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng = next as Rng;
  rng.int = (n) => Math.floor(next() * n);
  rng.range = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  rng.chance = (p) => next() < p;
  rng.pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  return rng;
}

// ------------------------------------------------------------------ plans

/** A direction through the proxy: client → target, or target → client. */
export type Direction = 'c2s' | 's2c';

/** What the proxy does to one connection. Every field is optional: `{}` is a faithful proxy. */
export interface FaultPlan {
  /**
   * Drop the connection once this many octets (read from both sides
   * together) have passed; the chunk that crosses the limit is cut there.
   */
  dropAfter?: number;
  /** Drop the connection this many milliseconds after it was accepted. */
  dropAfterMs?: number;
  /**
   * How to drop (default `'rst'`): `'fin'` delivers what the proxy already
   * accepted and then closes both sides cleanly (FIN), discarding anything
   * read afterwards; `'rst'` aborts both sides at once with
   * `socket.resetAndDestroy()` (RST), losing whatever is queued.
   */
  dropMode?: 'fin' | 'rst';
  /** Hold each chunk a random 0…`delayMs` milliseconds before forwarding it (order is kept). */
  delayMs?: number;
  /**
   * Probability (0…1) that a write is split into 2…`maxPieces` pieces at
   * random points (half the cuts also cut off 1–3-octet slivers), each
   * written on its own event-loop turn.
   */
  split?: number;
  /** Most pieces a split write is cut into (default 8). */
  maxPieces?: number;
  /**
   * Cut the first `shred` octets of each direction into 1–3-octet pieces,
   * each written on its own turn (greetings, starts and first frames read
   * a few octets at a time).
   */
  shred?: number;
  /**
   * Probability (0…1) that a chunk is held `coalesceMs` for more data, and
   * then everything ready is written at once (up to 256 KiB).
   */
  coalesce?: number;
  /** How long a chunk is held for coalescing (default 2 ms). */
  coalesceMs?: number;
  /**
   * Stall `direction` once `after` octets have been forwarded that way: stop
   * forwarding and stop reading the sender's socket, so TCP backpressure
   * reaches it. Resumes after `ms` milliseconds if given, otherwise only on
   * {@link FaultConnection.resume}, a drop, or close.
   */
  stall?: { direction: Direction; after: number; ms?: number };
}

/** Bounds of {@link randomPlan}. */
export interface RandomPlanOptions {
  /** Probability that the connection is dropped (default 0.5). */
  drop?: number;
  /** Drop points are drawn from 0…`maxDropAfter` octets (default 64 KiB), skewed towards small values. */
  maxDropAfter?: number;
  /** Probability of a time-based drop (0…`maxDropAfterMs`), on top of the octet-based one (default 0.1). */
  dropByTime?: number;
  maxDropAfterMs?: number;
  /** Probability of delays (default 0.3), up to `maxDelayMs` (default 4). */
  delay?: number;
  maxDelayMs?: number;
  /** Probability of a temporary stall (default 0.2), after 0…`maxStallAfter` octets (default 4 KiB), for 5…`maxStallMs` ms (default 100). */
  stall?: number;
  maxStallAfter?: number;
  maxStallMs?: number;
}

/**
 * A random plan from `rng`, within `o`. Stalls are always temporary, so a
 * random plan never blocks a connection forever.
 */
export function randomPlan(rng: Rng, o: RandomPlanOptions = {}): FaultPlan {
  const maxDrop = o.maxDropAfter ?? 64 * 1024;
  const plan: FaultPlan = {};
  // Skewed: many drops early (greeting, start), some deep into the data.
  const point = (): number => Math.floor(maxDrop * rng() ** 2.5);
  if (rng.chance(o.drop ?? 0.5)) {
    plan.dropAfter = point();
    plan.dropMode = rng.chance(0.5) ? 'fin' : 'rst';
  }
  if (rng.chance(o.dropByTime ?? 0.1)) {
    plan.dropAfterMs = rng.range(0, o.maxDropAfterMs ?? 50);
    plan.dropMode ??= rng.chance(0.5) ? 'fin' : 'rst';
  }
  if (rng.chance(o.delay ?? 0.3)) plan.delayMs = rng.range(1, o.maxDelayMs ?? 4);
  if (rng.chance(0.5)) {
    plan.split = rng.pick([0.1, 0.5, 1]);
    plan.maxPieces = rng.range(2, 12);
  }
  if (rng.chance(0.25)) plan.shred = rng.int(4096);
  if (rng.chance(0.4)) {
    plan.coalesce = rng.pick([0.2, 0.6, 1]);
    plan.coalesceMs = rng.range(1, 4);
  }
  if (rng.chance(o.stall ?? 0.2)) {
    plan.stall = { direction: rng.pick(['c2s', 's2c'] as const), after: rng.int(o.maxStallAfter ?? 4096), ms: rng.range(5, o.maxStallMs ?? 100) };
  }
  return plan;
}

/** A compact description of a plan, for logs. */
export function describePlan(p: FaultPlan): string {
  const parts: string[] = [];
  if (p.dropAfter !== undefined) parts.push(`drop(${p.dropMode ?? 'rst'}) after ${p.dropAfter} B`);
  if (p.dropAfterMs !== undefined) parts.push(`drop(${p.dropMode ?? 'rst'}) after ${p.dropAfterMs} ms`);
  if (p.delayMs) parts.push(`delay ≤${p.delayMs} ms`);
  if (p.split) parts.push(`split p=${p.split} ≤${p.maxPieces ?? 8}`);
  if (p.shred) parts.push(`shred first ${p.shred} B`);
  if (p.coalesce) parts.push(`coalesce p=${p.coalesce} ${p.coalesceMs ?? 2} ms`);
  if (p.stall) parts.push(`stall ${p.stall.direction} after ${p.stall.after} B${p.stall.ms === undefined ? '' : ` for ${p.stall.ms} ms`}`);
  return parts.length ? parts.join(', ') : 'no faults';
}

// ------------------------------------------------------------------ the proxy

/** Options of a {@link FaultProxy}. */
export interface FaultProxyOptions {
  /** Where connections go (host defaults to 127.0.0.1). */
  target: { host?: string; port: number };
  /** Seed of every random choice (default 1). */
  seed?: number;
  /**
   * The plan of each connection: one plan for all, or a function of the
   * connection's index (0, 1, …) and its own seeded PRNG. Default `{}`.
   */
  plan?: FaultPlan | ((index: number, rng: Rng) => FaultPlan);
  /** Octets a pipe queues before it stops reading its source (default 256 KiB). */
  highWaterMark?: number;
  /**
   * Record the first `trace` octets of each direction as the pieces written
   * ({@link FaultConnection.transcript}), for post-mortems of a failing seed.
   */
  trace?: number;
  /**
   * Closed connections kept in {@link FaultProxy.connections} (default: all).
   * Long churn tests keep few, so the proxy does not hold on to them.
   */
  retain?: number;
}

/** Counters of one direction of a connection. */
export interface PipeStats {
  /** Octets read from the source. */
  read: number;
  /** Octets written to the destination. */
  forwarded: number;
  /** Octets queued in the proxy now. */
  queued: number;
  /** Writes made (after splitting and coalescing). */
  writes: number;
  /** Writes split into pieces; writes that coalesced several chunks. */
  splits: number;
  coalesced: number;
  /** Whether the direction is stalled now, and whether it ever was. */
  stalled: boolean;
  everStalled: boolean;
}

interface Entry {
  buf: Buffer;
  due: number;
  /** A piece of a split write: written as is (never split again nor coalesced). */
  piece?: boolean;
}

const SLIVER_MAX = 3;
const COALESCE_MAX = 256 * 1024;

/**
 * One direction of a proxied connection (`connection.c2s`, `connection.s2c`):
 * reads its source, queues, and writes to its destination as the plan says.
 */
export class FaultPipe {
  readonly stats: PipeStats = { read: 0, forwarded: 0, queued: 0, writes: 0, splits: 0, coalesced: 0, stalled: false, everStalled: false };
  private readonly queue: Entry[] = [];
  private srcEnded = false;
  private finished = false;
  private waitingDrain = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  /** After a split, the next piece waits for another event-loop turn. */
  private yieldNext = false;
  private stallArmed: { after: number; ms?: number } | undefined;
  /** Octets still to be shredded (see {@link FaultPlan.shred}). */
  private shredLeft: number;

  constructor(
    private readonly conn: FaultConnection,
    readonly direction: Direction,
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly rng: Rng,
    private readonly plan: FaultPlan,
    private readonly hwm: number,
  ) {
    this.shredLeft = plan.shred ?? 0;
    if (plan.stall?.direction === direction) {
      this.stallArmed = plan.stall.ms === undefined ? { after: plan.stall.after } : { after: plan.stall.after, ms: plan.stall.ms };
    }
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => {
      this.srcEnded = true;
      this.pump();
    });
    this.checkStall();
  }

  private onData(chunk: Buffer): void {
    if (this.conn.dropping) return; // after a drop, nothing more passes
    let buf = chunk;
    const limit = this.conn.plan.dropAfter;
    let cut = false;
    if (limit !== undefined && this.conn.readTotal + buf.length >= limit) {
      buf = buf.subarray(0, Math.max(0, limit - this.conn.readTotal));
      cut = true;
    }
    this.conn.readTotal += buf.length;
    this.stats.read += buf.length;
    if (buf.length > 0) {
      let due = this.conn.now();
      if (this.plan.delayMs) due += this.rng() * this.plan.delayMs;
      if (this.plan.coalesce && this.rng.chance(this.plan.coalesce)) due += this.plan.coalesceMs ?? 2;
      this.queue.push({ buf, due });
      this.stats.queued += buf.length;
    }
    if (cut) {
      this.conn.drop(this.conn.plan.dropMode ?? 'rst');
      return;
    }
    this.flow();
    this.pump();
  }

  /** Pause or resume the source according to the queue and the stall. */
  private flow(): void {
    if (this.src.destroyed) return;
    const pause = this.stats.stalled || this.stats.queued >= this.hwm;
    if (pause && !this.src.isPaused()) this.src.pause();
    else if (!pause && this.src.isPaused() && !this.conn.dropping) this.src.resume();
  }

  private checkStall(): void {
    const s = this.stallArmed;
    if (!s || this.stats.forwarded < s.after || this.conn.dropping) return;
    this.stallArmed = undefined;
    this.stall(s.ms);
  }

  /** Stop forwarding and reading this direction (for `ms`, or until {@link resume}). */
  stall(ms?: number): void {
    if (this.stats.stalled || this.conn.closed) return;
    this.stats.stalled = true;
    this.stats.everStalled = true;
    this.flow();
    if (ms !== undefined) {
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        this.resume();
      }, ms);
    }
  }

  /** Forward and read again. */
  resume(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    if (!this.stats.stalled) return;
    this.stats.stalled = false;
    this.flow();
    this.pump();
  }

  private schedule(kind: 'timer' | 'immediate', ms = 0): void {
    if (this.timer || this.immediate) return;
    if (kind === 'timer') {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, Math.max(0, Math.ceil(ms)));
    } else {
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.pump();
      });
    }
  }

  /** Write whatever is due, in order, splitting and coalescing as planned. */
  pump(): void {
    if (this.timer || this.immediate) return;
    for (let guard = 0; guard < 10_000; guard++) {
      if (this.conn.closed || this.finished || this.dst.destroyed) return;
      if (this.stats.stalled || this.waitingDrain) return;
      const head = this.queue[0];
      if (!head) {
        if (this.srcEnded || this.conn.dropping) this.finish();
        return;
      }
      if (this.yieldNext) {
        this.yieldNext = false;
        this.schedule('immediate');
        return;
      }
      const now = this.conn.now();
      if (head.due > now && !this.conn.dropping) {
        this.schedule('timer', head.due - now);
        return;
      }
      // Coalesce: everything due goes out in one write.
      let out = this.queue.shift() as Entry;
      if (out.piece) {
        this.write(out.buf);
        this.yieldNext = this.queue[0]?.piece === true;
        this.checkStall();
        continue;
      }
      if (this.plan.coalesce && this.queue.length > 0) {
        const bufs = [out.buf];
        let n = out.buf.length;
        while (this.queue.length > 0 && n < COALESCE_MAX && !(this.queue[0] as Entry).piece && ((this.queue[0] as Entry).due <= now || this.conn.dropping)) {
          const e = this.queue.shift() as Entry;
          bufs.push(e.buf);
          n += e.buf.length;
        }
        if (bufs.length > 1) {
          out = { buf: Buffer.concat(bufs, n), due: out.due };
          this.stats.coalesced++;
        }
      }
      // Split: write the first piece now, the rest on later turns.
      let piece = out.buf;
      if (this.shredLeft > 0 && piece.length > 1) {
        const n = Math.min(this.shredLeft, piece.length);
        this.shredLeft -= n;
        const rest: Entry[] = [];
        for (let o = 0; o < n; ) {
          const k = Math.min(n - o, this.rng.range(1, SLIVER_MAX));
          rest.push({ buf: piece.subarray(o, o + k), due: 0, piece: true });
          o += k;
        }
        if (n < piece.length) rest.push({ buf: piece.subarray(n), due: 0, piece: true });
        const first = rest.shift() as Entry;
        this.queue.unshift(...rest);
        piece = first.buf;
        this.stats.splits++;
        this.yieldNext = rest.length > 0;
      } else if (this.plan.split && piece.length > 1 && this.rng.chance(this.plan.split)) {
        const cuts = this.cutPoints(piece.length);
        const first = cuts[0] as number;
        const rest: Entry[] = [];
        for (let i = 0; i < cuts.length; i++) {
          const a = cuts[i] as number;
          const b = i + 1 < cuts.length ? (cuts[i + 1] as number) : piece.length;
          rest.push({ buf: piece.subarray(a, b), due: 0, piece: true });
        }
        this.queue.unshift(...rest);
        piece = piece.subarray(0, first);
        this.stats.splits++;
        this.yieldNext = true;
      }
      this.write(piece);
      this.checkStall();
    }
    // Bounded work per turn: continue on the next.
    this.schedule('immediate');
  }

  /** Sorted, distinct cut points in (0, len). */
  private cutPoints(len: number): number[] {
    const k = this.rng.range(1, Math.max(1, (this.plan.maxPieces ?? 8) - 1));
    const set = new Set<number>();
    for (let i = 0; i < k; i++) {
      const c = 1 + this.rng.int(len - 1);
      set.add(c);
      // Slivers of 1-3 octets: headers and trailers cut to the octet.
      if (this.rng.chance(0.5)) {
        const s = c + this.rng.range(1, SLIVER_MAX);
        if (s < len) set.add(s);
      }
    }
    return [...set].sort((a, b) => a - b);
  }

  /** The first octets written, piece by piece (when tracing). */
  readonly trace: { at: number; data: Buffer }[] = [];
  traceLeft = 0;

  private write(buf: Buffer): void {
    if (this.traceLeft > 0 && buf.length > 0) {
      const d = Buffer.from(buf.subarray(0, this.traceLeft));
      this.trace.push({ at: this.conn.now(), data: d });
      this.traceLeft -= d.length;
    }
    this.stats.queued -= buf.length;
    this.stats.forwarded += buf.length;
    this.stats.writes++;
    this.flow();
    if (buf.length === 0) return;
    if (!this.dst.write(buf)) {
      this.waitingDrain = true;
      this.dst.once('drain', () => {
        this.waitingDrain = false;
        this.pump();
      });
    }
  }

  /** Nothing more will pass: end the destination (FIN) once what is queued is out. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.dst.destroyed) this.dst.end();
  }

  /** Drop everything held (timers included). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.timer = null;
    this.immediate = null;
    this.stallTimer = null;
    this.queue.length = 0;
    this.stats.queued = 0;
  }

  /** On a FIN drop: stop stalling and deliver what is queued, then FIN. */
  flushForDrop(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.stats.stalled = false;
    this.stallArmed = undefined;
    // Keep reading (and discarding) so the sender is not blocked by us.
    if (!this.src.destroyed && this.src.isPaused()) this.src.resume();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.pump();
  }
}

/** One proxied connection. */
export class FaultConnection {
  /** Index of the connection on its proxy (0, 1, …). */
  readonly index: number;
  /** The plan applied. */
  readonly plan: FaultPlan;
  /** Octets read from both sides together. */
  readTotal = 0;
  /** Set once a drop began (how). */
  dropped: 'fin' | 'rst' | undefined;
  /** Both sockets are closed. */
  closed = false;
  /** Resolves once both sockets are closed and every timer is cleared. */
  readonly whenClosed: Promise<void>;
  readonly c2s: FaultPipe;
  readonly s2c: FaultPipe;
  private resolveClosed!: () => void;
  private dropTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly t0 = performance.now();

  constructor(
    index: number,
    plan: FaultPlan,
    rng: Rng,
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    hwm: number,
  ) {
    this.index = index;
    this.plan = plan;
    this.whenClosed = new Promise((r) => (this.resolveClosed = r));
    const seedA = Math.floor(rng() * 2 ** 32);
    const seedB = Math.floor(rng() * 2 ** 32);
    this.c2s = new FaultPipe(this, 'c2s', client, upstream, createRng(seedA), plan, hwm);
    this.s2c = new FaultPipe(this, 's2c', upstream, client, createRng(seedB), plan, hwm);
    let open = 2;
    const onClose = (): void => {
      if (--open > 0) return;
      this.dispose();
      this.closed = true;
      this.resolveClosed();
    };
    for (const [s, other] of [[client, upstream], [upstream, client]] as const) {
      s.setNoDelay(true);
      // A socket error (ECONNRESET from a peer's abort): abort the other side too.
      s.on('error', () => abort(other));
      s.on('close', (hadError) => {
        if (hadError) abort(other);
        onClose();
      });
    }
    if (plan.dropAfter !== undefined && plan.dropAfter <= 0) queueMicrotask(() => this.drop(plan.dropMode ?? 'rst'));
    if (plan.dropAfterMs !== undefined) {
      this.dropTimer = setTimeout(() => {
        this.dropTimer = null;
        this.drop(plan.dropMode ?? 'rst');
      }, plan.dropAfterMs);
    }
  }

  /** Milliseconds since the connection was accepted. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** True once a drop began. */
  get dropping(): boolean {
    return this.dropped !== undefined;
  }

  /**
   * Drop the connection now: `'rst'` resets both sides at once; `'fin'`
   * delivers what is queued and closes both sides cleanly.
   */
  drop(mode: 'fin' | 'rst'): void {
    if (this.dropped || this.closed) return;
    this.dropped = mode;
    if (this.dropTimer) clearTimeout(this.dropTimer);
    this.dropTimer = null;
    if (mode === 'rst') {
      this.dispose();
      abort(this.client);
      abort(this.upstream);
      return;
    }
    this.c2s.flushForDrop();
    this.s2c.flushForDrop();
    // Peers that never close their side are cut after a while.
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.client.destroy();
      this.upstream.destroy();
    }, 2000);
  }

  /** What was written each way (when tracing): one line per write, `c2s`/`s2c`, time and octets (JSON-escaped). */
  transcript(): string {
    const all = [...this.c2s.trace.map((e) => ({ dir: 'c2s', ...e })), ...this.s2c.trace.map((e) => ({ dir: 's2c', ...e }))].sort((a, b) => a.at - b.at);
    return all.map((e) => `${e.at.toFixed(2).padStart(8)} ms ${e.dir} ${JSON.stringify(e.data.toString('latin1'))}`).join('\n');
  }

  /** Stall `direction` (until {@link resume}, or for `ms`). */
  stall(direction: Direction, ms?: number): void {
    (direction === 'c2s' ? this.c2s : this.s2c).stall(ms);
  }

  /** Resume a stalled direction. */
  resume(direction: Direction): void {
    (direction === 'c2s' ? this.c2s : this.s2c).resume();
  }

  /** Destroy both sockets at once (no RST; used by close()). */
  destroy(): void {
    this.dispose();
    this.client.destroy();
    this.upstream.destroy();
  }

  private dispose(): void {
    if (this.dropTimer) clearTimeout(this.dropTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.dropTimer = null;
    this.lingerTimer = null;
    this.c2s.dispose();
    this.s2c.dispose();
  }
}

/** RST where possible, else destroy. */
function abort(s: net.Socket): void {
  if (s.destroyed) return;
  if (s.readyState === 'open') {
    try {
      s.resetAndDestroy();
      return;
    } catch {
      /* fall through */
    }
  }
  s.destroy();
}

/**
 * The fault-injecting proxy. `await proxy.listen()` binds 127.0.0.1 on a free
 * port ({@link port}); connect there instead of to the target. `close()`
 * destroys every connection and stops listening.
 *
 * @example
 * ```ts
 * const proxy = new FaultProxy({ target: { port: server.address()!.port }, seed, plan: (i, rng) => randomPlan(rng) });
 * await proxy.listen();
 * const session = await connect({ port: proxy.port });
 * ...
 * await proxy.close();
 * ```
 */
export class FaultProxy {
  readonly server: net.Server;
  /** Connections accepted, kept after they close for their stats (up to `retain` closed ones). */
  readonly connections: FaultConnection[] = [];
  private readonly options: FaultProxyOptions;
  private readonly seed: number;
  private readonly live = new Set<FaultConnection>();
  /** Connections accepted so far (their indexes). */
  accepted = 0;

  constructor(options: FaultProxyOptions) {
    this.options = options;
    this.seed = options.seed ?? 1;
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  /** The proxy's port (after {@link listen}). */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Listen on 127.0.0.1 (a free port unless given). */
  listen(port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  private accept(client: net.Socket): void {
    const index = this.accepted++;
    const rng = createRng(mixSeed(this.seed, index));
    const p = this.options.plan;
    const plan = typeof p === 'function' ? p(index, rng) : { ...(p ?? {}) };
    const upstream = net.connect({ host: this.options.target.host ?? '127.0.0.1', port: this.options.target.port, allowHalfOpen: true });
    const conn = new FaultConnection(index, plan, rng, client, upstream, this.options.highWaterMark ?? 256 * 1024);
    conn.c2s.traceLeft = conn.s2c.traceLeft = this.options.trace ?? 0;
    this.connections.push(conn);
    this.live.add(conn);
    void conn.whenClosed.then(() => {
      this.live.delete(conn);
      const keep = this.options.retain ?? Infinity;
      if (this.connections.length > keep) {
        const i = this.connections.findIndex((c) => c.closed);
        if (i >= 0) this.connections.splice(i, 1);
      }
    });
  }

  /** Connections not yet closed. */
  get open(): FaultConnection[] {
    return [...this.live];
  }

  /** Drop every open connection now. */
  dropAll(mode: 'fin' | 'rst'): void {
    for (const c of this.live) c.drop(mode);
  }

  /** Stall `direction` of every open connection. */
  stallAll(direction: Direction, ms?: number): void {
    for (const c of this.live) c.stall(direction, ms);
  }

  /** Resume `direction` of every open connection. */
  resumeAll(direction: Direction): void {
    for (const c of this.live) c.resume(direction);
  }

  /** Stop listening and destroy every connection; resolves once all is closed. */
  async close(): Promise<void> {
    const stopped = new Promise<void>((r) => this.server.close(() => r()));
    const conns = [...this.live];
    for (const c of conns) c.destroy();
    await Promise.all(conns.map((c) => c.whenClosed));
    await stopped;
  }
}

// ------------------------------------------------------------------ helpers of the fault tests

/** Resolve after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Waits are bounds, not measurements: never under 30 s, so a loaded machine (two busy cores,
// test files running at once) does not fail a test whose step takes 50 ms when quiet.
const MIN_BOUND_MS = 30_000;

/** Reject with `what` unless `p` settles within `ms` (the timer is always cleared). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = Math.max(ms, MIN_BOUND_MS);
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${bound} ms: ${what}`)), bound)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll `test` every 5 ms until true, at most `ms`; returns whether it became true. */
export async function until(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + Math.max(ms, MIN_BOUND_MS);
  while (!test()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/**
 * Tracks promises by label so a test can assert that every one of them
 * settled: {@link pending} lists those still pending.
 */
export class PromiseTracker {
  private readonly items: { label: string; state: 'pending' | 'fulfilled' | 'rejected'; reason?: unknown }[] = [];

  /** Track `p` (returned as is; a rejection is observed, never unhandled). */
  track<T>(label: string, p: Promise<T>): Promise<T> {
    const item: { label: string; state: 'pending' | 'fulfilled' | 'rejected'; reason?: unknown } = { label, state: 'pending' };
    this.items.push(item);
    p.then(
      () => void (item.state = 'fulfilled'),
      (e: unknown) => {
        item.state = 'rejected';
        item.reason = e;
      },
    );
    return p;
  }

  /** Labels of the promises still pending. */
  pending(): string[] {
    return this.items.filter((i) => i.state === 'pending').map((i) => i.label);
  }

  /** Wait (bounded) until all settled; returns the labels still pending. */
  async settle(ms: number): Promise<string[]> {
    await until(() => this.pending().length === 0, ms);
    return this.pending();
  }

  get size(): number {
    return this.items.length;
  }

  count(state: 'pending' | 'fulfilled' | 'rejected'): number {
    return this.items.filter((i) => i.state === state).length;
  }
}

// ------------------------------------------------------------------ sequence-numbered payloads

/**
 * A payload that says where it belongs: 8-octet words, word `i` holding
 * `(stream, seq, i)` mixed, so a receiver can tell a gap, a duplicate or a
 * reordering from a prefix. Sizes need not be multiples of 8 (the last word
 * is cut).
 */
export function seqPayload(stream: number, seq: number, size: number, offset = 0): Buffer {
  const buf = Buffer.allocUnsafe(size);
  fillSeq(buf, stream, seq, offset);
  return buf;
}

function fillSeq(buf: Buffer, stream: number, seq: number, offset: number): void {
  // Word w covers octets [8w, 8w+8) of the message: (w, mix(stream, seq, w)).
  const first = Math.floor(offset / 8);
  const last = Math.floor((offset + buf.length - 1) / 8);
  const key = mixSeed(stream, seq);
  const word = Buffer.allocUnsafe(8);
  for (let w = first; w <= last; w++) {
    word.writeUInt32LE(w >>> 0, 0);
    word.writeUInt32LE((Math.imul(w, 0x9e3779b1) ^ key) >>> 0, 4);
    const start = w * 8;
    const from = Math.max(start, offset);
    const to = Math.min(start + 8, offset + buf.length);
    word.copy(buf, from - offset, from - start, to - start);
  }
}

/**
 * Checks a streamed sequence-numbered body as it arrives: every chunk must
 * continue exactly where the previous one stopped.
 */
export class SeqChecker {
  received = 0;
  error: string | undefined;
  constructor(
    readonly stream: number,
    readonly seq: number,
  ) {}

  push(chunk: Buffer): void {
    if (this.error || chunk.length === 0) return;
    const want = seqPayload(this.stream, this.seq, chunk.length, this.received);
    if (!want.equals(chunk)) {
      let i = 0;
      while (i < chunk.length && chunk[i] === want[i]) i++;
      this.error = `stream ${this.stream} seq ${this.seq}: wrong octet at offset ${this.received + i}`;
    }
    this.received += chunk.length;
  }
}

// ------------------------------------------------------------------ resources

/** Resource types tracked by {@link ResourceTracker}. */
const TRACKED = new Set(['Timeout', 'Immediate', 'TCPWRAP', 'TCPSERVERWRAP', 'TCPCONNECTWRAP', 'SHUTDOWNWRAP', 'WRITEWRAP', 'PIPEWRAP', 'TLSWRAP']);

/**
 * Counts the timers, immediates and TCP handles created while enabled and
 * not yet destroyed — unref'd timers included, which
 * `process.getActiveResourcesInfo()` does not show.
 */
export class ResourceTracker {
  private readonly live = new Map<number, string>();
  private readonly stacks = new Map<number, string>();
  private readonly hook;
  /** Set while the tracker creates its own timers (they are not counted). */
  private ignoring = false;

  /** With `stacks`, each resource's creation stack is kept (slow; for debugging leaks). */
  constructor(options: { stacks?: boolean } = {}) {
    const keep = options.stacks ?? process.env.FAULT_TRACE_RESOURCES === '1';
    this.hook = createHook({
      init: (id, type) => {
        if (this.ignoring || !TRACKED.has(type)) return;
        this.live.set(id, type);
        if (keep) this.stacks.set(id, new Error(type).stack ?? type);
      },
      destroy: (id) => {
        this.live.delete(id);
        this.stacks.delete(id);
      },
    });
  }

  enable(): this {
    this.hook.enable();
    return this;
  }

  disable(): void {
    this.hook.disable();
  }

  /** Types of the live tracked resources, counted. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.live.values()) out[t] = (out[t] ?? 0) + 1;
    return out;
  }

  /** Creation stacks of the live resources (when kept). */
  liveStacks(): string[] {
    return [...this.stacks.values()];
  }

  get size(): number {
    return this.live.size;
  }

  /** Sleep on a timer of the tracker's own (not counted). */
  sleep(ms: number): Promise<void> {
    this.ignoring = true;
    try {
      return new Promise((r) => setTimeout(r, ms));
    } finally {
      this.ignoring = false;
    }
  }

  /** Poll `test` every 5 ms (on uncounted timers) until true, at most `ms`. */
  async until(test: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!test()) {
      if (Date.now() > end) return false;
      await this.sleep(5);
    }
    return true;
  }
}

/** `process.getActiveResourcesInfo()` counted by type. */
export function activeResources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of process.getActiveResourcesInfo()) out[t] = (out[t] ?? 0) + 1;
  return out;
}

/** Types whose count in `now` exceeds `before` (with the excess). */
export function resourceExcess(before: Record<string, number>, now: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(now)) {
    const d = n - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}
