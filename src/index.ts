/**
 * beepstream: BEEP (RFC 3080, RFC 3081) for Node.js — the library's API:
 * the session factories, the profile API with the bundled and tuning
 * profiles, the error classes and codes, and the SciStream roles.
 *
 * Everything else lives behind a subpath, one per layer, with no stability
 * promise beyond its TSDoc: `beepstream/framing`, `beepstream/transports`,
 * `beepstream/channels`, `beepstream/profiles` (every SASL mechanism, the
 * element parsers), `beepstream/scistream` (messages, registry, data plane),
 * `beepstream/ops`, `beepstream/flows`, `beepstream/decade`. The README's
 * "API" section lists every name exported here (a test keeps the two equal).
 *
 * @module beepstream
 */

// Errors: classes and stable codes.
export { BeepError, BeepSessionError, BeepChannelError, BeepOperationError, BeepFramingError, BeepReplyError, ErrorCodes, ReplyCodes, isBeepError } from './errors.js';
export type { ErrorCode, ErrorOrigin, ErrorScope, BeepErrorOptions } from './errors.js';

// Sessions: factories, the session and channel objects, limits, diagnostics.
export { connect, createServer, Session, BeepServer, DEFAULT_MEMORY_BUDGET } from './channels/index.js';
export { Channel } from './channels/index.js';
export { DEFAULT_LIMITS } from './channels/index.js';
export { DIAGNOSTICS_CHANNELS } from './channels/index.js';
export { tuningOf } from './channels/index.js';
export type {
  ConnectOptions, ServerOptions, SessionOptions, SessionEvents, ServerEvents,
  ChannelState, ChannelEvents, RequestOptions, ReplyCallback, StartChannelOptions,
  IncomingMessage, BodyInit, SessionLimits, CompatOptions, Role, TransportSecurity, SessionIdentity,
  SessionHandle, TuningContext, TunedTransport, Greeting,
} from './channels/index.js';
export type { TransportInfo, TransportKind, DialTarget, ListenTarget, ListenAddress } from './transports/index.js';

// The profile API and the bundled profiles.
export { defineProfile, echoProfile, answersProfile, ECHO_URI, ANSWERS_URI } from './profiles/index.js';
export type { ProfileDefinition, ChannelProfile, StartRequest, StartDecision, CloseRequest, CloseDecision, Responder, ReplyOptions } from './profiles/index.js';

// Tuning profiles: TLS and SASL (RFC 3080 §3–4) and the SASL mechanisms.
export { tlsProfile, startTls, TLS_URI } from './profiles/index.js';
export type { TlsServerOptions, TlsClientOptions, Pem } from './profiles/index.js';
export { saslProfiles, authenticate, saslUri, SASL_URI_PREFIX } from './profiles/index.js';
export type { SaslServerOptions } from './profiles/index.js';
export {
  scramSha256Server, scramSha256Client, plainServer, plainClient, anonymousServer, anonymousClient,
  externalServer, externalClient, oauthBearerServer, oauthBearerClient, jwksValidator, introspectionValidator,
  AuthFailureLimiter, createUserEntry, loadUsersFile,
} from './profiles/index.js';

// SciStream roles: S2CS, S2UC, application controller, S2DS.
export {
  startS2cs, connectControl, appctrlHello, S2ucClient, createControlServer, createDataServer,
  SciStreamError, newUid, CONTROL_URI, generateDevPki, removeDevPki,
} from './scistream/index.js';
export type { S2cs, S2csOptions, ControlConnectOptions, DevPki, SciStreamErrorCode, DataServer, DataPath } from './scistream/index.js';

// Safe XML: the error every XML parser of the library refuses a document with.
export { XmlError, xmlErrorOf } from './xml/index.js';
export type { XmlErrorReason } from './xml/index.js';
