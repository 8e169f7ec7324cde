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
    this.edge = seqAdd(ackno, window);
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
   */
  takeUpdate(minAdvance: number): { ackno: number; window: number } | null {
    const free = Math.max(0, this.size - this.buffered);
    const newEdge = seqAdd(this.expected, free);
    const advance = seqDiff(newEdge, this.edge);
    // Never retract (RFC 3081 §3.1.4): a "negative" advance (edge would move left) is ignored.
    if (advance === 0 || advance >= 0x80000000) return null;
    if (advance < Math.max(1, minAdvance)) return null;
    this.edge = newEdge;
    return { ackno: this.expected, window: free };
  }

  /** Change the buffer space (the flow policy's decision); takes effect at the next update, never retracting the advertised edge. */
  resize(size: number): void {
    this.size = Math.min(Math.max(size, INITIAL_WINDOW), MAX_WINDOW);
  }
}
