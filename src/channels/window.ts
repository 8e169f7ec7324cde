/**
 * Flow-control windows of RFC 3081 §3.1, one per channel and direction.
 *
 * Windows are absolute: the right edge is `ackno + window`, and every sum and
 * difference of sequence numbers is taken modulo 2^32 (RFC 3080 §2.2.1.2,
 * RFC 1982 serial arithmetic).
 *
 * @module
 */

/** Initial window of every channel, both directions (RFC 3081 §3.1.1). */
export const INITIAL_WINDOW = 4096;
/** Largest window expressible in a SEQ frame (2^31 − 1). */
export const MAX_WINDOW = 2147483647;

/** `(a + b) mod 2^32`. */
export function seqAdd(a: number, b: number): number {
  return (a + b) >>> 0;
}

/** `(a − b) mod 2^32`: the forward distance from `b` to `a`. */
export function seqDiff(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** Serial-number comparison (RFC 1982): is `a` at or before `b`? */
export function seqLte(a: number, b: number): boolean {
  return seqDiff(b, a) < 0x80000000;
}

/**
 * What this peer may send on a channel: the peer's advertised right edge
 * against our next sequence number.
 */
export class SendWindow {
  /** Sequence number of the next octet we send. */
  nextSeq = 0;
  /** Last acknowledgement number received. */
  ackno = 0;
  /** Right edge advertised by the peer (`ackno + window`, mod 2^32). */
  edge = INITIAL_WINDOW;
  /**
   * Window the peer advertised in its latest SEQ (4096 until one, RFC 3081
   * §3.1.1): sizes silly-window avoidance. The latest, not the largest: a
   * receiver whose buffer shrank for good must not leave us waiting for a
   * window it will never offer again.
   */
  lastWindow = INITIAL_WINDOW;
  /** Octets the latest SEQ moved the edge right by (`Infinity` before any): silly-window avoidance. */
  lastOpened = Infinity;

  /** Octets that may be sent now (0 when the peer shrank its window behind us). */
  get available(): number {
    const d = seqDiff(this.edge, this.nextSeq);
    return d < 0x80000000 ? d : 0;
  }

  /** Record that `n` octets were framed and sent. `n` must be ≤ {@link available}. */
  consume(n: number): void {
    if (n > this.available) throw new RangeError(`sending ${n} octets exceeds window ${this.available}`);
    this.nextSeq = seqAdd(this.nextSeq, n);
  }

  /**
   * Apply a received SEQ frame. Returns false when it is invalid, i.e. it
   * acknowledges octets never sent (RFC 3081 §3.1.3: then "the BEEP session is
   * terminated").
   */
  update(ackno: number, window: number): boolean {
    if (!seqLte(ackno, this.nextSeq)) return false;
    this.ackno = ackno;
    const edge = seqAdd(ackno, window);
    const d = seqDiff(edge, this.edge);
    this.lastOpened = d < 0x80000000 ? d : 0;
    this.lastWindow = window;
    this.edge = edge;
    return true;
  }
}

/** Result of checking an inbound frame against a {@link RecvWindow}. */
export type RecvCheck = 'ok' | 'seqno' | 'overrun';

/**
 * What this peer accepts on a channel. Octets count against the window from the
 * moment they arrive until the application consumes them; the window reopens
 * only as it does, and the advertised right edge never moves left (RFC 3081
 * §3.1.4, after RFC 1122 §4.2.2.16).
 */
export class RecvWindow {
  /** Sequence number expected on the next inbound frame. */
  expected = 0;
  /** Right edge last advertised to the peer. */
  edge = INITIAL_WINDOW;
  /** Octets received and not yet consumed by the application. */
  buffered = 0;
  /** Buffer space for this channel: the window advertised when nothing is buffered. */
  size: number;

  constructor(size = INITIAL_WINDOW) {
    this.size = Math.min(Math.max(size, INITIAL_WINDOW), MAX_WINDOW);
  }

  /** Octets the peer may still send before our advertised edge. */
  get remaining(): number {
    return seqDiff(this.edge, this.expected);
  }

  /** Check an inbound frame header (RFC 3080 §2.2.1.2, RFC 3081 §3.1.2) without changing state. */
  check(seqno: number, size: number): RecvCheck {
    if (seqno !== this.expected) return 'seqno';
    if (size > this.remaining) return 'overrun';
    return 'ok';
  }

  /** Record an accepted inbound frame of `size` octets. */
  receive(size: number): void {
    this.expected = seqAdd(this.expected, size);
    this.buffered += size;
  }

  /** Record that the application consumed `n` buffered octets. */
  consume(n: number): void {
    this.buffered = Math.max(0, this.buffered - n);
  }

  /**
   * The SEQ to send now, if any: `{ ackno, window }` when the edge we could
   * advertise (`expected + size − buffered`) lies at least `minAdvance` octets
   * right of the advertised one. Updates the advertised edge. When updates
   * are due is the flow policy's decision (`flow.ts`), not this type's.
   * `held` octets held on the channel's behalf elsewhere and a `cap` on the
   * window advertised come from the memory budgets (spec/limits.md).
   */
  takeUpdate(minAdvance: number, held = 0, cap = Infinity): { ackno: number; window: number } | null {
    const free = this.dueWindow(minAdvance, held, cap);
    if (free < 0) return null;
    this.edge = seqAdd(this.expected, free);
    return { ackno: this.expected, window: free };
  }

  /** True when {@link takeUpdate} with the same arguments would return an update (changes nothing). */
  updateDue(minAdvance: number, held = 0, cap = Infinity): boolean {
    return this.dueWindow(minAdvance, held, cap) >= 0;
  }

  /** The window an update would advertise now, or -1 when none is due. */
  private dueWindow(minAdvance: number, held: number, cap: number): number {
    // `held`: octets the channel holds elsewhere (replies owed, issue 17); `cap`: what the memory budgets allow.
    const free = Math.max(0, Math.min(this.size - this.buffered - held, cap));
    const advance = seqDiff(seqAdd(this.expected, free), this.edge);
    // Never retract (RFC 3081 §3.1.4): a "negative" advance (edge would move left) is ignored.
    if (advance === 0 || advance >= 0x80000000) return -1;
    // A window capped below its size (memory budgets) is updated at the same fraction of what it may be, not of its size.
    const eff = Math.min(this.size - held, cap + this.buffered);
    const min = eff < this.size ? Math.floor((Math.max(0, eff) * minAdvance) / this.size) : minAdvance;
    return advance < Math.max(1, min) ? -1 : free;
  }

  /** Change the buffer space (the flow policy's decision); takes effect at the next update, never retracting the advertised edge. */
  resize(size: number): void {
    this.size = Math.min(Math.max(size, INITIAL_WINDOW), MAX_WINDOW);
  }
}
