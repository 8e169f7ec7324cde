/**
 * The framing layer: pure functions and an incremental decoder over bytes.
 * Knows nothing of channels or sockets. Importable on its own as
 * `beepstream/framing`; everything here is also exported by `beepstream`.
 *
 * @module beepstream/framing
 */
export * from './header.js';
export * from './decoder.js';
export * from './encoder.js';
export * from './mime.js';
