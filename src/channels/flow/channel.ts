/**
 * One channel's receive direction under the flow policy: RTT samples and
 * stalls from where inbound frames begin and end, the reader's rate per epoch,
 * the channel's own slow start, right-sizing and shrinking, and when a SEQ is
 * due (see the summary in `../flow.ts` and `spec/flow-control.md`).
 *
 * @module
 */
import { RecvWindow, seqDiff } from '../window.js';
import { LIMITED_SAMPLE, MAX_RATE_GAIN, MIN_EPOCH_MS, MIN_SIZING_RTT_MS, PENDING_EDGES, SLOW_START_AHEAD, SLOW_START_GROWTH, SLOW_START_ROUNDS, UPDATE_FRACTION } from './params.js';
import type { SessionFlow } from './session.js';

/** What a channel's flow state shows: `channel.flow`, the metrics and the trace. */
export interface ChannelFlowStats {
  /** Receive window size now (octets): the buffer this channel may hold. */
  window: number;
  /** Octets received and not yet consumed by the application. */
  buffered: number;
  /** Largest `buffered` seen. */
  peakBuffered: number;
  /** Octets the application consumed. */
  consumed: number;
  /** Times the peer was blocked by our window (a frame began at an edge we advertised). */
  peerStalls: number;
  /** SEQ frames sent for this channel. */
  seqs: number;
  /** Window resizes up / down. */
  grows: number;
  shrinks: number;
  /** The session's sizing RTT (ms; 0 while unknown), smallest and smoothed RTT samples. */
  rttMs: number;
  minRttMs: number;
  srttMs: number;
  /** Consumption rate measured over the last epoch (octets per second). */
  rate: number;
}

/** The flow state of one channel's receive direction. */
export class ChannelFlow {
  /** The mechanism: edges and octet counts (RFC 3081 §3.1). */
  readonly window: RecvWindow;
  /** Counters (see {@link ChannelFlowStats}). */
  readonly stats = { peakBuffered: 0, consumed: 0, peerStalls: 0, seqs: 0, grows: 0, shrinks: 0 };
  private readonly session: SessionFlow;
  private readonly tune: boolean;
  /**
   * The SEQs we sent, oldest first, as triples: the edge each moved us off,
   * when it left, and when that edge had itself been advertised.
   */
  private readonly pending: number[] = [];
  /** When the previous SEQ left (when the current edge was advertised). */
  private edgeAt = 0;
  /** When the window was last resized. */
  private resizedAt = -Infinity;
  /**
   * When a frame ended at an edge advertised since the last resize (the
   * sender ran out of this size of window), until the reader shows whether it
   * keeps up; -1 when none is pending.
   */
  private limitedAt = -1;
  /** When the SEQ announcing the channel's window left, until its first octets arrive (-1: not pending). */
  private announcedAt = -1;

  private epochStart: number;
  private epochBytes = 0;
  private lastRate = 0;
  private prevRate = 0;
  /** Best epoch rate so far (octets per ms): what the path has carried for this channel. */
  private peakRate = 0;
  /** Most octets unread (received or announced by a frame header) during this epoch. */
  private epochPeak = 0;
  /**
   * Slow start: the rate's growth multiplies the right-sized window (see
   * onConsume), until the rate stops growing or the window first shrinks.
   */
  private slowStart = true;
  /** Slow start: the best rate seen, and the epochs since it last grew by {@link SLOW_START_GROWTH}. */
  private fullRate = 0;
  private flatEpochs = 0;
  /**
   * This epoch, our window held the sender back: a frame began at an edge we
   * had advertised about one round trip after the SEQ that moved it (the
   * sender waited for it), or ended at the latest edge (it used all we had
   * granted). Its rate measured our window, not the path, so it does not count
   * toward ending slow start — BBR skips application-limited rounds in its
   * full-pipe test the same way.
   */
  private epochLimited = false;
  /** The window's size when this epoch began. */
  private epochSize = 0;
  /** The channel's first octets arrived (its first epoch starts then, not when it opened). */
  private started = false;
  /** @internal Session slow start: octets consumed, and most unread, during the session's epoch. */
  ssBytes = 0;
  ssPeak = 0;
  /** Issue 17: octets owed to the peer and not sendable, as last charged to the session ({@link setOwed}). */
  owed = 0;
  /** The channel's profile is a control profile (see `CONTROL_HOLD_MS`). */
  control = false;
  private closed = false;

  /** @internal */
  constructor(session: SessionFlow, size: number, tune: boolean) {
    this.session = session;
    this.tune = tune;
    this.window = new RecvWindow(size);
    this.epochStart = session.now();
    // RFC 3081 §3.1.1: the initial window is granted the moment the channel exists.
    session.charge(this.window.remaining);
  }

  /** @internal Issue 17: record what the channel owes the peer and cannot send (charged to the budgets). */
  setOwed(n: number): void {
    if (this.closed || n === this.owed) return;
    this.session.charge(n - this.owed);
    this.owed = n;
  }

  /**
   * An inbound frame of `size` octets beginning at `seqno` passed its checks:
   * account for it, and learn from where it begins (an RTT sample, a stall).
   */
  onFrame(seqno: number, size: number): void {
    const w = this.window;
    w.receive(size);
    if (this.control) this.session.onControlFrame(this, this.session.now());
    else if (size > 0 && this.tune) this.session.bulkAt = this.session.now();
    if (w.buffered > this.stats.peakBuffered) this.stats.peakBuffered = w.buffered;
    if (w.buffered > this.epochPeak) this.epochPeak = w.buffered;
    if (w.buffered > this.ssPeak) this.ssPeak = w.buffered;
    if (size === 0) return;
    if (!this.started) {
      // The first epoch starts with the first octet: the time the channel sat
      // idle before would read as a slow reader and shrink the window at once.
      this.started = true;
      this.epochStart = this.session.now();
      this.epochSize = w.size;
    }
    if (this.announcedAt >= 0) {
      // The channel's first octets: the peer could send nothing before our
      // start reply and the SEQ announcing the window reached it, so this is
      // one round trip — the session's first sample when it has none (a
      // listener's first channel), so the first stall can already grow.
      if (seqno === 0 && this.session.rtt.count === 0) this.session.rtt.sample(this.session.now() - this.announcedAt);
      this.announcedAt = -1;
    }
    const end = w.expected;
    // Walk the SEQs whose old edge this frame reached, oldest first.
    const p = this.pending;
    let i = 0;
    while (i < p.length) {
      const edge = p[i] as number;
      if (edge === seqno) {
        // Begins exactly at an edge we had advertised: the sender waited there
        // for the SEQ that moved it, so this is one round trip.
        const sample = this.session.now() - (p[i + 1] as number);
        this.session.rtt.sample(sample);
        this.stats.peerStalls++;
        this.session.counters.peerWindowStalls++;
        // Within half a round trip of the path's: nothing queued at the sender,
        // it waited for our window (a frame that merely happens to begin at an
        // edge long passed comes later).
        if (sample <= LIMITED_SAMPLE * this.session.rtt.min) {
          this.epochLimited = this.session.ss.limited = true;
          // Nothing of ours unread either: the reader waited for these octets.
          if (w.buffered === size) this.session.counters.peerWindowStallsIdle++;
        }
        i += 3;
        break;
      }
      // An edge this frame crossed (or one left behind): no clean sample.
      const d = seqDiff(end, edge);
      if (d > 0 && d < 0x80000000) {
        i += 3;
        continue;
      }
      break;
    }
    if (i > 0) p.splice(0, i);
    if (end === w.edge) this.epochLimited = this.session.ss.limited = true;
    // Ends exactly at an edge advertised since the last resize: the sender ran
    // out of this size of window.
    if (this.tune && this.limitedAt < 0 && this.advertisedSinceResize(end)) this.limitedAt = this.session.now();
  }

  private advertisedSinceResize(edge: number): boolean {
    if (edge === this.window.edge) return this.edgeAt >= this.resizedAt;
    const p = this.pending;
    for (let i = 0; i < p.length; i += 3) if (p[i] === edge) return (p[i + 2] as number) >= this.resizedAt;
    return false;
  }

  /**
   * The sender ran out of window while the reader keeps up: grow to
   * 2 × size × RTT ÷ (the latest RTT sample), at most 4×. A sample near the path's RTT
   * means nothing is queued — the window alone held the sender back — and
   * doubles the window (slow start, one doubling per round trip); a sample of
   * twice the path's RTT means a window's worth already waits in queues, and
   * the size stays. The fixed point is 2 × rate × RTT.
   */
  private windowLimited(): void {
    const w = this.window;
    const rtt = this.session.rtt;
    if (rtt.count === 0) return;
    const size = w.size;
    const m = rtt.sizing;
    // A reader that drains in bursts and then sleeps also takes what was sent
    // quickly: the rate it kept over an epoch (at least one round trip) must
    // need this size too — a quarter of it within a round trip (a sender held
    // back by the window delivers less than the window per round trip).
    // Until one epoch has shown a rate the window may only double once (a
    // slow reader's first read is as quick as any). (The better of the last
    // two epochs: a window-limited sender's octets come in one burst per round
    // trip, which an epoch of one RTT can miss.)
    const rate = Math.max(this.lastRate, this.prevRate);
    if (rate === 0 ? this.stats.grows > 0 : 4 * rate * m < size) return;
    // Below the sizing RTT (the 10 ms floor on a fast path) the sample says
    // the window turns over faster than it is sized for: grow by up to 4×.
    const target = Math.min(rate === 0 ? 2 * size : 4 * size, (2 * size * m) / Math.max(rtt.last, m / 8));
    if (target > size && this.session.resize(this, target) > size) this.grown();
  }

  /** @internal Session slow start: grow to at least `size` (within the ceiling and the budget). */
  sessionGrow(size: number): void {
    const before = this.window.size;
    if (this.session.resize(this, size) > before) this.grown();
  }

  private shrunk(now: number): void {
    this.resizedAt = now;
    this.slowStart = false;
    this.stats.shrinks++;
    this.session.counters.windowShrinks++;
  }

  private grown(): void {
    this.resizedAt = this.session.now();
    this.limitedAt = -1;
    this.stats.grows++;
    this.session.counters.windowGrows++;
  }

  /** The application consumed `n` octets: reopen the window and re-size it. */
  onConsume(n: number): void {
    const before = this.window.buffered;
    this.window.consume(n);
    if (!this.closed) this.session.charge(this.window.buffered - before);
    this.stats.consumed += n;
    if (!this.tune) return;
    this.epochBytes += n;
    const now = this.session.now();
    this.session.sessionEpoch(this, n, now);
    if (this.limitedAt >= 0 && this.window.buffered <= this.window.size / 4) {
      // The sender ran out of window, and the reader took what it sent within
      // half a sizing RTT (it keeps up): the window is what limits the channel.
      if (now - this.limitedAt <= this.session.rtt.sizing / 2) this.windowLimited();
      this.limitedAt = -1;
    }
    const rtt = this.session.rtt.sizing;
    const elapsed = now - this.epochStart;
    // An epoch lasts at least one measured round trip (not the sizing floor:
    // on a fast path the first rate, which gates growth, comes within a
    // millisecond instead of ten).
    if (this.session.rtt.count === 0 || elapsed < Math.max(this.session.rtt.min, MIN_EPOCH_MS)) return;
    const rate = this.epochBytes / elapsed; // octets per ms
    this.prevRate = this.lastRate;
    this.lastRate = rate;
    if (rate > this.peakRate) this.peakRate = rate;
    let newBest = false;
    if (this.slowStart) {
      if (rate >= SLOW_START_GROWTH * this.fullRate) {
        newBest = this.fullRate > 0;
        this.fullRate = rate;
        this.flatEpochs = 0;
      } else if (!this.epochLimited && ++this.flatEpochs >= SLOW_START_ROUNDS) {
        this.slowStart = false;
        // The rate stopped growing: the pipe is full. Slow start may have
        // overshot by up to one step; trim toward 2 × rate × RTT (with a
        // quarter's slack), the fixed point, so the session budget is not held
        // by promises nobody uses. Granted window is never retracted: this
        // only limits what later SEQs advertise.
        const keep = 2.5 * this.fullRate * this.session.rtt.sizing;
        const size = this.window.size;
        if (keep < size && this.session.resize(this, keep) < size) this.shrunk(now);
      }
    }
    const size = this.window.size;
    const target = 2 * rate * rtt;
    this.epochStart = now;
    this.epochBytes = 0;
    const limited = this.epochLimited;
    const tookHalf = rate * this.session.rtt.min >= this.epochSize / 2;
    this.epochLimited = false;
    this.epochSize = size;
    const peak = this.epochPeak;
    this.epochPeak = this.window.buffered;
    // Right-sizing from the rate (Dynamic Right-Sizing, as Linux's
    // tcp_rcv_space_adjust does it): a reader that keeps up gets
    // 2 × rate × RTT, plus twice the rate's growth over the last epoch while
    // it still grows — 2 × rate × RTT × (1 + 2 (g − 1)), g ≤ MAX_RATE_GAIN, so
    // up to 6 × one round trip's delivery: the rate was measured over the
    // epoch just past, and the window must cover the round trips still to
    // come. This grows the window while the transport, not the window, limits
    // the sender — TCP in its own slow start, whose congestion window does
    // not grow while the application limits it (RFC 7661): growing only when
    // the sender runs out of window makes the two take turns, about two round
    // trips per doubling.
    if (peak < size / 2) {
      const g = this.slowStart && this.prevRate > 0 ? Math.min(MAX_RATE_GAIN, Math.max(1, rate / this.prevRate)) : 1;
      let want = target * (1 + 2 * (g - 1));
      // Still in slow start and our window held the sender back: at least
      // double, once per round trip, as TCP's congestion window does in its
      // own slow start. A window that only follows the rate it lets through
      // falls behind the transport's: TCP (cubic, unpaced) then sends each
      // increase as a line-rate burst, and during its loss recovery the
      // reader, held up by the hole, reopens nothing for a round trip.
      // (A slow reader holds the sender back too, but leaves octets unread or
      // takes far less than its window: the reader must have kept what sat
      // unread within a quarter of the window, or taken half the window per
      // round trip — channels sharing one transport each get a share of it.)
      // (While the session sizes several busy channels together, it doubles
      // their sum instead: see SessionFlow.sessionEpoch.)
      if (limited && this.slowStart && !this.session.ss.together && (peak <= size / 4 || tookHalf)) want = Math.max(want, 2 * size);
      // Still in slow start, the reader keeps up and the rate grew by a
      // quarter or more over the last epoch (the transport is in its own
      // slow start): double, as quic-go does while a window is used up within
      // a few round trips, up to 16 × rate × RTT. The rate lags the
      // transport: it was measured over the epoch just past (its last burst),
      // and by the time the SEQs advertising this size reach the sender, a
      // transport doubling per round trip delivers four times that per round
      // trip; a window of twice that lasts until the next resize lands. Without
      // this the window follows TCP's ramp about one round trip behind (IW10 at
      // 100 ms: the BDP after 9.5 round trips in the simulation, 10.4 in one
      // WAN run; 7.5 with it). The doubling stops with the rate's growth, and
      // the end of slow start trims the window to 2.5 × rate × RTT.
      // The rate must beat its best so far by a quarter (not merely the last
      // epoch's: a reader that takes a large chunk, then sleeps, alternates
      // high and low epochs), and only where the path's own RTT sizes the
      // window (at least the 10 ms floor: below it, a loopback path's epochs
      // of a millisecond see such a reader's chunks as growth).
      if (this.slowStart && newBest && !this.session.ss.together && peak <= size / 4 && this.session.rtt.min >= MIN_SIZING_RTT_MS) {
        want = Math.max(want, Math.min(2 * size, SLOW_START_AHEAD * rate * rtt));
      }
      if (want > size && this.session.resize(this, want) > size) this.grown();
      return;
    }
    // Slow reader (RFC 3081 §3.1.4: "slow readers should get small windows"):
    // half the window or more sat unread during the epoch while the rate needs
    // less than half of it. Halve toward the target, never below the initial
    // window. A channel whose sender merely sends less (or is held back by
    // the transport, as in TCP's own slow start) leaves nothing unread and
    // keeps its size (the budget's fair share reclaims it when others need
    // the buffer).
    if (target < size / 2 && size > this.session.limits.receiveWindow) {
      if (this.session.resize(this, Math.max(target, size / 2)) < size) this.shrunk(now);
    }
  }

  /**
   * The SEQ to send now, if any (RFC 3081 §3.1.4): when the edge can move by
   * a quarter of the window, or by anything when `force` is set.
   */
  takeUpdate(force = false, held = 0): { ackno: number; window: number } | null {
    const w = this.window;
    const oldEdge = w.edge;
    // Issue 17: `held` (replies owed and not sendable) and the memory budgets limit the window advertised.
    const u = w.takeUpdate(this.minAdvance(force), held, this.session.windowCap(this, held));
    if (!u) return null;
    if (!this.closed) this.session.charge(seqDiff(w.edge, oldEdge));
    this.stats.seqs++;
    if (this.tune) {
      const now = this.session.now();
      if (this.stats.seqs === 1 && w.expected === 0) this.announcedAt = now;
      if (this.pending.length >= 3 * PENDING_EDGES) this.pending.splice(0, 3);
      this.pending.push(oldEdge, now, this.edgeAt);
      this.edgeAt = now;
    }
    return u;
  }

  /** True when {@link takeUpdate} would return a SEQ now (changes nothing: the scheduler asks before it flushes). */
  updateDue(held = 0): boolean {
    return this.window.updateDue(this.minAdvance(false), held, this.session.windowCap(this, held));
  }

  private minAdvance(force: boolean): number {
    return force ? 1 : Math.max(1, Math.floor(this.window.size * UPDATE_FRACTION));
  }

  /** A snapshot of this channel's flow state. */
  snapshot(): ChannelFlowStats {
    const rtt = this.session.rtt;
    return {
      window: this.window.size,
      buffered: this.window.buffered,
      ...this.stats,
      rttMs: rtt.sizing,
      minRttMs: rtt.count === 0 ? 0 : rtt.min,
      srttMs: rtt.srtt,
      rate: Math.round(this.lastRate * 1000),
    };
  }

  /** @internal The rate the reader consumed at over the last epoch (octets per ms). */
  get measuredRate(): number {
    return this.lastRate;
  }

  /** @internal The best rate the reader consumed at over an epoch so far (octets per ms). */
  get bestRate(): number {
    return this.peakRate;
  }

  /** @internal The channel's rate may still grow (its slow start has not ended). */
  get inSlowStart(): boolean {
    return this.tune && this.slowStart;
  }

  /** Leave the session's budget (the channel closed). */
  close(): void {
    this.session.close(this);
    if (this.closed) return;
    this.closed = true;
    // Issue 17: whatever the channel held is released.
    this.session.charge(-(this.window.remaining + this.window.buffered + this.owed));
    this.owed = 0;
  }
}
