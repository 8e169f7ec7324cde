/**
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side (RFC 5802 §5, RFC 7677).
 *
 * The server keeps `{ salt, iterations, storedKey, serverKey }` per user and never a
 * password. An unknown user gets a stable dummy salt (HMAC of the name under a server
 * secret) and fails at the same step, with the same code and reason, as a wrong
 * password. Proofs are compared in constant time.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { BeepError, ErrorCodes } from '../../errors.js';
import { SaslReasons, decodeUtf8, failure, guardedServer, prep, safeEqual } from './common.js';
import {
  DEFAULT_SCRAM_ITERATIONS,
  MAX_SCRAM_ITERATIONS,
  MIN_SCRAM_ITERATIONS,
  SHA256_LENGTH,
  dummyCredentials,
  hmac,
  sha256,
  xor,
  type ScramCredentialStore,
  type ScramCredentials,
} from './scram-crypto.js';
import { parseClientFinal, parseClientFirst, type ClientFirst } from './scram-messages.js';
import type { SaslContext, SaslServerMechanism, SaslServerMechanismFactory, SaslServerStep } from './types.js';

/** Mechanism name of SCRAM-SHA-256 (RFC 7677). */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** Mechanism name of SCRAM-SHA-256 with channel binding (RFC 7677, RFC 5802 §4). */
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';

/** Options of {@link scramSha256Server}. */
export interface ScramServerOptions {
  /** Credentials by SASLprep-normalised user name (a `Map` will do; see `loadUsersFile`). */
  readonly store: ScramCredentialStore;
  /**
   * Secret (≥ 16 octets) for the dummy salts of unknown users. Defaults to random
   * octets per factory; give a fixed one so the dummy salts survive restarts.
   */
  readonly secret?: Uint8Array;
  /** Iteration count announced for unknown users: use your users' count. Default 4096. */
  readonly dummyIterations?: number;
  /**
   * May `authcid` act as `authzid` (a different name the client asked for)? Without
   * this callback only `authzid === authcid` is allowed.
   */
  readonly authorize?: (authcid: string, authzid: string) => boolean | Promise<boolean>;
  /** Offer SCRAM-SHA-256-PLUS instead: the client must bind to the TLS channel (`p=`). */
  readonly plus?: boolean;
  /** Server-nonce source; for test vectors only. Default 18 random octets, base64. */
  readonly nonce?: () => string;
}

const NONCE = /^[\x21-\x2B\x2D-\x7E]+$/;

/** Checks the GS2 channel-binding flag; returns the expected `c=` octets or `undefined` to fail (RFC 5802 §6). */
function expectedBinding(first: ClientFirst, ctx: SaslContext, plus: boolean): Buffer | undefined {
  const header = Buffer.from(first.gs2.raw, 'utf8');
  const cb = first.gs2.cbind;
  if (cb.flag === 'p') {
    // The client requires binding: we must have the same type of binding data.
    if (ctx.channelBinding === undefined || ctx.channelBinding.type !== cb.name) return undefined;
    return Buffer.concat([header, ctx.channelBinding.data]);
  }
  // -PLUS means binding is mandatory.
  if (plus) return undefined;
  // "y": the client could bind but saw no -PLUS offer; if we offered one, this is a downgrade.
  if (cb.flag === 'y' && ctx.advertisedMechanisms?.includes(SCRAM_SHA_256_PLUS) === true) return undefined;
  return header;
}

/** One server exchange. */
function exchange(ctx: SaslContext, o: ScramServerOptions, secret: Uint8Array): SaslServerMechanism {
  const plus = o.plus === true;
  const name = plus ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256;
  let first: ClientFirst | undefined;
  let authcid = '';
  let creds: ScramCredentials | undefined;
  let known = false;
  let binding: Buffer | undefined;
  let serverFirst = '';
  let nonce = '';
  let asked = false;

  async function onFirst(input: Buffer | undefined): Promise<SaslServerStep> {
    // No initial response: ask for it with an empty challenge (RFC 4422 §5).
    if (input === undefined) {
      if (asked) return failure(535, SaslReasons.MALFORMED);
      asked = true;
      return { status: 'continue', challenge: Buffer.alloc(0) };
    }
    asked = true;
    const text = decodeUtf8(input);
    first = text === undefined ? undefined : parseClientFirst(text);
    if (first === undefined) return failure(535, SaslReasons.MALFORMED);
    binding = expectedBinding(first, ctx, plus);
    if (binding === undefined) return failure(535, SaslReasons.CHANNEL_BINDING);
    // SASLprep the name (RFC 5802 §5.1); a name SASLprep refuses is just an unknown user.
    const prepared = prep(first.username);
    authcid = prepared ?? first.username;
    const found = prepared === undefined ? undefined : await o.store.get(prepared);
    known = found !== undefined;
    creds = found ?? dummyCredentials(secret, authcid, o.dummyIterations ?? DEFAULT_SCRAM_ITERATIONS);
    const snonce = o.nonce?.() ?? randomBytes(18).toString('base64');
    if (!NONCE.test(snonce)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'server nonce has characters outside printable');
    nonce = first.nonce + snonce;
    serverFirst = `r=${nonce},s=${creds.salt.toString('base64')},i=${creds.iterations}`;
    return { status: 'continue', challenge: Buffer.from(serverFirst, 'utf8') };
  }

  async function onFinal(input: Buffer | undefined): Promise<SaslServerStep> {
    if (input === undefined || first === undefined || creds === undefined || binding === undefined) {
      return failure(535, SaslReasons.MALFORMED);
    }
    const text = decodeUtf8(input);
    const final = text === undefined ? undefined : parseClientFinal(text);
    if (final === undefined) return failure(535, SaslReasons.MALFORMED);
    if (final.nonce !== nonce) return failure(535, SaslReasons.AUTH_FAILED);
    // c= must repeat the GS2 header (plus the binding data for p=) (RFC 5802 §5.1, §6).
    if (!final.channelBinding.equals(binding)) return failure(535, SaslReasons.CHANNEL_BINDING);
    const authMessage = `${first.bare},${serverFirst},${final.withoutProof}`;
    // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey (RFC 5802 §3).
    let proven = false;
    if (final.proof.length === SHA256_LENGTH) {
      const clientKey = xor(final.proof, hmac(creds.storedKey, authMessage));
      proven = safeEqual(sha256(clientKey), creds.storedKey) && known;
    }
    if (!proven) return failure(535, SaslReasons.AUTH_FAILED);
    const authzid = first.gs2.authzid;
    if (authzid !== undefined && authzid !== authcid) {
      const allowed = o.authorize === undefined ? false : await o.authorize(authcid, authzid);
      if (allowed !== true) return failure(535, SaslReasons.NOT_AUTHORIZED);
    }
    const verifier = `v=${hmac(creds.serverKey, authMessage).toString('base64')}`;
    return {
      status: 'success',
      identity: authzid === undefined ? { authcid, mechanism: name } : { authcid, authzid, mechanism: name },
      additional: Buffer.from(verifier, 'utf8'),
    };
  }

  return guardedServer(name, (input) => (serverFirst === '' ? onFirst(input) : onFinal(input)));
}

/**
 * The SCRAM-SHA-256 server mechanism factory (or SCRAM-SHA-256-PLUS with
 * `plus: true`). Throws `BEEP_ERR_INVALID_ARGUMENT` for bad options.
 *
 * Channel binding (RFC 5802 §6): `n` is accepted; `y` is refused when the context
 * says SCRAM-SHA-256-PLUS was advertised (a downgrade); `p=<type>` is accepted when
 * the context carries binding data of that type, and then `c=` must carry it; the
 * -PLUS variant accepts only `p=`.
 */
export function scramSha256Server(options: ScramServerOptions): SaslServerMechanismFactory {
  if (options === null || typeof options !== 'object' || typeof options.store?.get !== 'function') {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'scramSha256Server: store must have a get(username) method');
  }
  const it = options.dummyIterations;
  if (it !== undefined && (!Number.isSafeInteger(it) || it < MIN_SCRAM_ITERATIONS || it > MAX_SCRAM_ITERATIONS)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `scramSha256Server: dummyIterations must be an integer from ${MIN_SCRAM_ITERATIONS} to ${MAX_SCRAM_ITERATIONS}`);
  }
  if (options.secret !== undefined && options.secret.length < 16) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'scramSha256Server: secret must be at least 16 octets');
  }
  const secret = options.secret === undefined ? randomBytes(32) : Buffer.from(options.secret);
  const plus = options.plus === true;
  return {
    name: plus ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256,
    available: (ctx) => !plus || ctx.channelBinding !== undefined,
    create: (ctx) => exchange(ctx, options, secret),
  };
}
