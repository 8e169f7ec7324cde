/**
 * The data plane's TLS pre-shared key, derived from the SciStream session uid
 * (draft-scistream-protocol-02 §5.2.2: "Authentication between SciStream Data
 * Servers is based on a shared secret, the UID. This is used as a Pre-Shared
 * Key (PSK) for the TLS tunnel establishment").
 *
 * The uid itself never goes on the wire: both the key and the PSK identity
 * come out of HKDF-SHA256 (RFC 5869) over the uid, with different `info`
 * strings, so the identity (sent in clear in the ClientHello) reveals nothing
 * of the uid or of the key.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { hkdfSync, timingSafeEqual } from 'node:crypto';
import { BeepError, ErrorCodes } from '../../errors.js';

/** HKDF salt of every data-plane derivation (RFC 5869 §3.1: a non-secret, fixed salt). */
export const PSK_SALT = 'urn:beepstream:scistream:data:1';
/** HKDF `info` of the TLS-PSK key. */
export const PSK_KEY_INFO = 'scistream data-plane tls-psk key';
/** HKDF `info` of the TLS-PSK identity. */
export const PSK_IDENTITY_INFO = 'scistream data-plane tls-psk identity';
/** Octets of the derived key (a TLS 1.3 SHA-256 suite's hash length). */
export const PSK_KEY_LENGTH = 32;
/** Octets of the derived identity, sent as twice as many lower-case hex digits. */
export const PSK_IDENTITY_LENGTH = 16;

/** A TLS-PSK identity and key, as `startTls({ psk })` takes them. */
export interface DataPsk {
  /** 32 lower-case hex digits; safe to send in clear. */
  identity: string;
  /** 32 octets. */
  key: Buffer;
}

/** HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` octets. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array | string, info: Uint8Array | string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

const HEX = /^[0-9a-f]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The octets of a session uid: hex (at least 32 digits, i.e. 128 bits —
 * draft §5.2.2 — an even number, at most 128), case-insensitive; the 8-4-4-4-12
 * UUID spelling is accepted too (dashes dropped). Anything else throws
 * `BEEP_ERR_INVALID_ARGUMENT`.
 */
export function uidOctets(uid: string): Buffer {
  let s = typeof uid === 'string' ? uid.trim().toLowerCase() : '';
  if (UUID.test(s)) s = s.replaceAll('-', '');
  if (s.length < 32 || s.length > 128 || s.length % 2 !== 0 || !HEX.test(s)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'session uid must be 32 to 128 hex digits (at least 128 bits)');
  }
  return Buffer.from(s, 'hex');
}

/**
 * Derive the data plane's TLS-PSK from a session uid:
 * `key = HKDF-SHA256(IKM = uid octets, salt = PSK_SALT, info = PSK_KEY_INFO, L = 32)` and
 * `identity = hex(HKDF-SHA256(uid octets, PSK_SALT, PSK_IDENTITY_INFO, 16))`.
 */
export function derivePsk(uid: string): DataPsk {
  const ikm = uidOctets(uid);
  return {
    identity: hkdfSha256(ikm, PSK_SALT, PSK_IDENTITY_INFO, PSK_IDENTITY_LENGTH).toString('hex'),
    key: hkdfSha256(ikm, PSK_SALT, PSK_KEY_INFO, PSK_KEY_LENGTH),
  };
}

/**
 * The listener's PSK callback for one session uid (`tlsProfile({ psk })`):
 * the derived key for the derived identity (compared in constant time), null
 * for any other identity, which fails the handshake.
 */
export function pskResolver(uid: string): (identity: string) => Uint8Array | null {
  const { identity, key } = derivePsk(uid);
  const want = Buffer.from(identity, 'utf8');
  return (offered: string) => {
    const got = Buffer.from(typeof offered === 'string' ? offered : '', 'utf8');
    return got.length === want.length && timingSafeEqual(got, want) ? key : null;
  };
}
