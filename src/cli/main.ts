/**
 * The `beepstream` command: `listen`, `connect` and `demo`.
 *
 * Exit codes: 0 success; 1 a protocol or network failure (including an ERR
 * reply); 2 a bad argument.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from './address.js';
import { runListen } from './listen.js';
import { runConnect } from './connect.js';
import { runDemo } from './demo.js';
import { BeepError } from '../errors.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Build the command tree (exported for tests). */
export function buildProgram(): Command {
  const program = new Command('beepstream')
    .description('BEEP (RFC 3080/3081) peer and SciStream over BEEP')
    .version(version(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('listen')
    .description('serve the echo and answers profiles; the first line printed is "listening on HOST:PORT"')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '10288')
    .option('--max-channels <n>', 'most channels per session', '4096')
    .option('--max-message-size <octets>', 'largest message assembled in memory', String(16 * 1024 * 1024))
    .action(async (opts: { host: string; port: string; maxChannels: string; maxMessageSize: string }) => {
      await runListen(opts);
    });

  program
    .command('connect')
    .description('connect to a BEEP peer, start a channel and send messages')
    .argument('<address>', 'HOST:PORT of the listener')
    .requiredOption('--profile <uri>', 'profile URI to start a channel with')
    .addOption(new Option('--message <text>', 'message body to send').conflicts('file'))
    .addOption(new Option('--file <path>', 'send the contents of a file as the message body').conflicts('message'))
    .option('--count <n>', 'send the message N times', '1')
    .option('--content-type <type>', 'Content-Type of the message')
    .option('--timeout <ms>', 'milliseconds to wait for the connection and greeting', '30000')
    .action(async (address: string, opts: { profile: string; message?: string; file?: string; count: string; contentType?: string; timeout: string }) => {
      process.exitCode = await runConnect(address, opts);
    });

  program
    .command('demo')
    .description('run a listener and a client on loopback and exchange messages (what `npm start` runs)')
    .option('--bytes <octets>', 'size of the streamed echo message', String(64 * 1024 * 1024))
    .action(async (opts: { bytes: string }) => {
      process.exitCode = await runDemo(opts);
    });

  return program;
}

/** Run the CLI with `argv` (as process.argv) and return the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; anything else is a usage error (already printed).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`beepstream: ${err.message}\n`);
      return 2;
    }
    const code = err instanceof BeepError ? ` [${err.code}]` : '';
    process.stderr.write(`beepstream: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    return 1;
  }
}
