/**
 * PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd` in one message. The password
 * travels in the clear inside the session, so both sides refuse PLAIN unless the
 * session is TLS-protected (RFC 4616 §5) or `allowWithoutTls` is set.
 *
 * The server checks the password against the SCRAM credential store (derive
 * SaltedPassword with the user's salt and iteration count, compare StoredKey in
 * constant time) or a `verify` callback. Unknown users cost the same PBKDF2 work as
 * known ones and fail identically.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { BeepError, ErrorCodes } from '../../errors.js';
import { SaslReasons, decodeUtf8, failure, guardedServer, prep } from './common.js';
import {
  DEFAULT_SCRAM_ITERATIONS,
  dummyCredentials,
  verifyPassword,
  type ScramCredentialStore,
} from './scram-crypto.js';
import type { SaslClientMechanismFactory, SaslServerMechanismFactory, SaslServerStep } from './types.js';

/** Mechanism name of PLAIN. */
export const PLAIN = 'PLAIN';

/** Largest authzid, authcid or password accepted, in octets (RFC 4616 §2 requires at least 255). */
export const PLAIN_MAX_FIELD = 1024;

/** Options of {@link plainServer}: give `store` or `verify`. */
export interface PlainServerOptions {
  /** The SCRAM credential store to check passwords against. */
  readonly store?: ScramCredentialStore;
  /** Or: a callback checking a (SASLprep-prepared) user name and password. */
  readonly verify?: (authcid: string, password: string) => boolean | Promise<boolean>;
  /** May `authcid` act as a different `authzid`? Without it only the same name is allowed. */
  readonly authorize?: (authcid: string, authzid: string) => boolean | Promise<boolean>;
  /** Accept PLAIN on a session without TLS. Default false (refused with 538). */
  readonly allowWithoutTls?: boolean;
  /** Secret for unknown users' dummy salts (see `scramSha256Server`). */
  readonly secret?: Uint8Array;
  /** Iteration count spent on unknown users; use your users' count. Default 4096. */
  readonly dummyIterations?: number;
}

/** Splits `[authzid] NUL authcid NUL passwd` (RFC 4616 §2); `undefined` if malformed. */
export function parsePlainMessage(input: Uint8Array): { authzid: string; authcid: string; password: string } | undefined {
  const a = input.indexOf(0);
  const b = a < 0 ? -1 : input.indexOf(0, a + 1);
  if (a < 0 || b < 0 || input.indexOf(0, b + 1) >= 0) return undefined;
  const fields = [input.subarray(0, a), input.subarray(a + 1, b), input.subarray(b + 1)];
  if (fields.some((f) => f.length > PLAIN_MAX_FIELD)) return undefined;
  const [authzid, authcid, password] = fields.map((f) => decodeUtf8(f));
  if (authzid === undefined || authcid === undefined || password === undefined) return undefined;
  if (authcid.length === 0 || password.length === 0) return undefined;
  return { authzid, authcid, password };
}

/**
 * The PLAIN server mechanism factory. Throws `BEEP_ERR_INVALID_ARGUMENT` unless
 * exactly one of `store` and `verify` is given.
 */
export function plainServer(options: PlainServerOptions): SaslServerMechanismFactory {
  const hasStore = typeof options?.store?.get === 'function';
  const hasVerify = typeof options?.verify === 'function';
  if (hasStore === hasVerify) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'plainServer: give exactly one of store and verify');
  }
  if (options.secret !== undefined && options.secret.length < 16) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'plainServer: secret must be at least 16 octets');
  }
  const secret = options.secret === undefined ? randomBytes(32) : Buffer.from(options.secret);
  const dummyIterations = options.dummyIterations ?? DEFAULT_SCRAM_ITERATIONS;
  const allowed = (tls: boolean): boolean => tls || options.allowWithoutTls === true;

  async function check(authcid: string, password: string): Promise<boolean> {
    if (options.verify !== undefined) return (await options.verify(authcid, password)) === true;
    const entry = await options.store?.get(authcid);
    // Unknown user: spend the same PBKDF2 work on a dummy entry, then fail anyway.
    const ok = await verifyPassword(password, entry ?? dummyCredentials(secret, authcid, dummyIterations));
    return ok && entry !== undefined;
  }

  return {
    name: PLAIN,
    available: (ctx) => allowed(ctx.tls),
    create(ctx) {
      let asked = false;
      return guardedServer(PLAIN, async (input): Promise<SaslServerStep> => {
        if (!allowed(ctx.tls)) return failure(538, SaslReasons.PLAIN_NEEDS_TLS);
        if (input === undefined) {
          if (asked) return failure(535, SaslReasons.MALFORMED);
          asked = true;
          return { status: 'continue', challenge: Buffer.alloc(0) };
        }
        const msg = parsePlainMessage(input);
        if (msg === undefined) return failure(535, SaslReasons.MALFORMED);
        // authcid and passwd are prepared with SASLprep (RFC 4616 §2).
        const authcid = prep(msg.authcid);
        const password = prep(msg.password);
        if (authcid === undefined || password === undefined || !(await check(authcid, password))) {
          return failure(535, SaslReasons.AUTH_FAILED);
        }
        if (msg.authzid !== '' && msg.authzid !== authcid) {
          const ok = options.authorize === undefined ? false : await options.authorize(authcid, msg.authzid);
          if (ok !== true) return failure(535, SaslReasons.NOT_AUTHORIZED);
          return { status: 'success', identity: { authcid, authzid: msg.authzid, mechanism: PLAIN } };
        }
        return { status: 'success', identity: { authcid, mechanism: PLAIN } };
      });
    },
  };
}

/** Options of {@link plainClient}. */
export interface PlainClientOptions {
  /** The authentication identity. */
  readonly username: string;
  /** The password. */
  readonly password: string;
  /** Identity to act as, if not the user's own. */
  readonly authzid?: string;
  /** Send the password on a session without TLS. Default false. */
  readonly allowWithoutTls?: boolean;
}

/**
 * The PLAIN client mechanism factory. `available(ctx)` is false without TLS and
 * `create` then throws `BEEP_ERR_INVALID_STATE`, so the password is never sent in the
 * clear unless `allowWithoutTls` says so.
 */
export function plainClient(options: PlainClientOptions): SaslClientMechanismFactory {
  const user = typeof options?.username === 'string' ? prep(options.username) : undefined;
  const password = typeof options?.password === 'string' ? prep(options.password) : undefined;
  if (user === undefined || password === undefined) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'plainClient: username or password is empty or refused by SASLprep');
  }
  if (options.authzid !== undefined && (typeof options.authzid !== 'string' || options.authzid.includes('\0'))) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'plainClient: authzid must be a string without NUL');
  }
  const message = Buffer.from(`${options.authzid ?? ''}\0${user}\0${password}`, 'utf8');
  const allowed = (tls: boolean): boolean => tls || options.allowWithoutTls === true;
  return {
    name: PLAIN,
    available: (ctx) => allowed(ctx.tls),
    create(ctx) {
      if (!allowed(ctx.tls)) throw new BeepError(ErrorCodes.INVALID_STATE, 'PLAIN requires TLS', { replyCode: 538 });
      let sent = false;
      return {
        name: PLAIN,
        async initial() {
          sent = true;
          return Buffer.from(message);
        },
        async step(challenge) {
          if (sent || challenge.length > 0) return { status: 'failure', reason: 'unexpected challenge' };
          sent = true;
          return { status: 'continue', response: Buffer.from(message) };
        },
        async finish() {
          return sent ? { status: 'success' } : { status: 'failure', reason: 'credentials were never sent' };
        },
      };
    },
  };
}
