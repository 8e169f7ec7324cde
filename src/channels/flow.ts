/**
 * The receive-window policy: the one place that decides how large a
 * channel's receive window is, when it grows or shrinks, and when a SEQ is
 * due. {@link RecvWindow} stays pure mechanism (edges, serial arithmetic);
 * this module only tells it what size to have and when to advertise.
 *
 * Sizing follows TCP receive-buffer auto-tuning (Linux `tcp_rcv_space_adjust`,
 * Dynamic Right-Sizing) and QUIC flow controllers (quic-go, Chromium):
 *
 * - **RTT**: when we send a SEQ that moves our edge from E to E′, we note E
 *   and the time. A frame that *begins exactly at* E was held back by our
 *   window until the SEQ reached the sender, so its arrival time minus the
 *   SEQ's departure is one round trip (plus the sender's turn-around). A frame
 *   that crosses E without beginning there yields no sample: the sender was
 *   not waiting. Channel starts we send add a sample (request → reply). Samples
 *   are shared by every channel of the session: one transport, one path.
 * - **Rate**: octets the application consumed (read: a `'data'` handler,
 *   `read()`, iteration, `bytes()`) over an epoch of at least one measured
 *   RTT (the smallest sample, at least 1 ms).
 * - **Sizing RTT**: the smallest sample (the path's propagation delay:
 *   samples above it carry queueing, and sizing from them would feed on
 *   itself — a larger window queues more, which looks like a longer RTT,
 *   which asks for a larger window), never below {@link MIN_SIZING_RTT_MS}
 *   (what a Node event loop under load takes to turn around).
 * - **Grow**: a frame that *ends* at an edge advertised since the last resize
 *   says the sender ran out of this size of window. If the reader then brings
 *   what sits unread down to a quarter of the window within half a sizing
 *   RTT, and the rate it kept over the last two epochs needs this size, the
 *   window grows to min(4 × size, 2 × size × RTT ÷ latest sample): about
 *   double per round trip while nothing queues (slow start), and the fixed
 *   point 2 × rate × RTT once a window's worth waits in queues. Before the
 *   reader has shown a rate over one epoch, at most one doubling.
 * - **Right-size** (Dynamic Right-Sizing): at each epoch's end a reader that
 *   keeps up gets at least 2 × rate × RTT, plus twice the rate's growth
 *   (Linux's rule: up to 6 × one round trip's delivery) while in slow start —
 *   so the window stays ahead of TCP's own slow start
 *   instead of taking turns with it. While in slow start, an epoch in which
 *   our window held the sender back (and the reader kept up) at least
 *   doubles the window, as TCP's congestion window grows. Slow start ends
 *   when the rate stops growing (BBR's full-pipe test, not counting those
 *   epochs), and the window is trimmed toward 2.5 × rate × RTT.
 * - **Shrink**: a slow reader (half of its window or more sat unread during
 *   an epoch, while its rate needs less than half of it) halves toward
 *   2 × rate × RTT, never below the initial window (RFC 3081 §3.1.4: "slow
 *   readers should get small windows").
 * - **Updates**: a SEQ is due once the edge can move by a quarter of the
 *   window (quic-go's 25 %), at most one per output batch; so a reader that
 *   keeps up never leaves a sender blocked while the window is ≥ 4/3 × BDP.
 * - **Budget**: buffer beyond the initial windows is drawn from a session
 *   budget; when it runs out, a channel below its fair share (budget ÷ busy
 *   channels) takes back buffer from channels above it. Granted window is
 *   never retracted (RFC 3081 §3.1.4 after RFC 1122 §4.2.2.16): a smaller
 *   size only limits what later SEQs advertise.
 * - **Memory budgets** (hostile peers): what a session holds because of its
 *   peer — windows granted and unused, octets unread, replies owed that the
 *   peer's window does not let us send — is charged to `sessionMemoryBudget`
 *   and the listener's {@link MemoryPool}, which cap what a SEQ advertises.
 *
 * The clock is injected (milliseconds), so the policy is a pure unit.
 *
 * @module
 */
import { INITIAL_WINDOW, RecvWindow, seqDiff } from './window.js';

/** Session-wide counters the policy adds to (a subset of the session's stats). */
export interface FlowCounters {
  peerWindowStalls: number;
  windowGrows: number;
  windowShrinks: number;
}

/** Parameters of a session's flow policy (from the session limits). */
export interface FlowLimits {
  /** Window a channel starts with, and the floor it never shrinks below. */
  receiveWindow: number;
  /** Ceiling of one channel's window. */
  maxReceiveWindow: number;
  /** Buffer shared by all channels beyond their initial windows. */
  sessionReceiveBudget: number;
}

/** Fraction of the window consumed before a SEQ is due. */
export const UPDATE_FRACTION = 0.25;

/**
 * Issue 13, control latency under bulk: for this long after a control
 * channel's last inbound frame, the other channels' windows together offer at
 * most {@link CONTROL_BULK_WINDOW} octets, so what the peer may have queued
 * ahead of its next control message (socket buffers included) stays small.
 */
export const CONTROL_HOLD_MS = 1000;
/** What the non-control channels may have unread or in flight, together, while control is active. */
export const CONTROL_BULK_WINDOW = 2 * 1024 * 1024;
/** Smallest RTT windows are sized for (ms): an event loop's turn-around under load. */
export const MIN_SIZING_RTT_MS = 10;
/**
 * Slow start ends after this many epochs in a row in which the consumption
 * rate grew by less than {@link SLOW_START_GROWTH} (BBR's full-pipe test).
 */
const SLOW_START_ROUNDS = 3;
/**
 * Most rate growth over one epoch that counts in slow start: what a transport
 * in its own slow start grows per round trip (TCP 2×). Not more: while this
 * window is what limits the sender, the rate grows as fast as the window
 * does, and a larger gain would feed on itself.
 */
const MAX_RATE_GAIN = 2;
const SLOW_START_GROWTH = 1.25;
/** SEQ departures remembered for RTT sampling and stall detection. */
const PENDING_EDGES = 8;
/**
 * A stall sample at most this many times the smallest says the sender waited
 * for our window with nothing queued (see `epochLimited`).
 */
const LIMITED_SAMPLE = 1.5;
/** Shortest epoch over which a consumption rate is measured (ms). */
const MIN_EPOCH_MS = 1;

/**
 * Round-trip time of the session's transport, from the samples its channels
 * take: the smallest sample (what windows are sized from), and RFC 6298's
 * smoothed RTT and variation (shown to operators).
 */
export class RttEstimator {
  /** Smoothed RTT (ms), 0 until the first sample. */
  srtt = 0;
  /** RTT variation (ms). */
  rttvar = 0;
  /** Smallest sample seen (ms), Infinity until the first. */
  min = Infinity;
  /** Samples taken. */
  count = 0;
  /** The latest sample (ms). */
  last = 0;

  /** Add a round-trip sample in milliseconds (non-negative). */
  sample(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    if (this.count === 0) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
    this.count++;
    this.last = ms;
    if (ms < this.min) this.min = ms;
  }

  /** RTT used to size windows (ms): the smallest sample, at least {@link MIN_SIZING_RTT_MS}; 0 while unknown. */
  get sizing(): number {
    return this.count === 0 ? 0 : Math.max(this.min, MIN_SIZING_RTT_MS);
  }
}

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

// ---------------------------------------------------------------- memory budgets (issue 17)

/**
 * A memory budget shared by several sessions (a listener's `memoryBudget`):
 * the octets they hold together, as each session's {@link SessionFlow.held}.
 */
export class MemoryPool {
  /** Octets held by all sessions drawing on the pool. */
  used = 0;
  /** @param limit octets the sessions may hold together */
  constructor(readonly limit: number) {}
}

/**
 * Fixed cost charged per message waiting behind a blocked reply (octets): the
 * message, responder and stream objects a waiting exchange keeps alive.
 */
export const MESSAGE_COST = 2048;

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
  /**
   * Session-wide slow start (several busy channels on one transport): the
   * session's epoch (start, octets consumed by its channels, their rates),
   * whether any channel's window held the sender back during it, and the
   * full-pipe test over the session's rate. See {@link sessionEpoch}.
   */
  private ssStart = -1;
  private ssBytes = 0;
  private ssRate = 0;
  private ssPrevRate = 0;
  /** @internal Set by a channel whose window held the sender back during this session epoch. */
  ssLimited = false;
  /** Session slow start has not ended (the session's rate still grows). */
  slowStart = true;
  /**
   * @internal The last session epoch had two or more busy channels and the
   * session is in slow start: the session, not each channel, doubles them.
   */
  sizesTogether = false;
  private ssFull = 0;
  private ssFlat = 0;
  /** Bound on {@link held} (the session's `sessionMemoryBudget`; Infinity: none). */
  memoryBudget = Infinity;
  /** The listener-wide budget this session also draws on, if any. */
  pool: MemoryPool | undefined;
  /** When a control channel last received a frame (see {@link CONTROL_HOLD_MS}). */
  controlAt = -Infinity;

  constructor(limits: FlowLimits, now: () => number = () => performance.now(), counters?: FlowCounters) {
    this.limits = limits;
    this.now = now;
    this.counters = counters ?? { peerWindowStalls: 0, windowGrows: 0, windowShrinks: 0 };
  }

  /** @internal Add `delta` octets to what the session (and its pool) holds. */
  charge(delta: number): void {
    this.held += delta;
    if (this.pool) this.pool.used += delta;
  }

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
      // A control channel is active: the non-control channels share CONTROL_BULK_WINDOW.
      const share = Math.max(INITIAL_WINDOW, Math.floor(CONTROL_BULK_WINDOW / Math.max(1, this.members.size)));
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

  /** Flow state for a new channel; `tune: false` keeps its window fixed (channel 0). */
  open(tune = true): ChannelFlow {
    const cf = new ChannelFlow(this, Math.max(this.limits.receiveWindow, 4096), tune);
    if (tune) this.members.add(cf);
    return cf;
  }

  /** @internal Give a closing channel's extra buffer back. */
  close(cf: ChannelFlow): void {
    if (!this.members.delete(cf)) return;
    this.budgetUsed = Math.max(0, this.budgetUsed - this.extra(cf));
  }

  /**
   * @internal A channel consumed `n` octets at `now`: the session's epoch.
   * Channels sharing one transport each see only a share of its rate, and
   * each channel's window-limited signals are blurred by what the others
   * queue ahead of it at the sender; so while the session's rate grows, the
   * session sizes its busy channels together, as one channel would be sized:
   * at the end of each session epoch (at least one measured RTT) in which
   * two or more channels consumed, Σ ← max(2 × rate × RTT × (1 + 2 (g − 1)),
   * min(2 × Σ, 8 × rate × RTT) if any channel's window held the sender
   * back and the session's rate grew), where Σ is the sum of the busy
   * channels' windows and g the session rate's growth (1 to 2);
   * the growth goes to the busy channels that keep up (at most a quarter of
   * their window sat unread during the epoch), smallest first, up to a
   * common level (water-filling), so no channel is left behind. The
   * doubling needs the session's rate to have grown by 25 % over its best;
   * session slow start ends with the session's own full-pipe test (3 epochs
   * in a row without that growth).
   */
  sessionEpoch(cf: ChannelFlow, n: number, now: number): void {
    cf.ssBytes += n;
    this.ssBytes += n;
    if (this.rtt.count === 0) return;
    if (this.ssStart < 0) this.ssStart = now;
    const elapsed = now - this.ssStart;
    if (elapsed < Math.max(this.rtt.min, MIN_EPOCH_MS)) return;
    const rate = this.ssBytes / elapsed;
    this.ssPrevRate = this.ssRate;
    this.ssRate = rate;
    const limited = this.ssLimited;
    // Busy: consumed at least a quarter of an equal share of the epoch's
    // octets (a control channel's trickle beside a bulk one is not).
    let consuming = 0;
    for (const m of this.members) if (m.ssBytes > 0) consuming++;
    const floor = this.ssBytes / (4 * Math.max(1, consuming));
    let busy = 0;
    let sum = 0;
    for (const m of this.members) {
      if (m.ssBytes === 0 || m.ssBytes < floor) continue;
      busy++;
      sum += m.window.size;
    }
    // The session's full-pipe test counts every epoch: a channel's window
    // held its sender back in almost every epoch of a session of several
    // channels, so "limited" says little about the session; and while the
    // sum is what limits the transport, it doubles, so the rate grows.
    let growing = false;
    if (this.slowStart && busy >= 2) {
      if (rate >= SLOW_START_GROWTH * this.ssFull) {
        this.ssFull = rate;
        this.ssFlat = 0;
        growing = true;
      } else if (++this.ssFlat >= SLOW_START_ROUNDS) {
        this.slowStart = false;
      }
    }
    this.sizesTogether = this.slowStart && busy >= 2;
    if (this.sizesTogether) {
      const g = this.ssPrevRate > 0 ? Math.min(MAX_RATE_GAIN, Math.max(1, rate / this.ssPrevRate)) : 1;
      let want = 2 * rate * this.rtt.sizing * (1 + 2 * (g - 1));
      // Double only while the session's rate still grows (once the transport
      // — its congestion window, its send buffer — is what limits, it does
      // not), and never past 8 × what one round trip delivers: while the
      // windows are what limits, the sum is about twice that (it doubled
      // since the octets now arriving were granted); far more says the
      // windows are not the limit, whatever one channel's signals say.
      if (limited && growing) want = Math.max(want, Math.min(2 * sum, 8 * rate * this.rtt.sizing));
      if (want > sum) {
        // Fill up from the smallest window: raise the busy channels that keep
        // up to a common level L so that the sum becomes `want` (those above
        // L keep theirs): an equal share for the ones left behind, and a sum
        // no larger than one channel's window would be.
        const grow: ChannelFlow[] = [];
        let fixed = 0;
        for (const m of this.members) {
          if (m.ssBytes === 0 || m.ssBytes < floor) continue;
          if (m.ssPeak <= m.window.size / 4) grow.push(m);
          else fixed += m.window.size;
        }
        grow.sort((x, y) => x.window.size - y.window.size);
        let rest = want - fixed;
        let level = 0;
        for (let i = 0; i < grow.length; i++) {
          level = rest / (grow.length - i);
          const w = (grow[i] as ChannelFlow).window.size;
          if (w <= level) break;
          rest -= w; // above the level: keeps its size
          level = 0;
        }
        for (const m of grow) if (level > m.window.size) m.sessionGrow(Math.floor(level));
      }
    }
    this.ssStart = now;
    this.ssBytes = 0;
    this.ssLimited = false;
    for (const m of this.members) {
      m.ssBytes = 0;
      m.ssPeak = m.window.buffered;
    }
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
  /** The channel's profile is a control profile (see {@link CONTROL_HOLD_MS}). */
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
    if (this.control) this.session.controlAt = this.session.now();
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
        if (sample <= LIMITED_SAMPLE * this.session.rtt.min) this.epochLimited = this.session.ssLimited = true;
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
    if (end === w.edge) this.epochLimited = this.session.ssLimited = true;
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
    if (this.slowStart) {
      if (rate >= SLOW_START_GROWTH * this.fullRate) {
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
      if (limited && this.slowStart && !this.session.sizesTogether && (peak <= size / 4 || tookHalf)) want = Math.max(want, 2 * size);
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
    const u = w.takeUpdate(force ? 1 : Math.max(1, Math.floor(w.size * UPDATE_FRACTION)), held, this.session.windowCap(this, held));
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
