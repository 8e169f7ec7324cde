/**
 * The SciStream data plane over BEEP: the data server (S2DS) implementing the
 * `DataServer` contract, the data and data-control profiles, and the TLS-PSK
 * derivation from the session uid. Wire behaviour: `spec/scistream-data.md`.
 *
 * @module
 */
export { createDataServer, BeepDataServer, type DataServerOptions } from './server.js';
export { MAX_NUM_CONN, MAX_CONNECTIONS, checkConnections, type DataTlsOptions } from './common.js';
export { NUM_CONN_WIRE_MAX, NUM_CONN_CEILING, CONNECTIONS_CEILING, DEFAULT_SCISTREAM_LIMITS, resolveSciStreamLimits, sciStreamLimitsOf, type SciStreamLimits, type SciStreamLimitShorthands } from '../limits.js';
export { InboundPath } from './inbound.js';
export { OutboundPath } from './outbound.js';
export { derivePsk, pskResolver, hkdfSha256, uidOctets, PSK_SALT, PSK_KEY_INFO, PSK_IDENTITY_INFO, PSK_KEY_LENGTH, PSK_IDENTITY_LENGTH, type DataPsk } from './psk.js';
export { DATA_URI, DATA_CONTROL_URI, DataCodes, DATA_LIMITS, buildStreamInit, parseStreamInit, buildControl, parseControl, DataWireError, type ControlMessage } from './wire.js';
export { TokenBucket, type TokenBucketOptions } from './bucket.js';
export { StreamBridge, type BridgeHooks, type BridgeOptions, type ResetOrigin } from './bridge.js';
export { DataLink, dataProfile, dataControlProfile, type LinkInfo, type ProfileHost } from './profiles.js';
export type { PortRange } from './ports.js';
export type { PathSettings } from './common.js';
