/**
 * OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token (RFC 6750) in a GS2 header plus
 * `\x01`-separated key/value pairs. The server hands the token to a pluggable
 * {@link TokenValidator}; when it is refused, the server sends the RFC 7628 §3.2.2
 * JSON error as a challenge, waits for the client's `\x01` and then fails with 535.
 *
 * Tokens are bearer credentials: both sides refuse the mechanism without TLS unless
 * `allowWithoutTls` is set (RFC 7628 §5), and no token ever appears in a reason.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../../errors.js';
import { SaslReasons, decodeUtf8, failure, guardedServer } from './common.js';
import { buildGs2Header, parseGs2Header } from './gs2.js';
import type { SaslClientMechanismFactory, SaslServerMechanismFactory, SaslServerStep } from './types.js';

/** Mechanism name of OAUTHBEARER. */
export const OAUTHBEARER = 'OAUTHBEARER';

/** What the client sent besides the token (RFC 7628 §3.1). */
export interface BearerRequest {
  /** Authorization identity from the GS2 header, if any. */
  readonly authzid?: string;
  /** The `host` pair, if sent. */
  readonly host?: string;
  /** The `port` pair, if sent. */
  readonly port?: string;
}

/** RFC 6750 §3.1 error codes the RFC 7628 §3.2.2 `status` carries. */
export type BearerErrorStatus = 'invalid_token' | 'insufficient_scope' | 'invalid_request';

/** A validator's verdict on a token. */
export type TokenValidation =
  | {
      readonly valid: true;
      /** The token's subject: the authentication identity. */
      readonly subject: string;
      /** Granted scopes. */
      readonly scope?: readonly string[];
    }
  | {
      readonly valid: false;
      /** Why, as an RFC 6750 error code (default `invalid_token`). */
      readonly status?: BearerErrorStatus;
      /** The scope the client would need, for the error challenge. */
      readonly scope?: string;
    };

/**
 * Checks a bearer token. Resolves `{ valid: false }` for a bad token; rejects only
 * when it cannot decide (key set or endpoint unreachable) — the exchange then fails
 * with 454, a temporary failure.
 */
export type TokenValidator = (token: string, request: BearerRequest) => Promise<TokenValidation>;

/** The JSON error challenge of RFC 7628 §3.2.2. */
export interface BearerErrorChallenge {
  /** RFC 6750 error code. */
  readonly status: string;
  /** Scope needed, space-separated. */
  readonly scope?: string;
  /** URL of the OpenID Connect discovery document. */
  readonly 'openid-configuration'?: string;
}

/** `key = 1*ALPHA`, `value = *(VCHAR / SP / HTAB / CR / LF)` (RFC 7628 §3.1). */
const KVPAIR = /^([A-Za-z]+)=([\x21-\x7E \t\r\n]*)$/;
/** `"Bearer" 1*SP b64token` (RFC 6750 §2.1); the scheme is case-insensitive. */
const AUTH = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const KVSEP = '\x01';

/**
 * Parses a client response (RFC 7628 §3.1):
 * `gs2-header kvsep *kvpair kvsep`. Returns `undefined` if it is malformed, uses
 * channel binding, repeats a key, or has no well-formed `auth=Bearer <token>`.
 */
export function parseBearerResponse(input: Uint8Array): (BearerRequest & { readonly token: string }) | undefined {
  const text = decodeUtf8(input);
  const gs2 = text === undefined ? undefined : parseGs2Header(text);
  // OAUTHBEARER defines no channel binding: "p=" is refused.
  if (gs2 === undefined || gs2.cbind.flag === 'p') return undefined;
  const rest = gs2.rest;
  if (rest.length < 2 || !rest.startsWith(KVSEP) || !rest.endsWith(KVSEP + KVSEP)) return undefined;
  const pairs = rest.slice(1, -1).split(KVSEP).slice(0, -1);
  const kv = new Map<string, string>();
  for (const pair of pairs) {
    const m = KVPAIR.exec(pair);
    if (m === null || kv.has((m[1] ?? '').toLowerCase())) return undefined;
    kv.set((m[1] ?? '').toLowerCase(), m[2] ?? '');
  }
  const token = AUTH.exec(kv.get('auth') ?? '')?.[1];
  if (token === undefined) return undefined;
  const host = kv.get('host');
  const port = kv.get('port');
  return {
    token,
    ...(gs2.authzid === undefined ? {} : { authzid: gs2.authzid }),
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port }),
  };
}

/** Options of {@link oauthBearerServer}. */
export interface OAuthBearerServerOptions {
  /** Decides whether a token is valid and whose it is (see `jwksValidator`, `introspectionValidator`). */
  readonly validateToken: TokenValidator;
  /** May the token's subject act as a different `authzid`? Without it only the subject itself is allowed. */
  readonly authorize?: (subject: string, authzid: string) => boolean | Promise<boolean>;
  /** Scope to name in error challenges when the validator gives none. */
  readonly scope?: string;
  /** `openid-configuration` URL to name in error challenges. */
  readonly openidConfiguration?: string;
  /** Accept OAUTHBEARER on a session without TLS. Default false (refused with 538). */
  readonly allowWithoutTls?: boolean;
}

/** The OAUTHBEARER server mechanism factory. Throws `BEEP_ERR_INVALID_ARGUMENT` without a validator. */
export function oauthBearerServer(options: OAuthBearerServerOptions): SaslServerMechanismFactory {
  if (typeof options?.validateToken !== 'function') {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'oauthBearerServer: validateToken must be a function');
  }
  const allowed = (tls: boolean): boolean => tls || options.allowWithoutTls === true;

  function errorChallenge(status: BearerErrorStatus, scope: string | undefined): Buffer {
    const body: Record<string, string> = { status };
    const s = scope ?? options.scope;
    if (s !== undefined) body['scope'] = s;
    if (options.openidConfiguration !== undefined) body['openid-configuration'] = options.openidConfiguration;
    return Buffer.from(JSON.stringify(body), 'utf8');
  }

  return {
    name: OAUTHBEARER,
    available: (ctx) => allowed(ctx.tls),
    create(ctx) {
      let state: 'start' | 'asked' | 'error-sent' = 'start';
      return guardedServer(OAUTHBEARER, async (input): Promise<SaslServerStep> => {
        if (!allowed(ctx.tls)) return failure(538, SaslReasons.BEARER_NEEDS_TLS);
        if (state === 'error-sent') {
          // After an error challenge the client must answer with a lone kvsep (RFC 7628 §3.2.3).
          return input !== undefined && input.length === 1 && input[0] === 1
            ? failure(535, SaslReasons.AUTH_FAILED)
            : failure(535, SaslReasons.MALFORMED);
        }
        if (input === undefined) {
          if (state === 'asked') return failure(535, SaslReasons.MALFORMED);
          state = 'asked';
          return { status: 'continue', challenge: Buffer.alloc(0) };
        }
        const req = parseBearerResponse(input);
        if (req === undefined) return failure(535, SaslReasons.MALFORMED);
        const { token, ...request } = req;
        const verdict = await options.validateToken(token, request);
        if (verdict.valid !== true) {
          state = 'error-sent';
          return { status: 'continue', challenge: errorChallenge(verdict.status ?? 'invalid_token', verdict.scope) };
        }
        const subject = verdict.subject;
        if (typeof subject !== 'string' || subject === '') throw new BeepError(ErrorCodes.INVALID_STATE, 'validator gave no subject');
        const scope = verdict.scope === undefined ? {} : { scope: [...verdict.scope] };
        if (req.authzid !== undefined && req.authzid !== subject) {
          const ok = options.authorize === undefined ? false : await options.authorize(subject, req.authzid);
          if (ok !== true) {
            state = 'error-sent';
            return { status: 'continue', challenge: errorChallenge('invalid_token', undefined) };
          }
          return { status: 'success', identity: { authcid: subject, authzid: req.authzid, mechanism: OAUTHBEARER, ...scope } };
        }
        return { status: 'success', identity: { authcid: subject, mechanism: OAUTHBEARER, ...scope } };
      });
    },
  };
}

/** Options of {@link oauthBearerClient}. */
export interface OAuthBearerClientOptions {
  /** The access token, or a function returning a fresh one per exchange. */
  readonly token: string | (() => string | Promise<string>);
  /** Identity to act as, if not the token's subject. */
  readonly authzid?: string;
  /** Host name the client connected to (the `host` pair). */
  readonly host?: string;
  /** Port the client connected to (the `port` pair). */
  readonly port?: number;
  /** Called with the server's error challenge when the token is refused. */
  readonly onError?: (error: BearerErrorChallenge) => void;
  /** Send the token on a session without TLS. Default false. */
  readonly allowWithoutTls?: boolean;
}

/** Builds the client response of RFC 7628 §3.1. Throws `BEEP_ERR_INVALID_ARGUMENT` for a token that is not a b64token. */
export function buildBearerResponse(token: string, request: BearerRequest = {}): Buffer {
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'bearer token is not a b64token (RFC 6750 §2.1)');
  }
  let out = buildGs2Header({ flag: 'n' }, request.authzid) + KVSEP;
  for (const [k, v] of [['host', request.host], ['port', request.port]] as const) {
    if (v === undefined) continue;
    if (!/^[\x21-\x7E]+$/.test(v)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `bearer ${k} has characters outside VCHAR`);
    out += `${k}=${v}${KVSEP}`;
  }
  return Buffer.from(`${out}auth=Bearer ${token}${KVSEP}${KVSEP}`, 'utf8');
}

/**
 * The OAUTHBEARER client mechanism factory. `initial()` rejects with
 * `BEEP_ERR_INVALID_ARGUMENT` if the token function fails or yields a malformed token;
 * `create` throws `BEEP_ERR_INVALID_STATE` without TLS (unless `allowWithoutTls`).
 */
export function oauthBearerClient(options: OAuthBearerClientOptions): SaslClientMechanismFactory {
  if (typeof options?.token !== 'string' && typeof options?.token !== 'function') {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'oauthBearerClient: token must be a string or a function');
  }
  const allowed = (tls: boolean): boolean => tls || options.allowWithoutTls === true;
  const request: BearerRequest = {
    ...(options.authzid === undefined ? {} : { authzid: options.authzid }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: String(options.port) }),
  };
  return {
    name: OAUTHBEARER,
    available: (ctx) => allowed(ctx.tls),
    create(ctx) {
      if (!allowed(ctx.tls)) throw new BeepError(ErrorCodes.INVALID_STATE, 'OAUTHBEARER requires TLS', { replyCode: 538 });
      let state: 'initial' | 'sent' | 'error' = 'initial';
      async function message(): Promise<Buffer> {
        let token: string;
        try {
          token = typeof options.token === 'string' ? options.token : await options.token();
        } catch (cause) {
          throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'oauthBearerClient: the token function failed', { cause });
        }
        return buildBearerResponse(token, request);
      }
      return {
        name: OAUTHBEARER,
        async initial() {
          state = 'sent';
          return message();
        },
        async step(challenge) {
          if (state === 'initial' && challenge.length === 0) {
            state = 'sent';
            try {
              return { status: 'continue', response: await message() };
            } catch {
              return { status: 'failure', reason: 'no usable bearer token' };
            }
          }
          if (state !== 'sent') return { status: 'failure', reason: 'unexpected challenge' };
          state = 'error';
          let parsed: unknown;
          try {
            parsed = JSON.parse(decodeUtf8(challenge) ?? '');
          } catch {
            parsed = undefined;
          }
          const status = (parsed as { status?: unknown } | undefined)?.status;
          if (typeof status !== 'string') return { status: 'failure', reason: 'malformed server error challenge' };
          options.onError?.(parsed as BearerErrorChallenge);
          // Acknowledge the error with a lone kvsep; the server then fails (RFC 7628 §3.2.3).
          return { status: 'continue', response: Buffer.from([1]) };
        },
        async finish() {
          return state === 'sent' ? { status: 'success' } : { status: 'failure', reason: 'the token was refused' };
        },
      };
    },
  };
}
