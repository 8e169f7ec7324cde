/**
 * @internal
 * When the session is done with the body octets an application handed over
 * (see `RequestOptions.onReleased`): a {@link ReleaseLedger} per session
 * state records, for each tracked outbound message, how far its body had
 * been framed when each batch of frames was pulled, and releases those
 * octets once the transport write that carried the batch has completed
 * (Node's write callback: the kernel has the octets, or TLS has encrypted
 * them; nothing in Node refers to the memory any more).
 *
 * Cheap by construction: an entry per tracked message per flush (a frame of
 * the same message in the same flush moves the entry's mark, no new entry),
 * one write callback per flush that carried tracked octets (one function per
 * ledger, not a closure per write), and octets counted, not chunks.
 *
 * Writes on one transport complete in order, so a FIFO of "tickets" (ledger
 * positions sealed by a flush) maps each write callback to the entries it
 * releases. A message cut short (abort, a peer's ERR, the session ending)
 * counts its unframed octets as gone at once; they are released behind the
 * frames already in flight. When the transport closes every entry is
 * released (nothing can be in flight any more), and anything noted after
 * that is released at once: no octet is held for ever.
 *
 * @module
 */

/** @internal What a ledger entry tells: a message's release callback and its mark. */
export interface Releasing {
  /** Body octets of this message no longer referenced: report up to `mark` (cumulative). Never throws. */
  deliverRelease(mark: number): void;
}

/** Released entries kept at the front before the arrays are compacted. */
const COMPACT_AT = 1024;

/** @internal The release bookkeeping of one session state (see the module comment). */
export class ReleaseLedger {
  /** Entries: the message and its mark, at array index = position - {@link base}. */
  private msgs: (Releasing | undefined)[] = [];
  private marks: number[] = [];
  /** Absolute position of array index 0. */
  private base = 0;
  /** Array index of the first unreleased entry. */
  private first = 0;
  /** Entries up to this absolute position are covered by a ticket (or released). */
  private sealed = 0;
  /** Absolute positions sealed by writes still in flight, oldest first. */
  private readonly tickets: number[] = [];
  /** The transport closed: nothing is in flight, everything is released at once. */
  private ended = false;
  /** No more writes will be made through this ledger (a tuning reset replaced its session state). */
  private retired = false;
  /** Where a throwing release callback is reported (never into a socket's write callback). */
  readonly onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.onError = onError;
  }

  /** Absolute position past the last entry. */
  private get end(): number {
    return this.base + this.msgs.length;
  }

  /** Entries wait for a ticket: the glue must {@link seal} after its next write (or now). */
  get due(): boolean {
    return this.end > this.sealed;
  }

  /** `m`'s body is gone up to `mark` octets (framed, or dropped) as of now. */
  note(m: Releasing, mark: number): void {
    if (this.ended) {
      m.deliverRelease(mark);
      return;
    }
    const n = this.msgs.length;
    // Same message, same (unsealed) write: move its mark.
    if (this.base + n > this.sealed && this.msgs[n - 1] === m) this.marks[n - 1] = mark;
    else {
      this.msgs.push(m);
      this.marks.push(mark);
    }
    if (this.retired) this.seal(false);
  }

  /**
   * The glue flushed: with `wrote`, the entries noted since the last seal
   * went out in a write made now — returns the callback to give that write
   * (undefined when nothing is due). Without, nothing new was written: the
   * entries are released with the newest write in flight, or now if none is.
   */
  seal(wrote: boolean): (() => void) | undefined {
    const end = this.end;
    if (end === this.sealed) return undefined;
    this.sealed = end;
    if (wrote && !this.retired) {
      this.tickets.push(end);
      return this.written;
    }
    const t = this.tickets.length;
    if (t > 0) this.tickets[t - 1] = end;
    else this.releaseTo(end);
    return undefined;
  }

  /** The write callback: the oldest write in flight completed (or failed: then it refers to nothing either). */
  readonly written = (): void => {
    const t = this.tickets.shift();
    if (t !== undefined) this.releaseTo(t);
  };

  /** The transport closed: release everything, and whatever is noted later at once. */
  transportClosed(): void {
    if (this.ended) return;
    this.ended = true;
    this.tickets.length = 0;
    this.sealed = this.end;
    this.releaseTo(this.end);
  }

  /**
   * A tuning reset replaced this session state: no more writes come through
   * it. Entries noted later go with the newest write in flight, or at once.
   */
  retire(): void {
    this.retired = true;
    this.seal(false);
  }

  /** Entries released, and still waiting (for tests and diagnostics). */
  get pending(): number {
    return this.msgs.length - this.first;
  }

  private releaseTo(pos: number): void {
    const to = pos - this.base;
    const msgs = this.msgs;
    const marks = this.marks;
    while (this.first < to) {
      const i = this.first++;
      const m = msgs[i] as Releasing;
      msgs[i] = undefined;
      m.deliverRelease(marks[i] as number);
    }
    if (this.first === msgs.length) {
      // All released: start afresh (keeps the arrays small without a splice per write).
      this.base += msgs.length;
      this.first = 0;
      msgs.length = 0;
      marks.length = 0;
    } else if (this.first >= COMPACT_AT && this.first * 2 >= msgs.length) {
      msgs.splice(0, this.first);
      marks.splice(0, this.first);
      this.base += this.first;
      this.first = 0;
    }
  }
}
