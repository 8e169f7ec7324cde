/**
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, client side (RFC 5802 §5, RFC 7677): the
 * client proves knowledge of the password without sending it, then checks the
 * server's signature, so a server that does not know the user's keys is not trusted.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { BeepError, ErrorCodes } from '../../errors.js';
import { decodeUtf8, prep, safeEqual } from './common.js';
import { buildGs2Header, escapeSaslname, type Gs2ChannelBinding } from './gs2.js';
import { MAX_SCRAM_ITERATIONS, MIN_SCRAM_ITERATIONS, deriveKeys, hmac, saltedPassword, xor } from './scram-crypto.js';
import { parseServerFinal, parseServerFirst } from './scram-messages.js';
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS } from './scram-server.js';
import type { SaslClientMechanism, SaslClientMechanismFactory, SaslClientOutcome, SaslClientStep, SaslContext } from './types.js';

/** Options of {@link scramSha256Client}. */
export interface ScramClientOptions {
  /** The authentication identity (SASLprep is applied). */
  readonly username: string;
  /** The password (SASLprep is applied; it is never sent). */
  readonly password: string;
  /** Identity to act as, if not the user's own. */
  readonly authzid?: string;
  /** Use SCRAM-SHA-256-PLUS: bind to the TLS channel given in the context. */
  readonly plus?: boolean;
  /** Smallest iteration count accepted from the server. Default 4096 (RFC 7677 §4). */
  readonly minIterations?: number;
  /** Largest iteration count accepted from the server (bounds its demand on us). Default 1,000,000. */
  readonly maxIterations?: number;
  /** Client-nonce source; for test vectors only. Default 24 random octets, base64. */
  readonly nonce?: () => string;
}

const NONCE = /^[\x21-\x2B\x2D-\x7E]+$/;

function fail(reason: string): { status: 'failure'; reason: string } {
  return { status: 'failure', reason };
}

/** One client exchange. */
function exchange(ctx: SaslContext, o: ScramClientOptions, user: string, password: string): SaslClientMechanism {
  const plus = o.plus === true;
  let cbind: Gs2ChannelBinding;
  if (plus) {
    if (ctx.channelBinding === undefined) {
      throw new BeepError(ErrorCodes.INVALID_STATE, `${SCRAM_SHA_256_PLUS} needs channel-binding data in the context`);
    }
    cbind = { flag: 'p', name: ctx.channelBinding.type };
  } else {
    // We could bind but chose the non-PLUS mechanism: say so with "y" (RFC 5802 §6).
    cbind = { flag: ctx.channelBinding === undefined ? 'n' : 'y' };
  }
  const header = buildGs2Header(cbind, o.authzid);
  const cnonce = o.nonce?.() ?? randomBytes(24).toString('base64');
  if (!NONCE.test(cnonce)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'client nonce has characters outside printable');
  const bare = `n=${escapeSaslname(user)},r=${cnonce}`;
  const minIt = o.minIterations ?? MIN_SCRAM_ITERATIONS;
  const maxIt = o.maxIterations ?? 1_000_000;
  let state: 'initial' | 'first' | 'final' | 'verified' | 'done' = 'initial';
  let serverSignature: Buffer | undefined;

  function checkFinal(data: Buffer): SaslClientOutcome {
    const text = decodeUtf8(data);
    const final = text === undefined ? undefined : parseServerFinal(text);
    if (final === undefined) return fail('malformed server-final-message');
    if ('error' in final) return fail(`server error: ${final.error}`);
    if (serverSignature === undefined || !safeEqual(final.verifier, serverSignature)) {
      return fail('server signature mismatch: the server does not know the credentials');
    }
    return { status: 'success' };
  }

  return {
    name: plus ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256,
    async initial() {
      if (state !== 'initial') return undefined;
      state = 'first';
      return Buffer.from(header + bare, 'utf8');
    },
    async step(challenge): Promise<SaslClientStep> {
      if (state === 'initial' && challenge.length === 0) {
        // The server asked for the initial response with an empty challenge.
        state = 'first';
        return { status: 'continue', response: Buffer.from(header + bare, 'utf8') };
      }
      if (state === 'first') {
        state = 'done';
        const text = decodeUtf8(challenge);
        const first = text === undefined ? undefined : parseServerFirst(text);
        if (text === undefined || first === undefined) return fail('malformed server-first-message');
        // The combined nonce must extend ours (RFC 5802 §5.1).
        if (!first.nonce.startsWith(cnonce) || first.nonce.length === cnonce.length) return fail('server nonce does not extend the client nonce');
        if (first.iterations < minIt || first.iterations > maxIt) return fail('server iteration count out of the accepted range');
        const salted = await saltedPassword(password, first.salt, first.iterations);
        const { clientKey, storedKey, serverKey } = deriveKeys(salted);
        const cbData = cbind.flag === 'p' && ctx.channelBinding !== undefined ? ctx.channelBinding.data : new Uint8Array(0);
        const withoutProof = `c=${Buffer.concat([Buffer.from(header, 'utf8'), cbData]).toString('base64')},r=${first.nonce}`;
        const authMessage = `${bare},${text},${withoutProof}`;
        const proof = xor(clientKey, hmac(storedKey, authMessage));
        serverSignature = hmac(serverKey, authMessage);
        state = 'final';
        return { status: 'continue', response: Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8') };
      }
      if (state === 'final') {
        // A protocol without success data sends server-final as a challenge; answer with nothing.
        const outcome = checkFinal(challenge);
        state = outcome.status === 'success' ? 'verified' : 'done';
        return outcome.status === 'success' ? { status: 'continue', response: Buffer.alloc(0) } : outcome;
      }
      state = 'done';
      return fail('unexpected challenge');
    },
    async finish(additional): Promise<SaslClientOutcome> {
      const was = state;
      state = 'done';
      if (was === 'verified' && (additional === undefined || additional.length === 0)) return { status: 'success' };
      if (was === 'final' && additional !== undefined) return checkFinal(additional);
      return fail('the server ended the exchange without proving it knows the credentials');
    },
  };
}

/**
 * The SCRAM-SHA-256 client mechanism factory (SCRAM-SHA-256-PLUS with `plus: true`).
 * Throws `BEEP_ERR_INVALID_ARGUMENT` if the user name or password is refused by
 * SASLprep (the message never includes the password).
 */
export function scramSha256Client(options: ScramClientOptions): SaslClientMechanismFactory {
  const user = typeof options?.username === 'string' ? prep(options.username) : undefined;
  if (user === undefined) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'scramSha256Client: username is empty or refused by SASLprep');
  const password = typeof options.password === 'string' ? prep(options.password) : undefined;
  if (password === undefined) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'scramSha256Client: password is empty or refused by SASLprep');
  const minIt = options.minIterations ?? MIN_SCRAM_ITERATIONS;
  const maxIt = options.maxIterations ?? 1_000_000;
  if (!Number.isSafeInteger(minIt) || !Number.isSafeInteger(maxIt) || minIt < 1 || maxIt < minIt || maxIt > MAX_SCRAM_ITERATIONS) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'scramSha256Client: bad iteration bounds');
  }
  const plus = options.plus === true;
  return {
    name: plus ? SCRAM_SHA_256_PLUS : SCRAM_SHA_256,
    available: (ctx) => !plus || ctx.channelBinding !== undefined,
    create: (ctx) => exchange(ctx, options, user, password),
  };
}
