#!/usr/bin/env node
/**
 * Executable entry point of the `beepstream` command.
 *
 * @module
 */
import { main } from './main.js';
import { printError } from './errors.js';

// A reader that goes away (`beepstream … | head`) is not an error of ours: stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    printError(err);
    process.exitCode = 1;
  },
);
