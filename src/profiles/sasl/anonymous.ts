/**
 * ANONYMOUS (RFC 4505): the client is let in without credentials, optionally
 * leaving a trace token (an e-mail address or opaque text, at most 255 characters).
 * Off unless the server enables it; the identity is always `anonymous`, with
 * `mechanism: 'ANONYMOUS'` so it can never be mistaken for a user of that name.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../../errors.js';
import { SaslReasons, decodeUtf8, failure, guardedServer } from './common.js';
import type { SaslClientMechanismFactory, SaslServerMechanismFactory, SaslServerStep } from './types.js';

/** Mechanism name of ANONYMOUS. */
export const ANONYMOUS = 'ANONYMOUS';
/** The identity an ANONYMOUS exchange yields. */
export const ANONYMOUS_IDENTITY = 'anonymous';
/** Longest trace token, in characters (RFC 4505 §2). */
export const MAX_TRACE_LENGTH = 255;

/**
 * Whether `trace` is an acceptable trace token: at most 255 characters (code
 * points), no control characters (RFC 4505 §3 prepares it with the `trace` profile,
 * which prohibits them).
 */
export function isValidTrace(trace: string): boolean {
  // eslint-disable-next-line no-control-regex
  return [...trace].length <= MAX_TRACE_LENGTH && !/[\u0000-\u001F\u007F-\u009F\u2028\u2029]/.test(trace);
}

/** Options of {@link anonymousServer}. */
export interface AnonymousServerOptions {
  /** Accept ANONYMOUS. Default false: every attempt fails with 534. */
  readonly enabled?: boolean;
}

/** The ANONYMOUS server mechanism factory; disabled unless `enabled: true`. */
export function anonymousServer(options: AnonymousServerOptions = {}): SaslServerMechanismFactory {
  const enabled = options.enabled === true;
  return {
    name: ANONYMOUS,
    available: () => enabled,
    create() {
      let asked = false;
      return guardedServer(ANONYMOUS, (input): SaslServerStep => {
        if (!enabled) return failure(534, SaslReasons.DISABLED);
        if (input === undefined) {
          if (asked) return failure(535, SaslReasons.MALFORMED);
          asked = true;
          return { status: 'continue', challenge: Buffer.alloc(0) };
        }
        // message = [ email / token ], UTF-8, ≤ 255 characters (RFC 4505 §2).
        const trace = input.length > MAX_TRACE_LENGTH * 4 ? undefined : decodeUtf8(input);
        if (trace === undefined || !isValidTrace(trace)) return failure(535, SaslReasons.MALFORMED);
        const identity =
          trace === '' ? { authcid: ANONYMOUS_IDENTITY, mechanism: ANONYMOUS } : { authcid: ANONYMOUS_IDENTITY, mechanism: ANONYMOUS, trace };
        return { status: 'success', identity };
      }, MAX_TRACE_LENGTH * 4);
    },
  };
}

/** The ANONYMOUS client mechanism factory. Throws `BEEP_ERR_INVALID_ARGUMENT` for a bad trace. */
export function anonymousClient(options: { readonly trace?: string } = {}): SaslClientMechanismFactory {
  const trace = options.trace ?? '';
  if (typeof trace !== 'string' || !isValidTrace(trace)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'anonymousClient: trace must be at most 255 characters without control characters');
  }
  return {
    name: ANONYMOUS,
    available: () => true,
    create() {
      let sent = false;
      return {
        name: ANONYMOUS,
        async initial() {
          sent = true;
          return Buffer.from(trace, 'utf8');
        },
        async step(challenge) {
          if (sent || challenge.length > 0) return { status: 'failure', reason: 'unexpected challenge' };
          sent = true;
          return { status: 'continue', response: Buffer.from(trace, 'utf8') };
        },
        async finish() {
          return { status: 'success' };
        },
      };
    },
  };
}
