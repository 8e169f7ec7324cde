/**
 * Event flows over BEEP (`spec/flows.md`): the flows profile's FNAA
 * ({@link createFlowsServer}), its FNUA client ({@link connectFlows},
 * {@link FlowsClient}), the storage interface ({@link FlowStore}) and its
 * embedded SQLite default ({@link openSqliteStore}). Import it as
 * `beepstream/flows`.
 *
 * @module
 */
export * from './errors.js';
export * from './wire.js';
export type * from './store.js';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
export { openJetStreamStore, type JetStreamStoreOptions } from './jetstream-store.js';
export * from './server.js';
export * from './client.js';
export * from './uri.js';
export { FLOWS_DIAGNOSTICS, type FlowsPublishEvent, type FlowsDeliverEvent } from './diagnostics.js';
