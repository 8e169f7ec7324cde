/**
 * The users file: the SCRAM credential store on disk, as JSON —
 *
 * ```json
 * { "version": 1,
 *   "scram-sha-256": { "alice": { "salt": "…", "iterations": 4096, "storedKey": "…", "serverKey": "…" } } }
 * ```
 *
 * Keys are SASLprep-normalised user names; values are base64 (RFC 4648 §4). No
 * password is ever stored. Loading validates everything and names the bad key in
 * the error (never a value).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile, unlink } from 'node:fs/promises';
import { BeepError, ErrorCodes } from '../../errors.js';
import { decodeBase64, prep } from './common.js';
import { MAX_SCRAM_ITERATIONS, MIN_SCRAM_ITERATIONS, SHA256_LENGTH, type ScramCredentials } from './scram-crypto.js';

/** The users-file format version this code reads and writes. */
export const USERS_FILE_VERSION = 1;
/** The member holding SCRAM-SHA-256 credentials. */
export const SCRAM_SHA_256_MEMBER = 'scram-sha-256';

const FIELDS = ['salt', 'iterations', 'storedKey', 'serverKey'] as const;

function bad(source: string, where: string, what: string): BeepError {
  return new BeepError(ErrorCodes.INVALID_ARGUMENT, `users file ${source}: ${where} ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Validates a parsed users file and returns its SCRAM-SHA-256 credentials by user
 * name. `source` names the file in errors. Throws `BEEP_ERR_INVALID_ARGUMENT` naming
 * the offending key for: a wrong or missing `version`, unknown members, a user name
 * that is not SASLprep-normalised, missing or unknown fields, bad base64, keys that
 * are not 32 octets, an empty salt, or iterations outside 4096…10,000,000.
 */
export function parseUsersFile(data: unknown, source = '(inline)'): Map<string, ScramCredentials> {
  if (!isObject(data)) throw bad(source, 'top level', 'must be a JSON object');
  if (data['version'] !== USERS_FILE_VERSION) throw bad(source, '"version"', `must be ${USERS_FILE_VERSION}`);
  for (const key of Object.keys(data)) {
    if (key !== 'version' && key !== SCRAM_SHA_256_MEMBER) throw bad(source, JSON.stringify(key), 'is not a known member');
  }
  const users = data[SCRAM_SHA_256_MEMBER] ?? {};
  if (!isObject(users)) throw bad(source, `"${SCRAM_SHA_256_MEMBER}"`, 'must be an object');
  const out = new Map<string, ScramCredentials>();
  for (const [name, entry] of Object.entries(users)) {
    const where = `"${SCRAM_SHA_256_MEMBER}".${JSON.stringify(name)}`;
    if (prep(name, true) !== name) throw bad(source, where, 'is not a SASLprep-normalised user name');
    if (!isObject(entry)) throw bad(source, where, 'must be an object');
    for (const key of Object.keys(entry)) {
      if (!(FIELDS as readonly string[]).includes(key)) throw bad(source, `${where}.${JSON.stringify(key)}`, 'is not a known field');
    }
    const it = entry['iterations'];
    if (typeof it !== 'number' || !Number.isSafeInteger(it) || it < MIN_SCRAM_ITERATIONS || it > MAX_SCRAM_ITERATIONS) {
      throw bad(source, `${where}.iterations`, `must be an integer from ${MIN_SCRAM_ITERATIONS} to ${MAX_SCRAM_ITERATIONS}`);
    }
    const bytes = (field: 'salt' | 'storedKey' | 'serverKey'): Buffer => {
      const v = entry[field];
      const b = typeof v === 'string' ? decodeBase64(v) : undefined;
      if (b === undefined) throw bad(source, `${where}.${field}`, 'must be a base64 string');
      if (field === 'salt' ? b.length === 0 : b.length !== SHA256_LENGTH) {
        throw bad(source, `${where}.${field}`, field === 'salt' ? 'must not be empty' : `must decode to ${SHA256_LENGTH} octets`);
      }
      return b;
    };
    out.set(name, { salt: bytes('salt'), iterations: it, storedKey: bytes('storedKey'), serverKey: bytes('serverKey') });
  }
  return out;
}

/**
 * Reads and validates a users file (see {@link parseUsersFile}). Throws
 * `BEEP_ERR_INVALID_ARGUMENT` naming the file when it cannot be read or is not JSON.
 */
export async function loadUsersFile(path: string): Promise<Map<string, ScramCredentials>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `users file ${path}: cannot be read`, { cause });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `users file ${path}: is not valid JSON`, { cause });
  }
  return parseUsersFile(data, path);
}

/**
 * The users-file JSON text for `users` (names are SASLprep-normalised and sorted).
 * Throws `BEEP_ERR_INVALID_ARGUMENT` for a name SASLprep refuses, two names that
 * normalise alike, or an entry that would not load back.
 */
export function serializeUsersFile(users: ReadonlyMap<string, ScramCredentials>): string {
  const entries: Record<string, Record<string, string | number>> = {};
  const names = new Map<string, ScramCredentials>();
  for (const [name, c] of users) {
    const n = prep(name, true);
    if (n === undefined) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `users file: user name ${JSON.stringify(name)} is refused by SASLprep`);
    if (names.has(n)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `users file: two user names normalise to ${JSON.stringify(n)}`);
    names.set(n, c);
  }
  for (const name of [...names.keys()].sort()) {
    const c = names.get(name) as ScramCredentials;
    entries[name] = {
      salt: Buffer.from(c.salt).toString('base64'),
      iterations: c.iterations,
      storedKey: Buffer.from(c.storedKey).toString('base64'),
      serverKey: Buffer.from(c.serverKey).toString('base64'),
    };
  }
  const data = { version: USERS_FILE_VERSION, [SCRAM_SHA_256_MEMBER]: entries };
  parseUsersFile(data, '(to be written)');
  return `${JSON.stringify(data, null, 2)}\n`;
}

/**
 * Writes `users` to `path` atomically (a temporary file renamed over it), readable by
 * the owner only (mode 0600): the keys are not passwords, but they are what an
 * attacker needs for an offline dictionary attack.
 */
export async function saveUsersFile(path: string, users: ReadonlyMap<string, ScramCredentials>): Promise<void> {
  const text = serializeUsersFile(users);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (cause) {
    await unlink(tmp).catch(() => undefined);
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `users file ${path}: cannot be written`, { cause });
  }
}
