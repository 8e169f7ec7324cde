#!/usr/bin/env node
/**
 * Executable entry point of the `beepstream` command.
 *
 * @module
 */
import { main } from './main.js';
import { printError } from './errors.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    printError(err);
    process.exitCode = 1;
  },
);
