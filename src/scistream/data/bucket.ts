/**
 * A token bucket in octets per second, shared by every stream of one
 * direction of a data path (SciStream's `rate`).
 *
 * It works on debt: a chunk always passes, the tokens it cost are taken (the
 * count may go negative), and the caller pauses its source for as long as the
 * debt takes to refill. Chunks larger than the bucket therefore pass too, and
 * the long-run rate is exact whatever the chunk sizes.
 *
 * Two caps: after an idle spell at most `burst` may pass at once; a source
 * that was paused for debt and resumed late (a late timer, a busy event loop)
 * may catch up to `catchUp`, so scheduling delays do not lower the rate.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../../errors.js';
import { performance } from 'node:perf_hooks';

/** Options of a {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Most tokens gathered while idle: what passes at once after a pause (default 50 ms worth, 1 octet to 4 MiB). */
  burst?: number;
  /** Most tokens gathered while in debt: how far a source resumed late may catch up (default 250 ms worth, at least `burst`, at most 64 MiB). */
  catchUp?: number;
  /** Tokens at the first use (default 0: no initial burst, the rate holds from the first octet). */
  initial?: number;
  /** Clock in milliseconds (default `performance.now`); inject one to test. */
  now?: () => number;
}

/** Default idle burst for a rate: 50 ms of traffic, between 1 octet and 4 MiB. */
export function defaultBurst(rate: number): number {
  return Math.min(4 * 1024 * 1024, Math.max(1, Math.floor(rate * 0.05)));
}

/** Default catch-up allowance for a rate: 250 ms of traffic, between 1 octet and 64 MiB. */
export function defaultCatchUp(rate: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(1, Math.floor(rate * 0.25)));
}

/** Rate limiter: {@link take} returns how long to pause, never blocks. */
export class TokenBucket {
  /** Octets per second. */
  readonly rate: number;
  /** Cap of the tokens gathered while idle. */
  readonly burst: number;
  /** Cap of the tokens gathered while paying a debt. */
  readonly catchUp: number;
  private tokens: number;
  private last: number | undefined;
  private readonly now: () => number;

  constructor(rate: number, options: TokenBucketOptions = {}) {
    if (!(Number.isFinite(rate) && rate > 0)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `rate must be a positive number of octets per second, got ${rate}`);
    this.rate = rate;
    this.burst = options.burst ?? defaultBurst(rate);
    if (!(this.burst > 0)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'burst must be positive');
    this.catchUp = Math.max(this.burst, options.catchUp ?? defaultCatchUp(rate));
    this.now = options.now ?? (() => performance.now());
    this.tokens = Math.min(this.burst, options.initial ?? 0);
  }

  private refill(): void {
    const t = this.now();
    // Time before the first use earns nothing.
    if (this.last === undefined) {
      this.last = t;
      return;
    }
    if (t > this.last) {
      const cap = this.tokens < 0 ? this.catchUp : this.burst;
      this.tokens = Math.min(Math.max(cap, this.tokens), this.tokens + ((t - this.last) * this.rate) / 1000);
      this.last = t;
    }
  }

  /** Octets that may pass now without waiting (negative: debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /**
   * Account for `n` octets that are passing now; returns the milliseconds the
   * caller should wait before sending more (0 when it may go on at once).
   */
  take(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
}
