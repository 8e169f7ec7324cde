/**
 * @internal
 * A token bucket on the core's injected clock, for the limits a hostile peer
 * meets (issue 17, spec/limits.md): channel starts per second, and events
 * that carry no progress per second.
 *
 * @module
 */

/** @internal `rate` tokens per second up to `burst`; full at its first use. */
export class RateBucket {
  private tokens = 0;
  /** Not used yet: it starts full at its first use. */
  private fresh = true;
  private at = 0;
  readonly rate: number;
  readonly burst: number;

  constructor(rate: number, burst: number) {
    this.rate = rate;
    this.burst = burst;
  }

  private refill(now: number): number {
    this.tokens = this.fresh ? this.burst : Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.fresh = false;
    this.at = now;
    return this.tokens;
  }

  /** Take one token if there is a whole one (the start-rate limit). */
  take(now: number): boolean {
    if (this.refill(now) < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Charge one token whether or not there is one, and return what is left:
   * negative once the bucket is overdrawn (the no-progress limit: the caller
   * refuses, then terminates past a further burst).
   */
  charge(now: number): number {
    this.refill(now);
    return (this.tokens -= 1);
  }

  /** The level at `now` without charging (negative: overdrawn). */
  level(now: number): number {
    return this.fresh ? this.burst : this.tokens + ((now - this.at) / 1000) * this.rate;
  }
}
