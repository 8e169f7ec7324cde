/**
 * The SciStream client commands: `s2uc inbound-request | outbound-request |
 * request | update | release | status | new-uid`, `appctrl hello`, and
 * `session` (a whole session — both facilities' REQUESTs, the HELLO and
 * UPDATETARGETS — in one command that prints the consumer-side listeners).
 *
 * Every client command connects over TLS, authenticates with SASL, and takes
 * its options from flags, `BEEPSTREAM_CLIENT_…` variables or a `--config`
 * file shared by all of them (keys another client command uses are ignored),
 * in that order of precedence.
 *
 * The uid is the secret the data-plane key derives from: it is printed only
 * when asked (`--print-uid`), written only where asked (`--uid-file`), and a
 * literal `--uid` draws the same warning as a literal `--password`.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { scramSha256Client, oauthBearerClient, type SaslClientMechanismFactory } from '../profiles/index.js';
import { appctrlHello, newUid, SciStreamError, isUid, sessionTag, type S2ucClient, type SciStreamRole, MAX_NUM_CONN, connectControl } from '../scistream/index.js';
import { formatEndpoint, parseEndpoint, parsePositiveInt, UsageError } from './address.js';
import { readPemFile, readSecret } from './secrets.js';
import { configHelp, resolveConfig, type ResolvedConfig } from './config.js';
import { printError } from './errors.js';
import { BeepError } from '../errors.js';

/** Prefix of the environment variables of every SciStream client command. */
export const CLIENT_ENV_PREFIX = 'BEEPSTREAM_CLIENT_';

/**
 * Parse a num_conn: an integer from 1 to {@link MAX_NUM_CONN}, the most
 * application connections a data path carries (the S2CS may allow fewer:
 * `s2cs --max-conn`, answered with NO_RESOURCE and its limit). The one check
 * of every `--num-conn` and `--max-conn` of the CLI.
 */
export function parseNumConn(name: string, text: string): number {
  return parsePositiveInt(name, text, MAX_NUM_CONN);
}

/** Every key a client command takes (a shared config file may hold them all). */
const CLIENT_KEYS = new Set([
  'server', 'tlsCa', 'serverName', 'user', 'password', 'token', 'json',
  'uid', 'uidFile', 'printUid', 'numConn', 'connections', 'rate', 'remote', 'role', 'prodListener', 'prodServer', 'consServer',
]);
const PATH_KEYS = new Set(['tlsCa', 'uidFile']);

type Values = Record<string, string | boolean | string[] | undefined>;

/** The effective options of a client command, and how each was given. */
interface ClientConfig {
  v: Values;
  cfg: ResolvedConfig;
}

function clientConfig(cmd: Command): ClientConfig {
  const cfg = resolveConfig(cmd, {
    envPrefix: CLIENT_ENV_PREFIX,
    sharedKeys: CLIENT_KEYS,
    pathKeys: PATH_KEYS,
    validate: { numConn: (v) => parseNumConn('--num-conn', v), connections: (v) => parseNumConn('--connections', v), rate: (v) => parsePositiveInt('--rate', v) },
  });
  return { v: cfg.values as Values, cfg };
}

function str(c: ClientConfig, key: string, required?: string): string | undefined {
  const v = c.v[key];
  if (typeof v === 'string') return v;
  if (required !== undefined) throw new UsageError(required);
  return undefined;
}

function addAuthOptions(c: Command): Command {
  return c
    .option('--tls-ca <file>', 'CA the S2CS certificate must chain to')
    .option('--server-name <name>', 'name the S2CS certificate must carry (default: the host)')
    .option('--user <name>', 'SCRAM-SHA-256 user name')
    .option('--password <secret>', 'env:NAME or file:PATH')
    .option('--token <secret>', 'OAUTHBEARER token: env:NAME or file:PATH')
    .option('--json', 'print JSON (one document; inbound-request and session: one JSON line per event)')
    .option('--config <file>', 'YAML or JSON file with any client option (server, tlsCa, user, password: env:NAME…); flags and BEEPSTREAM_CLIENT_* variables override it')
    .addHelpText('after', configHelp(CLIENT_ENV_PREFIX));
}

function addClientOptions(c: Command): Command {
  return addAuthOptions(c.option('--server <host:port>', 'the S2CS to talk to (required)'));
}

function mechanism(c: ClientConfig): SaslClientMechanismFactory {
  const token = str(c, 'token');
  if (token !== undefined) return oauthBearerClient({ token: readSecret(c.cfg.nameOf('token'), token) });
  const user = str(c, 'user');
  const password = str(c, 'password');
  if (user === undefined || password === undefined) throw new UsageError('give --user and --password (SCRAM-SHA-256), or --token (OAUTHBEARER)');
  return scramSha256Client({ username: user, password: readSecret(c.cfg.nameOf('password'), password) });
}

/** Connect to the S2CS at `server` (validated first) and run `f` on the client, closing it afterwards. */
async function withClient<T>(c: ClientConfig, serverKey: string, f: (client: S2ucClient) => Promise<T>): Promise<T> {
  const server = str(c, serverKey, `give --${serverKey.replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())} HOST:PORT (flag, config file or ${CLIENT_ENV_PREFIX}${serverKey.replace(/[A-Z]/g, (x) => '_' + x).toUpperCase()})`) as string;
  const { host, port } = parseEndpoint(server);
  const sasl = mechanism(c);
  const tlsCa = str(c, 'tlsCa');
  const client = await connectControl({
    host,
    port,
    ...(tlsCa !== undefined ? { ca: readPemFile(c.cfg.nameOf('tlsCa'), tlsCa, 'certificate') } : {}),
    serverName: str(c, 'serverName') ?? host,
    sasl,
  });
  try {
    return await f(client);
  } finally {
    await client.close().catch(() => undefined);
    await client.session.close().catch(() => client.session.destroy());
  }
}

/** Validate what a client command will need before any connection (usage errors first). */
function checkAuth(c: ClientConfig): void {
  if (str(c, 'token') === undefined && (str(c, 'user') === undefined || str(c, 'password') === undefined)) {
    throw new UsageError('give --user and --password (SCRAM-SHA-256), or --token (OAUTHBEARER)');
  }
}

/**
 * The uid of a command: `env:NAME` / `file:PATH`, or a literal (which shows
 * in the process listing: warned about, as a literal password is).
 */
function readUid(c: ClientConfig, required: boolean): string | undefined {
  const spec = str(c, 'uid');
  if (spec === undefined) {
    if (required) throw new UsageError('--uid is required (env:NAME or file:PATH; the uid itself works but shows in the process listing)');
    return undefined;
  }
  const uid = readSecret(c.cfg.nameOf('uid'), spec);
  if (!isUid(uid)) throw new UsageError('--uid must be 32 lowercase hexadecimal characters');
  return uid;
}

function role(r: string): SciStreamRole {
  const v = r.toUpperCase();
  if (v !== 'PROD' && v !== 'CONS') throw new UsageError('--role must be PROD or CONS');
  return v;
}

function listeners(list: string | string[]): string[] {
  const out = (Array.isArray(list) ? list : [list]).flatMap((l) => l.split(',')).map((s) => s.trim()).filter(Boolean);
  if (out.length === 0) throw new UsageError('expected one or more HOST:PORT, comma-separated');
  return out.map((l) => {
    const e = parseEndpoint(l);
    return formatEndpoint(e.host, e.port);
  });
}

/** `--num-conn` and `--rate` as REQUEST fields. */
function sizing(c: ClientConfig): { numConn: number; rate?: number } {
  const numConn = parseNumConn(c.cfg.nameOf('numConn'), String(c.v.numConn ?? '1'));
  const rate = str(c, 'rate');
  return rate === undefined ? { numConn } : { numConn, rate: parsePositiveInt(c.cfg.nameOf('rate'), rate) };
}

/** `--connections K` (consumer side: stripe the data path over K TCP connections), at most num_conn. */
function striping(c: ClientConfig, numConn: number): { connections?: number } {
  const k = str(c, 'connections');
  if (k === undefined) return {};
  const connections = parseNumConn(c.cfg.nameOf('connections'), k);
  if (connections > numConn) throw new UsageError(`${c.cfg.nameOf('connections')} ${connections} exceeds --num-conn ${numConn}: each TCP connection carries at least one stream`);
  return { connections };
}

const CONNECTIONS_HELP = 'consumer side: stripe the data path over K TCP connections to the producer side (1 to --num-conn; default 1)';

/** `--num-conn`, `--rate` and (consumer side) `--connections`: one declaration for every command that sizes a session. */
/** `--uid-file` and `--print-uid`: the two ways a command that makes a new uid hands it out (it is never printed unasked). */
function newUidOptions(cmd: Command, why: string): Command {
  return cmd
    .option('--uid-file <file>', `write the new uid to this file (mode 0600)${why.startsWith(':') ? why : ` ${why}`}`)
    .option('--print-uid', 'print the new uid (a secret: the data-plane key derives from it)');
}

function sizingOptions(cmd: Command, striping: boolean): Command {
  cmd.option('--num-conn <n>', `parallel connections (1-${MAX_NUM_CONN}; the S2CS may allow fewer)`, '1');
  if (striping) cmd.option('--connections <k>', CONNECTIONS_HELP);
  return cmd.option('--rate <octets-per-second>', 'rate limit');
}

function print(json: boolean, doc: Record<string, unknown>, lines: string[]): void {
  process.stdout.write(json ? JSON.stringify(doc) + '\n' : lines.map((l) => l + '\n').join(''));
}

/** With `--json`: one JSON line per event, as it happens. */
function emitter(json: boolean): (event: string, fields: Record<string, unknown>, line?: string) => void {
  return (event, fields, line) => {
    if (json) process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
    else if (line !== undefined) process.stdout.write(line + '\n');
  };
}

/**
 * Where a new uid goes: `--uid-file` (mode 0600), and printed only with
 * `--print-uid`. A command that makes a uid nobody gets to see is refused:
 * the HELLO, STATUS and RELEASE need it.
 */
function handOutUid(c: ClientConfig, uid: string, generated: boolean, emit: ReturnType<typeof emitter>): void {
  const file = str(c, 'uidFile');
  const printUid = c.v.printUid === true;
  if (generated && file === undefined && !printUid) {
    throw new UsageError('a new uid would be lost: give --uid-file FILE (written with mode 0600), --print-uid (prints the secret), or --uid env:NAME|file:PATH');
  }
  if (file !== undefined) {
    writeFileSync(file, uid + '\n', { mode: 0o600 });
    emit('uid-file', { file, tag: sessionTag(uid) }, `uid written to ${file} (session ${sessionTag(uid)})`);
  }
  if (printUid) emit('uid', { uid, tag: sessionTag(uid) }, `uid ${uid}`);
}

/** Run a SciStream client command: errors print in the CLI's one format and exit 1 (usage errors: 2). */
async function runClient(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    if (err instanceof SciStreamError || (err instanceof BeepError && !(err instanceof UsageError))) {
      printError(err);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

function uidOptions(c: Command, required: boolean): Command {
  return c.option('--uid <uid>', `${required ? '' : 'reuse this '}uid: env:NAME or file:PATH (a literal uid shows in the process listing)`);
}

/** Add `s2uc`, `appctrl` and `session` to the program. */
export function addClientCommands(program: Command): void {
  const s2uc = program.command('s2uc').description('SciStream user client');
  addClientOptions(
    newUidOptions(sizingOptions(uidOptions(s2uc.command('inbound-request'), false), false), 'for the application controller')
      .description('producer side: REQUEST (role PROD), wait for the producer HELLO, print the listeners to give to the consumer side'),
  ).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const json = c.v.json === true;
      const emit = emitter(json);
      const given = readUid(c, false);
      const size = sizing(c);
      checkAuth(c);
      const uid = given ?? newUid();
      // The application controller needs the uid for its HELLO, which this
      // REQUEST waits for: hand it out first.
      handOutUid(c, uid, given === undefined, emit);
      const r = await withClient(c, 'server', (client) => {
        emit('requested', { tag: sessionTag(uid), role: 'PROD', numConn: size.numConn }, undefined);
        return client.request({ uid, role: 'PROD', keep: true, ...size });
      });
      emit('listeners', { tag: sessionTag(uid), listeners: r.listeners }, `listeners ${r.listeners.join(',')}`);
    }),
  );
  s2uc
    .command('new-uid')
    .description('make a session uid (128 bits from a CSPRNG, 32 hex characters): written to --uid-file, or printed')
    .option('--uid-file <file>', 'write it to this file (mode 0600) instead of printing it')
    .action((o: { uidFile?: string }) => {
      const uid = newUid();
      if (o.uidFile !== undefined) writeFileSync(o.uidFile, uid + '\n', { mode: 0o600 });
      else process.stdout.write(uid + '\n');
    });
  addClientOptions(
    sizingOptions(uidOptions(s2uc.command('outbound-request'), true), true)
      .description('consumer side: REQUEST (role CONS) and UPDATETARGETS with the producer side listeners; print the local listeners the consumer application connects to')
      .option('--remote <listeners...>', 'the producer side listeners, HOST:PORT (comma-separated or repeated)'),
  ).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const uid = readUid(c, true) as string;
      const remote = c.v.remote;
      if (remote === undefined || typeof remote === 'boolean') throw new UsageError('--remote is required: the producer side listeners');
      const remoteListeners = listeners(remote);
      const size = { ...sizing(c) };
      const k = striping(c, size.numConn);
      checkAuth(c);
      const r = await withClient(c, 'server', async (client) => {
        const [resp] = await Promise.all([client.request({ uid, role: 'CONS', keep: true, ...size, ...k }), client.update({ uid, role: 'CONS', remoteListeners })]);
        return resp;
      });
      print(c.v.json === true, { listeners: r.listeners }, [`listeners ${r.listeners.join(',')}`]);
    }),
  );
  addClientOptions(
    sizingOptions(uidOptions(s2uc.command('request'), true), true)
      .description('send a REQUEST')
      .option('--role <PROD|CONS>', 'role (required)'),
  ).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const uid = readUid(c, true) as string;
      const size = sizing(c);
      const req = { uid, role: role(str(c, 'role', '--role is required: PROD or CONS') as string), keep: true, ...size, ...striping(c, size.numConn) };
      checkAuth(c);
      const r = await withClient(c, 'server', (client) => client.request(req));
      print(c.v.json === true, { listeners: r.listeners }, [`listeners ${r.listeners.join(',')}`]);
    }),
  );
  addClientOptions(
    uidOptions(s2uc.command('update'), true)
      .description('send UPDATETARGETS')
      .option('--role <PROD|CONS>', 'role (required)')
      .option('--remote <listeners...>', 'remote listeners, HOST:PORT (comma-separated or repeated; required)'),
  ).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const uid = readUid(c, true) as string;
      const remote = c.v.remote;
      if (remote === undefined || typeof remote === 'boolean') throw new UsageError('--remote is required');
      const upd = { uid, role: role(str(c, 'role', '--role is required: PROD or CONS') as string), remoteListeners: listeners(remote) };
      checkAuth(c);
      const r = await withClient(c, 'server', (client) => client.update(upd));
      print(c.v.json === true, { listeners: r.listeners }, [`listeners ${r.listeners.join(',')}`]);
    }),
  );
  addClientOptions(uidOptions(s2uc.command('release').description('send RELEASE'), true)).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const uid = readUid(c, true) as string;
      checkAuth(c);
      await withClient(c, 'server', (client) => client.release(uid));
      print(c.v.json === true, { released: true }, ['released']);
    }),
  );
  addClientOptions(uidOptions(s2uc.command('status').description('query a session (STATUS)'), true)).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const uid = readUid(c, true) as string;
      checkAuth(c);
      const s = await withClient(c, 'server', (client) => client.status(uid));
      const doc = { state: s.state, role: s.role, numConn: s.numConn, listeners: s.listeners, stats: s.stats ?? null, dataErrors: s.dataErrors ?? null };
      const lines = [`state ${s.state}`, `role ${s.role}`, `listeners ${s.listeners.join(',')}`];
      if (s.stats) lines.push(`connections ${s.stats.connections} open ${s.stats.open} to_producer ${s.stats.bytesToProducer} to_consumer ${s.stats.bytesToConsumer}`);
      if (s.dataErrors) lines.push(`data errors ${s.dataErrors.count}${s.dataErrors.endpoint ? ` (last: ${s.dataErrors.endpoint}${s.dataErrors.errno ? ` ${s.dataErrors.errno}` : ''})` : ''}`);
      print(c.v.json === true, doc, lines);
    }),
  );

  const appctrl = program.command('appctrl').description('SciStream application controller');
  addClientOptions(
    uidOptions(appctrl.command('hello'), true)
      .description('send HELLO with the application endpoints')
      .option('--role <PROD|CONS>', 'role', 'PROD')
      .option('--prod-listener <host:port...>', 'producer application endpoint(s)'),
  ).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const uid = readUid(c, true) as string;
      const pl = c.v.prodListener;
      const prodListeners = pl === undefined || typeof pl === 'boolean' ? [] : listeners(pl);
      const hello = { uid, role: role(str(c, 'role') ?? 'PROD'), prodListeners };
      checkAuth(c);
      const r = await withClient(c, 'server', (client) => appctrlHello(client.session, hello));
      print(c.v.json === true, { message: r.message, listeners: r.listeners }, [`${r.message}`, `listeners ${r.listeners.join(',')}`]);
    }),
  );

  addAuthOptions(
    newUidOptions(sizingOptions(uidOptions(program.command('session'), false), true), ': STATUS and RELEASE need it')
      .description(
        'run a whole SciStream session setup in one command: REQUEST (PROD) and HELLO at the producer S2CS, REQUEST (CONS) and UPDATETARGETS at the consumer S2CS; ' +
          'the last line printed is the consumer-side listeners the consumer application connects to',
      )
      .option('--prod-server <host:port>', 'the producer facility S2CS (required)')
      .option('--cons-server <host:port>', 'the consumer facility S2CS (required)')
      .option('--prod-listener <host:port...>', 'producer application endpoint(s) (required)'),
  ).action((_o: unknown, cmd: Command) =>
    runClient(async () => {
      const c = clientConfig(cmd);
      const json = c.v.json === true;
      const emit = emitter(json);
      const given = readUid(c, false);
      const size = sizing(c);
      const stripes = striping(c, size.numConn);
      const pl = c.v.prodListener;
      if (pl === undefined || typeof pl === 'boolean') throw new UsageError('--prod-listener is required: where the producer application listens');
      const prodListeners = listeners(pl);
      for (const k of ['prodServer', 'consServer']) str(c, k, `--${k === 'prodServer' ? 'prod' : 'cons'}-server HOST:PORT is required (flag, config file or ${CLIENT_ENV_PREFIX}${k === 'prodServer' ? 'PROD' : 'CONS'}_SERVER)`);
      checkAuth(c);
      const uid = given ?? newUid();
      handOutUid(c, uid, given === undefined, emit);
      const tag = sessionTag(uid);
      const prod = await withClient(c, 'prodServer', async (client) => {
        emit('requested', { tag, role: 'PROD', server: str(c, 'prodServer'), numConn: size.numConn }, undefined);
        const [resp] = await Promise.all([client.request({ uid, role: 'PROD', keep: true, ...size }), appctrlHello(client.session, { uid, role: 'PROD', prodListeners })]);
        return resp;
      });
      emit('producer', { tag, listeners: prod.listeners }, `producer side listeners ${prod.listeners.join(',')}`);
      let cons;
      try {
        cons = await withClient(c, 'consServer', async (client) => {
          emit('requested', { tag, role: 'CONS', server: str(c, 'consServer'), numConn: size.numConn }, undefined);
          const [resp] = await Promise.all([
            client.request({ uid, role: 'CONS', keep: true, ...size, ...stripes }),
            client.update({ uid, role: 'CONS', remoteListeners: prod.listeners }),
          ]);
          return resp;
        });
      } catch (err) {
        // Half a session is no use: release the producer side (best effort), then report.
        await withClient(c, 'prodServer', (client) => client.release(uid)).catch(() => undefined);
        emit('released', { tag, role: 'PROD', reason: 'the consumer side failed' }, `producer side released: the consumer side failed`);
        throw err;
      }
      emit('listeners', { tag, listeners: cons.listeners }, `listeners ${cons.listeners.join(',')}`);
    }),
  );
}
