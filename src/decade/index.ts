/**
 * DECADE in-network storage over BEEP (draft-ietf-decade-arch-03): the DRP
 * and SDT profiles, content names (RFC 6920), tokens, the server, the client
 * and the embedded store. Imported as `beepstream/decade`; wire format in
 * `spec/decade.md`.
 *
 * @module
 */
export * from './errors.js';
export * from './names.js';
export * from './tokens.js';
export * from './wire.js';
export * from './store.js';
export * from './file-store.js';
export * from './jetstream-store.js';
export * from './uploads.js';
export * from './server.js';
export * from './client.js';
export * from './relay.js';
export * from './discovery.js';
