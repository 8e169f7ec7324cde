/**
 * The profiles layer: the registration API and the bundled profiles.
 *
 * @module
 */
export * from './define.js';
export * from './echo.js';
export * from './answers.js';
export * from './tls.js';
export * from './sasl-beep.js';
export * from './sasl/index.js';
