/**
 * SciStream commands: `s2cs` (control server with its data server) here;
 * the client commands (`s2uc …`, `appctrl hello`, `session`) in `s2uc.ts`.
 *
 * @module
 */
import { Command } from 'commander';
import { loadUsersFile } from '../profiles/index.js';
import { startS2cs, DEFAULT_SCISTREAM_LIMITS, MAX_NUM_CONN } from '../scistream/index.js';
import { parseEndpoint, parsePort, parsePositiveInt, UsageError } from './address.js';
import { startOpsEndpoints, type OpsEndpoints } from '../ops/index.js';
import { readPemFile } from './secrets.js';
import { untilSignal } from './signals.js';
import { addClientCommands, parseNumConn } from './s2uc.js';
import { configHelp, formatConfig, printConfigFormat, resolveConfig } from './config.js';
import { createLogger, LineGate, logDataError, logFormatOption, logLevelOption, logSciStreamEvent, logSessions, parseLogFormat, parseLogLevel } from './log.js';

/** Add the SciStream commands to the program. */
export function addSciStreamCommands(program: Command): void {
  program
    .command('s2cs')
    .description('run a SciStream control server (S2CS) with its data server (S2DS); the first line printed is "listening on HOST:PORT"')
    .option('--host <host>', 'control listener address', '127.0.0.1')
    .option('--port <port>', 'control listener port (0 picks a free one)', '5000')
    .option('--data-host <host>', 'address the data server binds (default: --host)')
    .option('--data-advertise <host>', 'address written into listeners (default: --data-host)')
    .option('--port-range <from-to>', 'data ports, e.g. 5100-5199 (default: any free port)')
    .option('--config <file>', 'YAML or JSON file with any of these options (e.g. tlsCert: cert.pem, portRange: 5100-5199); flags and BEEPSTREAM_S2CS_* variables override it')
    .option('--print-config [format]', 'print the effective configuration (yaml or json), secrets masked, and exit')
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .option('--tls-cert <file>', 'TLS certificate of the control listener (PEM; required)')
    .option('--tls-key <file>', 'its private key (PEM; required)')
    .option('--users <file>', 'SCRAM-SHA-256 users file (see "beepstream users")')
    .option('--jwks <file-or-url>', 'accept OAUTHBEARER JWTs verified against this JWKS')
    .option('--issuer <iss>', 'required JWT issuer (with --jwks)')
    .option('--audience <aud>', 'required JWT audience (with --jwks)')
    .option('--rendezvous-timeout <ms>', 'how long a REQUEST waits for its HELLO', '60000')
    .option('--max-sessions <n>', 'most SciStream sessions', String(DEFAULT_SCISTREAM_LIMITS.maxSessions))
    .option('--max-sessions-per-identity <n>', 'most sessions per identity', String(DEFAULT_SCISTREAM_LIMITS.maxSessionsPerIdentity))
    .option('--max-conn <n>', `largest num_conn (at most ${MAX_NUM_CONN})`, String(DEFAULT_SCISTREAM_LIMITS.maxNumConn))
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one)')
    .option('--status <host:port>', 'serve a live status page of the sessions at http://HOST:PORT/ (port 0 picks a free one)')
    .addHelpText('after', configHelp('BEEPSTREAM_S2CS_'))
    .action(async (_flags: Record<string, unknown>, cmd: Command) => {
      const cfg = resolveConfig(cmd, {
        envPrefix: 'BEEPSTREAM_S2CS_',
        pathKeys: new Set(['tlsCert', 'tlsKey', 'users', 'jwks']),
        validate: {
          port: (v) => parsePort(v, 0),
          portRange: (v) => {
            if (!/^([0-9]{1,5})-([0-9]{1,5})$/.test(v)) throw new UsageError('--port-range must be FROM-TO');
          },
          rendezvousTimeout: (v) => parsePositiveInt('--rendezvous-timeout', v),
          maxSessions: (v) => parsePositiveInt('--max-sessions', v),
          maxSessionsPerIdentity: (v) => parsePositiveInt('--max-sessions-per-identity', v),
          maxConn: (v) => parseNumConn('--max-conn', v),
          metrics: (v) => parseEndpoint(v, 0),
          status: (v) => parseEndpoint(v, 0),
        },
      });
      const print = printConfigFormat(cmd.opts().printConfig);
      if (print) {
        process.stdout.write(formatConfig(cfg, print));
        return;
      }
      const o = cfg.values as Record<string, string | undefined>;
      // Log records wait behind the gate until the "listening on" line is out.
      const gate = new LineGate(process.stdout);
      const log = createLogger({ level: parseLogLevel(o.logLevel ?? 'info'), format: parseLogFormat(o.logFormat ?? 'auto'), destination: gate, name: 's2cs' });
      if (o.tlsCert === undefined || o.tlsKey === undefined) throw new UsageError('--tls-cert and --tls-key are required (flags or config file)');
      const port = parsePort(o.port as string, 0);
      const metricsAt = o.metrics === undefined ? undefined : parseEndpoint(o.metrics, 0);
      const statusAt = o.status === undefined ? undefined : parseEndpoint(o.status, 0);
      let portRange: [number, number] | undefined;
      if (o.portRange !== undefined) {
        const m = /^([0-9]{1,5})-([0-9]{1,5})$/.exec(o.portRange);
        if (!m) throw new UsageError('--port-range must be FROM-TO');
        portRange = [parsePort(m[1] as string), parsePort(m[2] as string)];
        if (portRange[0] > portRange[1]) throw new UsageError('--port-range: FROM must not exceed TO');
      }
      if (o.users === undefined && o.jwks === undefined) throw new UsageError('give --users and/or --jwks: clients must authenticate');
      if (o.jwks !== undefined && (!o.issuer || !o.audience)) throw new UsageError('--jwks needs --issuer and --audience');
      let users;
      if (o.users !== undefined) {
        try {
          users = await loadUsersFile(o.users);
        } catch (err) {
          throw new UsageError(`${cfg.nameOf('users')}: ${(err as Error).message}`);
        }
      }
      const dataHost = o.dataHost ?? (o.host as string);
      // Signal handlers before the first line (see untilSignal).
      const { stopped, stop } = untilSignal();
      let s2cs;
      try {
        s2cs = await startS2cs({
        host: o.host as string,
        port,
        cert: readPemFile(cfg.nameOf('tlsCert'), o.tlsCert as string, 'certificate'),
        key: readPemFile(cfg.nameOf('tlsKey'), o.tlsKey as string, 'key'),
        ...(users ? { users } : {}),
        ...(o.jwks !== undefined ? { jwks: { jwks: o.jwks, issuer: o.issuer as string, audience: o.audience as string } } : {}),
        data: { host: dataHost, ...(o.dataAdvertise ? { advertiseHost: o.dataAdvertise } : {}), ...(portRange ? { portRange } : {}) },
        control: {
          rendezvousTimeoutMs: parsePositiveInt('--rendezvous-timeout', o.rendezvousTimeout as string),
          onEvent: logSciStreamEvent(log),
        },
        sciStreamLimits: {
          maxSessions: parsePositiveInt('--max-sessions', o.maxSessions as string),
          maxSessionsPerIdentity: parsePositiveInt('--max-sessions-per-identity', o.maxSessionsPerIdentity as string),
          maxNumConn: parseNumConn('--max-conn', o.maxConn as string),
        },
        onDataError: logDataError(log),
      });
      } catch (err) {
        stop();
        throw err;
      }
      let ops: OpsEndpoints | undefined;
      try {
        if (metricsAt || statusAt) ops = await startOpsEndpoints({ s2cs, ...(metricsAt ? { metrics: metricsAt } : {}), ...(statusAt ? { status: statusAt } : {}) });
      } catch (err) {
        stop();
        await s2cs.close();
        throw err;
      }
      process.stdout.write(`listening on ${s2cs.address}\n`);
      const unsubscribe = logSessions(log);
      gate.open();
      log.info({ event: 'listen', address: s2cs.address, dataHost, portRange: o.portRange }, `listening on ${s2cs.address}`);
      for (const line of ops?.lines ?? []) process.stderr.write(`${line}\n`);
      await stopped;
      log.info({ event: 'shutdown' }, 'stopping: releasing every session');
      await ops?.close();
      await s2cs.close();
      log.info({ event: 'stopped' }, 'stopped');
      unsubscribe();
    });

  addClientCommands(program);
}
