/**
 * Service discovery through DNS (SRV + TXT) over `node:dns`, with a
 * configurable resolver. A bottom-level module: it imports nothing of
 * beepstream but `errors.ts`, so every application (flows, DECADE) can use it.
 *
 * @module
 */
export * from './errors.js';
export * from './resolver.js';
