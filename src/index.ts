/**
 * beepstream: BEEP (RFC 3080, RFC 3081) for Node.js.
 *
 * @module beepstream
 */
export * from './errors.js';
export { XmlError, xmlErrorOf, type XmlErrorReason } from './xml/index.js';
export * from './framing/index.js';
export * from './channels/index.js';
export * from './profiles/index.js';
export * from './scistream/control/index.js';
export * from './scistream/data/index.js';
export * from './scistream/roles.js';
export * from './scistream/demo.js';
export * from './scistream/devcerts.js';
export type * from './scistream/dataplane.js';
export * from './ops/index.js';
