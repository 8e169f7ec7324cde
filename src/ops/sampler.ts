/**
 * Throughput sampling of the SciStream sessions of an S2CS: every
 * `sampleMs` the registry's data-path counters are read, and the octets per
 * second since the previous reading go into a fixed-size ring buffer per
 * session. Sessions are keyed by their non-secret tag; the uid never leaves
 * the registry.
 *
 * @module
 */
import type { SessionRegistry, ControlSessionState, SciStreamRole } from '../scistream/index.js';

/** One throughput reading of a session. */
export interface ThroughputSample {
  /** When it was taken (ms since the epoch). */
  t: number;
  /** Octets per second towards the producer application over the last interval. */
  toProducer: number;
  /** Octets per second towards the consumer application over the last interval. */
  toConsumer: number;
}

/** What an operator may see of one SciStream session: never its uid. */
export interface SessionView {
  /** Non-secret tag (`sessionTag(uid)`). */
  tag: string;
  /** Registry state (pending, setup, active, releasing, closed). */
  state: ControlSessionState;
  /** This facility's side of the session (null before any message named it). */
  role: SciStreamRole | null;
  /** The identity that requested it (null before its REQUEST). */
  owner: string | null;
  /** The data path's listeners. */
  listeners: string[];
  /** num_conn of the REQUEST (null before it). */
  numConn: number | null;
  /** Application connections open now and proxied in total. */
  connections: { open: number; total: number };
  /** Octets carried each way so far. */
  octets: { toProducer: number; toConsumer: number };
  /** The latest throughput (octets/s), 0 before two readings. */
  throughput: { toProducer: number; toConsumer: number };
  /** Recent throughput readings, oldest first (at most the sampler's capacity). */
  samples: ThroughputSample[];
}

/** A fixed-capacity ring buffer: pushing beyond capacity drops the oldest. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;

  /** A buffer holding at most `capacity` (≥ 1) items. */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.items = new Array<T | undefined>(capacity);
  }

  /** Items held now. */
  get size(): number {
    return this.count;
  }

  /** Append `item`, dropping the oldest when full. */
  push(item: T): void {
    this.items[(this.start + this.count) % this.capacity] = item;
    if (this.count < this.capacity) this.count++;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** The newest item, if any. */
  last(): T | undefined {
    return this.count === 0 ? undefined : this.items[(this.start + this.count - 1) % this.capacity];
  }

  /** The items, oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.items[(this.start + i) % this.capacity] as T);
    return out;
  }
}

interface Track {
  last?: { t: number; toProducer: number; toConsumer: number };
  ring: Ring<ThroughputSample>;
}

/** Options of a {@link ThroughputSampler}. */
export interface SamplerOptions {
  /** Milliseconds between readings (default 1000, at least 50). */
  sampleMs?: number;
  /** Readings kept per session (default 120). */
  capacity?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

/**
 * Reads a {@link SessionRegistry}'s data-path counters on an unref'd timer
 * (it never keeps the process alive) and keeps per-session throughput.
 */
export class ThroughputSampler {
  /** Milliseconds between readings. */
  readonly sampleMs: number;
  /** Readings kept per session. */
  readonly capacity: number;
  private readonly tracks = new Map<string, Track>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  /** A sampler of `registry`; call {@link ThroughputSampler.start} to run it. */
  constructor(private readonly registry: SessionRegistry, options: SamplerOptions = {}) {
    this.sampleMs = Math.max(50, options.sampleMs ?? 1000);
    this.capacity = options.capacity ?? 120;
    if (!Number.isInteger(this.capacity) || this.capacity < 2 || this.capacity > 100_000) throw new RangeError('capacity must be an integer from 2 to 100000');
    this.now = options.now ?? Date.now;
  }

  /** Take a reading now and then every `sampleMs` until {@link ThroughputSampler.stop}. */
  start(): this {
    if (this.timer) return this;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.sampleMs);
    this.timer.unref();
    return this;
  }

  /** Stop the timer (readings kept so far stay readable). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Take one reading of every session (sessions gone since are forgotten). */
  sample(): void {
    const t = this.now();
    const seen = new Set<string>();
    for (const s of this.registry.list()) {
      seen.add(s.tag);
      const st = s.stats;
      if (!st) continue;
      let track = this.tracks.get(s.tag);
      if (!track) this.tracks.set(s.tag, (track = { ring: new Ring<ThroughputSample>(this.capacity) }));
      const cur = { t, toProducer: st.bytesToProducer, toConsumer: st.bytesToConsumer };
      const prev = track.last;
      if (prev && t > prev.t) {
        const dt = (t - prev.t) / 1000;
        track.ring.push({
          t,
          toProducer: Math.max(0, (cur.toProducer - prev.toProducer) / dt),
          toConsumer: Math.max(0, (cur.toConsumer - prev.toConsumer) / dt),
        });
      }
      track.last = cur;
    }
    for (const tag of this.tracks.keys()) if (!seen.has(tag)) this.tracks.delete(tag);
  }

  /** The latest throughput of the session tagged `tag` (zeros before two readings). */
  throughput(tag: string): { toProducer: number; toConsumer: number } {
    const last = this.tracks.get(tag)?.ring.last();
    return { toProducer: last?.toProducer ?? 0, toConsumer: last?.toConsumer ?? 0 };
  }

  /** Every session held by the registry now, as an operator may see it (no uid). */
  sessions(): SessionView[] {
    return this.registry.list().map((s) => {
      const st = s.stats;
      return {
        tag: s.tag,
        state: s.state,
        role: s.role ?? null,
        owner: s.owner ?? null,
        listeners: [...s.listeners],
        numConn: s.numConn ?? null,
        connections: { open: st?.open ?? 0, total: st?.connections ?? 0 },
        octets: { toProducer: st?.bytesToProducer ?? 0, toConsumer: st?.bytesToConsumer ?? 0 },
        throughput: this.throughput(s.tag),
        samples: this.tracks.get(s.tag)?.ring.toArray() ?? [],
      };
    });
  }
}
