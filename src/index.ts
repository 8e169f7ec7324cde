/**
 * beepstream: BEEP (RFC 3080, RFC 3081) for Node.js.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './framing/index.js';
export * from './channels/index.js';
export * from './profiles/index.js';
