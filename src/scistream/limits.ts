/**
 * {@link SciStreamLimits}: the S2CS's limits on what a session may ask for
 * (`num_conn`, striping, rate, sessions), defined and validated here and
 * nowhere else. {@link resolveSciStreamLimits} runs once when an S2CS starts;
 * its result goes to the control registry (which refuses a REQUEST beyond
 * them with NO_RESOURCE or RATE_LIMIT, the limit stated in `details`), to the
 * data server (which refuses a path beyond them), and to the CLI's flags.
 *
 * Three kinds of bound, kept apart:
 *
 * - the wire syntax ({@link NUM_CONN_WIRE_MAX}): what a control message may
 *   carry at all — outside it the message is BAD_FORMAT (501);
 * - the ceilings ({@link NUM_CONN_CEILING}, {@link CONNECTIONS_CEILING}):
 *   what this implementation's data plane can carry per path; no
 *   configuration may exceed them;
 * - the configured limits ({@link SciStreamLimits}), within the ceilings —
 *   what a client sees in a refusal.
 *
 * @module
 */
import { BeepOperationError, ErrorCodes } from '../errors.js';

/** Largest `num_conn` (and `connections`) a control message may carry: the field's syntax (draft §6, a 16-bit count). */
export const NUM_CONN_WIRE_MAX = 65535;

/**
 * Most application connections per data path this implementation carries.
 * Each stream costs up to two data-control notices in flight (`<ready>`,
 * `<reset>`); 512 keeps a burst within the 1024 MSGs a channel may have
 * outstanding (`maxOutstanding`).
 */
export const NUM_CONN_CEILING = 512;

/**
 * Most TCP connections one outbound path stripes its channels over
 * (`connections`). Each is a full BEEP session with its own TLS handshake,
 * receive budget and inbound listener slot; more than 16 buys nothing a wider
 * window would not.
 */
export const CONNECTIONS_CEILING = 16;

/** What an S2CS lets one session (and one identity) ask for. */
export interface SciStreamLimits {
  /** Largest `num_conn` of a REQUEST: 1–{@link NUM_CONN_CEILING} (default 64). Beyond: NO_RESOURCE. */
  readonly maxNumConn: number;
  /** Most TCP connections a data path stripes over: 1–{@link CONNECTIONS_CEILING} (default 16), never more than `maxNumConn`. Beyond: NO_RESOURCE. */
  readonly maxConnections: number;
  /** Largest `rate` (octets/s) a REQUEST may ask for; `undefined` (default): no cap. Beyond: NO_RESOURCE. */
  readonly maxRate: number | undefined;
  /** Most sessions (REQUESTs accepted and not released) at once (default 1024). Beyond: NO_RESOURCE. */
  readonly maxSessions: number;
  /** Most sessions one identity holds at once (default 64). Beyond: RATE_LIMIT. */
  readonly maxSessionsPerIdentity: number;
}

/** The limits of an S2CS configured with nothing. */
export const DEFAULT_SCISTREAM_LIMITS: Readonly<SciStreamLimits> = Object.freeze({
  maxNumConn: 64,
  maxConnections: CONNECTIONS_CEILING,
  maxRate: undefined,
  maxSessions: 1024,
  maxSessionsPerIdentity: 64,
});

function integer(name: keyof SciStreamLimits, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new BeepOperationError(ErrorCodes.INVALID_ARGUMENT, `SciStream limit ${name} must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * The one validation of SciStream limits: `given` over
 * {@link DEFAULT_SCISTREAM_LIMITS}, each checked against its range. Throws a
 * {@link BeepOperationError} `BEEP_ERR_INVALID_ARGUMENT` naming the limit and
 * its range. The result is frozen.
 */
export function resolveSciStreamLimits(given: Partial<SciStreamLimits> = {}): Readonly<SciStreamLimits> {
  const pick = <K extends keyof SciStreamLimits>(k: K): SciStreamLimits[K] => (given[k] === undefined ? DEFAULT_SCISTREAM_LIMITS[k] : given[k]) as SciStreamLimits[K];
  const maxNumConn = integer('maxNumConn', pick('maxNumConn'), NUM_CONN_CEILING);
  const maxConnections = Math.min(integer('maxConnections', pick('maxConnections'), CONNECTIONS_CEILING), maxNumConn);
  const maxRate = pick('maxRate');
  if (maxRate !== undefined && !(typeof maxRate === 'number' && Number.isFinite(maxRate) && maxRate > 0)) {
    throw new BeepOperationError(ErrorCodes.INVALID_ARGUMENT, `SciStream limit maxRate must be a positive number of octets per second, got ${JSON.stringify(maxRate)}`);
  }
  return Object.freeze({
    maxNumConn,
    maxConnections,
    maxRate,
    maxSessions: integer('maxSessions', pick('maxSessions'), Number.MAX_SAFE_INTEGER),
    maxSessionsPerIdentity: integer('maxSessionsPerIdentity', pick('maxSessionsPerIdentity'), Number.MAX_SAFE_INTEGER),
  });
}

/** The older one-limit options of the control server, each a shorthand for one of {@link SciStreamLimits}. */
export interface SciStreamLimitShorthands {
  /** `maxNumConn`. */
  maxConnPerSession?: number | undefined;
  maxRate?: number | undefined;
  maxSessions?: number | undefined;
  maxSessionsPerIdentity?: number | undefined;
  /** The limits themselves; they win over the shorthands. */
  limits?: Partial<SciStreamLimits> | undefined;
}

/** {@link resolveSciStreamLimits} of `o.limits` over the shorthand options. */
export function sciStreamLimitsOf(o: SciStreamLimitShorthands): Readonly<SciStreamLimits> {
  return resolveSciStreamLimits({
    ...(o.maxConnPerSession === undefined ? {} : { maxNumConn: o.maxConnPerSession }),
    ...(o.maxRate === undefined ? {} : { maxRate: o.maxRate }),
    ...(o.maxSessions === undefined ? {} : { maxSessions: o.maxSessions }),
    ...(o.maxSessionsPerIdentity === undefined ? {} : { maxSessionsPerIdentity: o.maxSessionsPerIdentity }),
    ...o.limits,
  });
}
