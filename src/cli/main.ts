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
import { parseEndpoint, parsePort, parsePositiveInt, UsageError } from './address.js';
import { MIN_MEMORY_BUDGET, runListen, type ListenOptions } from './listen.js';
import { DEFAULT_MEMORY_BUDGET, DEFAULT_LIMITS } from '../channels/index.js';
import { parseTraceOctets } from './trace.js';
import { runConnect, type ConnectCliOptions } from './connect.js';
import { runUsersAdd, runUsersList, runUsersRemove, DEFAULT_SCRAM_ITERATIONS } from './users.js';
import { runDemo, runSciStreamDemoCli } from './demo.js';
import { addSciStreamCommands } from './scistream.js';
import { addDecadeCommands } from './decade.js';
import { addFlowsCommands } from './flows.js';
import { printError, ERROR_PREFIX } from './errors.js';
import { configHelp, formatConfig, printConfigFormat, resolveConfig } from './config.js';
import { logFormatOption, logLevelOption } from './log.js';

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
    // Commander's own errors ("error: unknown option …") take the one prefix too (inherited by every subcommand).
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, ERROR_PREFIX)) })
    .exitOverride();

  program
    .command('listen')
    .description('serve the echo and answers profiles; the first line printed is "listening on HOST:PORT"')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '10288')
    .option('--unix <path>', 'listen on a Unix domain socket at PATH instead of TCP (the path must not exist; removed on exit)')
    .option('--max-channels <n>', 'most channels per session', '4096')
    .option('--max-message-size <octets>', 'largest message assembled in memory', String(16 * 1024 * 1024))
    .option('--memory-budget <octets>', 'memory all sessions together may hold because of their peers (windows granted, octets unread, replies owed)', String(DEFAULT_MEMORY_BUDGET))
    .option('--session-memory-budget <octets>', 'the same for one session', String(DEFAULT_LIMITS.sessionMemoryBudget))
    .option('--tls-cert <file>', 'offer TLS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--tls-ca <file>', 'verify client certificates against this CA (enables SASL EXTERNAL)')
    .option('--tls-psk-file <file>', 'offer TLS-PSK: one "identity:hexkey" per line')
    .option('--require-tls', 'refuse every profile but TLS until TLS is in place (538)')
    .option('--sasl-users <file>', 'SCRAM-SHA-256 users file (see "beepstream users"): enables SCRAM-SHA-256 and PLAIN (PLAIN only over TLS)')
    .option('--allow-anonymous', 'enable SASL ANONYMOUS')
    .option('--jwks <file-or-url>', 'enable SASL OAUTHBEARER with JWTs verified against this JWKS')
    .option('--issuer <iss>', 'required JWT issuer (with --jwks)')
    .option('--audience <aud>', 'required JWT audience (with --jwks)')
    .option('--require-auth', 'echo and answers need an authenticated session (530 before)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one)')
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .option('--trace', 'print every frame in and out on stderr, as RFC 3080 writes them (I: initiator, L: listener)')
    .option('--trace-octets <n>', 'payload octets shown per traced frame, channel 0 excepted (0-256)', '64')
    .option('--config <file>', 'YAML or JSON file with any of these options (e.g. port: 10288, tlsCert: cert.pem); flags and BEEPSTREAM_LISTEN_* variables override it')
    .option('--print-config [format]', 'print the effective configuration (yaml or json), secrets masked, and exit')
    .addHelpText('after', configHelp('BEEPSTREAM_LISTEN_'))
    .action(async (_opts: ListenOptions, cmd: Command) => {
      const cfg = resolveConfig(cmd, {
        envPrefix: 'BEEPSTREAM_LISTEN_',
        pathKeys: new Set(['tlsCert', 'tlsKey', 'tlsCa', 'tlsPskFile', 'saslUsers', 'jwks', 'unix']),
        validate: {
          port: (v) => parsePort(v, 0),
          maxChannels: (v) => parsePositiveInt('--max-channels', v, 2147483647),
          maxMessageSize: (v) => parsePositiveInt('--max-message-size', v),
          memoryBudget: (v) => parsePositiveInt('--memory-budget', v, 2 ** 53 - 1, MIN_MEMORY_BUDGET),
          sessionMemoryBudget: (v) => parsePositiveInt('--session-memory-budget', v, 2 ** 53 - 1, MIN_MEMORY_BUDGET),
          metrics: (v) => parseEndpoint(v, 0),
          traceOctets: (v) => parseTraceOctets(v),
        },
      });
      const print = printConfigFormat(cmd.opts().printConfig);
      if (print) {
        process.stdout.write(formatConfig(cfg, print));
        return;
      }
      await runListen({ ...(cfg.values as unknown as ListenOptions), nameOf: cfg.nameOf });
    });

  program
    .command('connect')
    .description('connect to a BEEP peer, start a channel and send messages')
    .argument('<address>', 'HOST:PORT of the listener, or unix:PATH for a Unix domain socket')
    .requiredOption('--profile <uri>', 'profile URI to start a channel with')
    .addOption(new Option('--message <text>', 'message body to send').conflicts('file'))
    .addOption(new Option('--file <path>', 'send the contents of a file as the message body').conflicts('message'))
    .option('--count <n>', 'send the message N times', '1')
    .option('--content-type <type>', 'Content-Type of the message')
    .option('--timeout <ms>', 'milliseconds to wait for the connection and greeting', '30000')
    .option('--tls', 'tune the session with TLS before starting the channel')
    .option('--tls-ca <file>', 'trust only this CA for the server certificate (implies --tls)')
    .option('--tls-cert <file>', 'client certificate (PEM), e.g. for SASL EXTERNAL (implies --tls)')
    .option('--tls-key <file>', 'private key of --tls-cert')
    .option('--server-name <name>', 'name the server certificate must match (default: the host)')
    .option('--psk-identity <id>', 'TLS-PSK identity (implies --tls)')
    .option('--psk-key <hex>', 'TLS-PSK key in hex, or env:NAME / file:PATH')
    .option('--sasl <mechanism>', 'authenticate with SCRAM-SHA-256, PLAIN, ANONYMOUS, EXTERNAL or OAUTHBEARER')
    .option('--user <name>', 'SASL user name (ANONYMOUS: trace)')
    .option('--password <secret>', 'SASL password, or env:NAME / file:PATH (a literal value shows in the process listing)')
    .option('--token <secret>', 'OAUTHBEARER token, or env:NAME / file:PATH')
    .option('--authzid <name>', 'SASL authorization identity to act as')
    .option('--trace', 'print every frame in and out on stderr, as RFC 3080 writes them (I: initiator, L: listener)')
    .option('--trace-octets <n>', 'payload octets shown per traced frame, channel 0 excepted (0-256)', '64')
    .option('-q, --quiet', 'no progress bar (one is drawn on stderr for --file when stderr is a terminal)')
    .action(async (address: string, opts: ConnectCliOptions) => {
      process.exitCode = await runConnect(address, opts);
    });

  program
    .command('scistream-demo')
    .description('the main job (npm start): a complete SciStream session over BEEP on loopback — two facilities, TLS, SASL, TLS-PSK data path, SHA-256 checks, RELEASE')
    .option('--bytes-per-stream <octets>', 'octets each stream carries in each direction', String(512 * 1024 * 1024))
    .option('--num-conn <n>', 'parallel streams (num_conn)', '4')
    .option('--rate <octets-per-second>', 'rate limit of the session')
    .action(async (opts: { bytesPerStream: string; numConn: string; rate?: string }) => {
      process.exitCode = await runSciStreamDemoCli(opts);
    });

  addSciStreamCommands(program);
  addDecadeCommands(program);
  addFlowsCommands(program);

  const users = program.command('users').description('manage a SCRAM-SHA-256 users file (salted keys only, no passwords stored)');
  users
    .command('add')
    .description('add or replace a user; the password is read from standard input unless --password env:NAME or file:PATH is given')
    .argument('<file>', 'users file (created, mode 0600, if missing)')
    .argument('<user>', 'user name')
    .option('--iterations <n>', 'PBKDF2 iteration count (at least 4096)', String(DEFAULT_SCRAM_ITERATIONS))
    .option('--password <secret>', 'env:NAME or file:PATH (a literal value shows in the process listing)')
    .action(async (file: string, user: string, opts: { iterations: string; password?: string }) => {
      await runUsersAdd(file, user, opts);
    });
  users
    .command('remove')
    .description('remove a user')
    .argument('<file>')
    .argument('<user>')
    .action(async (file: string, user: string) => {
      await runUsersRemove(file, user);
    });
  users
    .command('list')
    .description('list user names')
    .argument('<file>')
    .action(async (file: string) => {
      await runUsersList(file);
    });

  program
    .command('demo')
    .description('the plain BEEP demo: a listener and a client on loopback exchange messages (echo, streaming, ANS…NUL, 300 channels); `npm start` runs scistream-demo instead')
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
    printError(err);
    return err instanceof UsageError ? 2 : 1;
  }
}
