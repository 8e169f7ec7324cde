/**
 * The framing layer: pure functions and an incremental decoder over bytes.
 * Knows nothing of channels or sockets.
 *
 * @module
 */
export * from './header.js';
export * from './decoder.js';
export * from './encoder.js';
export * from './mime.js';
