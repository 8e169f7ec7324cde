/**
 * Bandwidth shares by token weight (draft-ietf-decade-arch-03 §6.1.2) among
 * the GETs of one session: weighted fair queuing in virtual time, applied
 * where the server hands octets to the session.
 *
 * The session's scheduler also weights its channels, but only within one
 * output batch: with frames as large as the batch (DECADE_LIMITS: 256 KiB)
 * every channel that has data sends one frame in turn, whatever its weight.
 * So the server paces its own writes: each transfer's virtual time grows by
 * octets ÷ weight, and a transfer may write only while it is at most
 * {@link LEAD} virtual octets ahead of the slowest transfer that is moving.
 * A transfer that has not written for {@link STALL_MS} (its client stopped
 * reading, its upload has no new octets) does not hold the others back.
 *
 * @module
 */

/** How far (virtual octets) a transfer may run ahead of the slowest one still moving. */
export const LEAD = 256 * 1024;
/** A transfer that has not written for this long is left out of the comparison (ms). */
export const STALL_MS = 250;

/** One transfer's place in its session's {@link Shares}. */
export interface Flow {
  readonly weight: number;
  /** Virtual time: octets written ÷ weight, from where it joined. */
  v: number;
  /** When it last wrote (ms, monotonic). */
  last: number;
}

/** The weighted shares of one session's transfers. */
export class Shares {
  private readonly flows = new Set<Flow>();
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Transfers under way. */
  get size(): number {
    return this.flows.size;
  }

  /** A transfer begins: it starts level with the slowest one moving (no credit for time before it). */
  join(weight: number): Flow {
    const t = this.now();
    const f: Flow = { weight: Math.min(64, Math.max(1, Math.floor(weight) || 1)), v: this.floor(t, null) ?? 0, last: t };
    this.flows.add(f);
    return f;
  }

  /** A transfer ended: the others may go on. */
  leave(f: Flow): void {
    this.flows.delete(f);
    this.wakeAll();
  }

  /** The least virtual time among the transfers still moving, except `but`; null if none. */
  private floor(t: number, but: Flow | null): number | null {
    let min: number | null = null;
    for (const f of this.flows) {
      if (f === but || t - f.last > STALL_MS) continue;
      if (min === null || f.v < min) min = f.v;
    }
    return min;
  }

  /** Whether `f` may write now. */
  mayWrite(f: Flow): boolean {
    if (this.flows.size < 2) return true;
    const min = this.floor(this.now(), f);
    return min === null || f.v <= min + LEAD;
  }

  /**
   * Wait until `f` may write (at once when alone). A transfer that was
   * stalled itself catches up to the floor first (no burst for the time it stood still).
   */
  async turn(f: Flow): Promise<void> {
    const t = this.now();
    if (t - f.last > STALL_MS) {
      const min = this.floor(t, f);
      if (min !== null && f.v < min) f.v = min;
      f.last = t;
    }
    for (let i = 0; !this.mayWrite(f); i++) {
      await new Promise<void>((r) => {
        this.waiters.push(r);
        // Others may stall meanwhile: look again when they would count as stalled.
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.wakeAll();
        }, STALL_MS + 1);
      });
      if (!this.flows.has(f)) return;
    }
  }

  /** `f` wrote `n` octets. */
  wrote(f: Flow, n: number): void {
    f.v += n / f.weight;
    f.last = this.now();
    if (this.waiters.length > 0) this.wakeAll();
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    if (this.timer !== null && w.length > 0) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    for (const r of w) r();
  }
}

/** A transfer's handle on its session's shares: wait for a turn, count what it wrote, leave. */
export interface SharesGate {
  turn(): Promise<void>;
  wrote(n: number): void;
  leave(): void;
}

/** The {@link Shares} of every session, keyed by the session's handle (dropped once its last transfer leaves). */
export class SessionShares {
  private readonly bySession = new WeakMap<object, Shares>();

  /** A transfer of `weight` begins on `session`. */
  join(session: object, weight: number): SharesGate {
    let shares = this.bySession.get(session);
    if (shares === undefined) this.bySession.set(session, (shares = new Shares()));
    const s = shares;
    const flow = s.join(weight);
    return {
      turn: () => s.turn(flow),
      wrote: (n) => s.wrote(flow, n),
      leave: () => {
        s.leave(flow);
        if (s.size === 0 && this.bySession.get(session) === s) this.bySession.delete(session);
      },
    };
  }
}
