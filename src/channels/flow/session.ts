/**
 * The flow policy of one session: its clock, RTT estimate, receive budget
 * shared fairly by its channels (resizing within the ceiling and the budget),
 * and the memory budgets that cap what a SEQ advertises.
 *
 * @module
 */
import { INITIAL_WINDOW } from '../window.js';
import { ChannelFlow } from './channel.js';
import type { MemoryPool } from './memory.js';
import { CONTROL_BULK_WINDOW, CONTROL_HOLD_MS, CONTROL_PATH_GAIN, CONTROL_RAMP_GAIN, MIN_SIZING_RTT_MS, type FlowCounters, type FlowLimits } from './params.js';
import { RttEstimator } from './rtt.js';
import { SessionSlowStart } from './slowstart.js';

/**
 * The flow policy of one session: its clock, RTT estimate and receive
 * budget, and the channels drawing on them.
 */
export class SessionFlow {
  readonly limits: FlowLimits;
  readonly now: () => number;
  readonly rtt = new RttEstimator();
  /** Session-wide counters (kept by the session across tuning resets). */
  readonly counters: FlowCounters;
  /** Buffer granted beyond the channels' initial windows (octets). */
  budgetUsed = 0;
  private readonly members = new Set<ChannelFlow>();
  /**
   * Issue 17: octets the session holds or may come to hold because of the
   * peer — windows granted and unused, octets unconsumed, replies owed that
   * the peer's window does not let us send — bounded by `memoryBudget` and
   * the listener's {@link MemoryPool}.
   */
  held = 0;
  /** Session-wide slow start (several busy channels on one transport). */
  readonly ss = new SessionSlowStart();
  /** Bound on {@link held} (the session's `sessionMemoryBudget`; Infinity: none). */
  memoryBudget = Infinity;
  /** The listener-wide budget this session also draws on, if any. */
  pool: MemoryPool | undefined;
  /**
   * When the control hold last began or was renewed: a control channel received
   * a frame while bulk was moving (see {@link CONTROL_HOLD_MS}, {@link onControlFrame}).
   */
  controlAt = -Infinity;
  /** When a channel that is not a control channel last received octets. */
  bulkAt = -Infinity;

  constructor(limits: FlowLimits, now: () => number = () => performance.now(), counters?: FlowCounters) {
    this.limits = limits;
    this.now = now;
    this.counters = counters ?? { peerWindowStalls: 0, peerWindowStallsIdle: 0, windowGrows: 0, windowShrinks: 0 };
  }

  /** Session slow start has not ended (the session's rate still grows). */
  get slowStart(): boolean {
    return this.ss.active;
  }

  /** @internal Add `delta` octets to what the session (and its pool) holds. */
  charge(delta: number): void {
    this.held += delta;
    if (this.pool) this.pool.used += delta;
  }

  /**
   * @internal A control channel received a frame at `now`: the hold begins (or
   * is renewed) if another channel received octets within the last
   * {@link CONTROL_HOLD_MS} — bulk is moving, and what it may queue ahead of the
   * next control message is what the hold bounds. A control notice before any
   * bulk (SciStream's `<ready>` at a stream's start) has nothing queued ahead of
   * it and holds nothing back: the stream ramps as it would without it.
   */
  onControlFrame(cf: ChannelFlow, now: number): void {
    if (this.members.has(cf)) this.controls.add(cf);
    if (now - this.bulkAt < CONTROL_HOLD_MS) this.controlAt = now;
  }

  /** Control channels that have received a frame (open ones): not among those that share {@link CONTROL_BULK_WINDOW}. */
  private readonly controls = new Set<ChannelFlow>();

  /**
   * @internal Largest window `cf` may advertise under the memory budgets: what
   * it holds now plus the room left, never less than RFC 3081's initial 4096
   * octets less what it holds (so every session keeps moving, slowly, when a
   * listener's budget is spent by others).
   */
  windowCap(cf: ChannelFlow, held: number): number {
    const w = cf.window;
    let control = Infinity;
    if (!cf.control && this.controlAt !== -Infinity && this.now() - this.controlAt < CONTROL_HOLD_MS) {
      // A control channel is active: the non-control channels share CONTROL_BULK_WINDOW on
      // top of what their rate needs over the path's shortest round trip (rate × min RTT, the path's BDP,
      // not the sizing RTT with its floor): what is queued beyond the path, not the path, is cut.
      const pathNeed = this.rtt.count === 0 ? 0 : this.controlPathNeed(cf);
      const bulk = this.members.size - this.controls.size;
      const share = Math.max(INITIAL_WINDOW, Math.floor(CONTROL_BULK_WINDOW / Math.max(1, bulk) + pathNeed));
      control = Math.max(0, share - w.buffered - held);
    }
    const poolRoom = this.pool ? this.pool.limit - this.pool.used : Infinity;
    const room = Math.min(this.memoryBudget - this.held, poolRoom);
    // Room for a whole window: the memory budgets cannot bind (the common case).
    if (room >= w.size) return control;
    let cap = Math.max(INITIAL_WINDOW - w.buffered - held, w.remaining + room);
    // Fairness: once the session's budget is spent, a channel below its share
    // (budget ÷ channels) may still be credited up to it while the pool has
    // room; those above it get nothing until they hold less. A session thus
    // holds at most twice its budget while its channels rebalance.
    if (poolRoom > 0 && this.members.size > 0) cap = Math.max(cap, Math.floor(this.memoryBudget / this.members.size) - w.buffered - held);
    return Math.min(cap, control);
  }

  /**
   * @internal What `cf` keeps for the path while control is active (beyond its
   * part of CONTROL_BULK_WINDOW). On a long path (shortest RTT at least the
   * sizing floor): {@link CONTROL_PATH_GAIN} × its best rate × the shortest
   * RTT, {@link CONTROL_RAMP_GAIN} × in slow start — the share neither slows
   * the ramp nor lowers the rate it is measured from. Below the floor
   * (loopback, where CONTROL_BULK_WINDOW dominates): its last rate, twice in
   * slow start.
   */
  controlPathNeed(cf: ChannelFlow): number {
    const min = this.rtt.min;
    if (min >= MIN_SIZING_RTT_MS) return (cf.inSlowStart ? CONTROL_RAMP_GAIN : CONTROL_PATH_GAIN) * cf.bestRate * min;
    return (cf.inSlowStart ? 2 : 1) * cf.measuredRate * min;
  }

  /** Flow state for a new channel; `tune: false` keeps its window fixed (channel 0). */
  open(tune = true): ChannelFlow {
    const cf = new ChannelFlow(this, Math.max(this.limits.receiveWindow, 4096), tune);
    if (tune) this.members.add(cf);
    return cf;
  }

  /** @internal Give a closing channel's extra buffer back. */
  close(cf: ChannelFlow): void {
    this.controls.delete(cf);
    if (!this.members.delete(cf)) return;
    this.budgetUsed = Math.max(0, this.budgetUsed - this.extra(cf));
  }

  /** @internal A channel consumed `n` octets at `now`: the session's epoch (see {@link SessionSlowStart.epoch}). */
  sessionEpoch(cf: ChannelFlow, n: number, now: number): void {
    this.ss.epoch(this.members, this.rtt, cf, n, now);
  }

  private extra(cf: ChannelFlow): number {
    return Math.max(0, cf.window.size - this.limits.receiveWindow);
  }

  /**
   * @internal Resize `cf` toward `want` within the ceiling and the budget,
   * reclaiming from channels above their fair share when the budget is spent.
   * Returns the new size.
   */
  resize(cf: ChannelFlow, want: number): number {
    const base = this.limits.receiveWindow;
    const target = Math.max(base, Math.min(Math.floor(want), this.limits.maxReceiveWindow));
    const have = this.extra(cf);
    let extra = target - base;
    if (extra > have) {
      const budget = this.limits.sessionReceiveBudget;
      if (extra - have > budget - this.budgetUsed) {
        // Fair share among the channels holding extra buffer, and this one.
        let holders = 1;
        for (const m of this.members) if (m !== cf && this.extra(m) > 0) holders++;
        const share = Math.floor(budget / holders);
        if (have < share) {
          for (const m of this.members) {
            const e = this.extra(m);
            if (m === cf || e <= share) continue;
            m.window.resize(base + share);
            m.stats.shrinks++;
            this.counters.windowShrinks++;
            this.budgetUsed -= e - share;
          }
        }
        extra = Math.min(extra, have + Math.max(0, budget - this.budgetUsed));
      }
    }
    if (extra < 0) extra = 0;
    this.budgetUsed += extra - have;
    cf.window.resize(base + extra);
    return base + extra;
  }
}
