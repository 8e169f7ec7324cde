/**
 * Content names of DECADE objects: RFC 6920 `ni` URIs over SHA-256,
 * `ni:///sha-256;<base64url digest, no padding>`. An object's name is the
 * hash of its octets, so a name says what the object must be and any holder
 * can check it (draft-ietf-decade-arch-03 §4.3: immutable, self-certifying
 * data objects).
 *
 * @module
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { DecadeError } from './errors.js';

/** The one hash algorithm names use (RFC 6920 §9.4 registry name). */
export const NAME_ALGORITHM = 'sha-256';

/** Octets of a SHA-256 digest. */
export const DIGEST_LENGTH = 32;

/** Longest name text accepted (an authority and a query make names longer than the canonical 58 characters). */
export const MAX_NAME_LENGTH = 512;

// RFC 6920 §3: ni://[authority]/alg;val[?query]. The digest value is base64url without padding (§3, RFC 4648 §5).
const NI = /^ni:\/\/([^/?#]*)\/([A-Za-z0-9-]+);([A-Za-z0-9_-]+)(?:\?[^#]*)?$/i;

/** A parsed content name. */
export interface ContentName {
  /** The canonical text, `ni:///sha-256;…` (no authority, no query). */
  readonly name: string;
  /** The SHA-256 digest (32 octets). */
  readonly digest: Buffer;
  /** The digest in lower-case hex (how the store files it). */
  readonly hex: string;
}

/**
 * Parse an `ni` name (RFC 6920 §3). The authority and query parameters, if
 * any, are accepted and dropped (§3: they do not take part in comparing
 * names); the algorithm must be `sha-256` (not truncated) and the value exactly
 * 32 octets in base64url without padding. Throws {@link DecadeError}
 * `INVALID_NAME` otherwise; the message quotes at most the first 80 characters.
 */
export function parseName(text: string): ContentName {
  if (typeof text !== 'string' || text.length > MAX_NAME_LENGTH) throw invalid(text, 'too long or not a string');
  const m = NI.exec(text);
  if (!m) throw invalid(text, 'expected ni:///sha-256;<base64url digest>');
  const alg = (m[2] ?? '').toLowerCase();
  if (alg !== NAME_ALGORITHM) throw invalid(text, `hash algorithm ${JSON.stringify(alg.slice(0, 20))} is not supported (only sha-256)`);
  const value = m[3] ?? '';
  // 32 octets are 43 base64url characters, the last one carrying 2 pad bits that must be zero.
  if (value.length !== 43) throw invalid(text, 'a sha-256 digest is 43 base64url characters');
  const digest = Buffer.from(value, 'base64url');
  if (digest.length !== DIGEST_LENGTH || digest.toString('base64url') !== value) throw invalid(text, 'the digest is not canonical base64url');
  return nameFromDigest(digest);
}

/** The name of a SHA-256 digest. */
export function nameFromDigest(digest: Uint8Array): ContentName {
  if (digest.byteLength !== DIGEST_LENGTH) throw new DecadeError('INVALID_NAME', `a sha-256 digest is ${DIGEST_LENGTH} octets, got ${digest.byteLength}`);
  const d = Buffer.from(digest);
  return Object.freeze({ name: `ni:///${NAME_ALGORITHM};${d.toString('base64url')}`, digest: d, hex: d.toString('hex') });
}

/** The name of the given octets. */
export function nameOf(data: Uint8Array | string): ContentName {
  return nameFromDigest(createHash('sha256').update(data).digest());
}

/** True when `text` is a valid name (see {@link parseName}). */
export function isName(text: string): boolean {
  try {
    parseName(text);
    return true;
  } catch {
    return false;
  }
}

/** True when two names (any spelling {@link parseName} accepts) name the same object. */
export function sameName(a: string | ContentName, b: string | ContentName): boolean {
  const da = typeof a === 'string' ? parseName(a).digest : a.digest;
  const db = typeof b === 'string' ? parseName(b).digest : b.digest;
  return timingSafeEqual(da, db);
}

/**
 * Hashes octets as they pass and tells, at the end, whether they are the
 * object `expected` names: the incremental check a PUT (server) and a GET
 * (client) run on the fly.
 */
export class NameVerifier {
  /** The name the octets must match. */
  readonly expected: ContentName;
  /** Octets seen so far. */
  octets = 0;
  private readonly hash: Hash = createHash('sha256');

  constructor(expected: ContentName | string) {
    this.expected = typeof expected === 'string' ? parseName(expected) : expected;
  }

  /** Feed the next octets. */
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.octets += chunk.byteLength;
  }

  /** The name of everything fed so far; the verifier cannot be used afterwards. */
  digestName(): ContentName {
    return nameFromDigest(this.hash.digest());
  }

  /** True when everything fed is exactly the expected object; the verifier cannot be used afterwards. */
  matches(): boolean {
    return timingSafeEqual(this.digestName().digest, this.expected.digest);
  }
}

function invalid(text: unknown, why: string): DecadeError {
  const shown = typeof text === 'string' ? JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text) : typeof text;
  return new DecadeError('INVALID_NAME', `invalid content name ${shown}: ${why}`);
}
