/**
 * Slows down password guessing: counts authentication failures per session and per
 * remote address over a sliding window; past a limit, further attempts fail at once
 * with 454 (temporary failure) until old failures age out of the window.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../../errors.js';
import { SaslReasons, failure } from './common.js';
import type { SaslServerMechanism } from './types.js';

/** Options of {@link AuthFailureLimiter}. */
export interface AuthFailureLimiterOptions {
  /** Failures allowed per session within the window. Default 3. */
  readonly maxPerSession?: number;
  /** Failures allowed per remote address within the window. Default 10. */
  readonly maxPerAddress?: number;
  /** The window, ms. Default 60,000. */
  readonly windowMs?: number;
  /** Most sessions, and most addresses, tracked at once; the least recently failed are forgotten first. Default 10,000. */
  readonly maxTracked?: number;
  /** Clock in ms (injectable for tests). Default `Date.now`. */
  readonly now?: () => number;
}

/** Who is attempting: the session (any object or string identifying it) and its address. */
export interface AuthAttemptKey {
  /** Identifies the BEEP session. */
  readonly session: object | string;
  /** The remote address, if known. */
  readonly address?: string;
}

/** The limiter's verdict. */
export type LimitVerdict = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `AuthFailureLimiter: ${name} must be a positive integer`);
  return v;
}

/** Per-session and per-address failure counting over a sliding window. */
export class AuthFailureLimiter {
  private readonly maxPerSession: number;
  private readonly maxPerAddress: number;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;
  private readonly sessions = new Map<object | string, number[]>();
  private readonly addresses = new Map<string, number[]>();

  /** Throws `BEEP_ERR_INVALID_ARGUMENT` for a limit or window that is not a positive integer. */
  constructor(options: AuthFailureLimiterOptions = {}) {
    this.maxPerSession = positive('maxPerSession', options.maxPerSession ?? 3);
    this.maxPerAddress = positive('maxPerAddress', options.maxPerAddress ?? 10);
    this.windowMs = positive('windowMs', options.windowMs ?? 60_000);
    this.maxTracked = positive('maxTracked', options.maxTracked ?? 10_000);
    this.now = options.now ?? Date.now;
  }

  /** Timestamps of `key`'s failures still inside the window (the list is pruned in place). */
  private recent<K>(map: Map<K, number[]>, key: K, t: number): number[] {
    const list = map.get(key);
    if (list === undefined) return [];
    while (list.length > 0 && (list[0] ?? 0) <= t - this.windowMs) list.shift();
    if (list.length === 0) map.delete(key);
    return list;
  }

  /** May `key` attempt authentication now? */
  check(key: AuthAttemptKey): LimitVerdict {
    const t = this.now();
    let until = -Infinity;
    const s = this.recent(this.sessions, key.session, t);
    if (s.length >= this.maxPerSession) until = Math.max(until, (s[s.length - this.maxPerSession] ?? t) + this.windowMs);
    if (key.address !== undefined) {
      const a = this.recent(this.addresses, key.address, t);
      if (a.length >= this.maxPerAddress) until = Math.max(until, (a[a.length - this.maxPerAddress] ?? t) + this.windowMs);
    }
    return until === -Infinity ? { allowed: true } : { allowed: false, retryAfterMs: Math.max(1, until - t) };
  }

  /** Counts one failed attempt by `key`. */
  recordFailure(key: AuthAttemptKey): void {
    const t = this.now();
    const push = <K>(map: Map<K, number[]>, k: K, max: number): void => {
      const list = this.recent(map, k, t);
      list.push(t);
      if (list.length > max) list.splice(0, list.length - max);
      map.delete(k); // re-insert: Map order is then least recently failed first
      map.set(k, list);
      while (map.size > this.maxTracked) {
        const oldest = map.keys().next();
        if (oldest.done === true) break;
        map.delete(oldest.value);
      }
    };
    push(this.sessions, key.session, this.maxPerSession);
    if (key.address !== undefined) push(this.addresses, key.address, this.maxPerAddress);
  }

  /** Forgets a session's failures (call when the session ends). Address failures stay. */
  endSession(session: object | string): void {
    this.sessions.delete(session);
  }

  /**
   * Wraps a server mechanism for one attempt by `key`: if the limit is reached the
   * first step fails at once with 454; a 535 outcome is counted as a failure.
   */
  guard(mechanism: SaslServerMechanism, key: AuthAttemptKey): SaslServerMechanism {
    let first = true;
    return {
      name: mechanism.name,
      step: async (input) => {
        if (first) {
          first = false;
          if (!this.check(key).allowed) return failure(454, SaslReasons.RATE_LIMITED);
        }
        const result = await mechanism.step(input);
        if (result.status === 'failure' && result.code === 535) this.recordFailure(key);
        return result;
      },
    };
  }
}
