/**
 * {@link DiscoveryError}: the one error type of `src/discovery/`, with a
 * stable `discoveryCode` (programs switch on it) next to the library-wide
 * BeepError `code`.
 *
 * @module
 */
import { BeepError, ErrorCodes, type ErrorCode } from '../errors.js';

/** Every discovery error code and the library-wide code it travels with. */
export const DISCOVERY_CODES = Object.freeze({
  /** A name or URI given to the resolver is malformed (never looked up). */
  BAD_NAME: ErrorCodes.INVALID_ARGUMENT,
  /** The name does not exist or has no record of the type asked (NXDOMAIN, NODATA). */
  NOT_FOUND: ErrorCodes.TRANSPORT,
  /** No DNS server answered in time, or every server failed (SERVFAIL, refused, timeout). */
  LOOKUP_FAILED: ErrorCodes.TRANSPORT,
  /** A record was there but unusable (e.g. an SRV target of ".": the service is decidedly not available, RFC 2782). */
  BAD_RECORD: ErrorCodes.PROTOCOL,
});

/** One discovery error code. */
export type DiscoveryErrorCode = keyof typeof DISCOVERY_CODES;

/** A discovery failure: `discoveryCode`, the DNS `name` asked and, for a lookup, the resolver's error code (`dnsCode`, e.g. `ENOTFOUND`). */
export class DiscoveryError extends BeepError {
  /** The stable discovery code. */
  readonly discoveryCode: DiscoveryErrorCode;
  /** The DNS name concerned. */
  readonly dnsName: string;
  /** The node:dns error code (`ENOTFOUND`, `ENODATA`, `ETIMEOUT`, …), when a lookup failed. */
  readonly dnsCode: string | undefined;

  /** An error with a discovery code, the name concerned and a human message. */
  constructor(code: DiscoveryErrorCode, name: string, message: string, options: { dnsCode?: string; cause?: unknown; beepCode?: ErrorCode } = {}) {
    super(options.beepCode ?? DISCOVERY_CODES[code], `${code}: ${message}`, { cause: options.cause });
    this.discoveryCode = code;
    this.dnsName = name;
    this.dnsCode = options.dnsCode;
  }
}
