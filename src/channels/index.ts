/**
 * The channel layer: the sans-IO session core, channels, message bodies,
 * windows, channel-0 XML, and the Node socket glue.
 *
 * @module
 */
export * from './window.js';
export * from './flow.js';
export * from './mgmt.js';
export * from './message.js';
export * from './responder.js';
export * from './channel.js';
export * from './types.js';
export * from './core.js';
export * from './session.js';
export * from './diagnostics.js';
export { tuningOf, type SessionHandle, type TuningContext, type TunedTransport } from './handle.js';
