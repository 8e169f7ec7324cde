/**
 * SciStream commands: `s2cs` (control server with its data server),
 * `s2uc inbound-request | outbound-request | request | update | release |
 * status`, and `appctrl hello`. Every client command connects over TLS,
 * authenticates with SASL, and prints either lines or, with `--json`, one
 * JSON document. Secrets come from `env:NAME` / `file:PATH`, never echoed.
 *
 * @module
 */
import { Command } from 'commander';
import { loadUsersFile, scramSha256Client, oauthBearerClient, type SaslClientMechanismFactory } from '../profiles/sasl/index.js';
import { appctrlHello, newUid, SciStreamError, isUid, type S2ucClient, type SciStreamRole } from '../scistream/control/index.js';
import { connectControl, startS2cs } from '../scistream/roles.js';
import { formatEndpoint, parseEndpoint, parsePort, parsePositiveInt, UsageError } from './address.js';
import { startOpsEndpoints, type OpsEndpoints } from '../ops/endpoints.js';
import { readOptionFile, readSecret } from './secrets.js';
import { untilSignal } from './signals.js';
import { writeFileSync } from 'node:fs';
import { configHelp, formatConfig, printConfigFormat, resolveConfig } from './config.js';
import { createLogger, LineGate, logFormatOption, logLevelOption, logSciStreamEvent, logSessions, parseLogFormat, parseLogLevel } from './log.js';

interface ClientOpts {
  server: string;
  tlsCa?: string;
  serverName?: string;
  user?: string;
  password?: string;
  token?: string;
  json?: boolean;
}

function addClientOptions(c: Command): Command {
  return c
    .requiredOption('--server <host:port>', 'the S2CS to talk to')
    .option('--tls-ca <file>', 'CA the S2CS certificate must chain to')
    .option('--server-name <name>', 'name the S2CS certificate must carry (default: the host)')
    .option('--user <name>', 'SCRAM-SHA-256 user name')
    .option('--password <secret>', 'env:NAME or file:PATH')
    .option('--token <secret>', 'OAUTHBEARER token: env:NAME or file:PATH')
    .option('--json', 'print one JSON document');
}

function mechanism(o: ClientOpts): SaslClientMechanismFactory {
  if (o.token !== undefined) return oauthBearerClient({ token: readSecret('--token', o.token) });
  if (o.user === undefined || o.password === undefined) throw new UsageError('give --user and --password (SCRAM-SHA-256), or --token (OAUTHBEARER)');
  return scramSha256Client({ username: o.user, password: readSecret('--password', o.password) });
}

async function withClient<T>(o: ClientOpts, f: (c: S2ucClient) => Promise<T>): Promise<T> {
  const { host, port } = parseEndpoint(o.server);
  const sasl = mechanism(o);
  const client = await connectControl({
    host,
    port,
    ...(o.tlsCa !== undefined ? { ca: readOptionFile('--tls-ca', o.tlsCa) } : {}),
    serverName: o.serverName ?? host,
    sasl,
  });
  try {
    return await f(client);
  } finally {
    await client.close().catch(() => undefined);
    await client.session.close().catch(() => client.session.destroy());
  }
}

function uidOption(spec: string | undefined, generate: boolean): string {
  if (spec === undefined) {
    if (generate) return newUid();
    throw new UsageError('--uid is required (the uid itself, or env:NAME / file:PATH)');
  }
  const uid = spec.startsWith('env:') || spec.startsWith('file:') ? readSecret('--uid', spec) : spec;
  if (!isUid(uid)) throw new UsageError('--uid must be 32 lowercase hexadecimal characters');
  return uid;
}

function role(r: string): SciStreamRole {
  const v = r.toUpperCase();
  if (v !== 'PROD' && v !== 'CONS') throw new UsageError('--role must be PROD or CONS');
  return v;
}

function listeners(list: string): string[] {
  const out = list.split(',').map((s) => s.trim()).filter(Boolean);
  if (out.length === 0) throw new UsageError('expected one or more HOST:PORT, comma-separated');
  for (const l of out) parseEndpoint(l);
  return out;
}

/** `--num-conn` and `--rate` as REQUEST fields. */
function sizing(o: { numConn: string; rate?: string }): { numConn: number; rate?: number } {
  const numConn = parsePositiveInt('--num-conn', o.numConn, 64);
  return o.rate === undefined ? { numConn } : { numConn, rate: parsePositiveInt('--rate', o.rate) };
}

function print(json: boolean | undefined, doc: Record<string, unknown>, lines: string[]): void {
  process.stdout.write(json ? JSON.stringify(doc) + '\n' : lines.map((l) => l + '\n').join(''));
}

/** Run a SciStream client command, mapping SciStream errors to exit code 1 with their §8 code. */
async function runClient(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    if (err instanceof SciStreamError) {
      process.stderr.write(`beepstream: ${err.code}: ${err.message}${err.retryAfter !== undefined ? ` (retry after ${err.retryAfter} s)` : ''}\n`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

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
    .option('--max-sessions <n>', 'most SciStream sessions', '1024')
    .option('--max-sessions-per-identity <n>', 'most sessions per identity', '64')
    .option('--max-conn <n>', 'largest num_conn', '64')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one)')
    .option('--status <host:port>', 'serve a live status page of the sessions at http://HOST:PORT/ (port 0 picks a free one)')
    .addHelpText('after', configHelp('BEEPSTREAM_S2CS_'))
    .action(async (_flags: Record<string, unknown>, cmd: Command) => {
      const cfg = resolveConfig(cmd, {
        envPrefix: 'BEEPSTREAM_S2CS_',
        validate: {
          port: (v) => parsePort(v, 0),
          portRange: (v) => {
            if (!/^([0-9]{1,5})-([0-9]{1,5})$/.test(v)) throw new UsageError('--port-range must be FROM-TO');
          },
          rendezvousTimeout: (v) => parsePositiveInt('--rendezvous-timeout', v),
          maxSessions: (v) => parsePositiveInt('--max-sessions', v),
          maxSessionsPerIdentity: (v) => parsePositiveInt('--max-sessions-per-identity', v),
          maxConn: (v) => parsePositiveInt('--max-conn', v),
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
          throw new UsageError(`--users: ${(err as Error).message}`);
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
        cert: readOptionFile('--tls-cert', o.tlsCert as string),
        key: readOptionFile('--tls-key', o.tlsKey as string),
        ...(users ? { users } : {}),
        ...(o.jwks !== undefined ? { jwks: { jwks: o.jwks, issuer: o.issuer as string, audience: o.audience as string } } : {}),
        data: { host: dataHost, ...(o.dataAdvertise ? { advertiseHost: o.dataAdvertise } : {}), ...(portRange ? { portRange } : {}) },
        control: {
          rendezvousTimeoutMs: parsePositiveInt('--rendezvous-timeout', o.rendezvousTimeout as string),
          maxSessions: parsePositiveInt('--max-sessions', o.maxSessions as string),
          maxSessionsPerIdentity: parsePositiveInt('--max-sessions-per-identity', o.maxSessionsPerIdentity as string),
          maxConnPerSession: parsePositiveInt('--max-conn', o.maxConn as string),
          onEvent: logSciStreamEvent(log),
        },
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

  const s2uc = program.command('s2uc').description('SciStream user client');
  addClientOptions(
    s2uc
      .command('inbound-request')
      .description('producer side: REQUEST (role PROD), wait for the producer HELLO, print the uid and the listeners to give to the consumer side')
      .option('--uid <uid>', 'uid to use (default: a new one from a CSPRNG)')
      .option('--uid-file <file>', 'write the uid to this file (mode 0600) instead of printing it')
      .option('--num-conn <n>', 'parallel connections', '1')
      .option('--rate <octets-per-second>', 'rate limit'),
  ).action((o: ClientOpts & { uid?: string; uidFile?: string; numConn: string; rate?: string }) =>
    runClient(async () => {
      const uid = uidOption(o.uid, true);
      const size = sizing(o);
      // The application controller needs the uid for its HELLO, which this
      // REQUEST waits for: hand it out first (file, or the first line).
      if (o.uidFile !== undefined) writeFileSync(o.uidFile, uid + '\n', { mode: 0o600 });
      else if (!o.json) process.stdout.write(`uid ${uid}\n`);
      const r = await withClient(o, (c) => c.request({ uid, role: 'PROD', keep: true, ...size }));
      const lines = [...(o.uidFile === undefined ? [] : [`uid (written to ${o.uidFile})`]), `listeners ${r.listeners.join(',')}`];
      print(o.json, { ...(o.uidFile === undefined ? { uid } : {}), listeners: r.listeners }, lines);
    }),
  );
  s2uc
    .command('new-uid')
    .description('make a session uid (128 bits from a CSPRNG, 32 hex characters)')
    .option('--uid-file <file>', 'write it to this file (mode 0600) instead of printing it')
    .action((o: { uidFile?: string }) => {
      const uid = newUid();
      if (o.uidFile !== undefined) writeFileSync(o.uidFile, uid + '\n', { mode: 0o600 });
      else process.stdout.write(uid + '\n');
    });
  addClientOptions(
    s2uc
      .command('outbound-request')
      .description('consumer side: REQUEST (role CONS) and UPDATETARGETS with the producer side listeners; print the local listeners the consumer application connects to')
      .requiredOption('--uid <uid>', 'the uid from inbound-request (or env:NAME / file:PATH)')
      .requiredOption('--remote <listeners>', 'the producer side listeners, comma-separated HOST:PORT')
      .option('--num-conn <n>', 'parallel connections', '1')
      .option('--rate <octets-per-second>', 'rate limit'),
  ).action((o: ClientOpts & { uid: string; remote: string; numConn: string; rate?: string }) =>
    runClient(async () => {
      const uid = uidOption(o.uid, false);
      const remoteListeners = listeners(o.remote);
      const size = sizing(o);
      const r = await withClient(o, async (c) => {
        const [resp] = await Promise.all([c.request({ uid, role: 'CONS', keep: true, ...size }), c.update({ uid, role: 'CONS', remoteListeners })]);
        return resp;
      });
      print(o.json, { listeners: r.listeners }, [`listeners ${r.listeners.join(',')}`]);
    }),
  );
  addClientOptions(
    s2uc
      .command('request')
      .description('send a REQUEST')
      .requiredOption('--uid <uid>', 'uid (or env:NAME / file:PATH)')
      .requiredOption('--role <PROD|CONS>', 'role')
      .option('--num-conn <n>', 'parallel connections', '1')
      .option('--rate <octets-per-second>', 'rate limit'),
  ).action((o: ClientOpts & { uid: string; role: string; numConn: string; rate?: string }) =>
    runClient(async () => {
      const uid = uidOption(o.uid, false);
      const req = { uid, role: role(o.role), keep: true, ...sizing(o) };
      const r = await withClient(o, (c) => c.request(req));
      print(o.json, { listeners: r.listeners }, [`listeners ${r.listeners.join(',')}`]);
    }),
  );
  addClientOptions(
    s2uc
      .command('update')
      .description('send UPDATETARGETS')
      .requiredOption('--uid <uid>', 'uid (or env:NAME / file:PATH)')
      .requiredOption('--role <PROD|CONS>', 'role')
      .requiredOption('--remote <listeners>', 'remote listeners, comma-separated HOST:PORT'),
  ).action((o: ClientOpts & { uid: string; role: string; remote: string }) =>
    runClient(async () => {
      const uid = uidOption(o.uid, false);
      const upd = { uid, role: role(o.role), remoteListeners: listeners(o.remote) };
      const r = await withClient(o, (c) => c.update(upd));
      print(o.json, { listeners: r.listeners }, [`listeners ${r.listeners.join(',')}`]);
    }),
  );
  addClientOptions(s2uc.command('release').description('send RELEASE').requiredOption('--uid <uid>', 'uid (or env:NAME / file:PATH)')).action(
    (o: ClientOpts & { uid: string }) =>
      runClient(async () => {
        const uid = uidOption(o.uid, false);
        await withClient(o, (c) => c.release(uid));
        print(o.json, { released: true }, ['released']);
      }),
  );
  addClientOptions(s2uc.command('status').description('query a session (STATUS)').requiredOption('--uid <uid>', 'uid (or env:NAME / file:PATH)')).action(
    (o: ClientOpts & { uid: string }) =>
      runClient(async () => {
        const uid = uidOption(o.uid, false);
        const s = await withClient(o, (c) => c.status(uid));
        const doc = { state: s.state, role: s.role, numConn: s.numConn, listeners: s.listeners, stats: s.stats ?? null };
        print(o.json, doc, [`state ${s.state}`, `role ${s.role}`, `listeners ${s.listeners.join(',')}`, ...(s.stats ? [`connections ${s.stats.connections} open ${s.stats.open} to_producer ${s.stats.bytesToProducer} to_consumer ${s.stats.bytesToConsumer}`] : [])]);
      }),
  );

  const appctrl = program.command('appctrl').description('SciStream application controller');
  addClientOptions(
    appctrl
      .command('hello')
      .description('send HELLO with the application endpoints')
      .requiredOption('--uid <uid>', 'uid (or env:NAME / file:PATH)')
      .option('--role <PROD|CONS>', 'role', 'PROD')
      .option('--prod-listener <host:port...>', 'producer application endpoint(s)'),
  ).action((o: ClientOpts & { uid: string; role: string; prodListener?: string[] }) =>
    runClient(async () => {
      const uid = uidOption(o.uid, false);
      const prodListeners = (o.prodListener ?? []).map((l) => {
        const e = parseEndpoint(l);
        return formatEndpoint(e.host, e.port);
      });
      const hello = { uid, role: role(o.role), prodListeners };
      const r = await withClient(o, (c) => appctrlHello(c.session, hello));
      print(o.json, { message: r.message, listeners: r.listeners }, [`${r.message}`, `listeners ${r.listeners.join(',')}`]);
    }),
  );
}
