/**
 * A {@link TokenValidator} for JWT access tokens (RFC 9068) signed by a key of a
 * JSON Web Key Set: signature, issuer, audience, expiry and required scopes are
 * checked with `jose`.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { BeepError, ErrorCodes } from '../../errors.js';
import type { TokenValidation, TokenValidator } from './oauthbearer.js';
import { missingScope, requiredScopes, scopesOf } from './scope.js';

/** Signature algorithms accepted unless `algorithms` says otherwise: asymmetric only. */
export const DEFAULT_JWT_ALGORITHMS: readonly string[] = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
];

/** Options of {@link jwksValidator}. */
export interface JwksValidatorOptions {
  /**
   * The key set: an `http(s)://` URL (string or `URL`, fetched and cached), JSON text
   * (a string starting with `{`), a file path (read once, now), or the JWKS object.
   */
  readonly jwks: string | URL | JSONWebKeySet;
  /** Accepted `iss` value(s). */
  readonly issuer: string | readonly string[];
  /** Accepted `aud` value(s); the token must name one of them. */
  readonly audience: string | readonly string[];
  /** Scopes the token must grant (space-separated string or list), from `scope` or `scp`. */
  readonly requiredScope?: string | readonly string[];
  /** Clock skew allowed for `exp`/`nbf`/`iat`: seconds, or a `jose` duration like `"30s"`. Default 0. */
  readonly clockTolerance?: number | string;
  /** Accepted `alg` values. Default {@link DEFAULT_JWT_ALGORITHMS}. */
  readonly algorithms?: readonly string[];
  /** Claim naming the subject. Default `sub`. */
  readonly subjectClaim?: string;
  /** Timeout of a remote key-set fetch, ms. Default 5000. */
  readonly timeoutMs?: number;
}

/** jose errors meaning "this token is bad" (as opposed to "the key set is unavailable"). */
const TOKEN_ERRORS = new Set<string>([
  errors.JWTExpired.code,
  errors.JWTClaimValidationFailed.code,
  errors.JWSSignatureVerificationFailed.code,
  errors.JWSInvalid.code,
  errors.JWTInvalid.code,
  errors.JWKSNoMatchingKey.code,
  errors.JWKSMultipleMatchingKeys.code,
  errors.JOSEAlgNotAllowed.code,
  errors.JOSENotSupported.code,
]);

function keySet(jwks: JwksValidatorOptions['jwks'], timeoutMs: number): JWTVerifyGetKey {
  if (jwks instanceof URL || (typeof jwks === 'string' && /^https?:\/\//i.test(jwks))) {
    return createRemoteJWKSet(new URL(jwks), { timeoutDuration: timeoutMs });
  }
  let set: unknown = jwks;
  if (typeof jwks === 'string') {
    const inline = jwks.trimStart().startsWith('{');
    try {
      set = JSON.parse(inline ? jwks : readFileSync(jwks, 'utf8'));
    } catch (cause) {
      const from = inline ? 'the inline JSON text' : jwks;
      throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `jwksValidator: cannot read a JSON key set from ${from}`, { cause });
    }
  }
  try {
    return createLocalJWKSet(set as JSONWebKeySet);
  } catch (cause) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'jwksValidator: jwks is not a JSON Web Key Set', { cause });
  }
}

/**
 * A validator accepting JWTs signed by a key of `jwks`, issued by `issuer` for
 * `audience`, carrying `exp` (not past, within `clockTolerance`) and a subject, and
 * granting every `requiredScope`. A refused token resolves `{ valid: false }`
 * (`insufficient_scope` when only scopes are missing); the validator rejects with
 * `BEEP_ERR_TRANSPORT` only when a remote key set cannot be fetched. Throws
 * `BEEP_ERR_INVALID_ARGUMENT` for bad options or an unreadable key-set file.
 */
export function jwksValidator(options: JwksValidatorOptions): TokenValidator {
  if (options === null || typeof options !== 'object' || options.jwks === undefined) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'jwksValidator: jwks is required');
  }
  const issuers = typeof options.issuer === 'string' ? [options.issuer] : [...(options.issuer ?? [])];
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (issuers.length === 0 || audiences.length === 0) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'jwksValidator: issuer and audience are required');
  }
  const getKey = keySet(options.jwks, options.timeoutMs ?? 5000);
  const required = requiredScopes(options.requiredScope);
  const subjectClaim = options.subjectClaim ?? 'sub';
  const verifyOptions = {
    issuer: issuers,
    audience: audiences,
    algorithms: [...(options.algorithms ?? DEFAULT_JWT_ALGORITHMS)],
    requiredClaims: ['exp', subjectClaim],
    ...(options.clockTolerance === undefined ? {} : { clockTolerance: options.clockTolerance }),
  };

  return async (token): Promise<TokenValidation> => {
    let payload: Record<string, unknown>;
    try {
      payload = (await jwtVerify(token, getKey, verifyOptions)).payload;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && TOKEN_ERRORS.has(code)) return { valid: false, status: 'invalid_token' };
      // The key set could not be fetched or parsed: not the token's fault (→ 454).
      throw new BeepError(ErrorCodes.TRANSPORT, 'jwksValidator: the key set is unavailable', { cause: err });
    }
    const subject = payload[subjectClaim];
    if (typeof subject !== 'string' || subject === '') return { valid: false, status: 'invalid_token' };
    const scope = scopesOf(payload);
    const missing = missingScope(scope, required);
    if (missing !== undefined) return { valid: false, status: 'insufficient_scope', scope: required.join(' ') };
    return { valid: true, subject, scope };
  };
}
