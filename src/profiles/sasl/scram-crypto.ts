/**
 * SCRAM-SHA-256 key derivation (RFC 5802 §3, RFC 7677) and the server's
 * credential store: per user `{ salt, iterations, storedKey, serverKey }`, never a
 * password.
 *
 * @module
 */
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { BeepError, ErrorCodes } from '../../errors.js';
import { prep, safeEqual } from './common.js';

const pbkdf2Async = promisify(pbkdf2);

/** Smallest iteration count accepted for stored credentials (RFC 7677 §4). */
export const MIN_SCRAM_ITERATIONS = 4096;
/** Iteration count used when none is given. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;
/** Largest iteration count accepted anywhere (bounds the work a peer can ask for). */
export const MAX_SCRAM_ITERATIONS = 10_000_000;
/** Length of a generated salt, in octets. */
export const SCRAM_SALT_LENGTH = 16;
/** Length of a SHA-256 output, in octets. */
export const SHA256_LENGTH = 32;

/** What the server stores per user for SCRAM-SHA-256 (RFC 5802 §2.2, §3). */
export interface ScramCredentials {
  /** The user's salt. */
  readonly salt: Buffer;
  /** PBKDF2 iteration count. */
  readonly iterations: number;
  /** StoredKey = H(ClientKey). */
  readonly storedKey: Buffer;
  /** ServerKey = HMAC(SaltedPassword, "Server Key"). */
  readonly serverKey: Buffer;
}

/**
 * Looks up credentials by SASLprep-normalised user name. A `Map` satisfies it; an
 * implementation may be asynchronous (a database). Throwing makes the exchange fail
 * with 454 (temporary).
 */
export interface ScramCredentialStore {
  /** The user's credentials, or `undefined` if there is no such user. */
  get(username: string): ScramCredentials | undefined | Promise<ScramCredentials | undefined>;
}

/** HMAC-SHA-256. */
export function hmac(key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** SHA-256. */
export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Bytewise XOR of two equal-length byte strings. */
export function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/** SaltedPassword = Hi(Normalize(password), salt, i) = PBKDF2-HMAC-SHA-256 (RFC 5802 §2.2). */
export async function saltedPassword(preparedPassword: string, salt: Uint8Array, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(preparedPassword, 'utf8'), salt, iterations, SHA256_LENGTH, 'sha256');
}

/** ClientKey, StoredKey and ServerKey from a SaltedPassword (RFC 5802 §3). */
export function deriveKeys(salted: Uint8Array): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/**
 * The SASLprep-normalised form of a user name as stored (RFC 4013, stored-string
 * rules). Throws `BEEP_ERR_INVALID_ARGUMENT` if it has prohibited characters or is empty.
 */
export function normalizeUsername(username: string): string {
  const out = typeof username === 'string' ? prep(username, true) : undefined;
  if (out === undefined) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'user name is empty or contains characters SASLprep prohibits');
  }
  return out;
}

/**
 * Derives a store entry from a password (the password itself is not kept).
 * `iterations` defaults to 4096 and may not be lower (RFC 7677 §4). The salt is
 * 16 random octets unless given. Throws `BEEP_ERR_INVALID_ARGUMENT` for a bad
 * iteration count or a password SASLprep refuses (the message never includes it).
 */
export async function createUserEntry(
  password: string,
  iterations: number = DEFAULT_SCRAM_ITERATIONS,
  options: { salt?: Uint8Array } = {},
): Promise<ScramCredentials> {
  if (!Number.isSafeInteger(iterations) || iterations < MIN_SCRAM_ITERATIONS || iterations > MAX_SCRAM_ITERATIONS) {
    throw new BeepError(
      ErrorCodes.INVALID_ARGUMENT,
      `iterations must be an integer from ${MIN_SCRAM_ITERATIONS} to ${MAX_SCRAM_ITERATIONS}`,
    );
  }
  const prepared = typeof password === 'string' ? prep(password, true) : undefined;
  if (prepared === undefined) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'password is empty or contains characters SASLprep prohibits');
  }
  const salt = options.salt === undefined ? randomBytes(SCRAM_SALT_LENGTH) : Buffer.from(options.salt);
  if (salt.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'salt must not be empty');
  const { storedKey, serverKey } = deriveKeys(await saltedPassword(prepared, salt, iterations));
  return { salt, iterations, storedKey, serverKey };
}

/**
 * Credentials for a user that does not exist, stable per name and secret: the
 * salt is HMAC(secret, name), so repeated probes see the same salt, and the keys
 * match no password. Used so an unknown user cannot be told from a wrong password.
 */
export function dummyCredentials(secret: Uint8Array, username: string, iterations: number): ScramCredentials {
  const seed = hmac(secret, `beepstream scram dummy\0${username}`);
  return {
    salt: hmac(seed, 'salt').subarray(0, SCRAM_SALT_LENGTH),
    iterations,
    storedKey: hmac(seed, 'stored key'),
    serverKey: hmac(seed, 'server key'),
  };
}

/**
 * Whether a (SASLprep-prepared) password matches a store entry: derive
 * SaltedPassword with the entry's salt and iteration count and compare StoredKey in
 * constant time. Used by PLAIN.
 */
export async function verifyPassword(preparedPassword: string, entry: ScramCredentials): Promise<boolean> {
  const { storedKey } = deriveKeys(await saltedPassword(preparedPassword, entry.salt, entry.iterations));
  return safeEqual(storedKey, entry.storedKey);
}

