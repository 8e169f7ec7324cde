/**
 * SASL mechanisms (RFC 4422) for the BEEP SASL tuning profiles: transport-independent
 * client and server state machines for SCRAM-SHA-256(-PLUS), PLAIN, ANONYMOUS,
 * EXTERNAL and OAUTHBEARER, the SCRAM users file, bearer-token validators and an
 * authentication-failure limiter. See `spec/sasl.md`.
 *
 * @module
 */
export * from './types.js';
export { SaslReasons, MAX_CLIENT_MESSAGE } from './common.js';
export { escapeSaslname, unescapeSaslname, parseGs2Header, buildGs2Header, type Gs2Header, type Gs2ChannelBinding } from './gs2.js';
export {
  MIN_SCRAM_ITERATIONS,
  DEFAULT_SCRAM_ITERATIONS,
  MAX_SCRAM_ITERATIONS,
  createUserEntry,
  normalizeUsername,
  verifyPassword,
  type ScramCredentials,
  type ScramCredentialStore,
} from './scram-crypto.js';
export * from './scram-server.js';
export * from './scram-client.js';
export * from './plain.js';
export * from './anonymous.js';
export * from './external.js';
export * from './oauthbearer.js';
export * from './jwks-validator.js';
export * from './introspection-validator.js';
export * from './users-file.js';
export * from './limiter.js';
