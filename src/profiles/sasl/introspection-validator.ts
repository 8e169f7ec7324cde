/**
 * A {@link TokenValidator} that asks an OAuth 2.0 token introspection endpoint
 * (RFC 7662) whether a token is active: a form POST of `token=…` with HTTP basic
 * client authentication (RFC 6749 §2.3.1); `active` must be `true`, and `exp`,
 * `nbf`, audience, issuer and scopes are checked too.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../../errors.js';
import type { TokenValidation, TokenValidator } from './oauthbearer.js';
import { missingScope, requiredScopes, scopesOf } from './scope.js';

/** Options of {@link introspectionValidator}. */
export interface IntrospectionValidatorOptions {
  /** The introspection endpoint; `https:` unless it is a loopback address or `allowHttp` is set. */
  readonly endpoint: string | URL;
  /** Our client id at the authorization server. */
  readonly clientId: string;
  /** Our client secret (sent only in the Authorization header, never logged). */
  readonly clientSecret: string;
  /** Scopes the token must grant (space-separated string or list). */
  readonly requiredScope?: string | readonly string[];
  /** If set, the response's `aud` must name one of these. */
  readonly audience?: string | readonly string[];
  /** If set, the response's `iss` must equal this. */
  readonly issuer?: string;
  /** Clock skew allowed for `exp` and `nbf`, in seconds. Default 0. */
  readonly clockTolerance?: number;
  /** Request timeout, ms. Default 5000. */
  readonly timeoutMs?: number;
  /** Allow a plain `http:` endpoint that is not on loopback. Default false. */
  readonly allowHttp?: boolean;
  /** Clock in ms since the epoch (for tests). Default `Date.now`. */
  readonly now?: () => number;
  /** The fetch implementation (for tests). Default the global `fetch`. */
  readonly fetch?: typeof fetch;
}

/** Largest introspection response read, in octets. */
const MAX_RESPONSE = 1024 * 1024;

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function unavailable(message: string, cause?: unknown): BeepError {
  return new BeepError(ErrorCodes.TRANSPORT, `introspectionValidator: ${message}`, cause === undefined ? {} : { cause });
}

/**
 * A validator backed by an RFC 7662 endpoint. A token that is inactive, expired, not
 * yet valid, for another audience or issuer, or without a subject resolves
 * `{ valid: false }` (`insufficient_scope` when only scopes are missing). The
 * validator rejects with `BEEP_ERR_TRANSPORT` when the endpoint is unreachable, times
 * out, or answers anything but 200 with a JSON object (e.g. 401 for a wrong client
 * secret) — the mechanism turns that into a 454 temporary failure. Throws
 * `BEEP_ERR_INVALID_ARGUMENT` for bad options.
 */
export function introspectionValidator(options: IntrospectionValidatorOptions): TokenValidator {
  let endpoint: URL;
  try {
    endpoint = new URL(options.endpoint);
  } catch (cause) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'introspectionValidator: endpoint is not a URL', { cause });
  }
  if (endpoint.protocol !== 'https:' && !(endpoint.protocol === 'http:' && (options.allowHttp === true || isLoopback(endpoint.hostname)))) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'introspectionValidator: endpoint must be https (or http on loopback, or allowHttp)');
  }
  if (typeof options.clientId !== 'string' || typeof options.clientSecret !== 'string' || options.clientId === '') {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'introspectionValidator: clientId and clientSecret are required');
  }
  const authorization = `Basic ${Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64')}`;
  const required = requiredScopes(options.requiredScope);
  const audiences = options.audience === undefined ? undefined : typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  const skew = (options.clockTolerance ?? 0) * 1000;
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;

  return async (token): Promise<TokenValidation> => {
    let body: unknown;
    try {
      const res = await doFetch(endpoint, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw unavailable(`the endpoint answered HTTP ${res.status}`);
      }
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > MAX_RESPONSE) {
        await res.body?.cancel();
        throw unavailable('the response is too large');
      }
      const text = await res.text();
      if (text.length > MAX_RESPONSE) throw unavailable('the response is too large');
      body = JSON.parse(text);
    } catch (err) {
      if (err instanceof BeepError) throw err;
      throw unavailable('the endpoint is unreachable or its answer is not JSON', err);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw unavailable('the answer is not a JSON object');
    const r = body as Record<string, unknown>;
    // RFC 7662 §2.2: "active" is REQUIRED; anything but true means not usable.
    if (r['active'] !== true) return { valid: false, status: 'invalid_token' };
    const t = now();
    if (typeof r['exp'] === 'number' && r['exp'] * 1000 <= t - skew) return { valid: false, status: 'invalid_token' };
    if (typeof r['nbf'] === 'number' && r['nbf'] * 1000 > t + skew) return { valid: false, status: 'invalid_token' };
    if (options.issuer !== undefined && r['iss'] !== options.issuer) return { valid: false, status: 'invalid_token' };
    if (audiences !== undefined) {
      const aud = r['aud'];
      const named = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!named.some((a) => audiences.includes(a as string))) return { valid: false, status: 'invalid_token' };
    }
    const subject = typeof r['sub'] === 'string' && r['sub'] !== '' ? r['sub'] : r['username'];
    if (typeof subject !== 'string' || subject === '') return { valid: false, status: 'invalid_token' };
    const scope = scopesOf(r);
    if (missingScope(scope, required) !== undefined) return { valid: false, status: 'insufficient_scope', scope: required.join(' ') };
    return { valid: true, subject, scope };
  };
}
