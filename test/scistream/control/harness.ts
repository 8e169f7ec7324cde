/**
 * Test fixtures of the control plane: a data server that opens real TCP
 * listeners on 127.0.0.1 (so listeners and port freeing are real), and an
 * S2CS behind real TLS and real SCRAM-SHA-256 authentication.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { authenticate, connect, createServer, createUserEntry, saslProfiles, scramSha256Client, scramSha256Server, startTls, tlsProfile, type BeepServer, type Session } from '../../../src/index.js';
import { type ScramCredentials } from '../../../src/profiles/index.js';
import type { DataPath, DataPathStats, DataServer, InboundSpec, OutboundSpec } from '../../../src/scistream/dataplane.js';
import { SciStreamError, createControlServer, type ControlServer, type ControlServerOptions, type SciStreamErrorCode } from '../../../src/scistream/control/index.js';
import { testPki } from '../../helpers/certs.js';
import { listenForTest, type ConnectTarget } from '../../helpers/transport.js';

export const pki = testPki();

export const PASSWORD = 'correct horse battery staple';
export const users = new Map<string, ScramCredentials>();
for (const name of ['alice', 'bob', 'appctrl']) users.set(name, await createUserEntry(PASSWORD, 4096));

/** One path of the test data server: a real TCP listener. */
export class TestPath implements DataPath {
  readonly listeners: readonly string[];
  readonly closed: Promise<void>;
  readonly port: number;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private done!: () => void;
  private connections = 0;
  closeCalls = 0;

  constructor(server: net.Server, readonly kind: 'inbound' | 'outbound', readonly spec: InboundSpec | OutboundSpec) {
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    this.listeners = [`127.0.0.1:${this.port}`];
    this.closed = new Promise((r) => (this.done = r));
    server.on('connection', (s) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    });
  }

  stats(): DataPathStats {
    return { connections: this.connections, open: this.sockets.size, bytesToProducer: 0, bytesToConsumer: 0 };
  }

  async close(): Promise<void> {
    this.closeCalls++;
    for (const s of this.sockets) s.destroy();
    if (this.server.listening) await new Promise<void>((r) => this.server.close(() => r()));
    this.done();
  }
}

/** A DataServer opening one real loopback listener per path. */
export class TestDataServer implements DataServer {
  readonly paths = new Set<TestPath>();
  readonly all: TestPath[] = [];
  /** The next open fails with this. */
  failNext: unknown = undefined;
  /** Opens take this long (ms). */
  delayMs = 0;

  openInbound(spec: InboundSpec): Promise<DataPath> {
    return this.open('inbound', spec);
  }

  openOutbound(spec: OutboundSpec): Promise<DataPath> {
    return this.open('outbound', spec);
  }

  private async open(kind: 'inbound' | 'outbound', spec: InboundSpec | OutboundSpec): Promise<DataPath> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext !== undefined) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const path = new TestPath(server, kind, spec);
    this.paths.add(path);
    this.all.push(path);
    void path.closed.then(() => this.paths.delete(path));
    return path;
  }

  /** The open path of a uid. */
  pathOf(uid: string): TestPath | undefined {
    return [...this.paths].find((p) => p.spec.uid === uid);
  }

  async close(): Promise<void> {
    await Promise.all([...this.paths].map((p) => p.close()));
  }
}

/** True when a TCP port on 127.0.0.1 can be bound (briefly binds it). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Inodes of the sockets this process has open (Linux), or null where /proc is not available. */
function ourSocketInodes(): Set<string> | null {
  try {
    const out = new Set<string>();
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        if (m?.[1]) out.add(m[1]);
      } catch {
        /* closed meanwhile */
      }
    }
    return out;
  } catch {
    return null;
  }
}

/** True when some socket of this process listens on `port` (Linux /proc/net/tcp{,6}). */
function weListenOn(port: number, ours: Set<string>): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length > 9 && f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && ours.has(f[9] ?? '')) return true;
    }
  }
  return false;
}

/**
 * True when this process no longer holds `port`: it can be bound again — or,
 * when another process (a parallel test file) has taken the free port since,
 * no listening socket of ours is on it.
 */
export async function portReleased(port: number): Promise<boolean> {
  if (await canBind(port)) return true;
  const ours = ourSocketInodes();
  return ours !== null && !weListenOn(port, ours);
}

/** A producer "application": a real listener, so HELLO carries a real endpoint. */
export async function appListener(t: ExecutionContext): Promise<string> {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return `127.0.0.1:${(s.address() as net.AddressInfo).port}`;
}

export interface S2cs {
  /** The TCP port (0 when the suite runs over a Unix socket: use {@link at}). */
  port: number;
  /** Where the S2CS listens, on the suite's transport (helpers/transport.ts). */
  at: ConnectTarget;
  ds: TestDataServer;
  s2cs: ControlServer;
  server: BeepServer;
}

/** An S2CS behind TLS (required) and SCRAM-SHA-256, on a free loopback port. */
export async function startS2cs(t: ExecutionContext, options: Partial<ControlServerOptions> = {}): Promise<S2cs> {
  const ds = new TestDataServer();
  const s2cs = createControlServer({ dataServer: ds, ...options });
  const server = createServer({
    requireTls: true,
    profiles: [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), ...saslProfiles({ mechanisms: [scramSha256Server({ store: users })] }), s2cs.profile],
  });
  const at = await listenForTest(t, server);
  t.teardown(async () => {
    await s2cs.close();
    await server.close(200).catch(() => undefined);
    await ds.close();
  });
  return { port: 'port' in at ? at.port : 0, at, ds, s2cs, server };
}

/** Connect, tune with TLS (verifying the server) and authenticate with SCRAM-SHA-256. */
export async function login(t: ExecutionContext, where: number | ConnectTarget, user?: string): Promise<Session> {
  const session = await connect(typeof where === 'number' ? { port: where } : { ...where });
  t.teardown(() => session.destroy());
  await startTls(session, { ca: pki.ca, serverName: 'localhost' });
  if (user !== undefined) await authenticate(session, scramSha256Client({ username: user, password: PASSWORD }));
  return session;
}

/** Resolve after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Waits are bounds, not measurements: never under 30 s, so a loaded machine (two busy cores,
// test files running at once) does not fail a test whose step takes 50 ms when quiet.
const MIN_BOUND_MS = 30_000;

/** Poll until `f()` is true (or fail after `ms`). */
export async function until(f: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + Math.max(ms, MIN_BOUND_MS);
  while (!(await f())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

/** Assert that `p` rejects with a SciStreamError of `code`; return it. */
export async function rejects(t: ExecutionContext, p: Promise<unknown>, code: SciStreamErrorCode): Promise<SciStreamError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof SciStreamError, String(err));
  t.is((err as SciStreamError).code, code, (err as Error).message);
  return err as SciStreamError;
}
