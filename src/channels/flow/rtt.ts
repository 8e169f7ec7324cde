/**
 * The session's round-trip estimate, from the samples its channels take.
 *
 * @module
 */
import { MIN_SIZING_RTT_MS } from './params.js';

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
