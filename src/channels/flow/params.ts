/**
 * The flow policy's parameters: the session limits it reads, the counters it
 * adds to, and its constants (see `spec/flow-control.md`).
 *
 * @module
 */

/** Session-wide counters the policy adds to (a subset of the session's stats). */
export interface FlowCounters {
  peerWindowStalls: number;
  peerWindowStallsIdle: number;
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
 * most {@link CONTROL_BULK_WINDOW} octets beyond what their rates need over
 * the path's shortest round trip, so what the peer may have queued ahead of
 * its next control message (socket buffers included) stays small.
 */
export const CONTROL_HOLD_MS = 1000;
/** What the non-control channels may have unread or in flight, together, beyond the path's BDP, while control is active. */
export const CONTROL_BULK_WINDOW = 1024 * 1024;
/**
 * While control is active on a path whose shortest RTT is at least
 * {@link MIN_SIZING_RTT_MS}, a channel past its slow start keeps this many
 * times its best rate × that RTT (beyond its part of
 * {@link CONTROL_BULK_WINDOW}): a sender whose SEQs come every quarter window
 * needs 4/3 × rate × RTT to keep its rate. Counted from the best rate, not the
 * last: a share of the last rate would lower the rate it is measured from,
 * epoch after epoch (1 × the last rate took one channel at 50 ms to a third
 * of the link within a second of steady control traffic).
 */
export const CONTROL_PATH_GAIN = 1.5;
/**
 * The same in slow start: the rate measured over the epoch just past lags a
 * transport that doubles per round trip (about 2.8 × by the time a SEQ
 * advertising the share reaches the sender), and its window must still double
 * each round trip; with 2 × the window doubled every second round trip only.
 */
export const CONTROL_RAMP_GAIN = 4;
/** Smallest RTT windows are sized for (ms): an event loop's turn-around under load. */
export const MIN_SIZING_RTT_MS = 10;
/**
 * Slow start ends after this many epochs in a row in which the consumption
 * rate grew by less than {@link SLOW_START_GROWTH} (BBR's full-pipe test).
 */
export const SLOW_START_ROUNDS = 3;
/**
 * Most rate growth over one epoch that counts in slow start: what a transport
 * in its own slow start grows per round trip (TCP 2×). Not more: while this
 * window is what limits the sender, the rate grows as fast as the window
 * does, and a larger gain would feed on itself.
 */
export const MAX_RATE_GAIN = 2;
export const SLOW_START_GROWTH = 1.25;
/**
 * In slow start, while the reader keeps up and its rate grows, a channel's
 * window doubles per epoch up to this many times what the last epoch
 * delivered per round trip (rate × RTT): the rate lags a transport that
 * doubles per round trip by about two doublings when the SEQ lands, and the
 * window covers twice the delivery per round trip until the next resize.
 */
export const SLOW_START_AHEAD = 16;
/** @internal SEQ departures remembered for RTT sampling and stall detection. */
export const PENDING_EDGES = 8;
/**
 * A stall sample at most this many times the smallest says the sender waited
 * for our window with nothing queued (see `epochLimited`).
 */
export const LIMITED_SAMPLE = 1.5;
/**
 * Shortest epoch over which a consumption rate is measured (ms). On a
 * sub-millisecond path (loopback, a LAN) the first rate, which gates growth
 * beyond the first doubling, then comes after a quarter millisecond: with
 * 1 ms a loopback sender ran out of a 128 KiB window about five times while
 * it waited for one.
 */
export const MIN_EPOCH_MS = 0.25;
