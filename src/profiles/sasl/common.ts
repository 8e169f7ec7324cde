/**
 * Helpers shared by the SASL mechanisms: the fixed failure reasons, the guarded
 * server state machine (never throws, one step at a time, nothing after a final
 * outcome), strict UTF-8 and base64 decoding, SASLprep and constant-time comparison.
 *
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import type { SaslFailureCode, SaslServerFailure, SaslServerMechanism, SaslServerStep } from './types.js';

/**
 * Every failure reason a server mechanism can give. They are fixed texts: none ever
 * includes peer input, a password, token, key, proof or anything derived from one.
 */
export const SaslReasons = {
  /** Wrong password, unknown user, bad proof or invalid token — deliberately one text. */
  AUTH_FAILED: 'authentication failed',
  /** The client's message did not follow the mechanism's syntax. */
  MALFORMED: 'malformed SASL message',
  /** PLAIN was attempted without TLS (RFC 4616 §4). */
  PLAIN_NEEDS_TLS: 'PLAIN requires TLS',
  /** OAUTHBEARER was attempted without TLS (RFC 7628 §5). */
  BEARER_NEEDS_TLS: 'OAUTHBEARER requires TLS',
  /** A credential store, validator or callback failed; the client may retry later. */
  TEMPORARY: 'temporary authentication failure',
  /** The failure limiter refused the attempt. */
  RATE_LIMITED: 'too many authentication failures; try again later',
  /** The mechanism is not enabled on this server. */
  DISABLED: 'mechanism not enabled',
  /** A step after the exchange ended, or while the previous step was running. */
  OUT_OF_SEQUENCE: 'unexpected SASL step',
  /** The authenticated identity may not act as the requested authorization identity. */
  NOT_AUTHORIZED: 'not authorized to act as the requested identity',
  /** The channel binding did not match or was refused (RFC 5802 §6). */
  CHANNEL_BINDING: 'channel binding mismatch',
  /** EXTERNAL without a usable client certificate. */
  NO_CERTIFICATE: 'no usable client certificate',
} as const;

/** A {@link SaslServerFailure} with a fixed reason. */
export function failure(code: SaslFailureCode, reason: (typeof SaslReasons)[keyof typeof SaslReasons]): SaslServerFailure {
  return { status: 'failure', code, reason };
}

/** Largest client message any bundled server mechanism accepts, in octets. */
export const MAX_CLIENT_MESSAGE = 16 * 1024;

/**
 * Wraps a mechanism's step function into a {@link SaslServerMechanism} that never
 * rejects (a thrown error becomes 454: it came from a store, validator or callback),
 * refuses oversized input, overlapping steps and any step after a final outcome.
 */
export function guardedServer(
  name: string,
  run: (input: Buffer | undefined) => Promise<SaslServerStep> | SaslServerStep,
  maxInput = MAX_CLIENT_MESSAGE,
): SaslServerMechanism {
  let done = false;
  let busy = false;
  return {
    name,
    async step(input) {
      if (done || busy) {
        done = true;
        return failure(535, SaslReasons.OUT_OF_SEQUENCE);
      }
      if (input !== undefined && (!Buffer.isBuffer(input) || input.length > maxInput)) {
        done = true;
        return failure(535, SaslReasons.MALFORMED);
      }
      busy = true;
      let result: SaslServerStep;
      try {
        result = await run(input);
      } catch {
        result = failure(454, SaslReasons.TEMPORARY);
      }
      busy = false;
      if (result.status !== 'continue') done = true;
      return result;
    },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes strict UTF-8 (no invalid or overlong sequences); `undefined` if invalid. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

type SaslPrep = (input: string, options?: { allowUnassigned?: boolean }) => string;
let saslprepImpl: SaslPrep | null = null;

/**
 * The `saslprep` package, loaded on first use: its Unicode tables are about
 * 1.8 MB of V8 heap (large arrays of pointers) that every importer of the
 * library would otherwise carry, and a heap that size makes V8 run a full
 * (Mark-Compact) GC every few tens of MiB a receiver reads.
 */
function saslprepFn(): SaslPrep {
  saslprepImpl ??= createRequire(import.meta.url)('saslprep') as SaslPrep;
  return saslprepImpl;
}

/**
 * SASLprep (RFC 4013) of `s`; `undefined` if it contains prohibited characters or
 * prepares to the empty string. `stored` selects the stored-string rules (unassigned
 * code points refused) rather than the query rules.
 */
export function prep(s: string, stored = false): string | undefined {
  try {
    const out = saslprepFn()(s, { allowUnassigned: !stored });
    return out.length > 0 ? out : undefined;
  } catch {
    return undefined;
  }
}

/** Strict base64 (RFC 4648 §4, padded, canonical); `undefined` if `s` is not. */
export function decodeBase64(s: string): Buffer | undefined {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const out = Buffer.from(s, 'base64');
  return out.toString('base64') === s ? out : undefined;
}

/** Constant-time equality of two byte strings (length is not hidden). */
export function safeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
