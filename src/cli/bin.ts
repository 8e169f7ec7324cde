#!/usr/bin/env node
/**
 * Executable entry point of the `beepstream` command.
 *
 * @module
 */
import { main } from './main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`beepstream: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
