/**
 * `beepstream decade …`: serve a DECADE store, make account keys and tokens,
 * and PUT, GET, stat and rm objects. `--json` prints one JSON document (or,
 * for `serve`, JSON lines). Exit codes: 0 success, 1 a refusal or a network
 * failure, 2 a bad argument.
 *
 * Tokens are secrets: `--token` takes only `env:NAME` or `file:PATH` (a
 * literal one would show in the process listing) and no output or log line
 * carries one; `token` writes the new token to `--out FILE` (mode 0600) or
 * standard output.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { JsonWebKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { BeepError, BeepOperationError, ErrorCodes } from '../errors.js';
import { createServer } from '../channels/index.js';
import { tlsProfile, type TlsClientOptions } from '../profiles/index.js';
import {
  connectDecade, createToken, DECADE_LIMITS, DecadeClient, parseDecadeAddress, type DecadeAddress, DecadeError, DecadeServer, FileStore, generateAccountKey, importPrivateKey, isAccountId, isDecadeError, JetStreamDecadeStore, OPERATIONS, parseName, redactTokens,
  type AccountConfig, type DecadeEvent, type DecadeStore, type Operation, type OpenReport, type TokenGrant,
} from '../decade/index.js';
import { collectDecadeMetrics, startOpsEndpoints, type OpsEndpoints } from '../ops/index.js';
import { parseEndpoint, UsageError } from './address.js';
import { configHelp, formatConfig, printConfigFormat, resolveConfig } from './config.js';
import { readSecret } from './secrets.js';
import { createResolver, type DnsResolver } from '../discovery/index.js';
import { Progress } from './progress.js';

/** A bad argument (`BEEP_ERR_USAGE`, as the CLI's `UsageError`): printed as `beepstream: MESSAGE`, exit 2. */
export class DecadeUsageError extends BeepOperationError {
  constructor(message: string) {
    super(ErrorCodes.USAGE, message);
  }
}

const out = (s: string): void => void process.stdout.write(`${s}\n`);

function describe(err: unknown): string {
  if (err instanceof DecadeUsageError || err instanceof UsageError) return err.message;
  if (isDecadeError(err)) return `error ${err.replyCode}: ${err.decadeCode}: ${err.message}`;
  if (err instanceof BeepError) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

/** Run a command body: errors print as one line on stderr (tokens redacted) and set the exit code. */
async function action(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    process.stderr.write(`beepstream: ${redactTokens(describe(err))}\n`);
    process.exitCode = err instanceof DecadeUsageError || err instanceof UsageError ? 2 : 1;
  }
}

function uint(name: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d{1,16}$/.test(text) || Number(text) > max) throw new DecadeUsageError(`${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

function endpoint(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new DecadeUsageError(`expected HOST:PORT, got ${JSON.stringify(text.slice(0, 60))}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** A `--token` value: `env:NAME` or `file:PATH` only. */
export function readTokenOption(spec: string | undefined): string {
  if (spec === undefined) throw new DecadeUsageError('--token env:NAME or --token file:PATH is required');
  let v: string | undefined;
  if (spec.startsWith('env:')) {
    v = process.env[spec.slice(4)];
    if (v === undefined || v.trim() === '') throw new DecadeUsageError(`--token: environment variable ${spec.slice(4)} is not set`);
  } else if (spec.startsWith('file:')) {
    try {
      v = readFileSync(spec.slice(5), 'utf8');
    } catch {
      throw new DecadeUsageError(`--token: cannot read ${JSON.stringify(spec.slice(5))}`);
    }
    if (v.trim() === '') throw new DecadeUsageError(`--token: ${JSON.stringify(spec.slice(5))} is empty`);
  } else {
    throw new DecadeUsageError('--token takes env:NAME or file:PATH (a token given literally would show in the process listing)');
  }
  return v.trim();
}

function readJson(name: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new DecadeUsageError(`${name}: cannot read ${JSON.stringify(path)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DecadeUsageError(`${name}: ${JSON.stringify(path)} is not JSON`);
  }
}

/** Read an accounts file: `{ "accounts": [ { "id", "publicKey": JWK, "quota"? } ] }`. */
export function readAccounts(path: string): AccountConfig[] {
  const doc = readJson('--accounts', path) as { accounts?: unknown };
  if (!Array.isArray(doc?.accounts) || doc.accounts.length === 0) throw new DecadeUsageError(`--accounts: ${JSON.stringify(path)} needs an "accounts" list`);
  return doc.accounts.map((a: unknown, i: number) => {
    const r = a as { id?: unknown; publicKey?: unknown; quota?: unknown };
    if (!isAccountId(r?.id)) throw new DecadeUsageError(`--accounts: accounts[${i}].id is not a valid account id`);
    if (typeof r.publicKey !== 'object' || r.publicKey === null) throw new DecadeUsageError(`--accounts: accounts[${i}].publicKey must be a JWK`);
    if (r.quota !== undefined && r.quota !== null && !(Number.isSafeInteger(r.quota) && (r.quota as number) >= 0)) throw new DecadeUsageError(`--accounts: accounts[${i}].quota must be a whole number of octets`);
    return { id: r.id, publicKey: r.publicKey as AccountConfig['publicKey'], quota: (r.quota as number | null | undefined) ?? null };
  });
}

function eventLine(e: DecadeEvent): string {
  return `${e.op} ${e.account ?? '-'} ${e.name ?? '-'} ${e.octets} octets ${e.outcome}${e.client ? ` from ${e.client}` : ''}${e.source ? ` source ${e.source}` : ''}${e.tokenId ? ` token-id ${e.tokenId}` : ''}${e.detail ? ` (${e.detail})` : ''}`;
}

interface ServeOptions {
  dir?: string; accounts?: string; host: string; port: string; maxObjectSize?: string; requireAuth?: boolean; tlsCert?: string; tlsKey?: string; json?: boolean;
  metrics?: string; relayAllow?: string; relayTlsCa?: string; relayServerName?: string;
  store: string; nats?: string; bucket: string; replicas: string; natsUser?: string; natsPassword?: string; natsCreds?: string;
}

/**
 * NATS credentials of `serve` (never on the command line, never printed): a
 * user with a password given as `env:NAME` or `file:PATH` (a literal password
 * is accepted only from the environment variable or the config file, not as
 * a flag), or a credentials file (`--nats-creds`).
 */
function natsAuth(o: ServeOptions, nameOf: (key: string) => string, sources: Record<string, string>): { user?: string; pass?: string; credentials?: Uint8Array } {
  const given = [o.natsUser, o.natsPassword, o.natsCreds].some((v) => v !== undefined);
  if (given && o.store !== 'jetstream') throw new DecadeUsageError(`${nameOf(o.natsCreds !== undefined ? 'natsCreds' : o.natsUser !== undefined ? 'natsUser' : 'natsPassword')} goes with --store jetstream`);
  if (o.natsCreds !== undefined) {
    if (o.natsUser !== undefined || o.natsPassword !== undefined) throw new DecadeUsageError(`${nameOf('natsCreds')} takes the place of --nats-user and --nats-password`);
    let creds: Buffer;
    try {
      creds = readFileSync(o.natsCreds);
    } catch {
      throw new DecadeUsageError(`${nameOf('natsCreds')}: cannot read ${JSON.stringify(o.natsCreds)}`);
    }
    if (!/-----BEGIN NATS USER JWT-----/.test(creds.toString('latin1')) || !/-----BEGIN USER NKEY SEED-----/.test(creds.toString('latin1'))) {
      throw new DecadeUsageError(`${nameOf('natsCreds')}: ${JSON.stringify(o.natsCreds)} is not a NATS credentials file (a user JWT and an nkey seed)`);
    }
    return { credentials: creds };
  }
  if (o.natsPassword !== undefined && o.natsUser === undefined) throw new DecadeUsageError(`${nameOf('natsPassword')} needs --nats-user`);
  if (o.natsUser === undefined) return {};
  if (o.natsPassword === undefined) throw new DecadeUsageError(`${nameOf('natsUser')} needs --nats-password (env:NAME or file:PATH)`);
  const spec = o.natsPassword;
  let pass: string;
  if (spec.startsWith('env:') || spec.startsWith('file:')) pass = readSecret(nameOf('natsPassword'), spec);
  else if (sources.natsPassword === 'flag') throw new DecadeUsageError(`${nameOf('natsPassword')}: give env:NAME or file:PATH, not the password itself (it would be visible in the process listing)`);
  else pass = spec;
  return { user: o.natsUser, pass };
}

/** The store `serve` is configured with: the embedded files (`--dir`) or NATS JetStream (`--nats`). */
function openStore(o: ServeOptions, nameOf: (key: string) => string, sources: Record<string, string>): { store: DecadeStore; where: string; describe: (r: OpenReport) => string } {
  const auth = natsAuth(o, nameOf, sources);
  if (o.store === 'file') {
    if (o.dir === undefined) throw new DecadeUsageError(`${nameOf('store')} file needs ${nameOf('dir')} (the store directory)`);
    if (o.nats !== undefined) throw new DecadeUsageError(`${nameOf('nats')} goes with --store jetstream`);
    const store = new FileStore({ dir: resolvePath(o.dir) });
    return { store, where: JSON.stringify(o.dir), describe: (r) => `store ${store.dir}: swept ${r.tempFiles} temporary files (${r.tempOctets} octets) and ${r.orphans} orphan blobs` };
  }
  if (o.store !== 'jetstream') throw new DecadeUsageError(`${nameOf('store')} must be file or jetstream, not ${JSON.stringify(o.store)}`);
  if (o.dir !== undefined) throw new DecadeUsageError(`${nameOf('dir')} goes with --store file`);
  const servers = list(o.nats) ?? [];
  if (servers.length === 0) throw new DecadeUsageError(`--store jetstream needs ${nameOf('nats')} (HOST:PORT,…)`);
  for (const s of servers) if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s)) throw new DecadeUsageError(`${nameOf('nats')}: ${JSON.stringify(s.slice(0, 60))} is not HOST:PORT`);
  let store: JetStreamDecadeStore;
  try {
    store = new JetStreamDecadeStore({ servers, bucket: o.bucket, replicas: uint(nameOf('replicas'), o.replicas, 5), ...auth });
  } catch (err) {
    throw new DecadeUsageError(`${nameOf('store')} jetstream: ${(err as Error).message}`);
  }
  const where = `jetstream ${servers.join(',')} bucket ${o.bucket}${auth.credentials ? ' (credentials file)' : auth.user !== undefined ? ` (user ${auth.user})` : ''}`;
  return { store, where, describe: (r) => `store ${where}: swept ${r.tempFiles} interrupted uploads (${r.tempOctets} octets) and ${r.orphans} orphan objects` };
}

async function serve(o: ServeOptions, nameOf: (key: string) => string, sources: Record<string, string>): Promise<void> {
  const port = uint(nameOf('port'), o.port, 65535);
  if (!o.host || /\s/.test(o.host)) throw new DecadeUsageError(`invalid --host ${JSON.stringify(o.host)}`);
  if (o.accounts === undefined) throw new DecadeUsageError(`${nameOf('accounts')} is required (JSON {"accounts":[…]})`);
  const accounts = readAccounts(o.accounts);
  const { store, where, describe: describeOpen } = openStore(o, nameOf, sources);
  const maxObjectSize = o.maxObjectSize === undefined ? undefined : uint('--max-object-size', o.maxObjectSize);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new DecadeUsageError('--tls-cert and --tls-key go together');
  const tls = o.tlsCert === undefined ? undefined : tlsProfile({ cert: readText('--tls-cert', o.tlsCert), key: readText('--tls-key', o.tlsKey as string) });
  let metricsAt;
  try {
    metricsAt = o.metrics === undefined ? undefined : parseEndpoint(o.metrics, 0);
  } catch (err) {
    throw new DecadeUsageError(`--metrics: ${(err as Error).message}`);
  }
  const relayAllow = list(o.relayAllow);
  if (relayAllow !== undefined) for (const a of relayAllow) if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(a)) throw new DecadeUsageError(`--relay-allow: ${JSON.stringify(a)} is not HOST:PORT`);
  if (o.relayTlsCa !== undefined && relayAllow === undefined) throw new DecadeUsageError('--relay-tls-ca needs --relay-allow');
  const relay = relayAllow === undefined ? undefined : {
    allow: relayAllow,
    ...(o.relayTlsCa === undefined ? {} : { tls: { ca: readText('--relay-tls-ca', o.relayTlsCa), ...(o.relayServerName ? { serverName: o.relayServerName } : {}) } }),
  };
  const log = (e: Record<string, unknown>, human: string): void => out(redactTokens(o.json ? JSON.stringify({ time: new Date().toISOString(), ...e }) : human));
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let report;
  try {
    report = await store.open();
  } catch (err) {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await store.close().catch(() => undefined);
    const cause = (err as { cause?: unknown }).cause;
    throw new DecadeError('NOT_AVAILABLE', `cannot open the store (${where}): ${(err as Error).message}${cause instanceof Error ? ` (${cause.message})` : ''}`);
  }
  const decade = new DecadeServer({
    store, accounts, ...(maxObjectSize === undefined ? {} : { maxObjectSize }), requireAuthentication: o.requireAuth === true, ...(relay ? { relay } : {}),
    onEvent: (e) => log({ event: 'decade', ...e }, eventLine(e)),
  });
  // With a certificate, nothing but TLS is offered until TLS is in place (538): tokens travel in the requests.
  const server = createServer({ profiles: [...(tls ? [tls] : []), ...decade.profiles], requireTls: tls !== undefined, limits: DECADE_LIMITS });
  let addr;
  try {
    addr = await server.listen(port, o.host);
  } catch (err) {
    await store.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    throw err;
  }
  const address = addr.address.includes(':') ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
  out(`listening on ${address}`);
  if (!tls) process.stderr.write('beepstream: warning: no TLS (--tls-cert/--tls-key): tokens travel in clear; serve so on loopback or a trusted network only\n');
  log({ event: 'store', ...(store instanceof FileStore ? { dir: store.dir } : { store: where }), ...report }, describeOpen(report));
  let ops: OpsEndpoints | undefined;
  let decadeMetrics;
  if (metricsAt) {
    ops = await startOpsEndpoints({ metrics: metricsAt, servers: [{ name: 'decade', server }] });
    if (ops.metrics) decadeMetrics = collectDecadeMetrics(ops.metrics.register);
    for (const l of ops.lines) log({ event: 'ops', line: l }, l);
  }
  await stopped;
  decadeMetrics?.close();
  await ops?.close();
  decade.close();
  await server.close(2000);
  await store.close();
  log({ event: 'stopped' }, 'stopped');
}

function list(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

interface TokenOptions { key: string; ops: string; objects?: string; clients?: string; expires: string; weight?: string; budget?: string; once?: boolean; id?: string; out?: string; json?: boolean }

async function token(o: TokenOptions): Promise<void> {
  const doc = readJson('--key', o.key) as { account?: unknown; privateJwk?: unknown };
  if (!isAccountId(doc?.account) || typeof doc.privateJwk !== 'object' || doc.privateJwk === null) throw new DecadeUsageError(`--key: ${JSON.stringify(o.key)} is not a key file made by "beepstream decade keygen"`);
  let key;
  try {
    key = importPrivateKey(doc.privateJwk as JsonWebKey);
  } catch {
    throw new DecadeUsageError(`--key: ${JSON.stringify(o.key)} does not hold an Ed25519 private key`);
  }
  const ops = list(o.ops) ?? [];
  for (const op of ops) if (!(OPERATIONS as readonly string[]).includes(op)) throw new DecadeUsageError(`--ops: ${JSON.stringify(op)} is not one of ${OPERATIONS.join(', ')}`);
  if (ops.length === 0) throw new DecadeUsageError(`--ops must list one or more of ${OPERATIONS.join(', ')}`);
  const grant: TokenGrant = { account: doc.account, operations: ops as Operation[], expiresIn: uint('--expires', o.expires, 10 * 365 * 86400) };
  const objects = list(o.objects);
  if (objects) {
    for (const n of objects) if (!n.endsWith('*')) try { parseName(n); } catch (err) { throw new DecadeUsageError(`--objects: ${(err as Error).message}`); }
    grant.objects = objects;
  }
  const clients = list(o.clients);
  if (clients) grant.clients = clients;
  if (o.weight !== undefined) grant.weight = uint('--weight', o.weight, 64);
  if (grant.weight === 0) throw new DecadeUsageError('--weight must be from 1 to 64');
  if (o.budget !== undefined) grant.budget = uint('--budget', o.budget);
  if (o.once) grant.once = true;
  if (o.id !== undefined) grant.id = o.id;
  let jwt: string;
  try {
    jwt = await createToken(grant, key);
  } catch (err) {
    throw new DecadeUsageError((err as Error).message);
  }
  if (o.out !== undefined) {
    await writeFile(o.out, `${jwt}\n`, { mode: 0o600 });
    if (o.json) out(JSON.stringify({ account: grant.account, out: o.out, operations: ops, expiresIn: grant.expiresIn }));
    else process.stderr.write(`token for ${grant.account} written to ${o.out}\n`);
  } else {
    out(jwt);
  }
}

async function keygen(o: { account: string; out: string; json?: boolean }): Promise<void> {
  if (!isAccountId(o.account)) throw new DecadeUsageError('--account must be 1-128 of letters, digits, ".", "_", "@", "-"');
  const k = generateAccountKey();
  await writeFile(o.out, `${JSON.stringify({ account: o.account, privateJwk: k.privateJwk }, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    throw new DecadeUsageError(err.code === 'EEXIST' ? `--out: ${JSON.stringify(o.out)} exists; not overwritten` : `--out: cannot write ${JSON.stringify(o.out)}`);
  });
  // The public half, ready for the server's accounts file.
  out(JSON.stringify({ id: o.account, publicKey: k.publicJwk }));
}

/** Client connection options of a command (`--tls-ca`, `--server-name`, `--dns-server`). */
interface ClientTls { tlsCa?: string; serverName?: string; dnsServer?: string }

function clientTls(o: ClientTls): TlsClientOptions | undefined {
  if (o.tlsCa === undefined) {
    if (o.serverName !== undefined) throw new DecadeUsageError('--server-name needs --tls-ca');
    return undefined;
  }
  return { ca: readText('--tls-ca', o.tlsCa), ...(o.serverName === undefined ? {} : { serverName: o.serverName }) };
}

function readText(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new DecadeUsageError(`${name}: cannot read ${JSON.stringify(path)}`);
  }
}

/** A server address argument: `HOST:PORT`, or `decade://DOMAIN` (DNS SRV `_decade._tcp.DOMAIN`). */
function serverAddress(text: string): DecadeAddress {
  try {
    return parseDecadeAddress(text);
  } catch {
    throw new DecadeUsageError(`expected HOST:PORT or decade://DOMAIN, got ${JSON.stringify(text.slice(0, 60))}`);
  }
}

function dnsResolver(server: string | undefined): DnsResolver | undefined {
  if (server === undefined) return undefined;
  try {
    return createResolver({ servers: [server] });
  } catch (err) {
    throw new DecadeUsageError(`--dns-server: ${(err as Error).message}`);
  }
}

async function withClient<T>(address: string, o: ClientTls, fn: (c: DecadeClient) => Promise<T>): Promise<T> {
  const a = serverAddress(address);
  const tls = clientTls(o);
  const resolver = dnsResolver(o.dnsServer);
  const { client: c } = await connectDecade(a, { timeout: 30_000, ...(tls ? { tls } : {}), ...(resolver ? { resolver } : {}) });
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** A progress bar on standard error (when it is a terminal and not --quiet), fed absolute counts. */
function progressBar(quiet: boolean | undefined): { update: (done: number, total: number) => void; finish: () => void } {
  let bar: Progress | null = null;
  return {
    update: (done, total) => {
      bar ??= new Progress(total, { quiet: quiet === true });
      if (done > bar.done) bar.add(done - bar.done);
    },
    finish: () => bar?.finish(),
  };
}

/** Add `decade serve|keygen|token|put|get|stat|rm` to the program. */
export function addDecadeCommands(program: Command): void {
  const d = program.command('decade').description('DECADE in-network storage over BEEP (draft-ietf-decade-arch-03): DRP and SDT profiles');
  d.command('serve')
    .description('serve a store; the first line printed is "listening on HOST:PORT", the second what opening the store swept, then one line per operation')
    .option('--accounts <file>', 'JSON {"accounts":[{"id","publicKey":JWK,"quota"?}]} (required)')
    .option('--store <kind>', 'file (embedded: files and SQLite in --dir) or jetstream (NATS JetStream object store: --nats)', 'file')
    .option('--dir <dir>', 'with --store file: the store directory (created if missing)')
    .option('--nats <servers>', 'with --store jetstream: comma-separated NATS servers HOST:PORT')
    .option('--bucket <name>', 'with --store jetstream: the object store bucket (streams OBJ_<name> and DECADE_<name>)', 'decade')
    .option('--replicas <n>', 'with --store jetstream: copies on the JetStream cluster (1, 3 or 5)', '1')
    .option('--nats-user <name>', 'with --store jetstream: NATS user (with --nats-password)')
    .option('--nats-password <secret>', 'the NATS user\'s password: env:NAME or file:PATH (never the password itself on the command line)')
    .option('--nats-creds <file>', 'with --store jetstream: NATS credentials file (user JWT and nkey seed, as nsc writes it)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', '10290')
    .option('--max-object-size <octets>', 'largest object accepted')
    .option('--tls-cert <file>', 'serve over TLS with this certificate (PEM); nothing else is offered before TLS')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--require-auth', 'serve only SASL-authenticated sessions (the token is still required)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one)')
    .option('--relay-allow <list>', 'comma-separated HOST:PORT of DECADE servers this one may fetch from for clients (GET --source)')
    .option('--relay-tls-ca <file>', 'TLS towards those servers: their certificates must chain to this CA (PEM)')
    .option('--relay-server-name <name>', 'name their certificates must match (default: the host)')
    .option('--json', 'log JSON lines')
    .option('--config <file>', 'YAML or JSON file with any of these options (e.g. store: jetstream, nats: 127.0.0.1:4222); flags and BEEPSTREAM_DECADE_* variables override it')
    .option('--print-config [format]', 'print the effective configuration (yaml or json), secrets masked, and exit')
    .addHelpText('after', configHelp('BEEPSTREAM_DECADE_'))
    .action((_flags: unknown, cmd: Command) => action(async () => {
      const cfg = resolveConfig(cmd, { envPrefix: 'BEEPSTREAM_DECADE_', pathKeys: new Set(['dir', 'accounts', 'tlsCert', 'tlsKey', 'relayTlsCa', 'natsCreds']) });
      const print = printConfigFormat((cmd.opts() as { printConfig?: unknown }).printConfig);
      if (print) {
        process.stdout.write(formatConfig(cfg, print));
        return;
      }
      await serve(cfg.values as unknown as ServeOptions, cfg.nameOf, cfg.sources);
    }));
  d.command('keygen')
    .description('make an Ed25519 account key: the private key goes to --out (0600), the accounts-file entry to stdout')
    .requiredOption('--account <id>', 'account id')
    .requiredOption('--out <file>', 'private key file (never overwritten)')
    .option('--json', 'accepted for symmetry: the output is JSON anyway')
    .action((o: { account: string; out: string; json?: boolean }) => action(() => keygen(o)));
  d.command('token')
    .description('sign a token with an account key; printed on stdout unless --out')
    .requiredOption('--key <file>', 'key file made by keygen')
    .requiredOption('--ops <list>', `operations, comma-separated: ${OPERATIONS.join(',')}`)
    .option('--objects <list>', 'names, or prefixes ending in *, comma-separated (default: every object)')
    .option('--clients <list>', 'IP addresses, CIDR prefixes or id:NAME, comma-separated (default: any holder)')
    .option('--expires <seconds>', 'seconds until it expires', '3600')
    .option('--weight <n>', 'bandwidth weight 1-64')
    .option('--budget <octets>', 'octets it may move in all')
    .option('--once', 'single use')
    .option('--id <id>', 'token id (default random)')
    .option('--out <file>', 'write it to this file (mode 0600) instead of stdout')
    .option('--json', 'with --out: print what was written as JSON')
    .action((o: TokenOptions) => action(() => token(o)));
  d.command('put')
    .description('store a file; prints its name')
    .argument('<address>', 'HOST:PORT of the server, or decade://DOMAIN to find it through DNS (SRV _decade._tcp.DOMAIN)')
    .argument('<file>', 'file to store')
    .option('--token <secret>', 'env:NAME or file:PATH')
    .option('--tls-ca <file>', 'tune the session with TLS; the server certificate must chain to this CA (PEM)')
    .option('--server-name <name>', 'name the server certificate must match (default: the host, or DOMAIN of decade://DOMAIN)')
    .option('--dns-server <ip[:port]>', 'with decade://DOMAIN: ask this DNS server (default: the system\'s)')
    .option('--type <mime>', 'MIME type of the object')
    .option('--ttl <seconds>', 'seconds the server keeps it')
    .option('-q, --quiet', 'no progress bar (one is drawn on stderr when it is a terminal)')
    .option('--json', 'print JSON')
    .action((address: string, file: string, o: ClientTls & { token?: string; type?: string; ttl?: string; quiet?: boolean; json?: boolean }) => action(async () => {
      const tok = readTokenOption(o.token);
      serverAddress(address);
      const ttl = o.ttl === undefined ? undefined : uint('--ttl', o.ttl);
      const bar = progressBar(o.quiet);
      const r = await withClient(address, o, (c) => c.putFile(tok, file, { ...(o.type ? { type: o.type } : {}), ...(ttl === undefined ? {} : { ttl }), onProgress: bar.update }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'EISDIR' || err.code === 'EACCES') throw new DecadeUsageError(`cannot read ${JSON.stringify(file)}`);
        throw err;
      })).finally(bar.finish);
      out(o.json ? JSON.stringify({ name: r.name, size: r.size, new: r.fresh }) : `CREATED ${r.name} ${r.size} octets${r.fresh ? '' : ' (already stored)'}`);
    }));
  d.command('get')
    .description('fetch an object into a file, verified against its name')
    .argument('<address>', 'HOST:PORT of the server, or decade://DOMAIN to find it through DNS (SRV _decade._tcp.DOMAIN)')
    .argument('<name>', 'ni:///sha-256;… name')
    .requiredOption('--out <file>', 'file to write')
    .option('--token <secret>', 'env:NAME or file:PATH')
    .option('--tls-ca <file>', 'tune the session with TLS; the server certificate must chain to this CA (PEM)')
    .option('--server-name <name>', 'name the server certificate must match (default: the host, or DOMAIN of decade://DOMAIN)')
    .option('--dns-server <ip[:port]>', 'with decade://DOMAIN: ask this DNS server (default: the system\'s)')
    .option('--resume', 'keep what --out holds and fetch the rest')
    .option('--source <host:port>', 'have the server fetch the object from this other DECADE server (server to server)')
    .option('--source-token <secret>', 'with --source: the token for that server, env:NAME or file:PATH')
    .option('-q, --quiet', 'no progress bar (one is drawn on stderr when it is a terminal)')
    .option('--json', 'print JSON')
    .action((address: string, name: string, o: ClientTls & { out: string; token?: string; resume?: boolean; source?: string; sourceToken?: string; quiet?: boolean; json?: boolean }) => action(async () => {
      const tok = readTokenOption(o.token);
      if ((o.source === undefined) !== (o.sourceToken === undefined)) throw new DecadeUsageError('--source and --source-token go together');
      if (o.source !== undefined) endpoint(o.source);
      const source = o.source === undefined ? undefined : { origin: o.source, token: readTokenOption(o.sourceToken) };
      serverAddress(address);
      try {
        parseName(name);
      } catch (err) {
        throw new DecadeUsageError((err as Error).message);
      }
      const bar = progressBar(o.quiet);
      const r = await withClient(address, o, (c) => c.getFile(tok, name, o.out, { resume: o.resume === true, onProgress: bar.update, ...(source ? { source } : {}) })).finally(bar.finish);
      out(o.json ? JSON.stringify({ name, size: r.size, resumedFrom: r.resumedFrom, out: o.out }) : `OK ${name} ${r.size} octets${r.resumedFrom ? ` (resumed from ${r.resumedFrom})` : ''} -> ${o.out}`);
    }));
  d.command('stat')
    .description("an account's resources and objects, or one object's attributes")
    .argument('<address>', 'HOST:PORT of the server, or decade://DOMAIN to find it through DNS (SRV _decade._tcp.DOMAIN)')
    .argument('[name]', 'one object')
    .option('--token <secret>', 'env:NAME or file:PATH')
    .option('--tls-ca <file>', 'tune the session with TLS; the server certificate must chain to this CA (PEM)')
    .option('--server-name <name>', 'name the server certificate must match (default: the host, or DOMAIN of decade://DOMAIN)')
    .option('--dns-server <ip[:port]>', 'with decade://DOMAIN: ask this DNS server (default: the system\'s)')
    .option('--json', 'print JSON')
    .action((address: string, name: string | undefined, o: ClientTls & { token?: string; json?: boolean }) => action(async () => {
      const tok = readTokenOption(o.token);
      serverAddress(address);
      if (name !== undefined) try { parseName(name); } catch (err) { throw new DecadeUsageError((err as Error).message); }
      const s = await withClient(address, o, (c) => c.status(tok, name));
      if (o.json) return out(JSON.stringify(s));
      out(`account ${s.account}: ${s.used} octets used, ${s.quota === null ? 'no quota' : `quota ${s.quota}, ${s.available} available`}, ${s.objects.length} object(s)`);
      for (const x of s.objects) out(`${x.name} ${x.size} ${x.type} ${x.state} gets=${x.gets} puts=${x.puts}${x.expires === null ? '' : ` expires=${new Date(x.expires).toISOString()}`}`);
    }));
  d.command('rm')
    .description("delete the account's reference to an object")
    .argument('<address>', 'HOST:PORT of the server, or decade://DOMAIN to find it through DNS (SRV _decade._tcp.DOMAIN)')
    .argument('<name>', 'ni:///sha-256;… name')
    .option('--token <secret>', 'env:NAME or file:PATH')
    .option('--tls-ca <file>', 'tune the session with TLS; the server certificate must chain to this CA (PEM)')
    .option('--server-name <name>', 'name the server certificate must match (default: the host, or DOMAIN of decade://DOMAIN)')
    .option('--dns-server <ip[:port]>', 'with decade://DOMAIN: ask this DNS server (default: the system\'s)')
    .option('--json', 'print JSON')
    .action((address: string, name: string, o: ClientTls & { token?: string; json?: boolean }) => action(async () => {
      const tok = readTokenOption(o.token);
      serverAddress(address);
      try {
        parseName(name);
      } catch (err) {
        throw new DecadeUsageError((err as Error).message);
      }
      await withClient(address, o, (c) => c.remove(tok, name));
      out(o.json ? JSON.stringify({ name, removed: true }) : `removed ${name}`);
    }));
}
