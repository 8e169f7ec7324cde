/**
 * `beepstream flows serve`: the FNAA as a long-running process
 * (`spec/flows.md` §5.2), and its reload on SIGHUP.
 *
 * On SIGHUP the effective configuration is resolved again (the `--config`
 * file and the `--users`, `--sources` and `--routes` files are read again;
 * flags and variables still override the file). What can change while the
 * server runs changes at once for every later request: the SCRAM users
 * (sessions already authenticated stay), `creators`, `sources`, `routes`.
 * Everything else (address, TLS, store, metrics endpoint) needs a restart; a
 * change of it is reported in one log line and not applied. A reload that
 * fails (a file missing or malformed) changes nothing and is logged in one
 * line; the server keeps running.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Command } from 'commander';
import YAML from 'yaml';
import { createServer } from '../channels/index.js';
import { AuthFailureLimiter, loadUsersFile, plainServer, saslProfiles, scramSha256Server, type ScramCredentials } from '../profiles/index.js';
import { UsageError, formatEndpoint, parseEndpoint, parsePort } from './address.js';
import { listenerTuning } from './security.js';
import { configHelp, formatConfig, printConfigFormat, resolveConfig, type ResolvedConfig } from './config.js';
import { untilSignal } from './signals.js';
import { createFlowsServer, openSqliteStore, openJetStreamStore, type FlowsPolicy, type FlowStore } from '../flows/index.js';
import { startOpsEndpoints, type OpsEndpoints } from '../ops/index.js';

/** Default port of `flows serve` and of the client commands' `--server`. */
export const FLOWS_DEFAULT_PORT = 10290;

/** Settings applied while the server runs (reloaded on SIGHUP). */
const LIVE_KEYS = ['users', 'creators', 'sources', 'routes'] as const;
/** Settings fixed at start: a change is reported on SIGHUP and needs a restart. */
const FIXED_KEYS = ['host', 'port', 'data', 'tlsCert', 'tlsKey', 'store', 'nats', 'replicas', 'metrics', 'insecure'] as const;

/** Split a comma-separated identity list (`undefined` when not given). */
export function ids(list: string | undefined, name: string): string[] | undefined {
  if (list === undefined) return undefined;
  const out = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (out.length === 0) throw new UsageError(`${name}: expected a comma-separated list of identities (or *)`);
  return out;
}

/** Read a `--sources`/`--routes` map: identity → list of names. */
function readSources(name: string, path: string): Record<string, string[]> {
  let doc: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    doc = path.toLowerCase().endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new UsageError(`${name}: cannot read ${JSON.stringify(path)}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${name}: expected a map from identity to a list of names`);
  const out: Record<string, string[]> = {};
  for (const [id, hosts] of Object.entries(doc as Record<string, unknown>)) {
    if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === 'string' && h !== '')) throw new UsageError(`${name}: ${JSON.stringify(id)} must map to a list of names`);
    out[id] = hosts as string[];
  }
  return out;
}

/** What the live settings are made of (read from the files named by the configuration). */
interface Live {
  users: Map<string, ScramCredentials>;
  policy: FlowsPolicy;
}

async function readLive(cfg: ResolvedConfig): Promise<Live> {
  const o = cfg.values as Record<string, string | undefined>;
  if (o.users === undefined) throw new UsageError('--users is required: clients must authenticate (SCRAM-SHA-256)');
  let users: Map<string, ScramCredentials>;
  try {
    users = await loadUsersFile(o.users);
  } catch (err) {
    throw new UsageError(`${cfg.nameOf('users')}: ${(err as Error).message}`);
  }
  const creators = ids(o.creators, cfg.nameOf('creators'));
  const sources = o.sources === undefined ? undefined : readSources(cfg.nameOf('sources'), o.sources);
  const routes = o.routes === undefined ? undefined : readSources(cfg.nameOf('routes'), o.routes);
  return { users, policy: { ...(creators ? { creators } : {}), ...(sources ? { sources } : {}), ...(routes ? { routes } : {}) } };
}

/** The fixed settings as compared on reload: their values, and the TLS files' contents (a hash: a replaced certificate counts as a change). */
function fixedOf(cfg: ResolvedConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of FIXED_KEYS) {
    const v = cfg.values[k];
    let s = v === undefined ? '' : String(v);
    if ((k === 'tlsCert' || k === 'tlsKey') && typeof v === 'string') {
      try {
        s += `#${createHash('sha256').update(readFileSync(v)).digest('hex')}`;
      } catch {
        s += '#unreadable';
      }
    }
    out.set(k, s);
  }
  return out;
}

/** Add `flows serve` to the `flows` command. */
export function addServeCommand(flows: Command): void {
  flows
    .command('serve')
    .description('run a flows server (FNAA) on an embedded SQLite store or NATS JetStream; the first line printed is "listening on HOST:PORT"; SIGHUP reloads the users, creators, sources and routes')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', String(FLOWS_DEFAULT_PORT))
    .option('--data <file>', 'SQLite database of the flows (created with its directory)', 'beepstream-flows.db')
    .option('--tls-cert <file>', 'TLS certificate (PEM; required unless --insecure)')
    .option('--tls-key <file>', 'its private key (PEM)')
    .option('--users <file>', 'SCRAM-SHA-256 users file (see "beepstream users"; required: clients must authenticate; reloaded on SIGHUP)')
    .option('--creators <ids>', 'comma-separated identities that may create flows (default: every authenticated one)')
    .option('--sources <file>', 'YAML or JSON map from identity to the source hosts it may claim ("*": any); others may only claim their own name')
    .option('--routes <file>', 'YAML or JSON map from identity to the users it may route events to ("*": any); others may route only to themselves')
    .option('--store <kind>', 'where flows are kept: sqlite (embedded, --data) or jetstream (--nats)', 'sqlite')
    .option('--nats <servers>', 'comma-separated NATS servers (host:port) for --store jetstream')
    .option('--replicas <n>', 'copies of each flow on the JetStream cluster (1, 3 or 5)', '1')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics: events in/out per flow, subscriber lag (port 0 picks a free one)')
    .option('--insecure', 'serve without TLS (development and tests only)')
    .option('--stats', 'on stopping, print the store\'s counters (commits, syncs, rows) and the event-loop delay on stderr (benchmarks)')
    .option('--config <file>', 'YAML or JSON file with any of these options (e.g. port: 10290, tlsCert: cert.pem); flags and BEEPSTREAM_FLOWS_* variables override it; read again on SIGHUP')
    .option('--print-config [format]', 'print the effective configuration (yaml or json), secrets masked, and exit')
    .addHelpText('after', configHelp('BEEPSTREAM_FLOWS_'))
    .action(async (_flags: Record<string, unknown>, cmd: Command) => {
      const resolve = (): ResolvedConfig =>
        resolveConfig(cmd, {
          envPrefix: 'BEEPSTREAM_FLOWS_',
          pathKeys: new Set(['data', 'tlsCert', 'tlsKey', 'users', 'sources', 'routes']),
          validate: { port: (v) => parsePort(v, 0), metrics: (v) => parseEndpoint(v, 0) },
        });
      const cfg = resolve();
      const print = printConfigFormat(cmd.opts().printConfig);
      if (print) {
        process.stdout.write(formatConfig(cfg, print));
        return;
      }
      const o = cfg.values as Record<string, string | boolean | undefined>;
      const port = parsePort(o.port as string, 0);
      const host = o.host as string;
      if (!host || /\s/.test(host)) throw new UsageError(`invalid host ${JSON.stringify(host)}`);
      const insecure = o.insecure === true;
      if (!insecure && (o.tlsCert === undefined || o.tlsKey === undefined)) {
        throw new UsageError('flows serve requires TLS: give --tls-cert and --tls-key (or --insecure, for development only)');
      }
      if (insecure && (o.tlsCert !== undefined || o.tlsKey !== undefined)) throw new UsageError('--insecure goes without --tls-cert and --tls-key');
      let live = await readLive(cfg);
      const kind = o.store as string;
      if (kind !== 'sqlite' && kind !== 'jetstream') throw new UsageError(`${cfg.nameOf('store')} must be sqlite or jetstream, not ${JSON.stringify(kind)}`);
      const replicas = Number(o.replicas);
      if (![1, 3, 5].includes(replicas)) throw new UsageError(`${cfg.nameOf('replicas')} must be 1, 3 or 5`);
      const natsServers = typeof o.nats === 'string' ? o.nats.split(',').map((x) => x.trim()).filter((x) => x !== '') : [];
      if (kind === 'jetstream' && natsServers.length === 0) throw new UsageError(`--store jetstream needs ${cfg.nameOf('nats')} (host:port,…)`);
      const tuning = await listenerTuning({ ...(insecure ? {} : { tlsCert: o.tlsCert as string, tlsKey: o.tlsKey as string }), nameOf: cfg.nameOf });
      // The SASL mechanisms look users up in whatever `live.users` is now: a reload swaps it.
      const users = { get: (name: string): ScramCredentials | undefined => live.users.get(name) };
      const sasl = saslProfiles({ mechanisms: [scramSha256Server({ store: users }), plainServer({ store: users })], limiter: new AuthFailureLimiter() });
      const fixed = fixedOf(cfg);
      const delay = o.stats === true ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
      const { stopped, stop } = untilSignal();
      let store: FlowStore;
      try {
        store = kind === 'jetstream' ? await openJetStreamStore({ servers: natsServers, replicas }) : await openSqliteStore({ path: o.data as string });
      } catch (err) {
        stop();
        throw err;
      }
      const fnaa = createFlowsServer({
        store,
        allowInsecure: insecure,
        ...live.policy,
        onError: (err) => process.stderr.write(`beepstream: flows: ${(err as Error)?.message ?? String(err)}\n`),
      });
      const server = createServer({ profiles: [...tuning.profiles, ...sasl, fnaa.profile], requireTls: !insecure });
      let address: string;
      let ops: OpsEndpoints | undefined;
      try {
        const a = await server.listen(port, host);
        address = formatEndpoint(a.address, a.port);
        if (o.metrics !== undefined) ops = await startOpsEndpoints({ metrics: parseEndpoint(o.metrics as string, 0), servers: [{ name: 'flows', server }], flows: fnaa });
      } catch (err) {
        stop();
        await server.close(0).catch(() => undefined);
        await store.close();
        throw err;
      }
      // SIGHUP: reload what can change live; one line says what happened.
      let reloading = Promise.resolve();
      const onHup = (): void => {
        reloading = reloading.then(async () => {
          try {
            const next = resolve();
            const read = await readLive(next);
            live = read;
            fnaa.setPolicy(read.policy);
            const now = fixedOf(next);
            const pending = FIXED_KEYS.filter((k) => now.get(k) !== fixed.get(k)).map((k) => next.nameOf(k));
            process.stderr.write(`flows: reloaded ${LIVE_KEYS.join(', ')} (${read.users.size} users)${pending.length > 0 ? `; not applied until a restart: ${pending.join(', ')}` : ''}\n`);
          } catch (err) {
            process.stderr.write(`flows: reload failed, settings unchanged: ${(err as Error).message.split('\n')[0]}\n`);
          }
        });
      };
      process.on('SIGHUP', onHup);
      delay?.enable();
      process.stdout.write(`listening on ${address}\n`);
      for (const line of ops?.lines ?? []) process.stdout.write(`${line}\n`);
      process.stderr.write(`flows: store ${kind === 'jetstream' ? `jetstream ${natsServers.join(',')} (${replicas} replica${replicas > 1 ? 's' : ''})` : (o.data as string)}; ${insecure ? 'INSECURE (no TLS)' : 'TLS required'}; ${[...tuning.summary, 'sasl SCRAM-SHA-256 PLAIN'].join('; ')}; SIGHUP reloads ${LIVE_KEYS.join(', ')}\n`);
      await stopped;
      process.off('SIGHUP', onHup);
      await ops?.close();
      fnaa.close();
      await server.close(2000);
      await store.close();
      if (delay) {
        delay.disable();
        const s = store.stats?.() ?? {};
        const rows = s.rows ?? 0;
        const per = (n: number | undefined): string => (rows > 0 && n !== undefined ? (n / (rows / 1000)).toFixed(2) : '-');
        const ms = (ns: number): string => (ns / 1e6).toFixed(2);
        process.stderr.write(
          `flows: stats: ${Object.entries(s).map(([k, v]) => `${k} ${v}`).join(', ')}; per 1,000 rows: syncs ${per(s.syncs)}, commits ${per(s.commits)}; rows per commit ${s.commits ? (rows / s.commits).toFixed(1) : '-'}; event-loop delay p50 ${ms(delay.percentile(50))} ms, p99 ${ms(delay.percentile(99))} ms, max ${ms(delay.max)} ms\n`,
        );
      }
    });
}
