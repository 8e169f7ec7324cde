/**
 * Real nats-server processes for the JetStream store tests (flows and
 * DECADE): one node, or a 3-node JetStream cluster, on 127.0.0.1 with file
 * storage in a temporary directory, optionally requiring a user and password. Needs Debian's `nats-server` (scripts/test-deps.mjs
 * installs it); a test FAILS naming it when it is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/** The nats-server executable, or undefined. */
export function natsServerBin(): string | undefined {
  for (const p of [process.env.BEEPSTREAM_NATS_SERVER, '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (p && spawnSync(p, ['--version'], { stdio: 'ignore' }).status === 0) return p;
  }
  return undefined;
}


async function waitListening(port: number, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (let i = 0; i < 1000 && Date.now() < end; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = tcpConnect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nats-server did not listen on ${port} within ${deadlineMs} ms`);
}

/** One nats-server process of a test. */
export interface NatsNode {
  name: string;
  port: number;
  child: ChildProcess;
  /** Resolves when the process exited. */
  exited: Promise<void>;
  /** Start the node again (after a kill) with the same configuration and storage. */
  restart(): Promise<void>;
}

/** A running set of nats-server processes. */
export interface NatsCluster {
  nodes: NatsNode[];
  /** `127.0.0.1:port` of every node. */
  servers: string[];
}

/** Options of {@link startNats}. */
export interface NatsOptions {
  /** Clients must log in as this user (the configuration file, mode 0600, holds the password). */
  auth?: { user: string; password: string };
}

/** A string as a quoted nats-server configuration value. */
function confString(v: string): string {
  if (!/^[\x20-\x7e]*$/.test(v)) throw new Error('nats-server configuration: printable ASCII only');
  return JSON.stringify(v);
}

/**
 * Start `size` nats-server processes with JetStream (a cluster when size > 1);
 * `teardown` registers their end (SIGKILL, storage removed): `t.teardown` for
 * one test, or a list run in `test.after.always` for a whole file.
 */
export async function startNats(teardown: (fn: () => Promise<void>) => void, size = 1, options: NatsOptions = {}): Promise<NatsCluster> {
  const bin = natsServerBin();
  if (!bin) throw new Error('nats-server is not installed (Debian package nats-server; `node scripts/test-deps.mjs` installs it)');
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-nats-'));
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
  const nodes: NatsNode[] = [];
  for (let i = 0; i < size; i++) {
    const name = `n${i + 1}`;
    const conf = join(dir, `${name}.conf`);
    const cluster = size > 1
      ? `cluster { name: bs, listen: 127.0.0.1:${routes[i]}, routes: [${routes.filter((_, k) => k !== i).map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`
      : '';
    const auth = options.auth ? `authorization { user: ${confString(options.auth.user)}, password: ${confString(options.auth.password)} }\n` : '';
    writeFileSync(conf, `server_name: ${name}\nlisten: 127.0.0.1:${ports[i]}\njetstream { store_dir: "${join(dir, name)}", max_memory_store: 64MB, max_file_store: 4GB }\n${cluster}\n${auth}`, { mode: 0o600 });
    const node: NatsNode = {
      name, port: ports[i] as number, child: undefined as unknown as ChildProcess, exited: Promise.resolve(),
      restart: async () => {
        node.child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
        node.exited = new Promise((r) => node.child.once('exit', () => r()));
        await waitListening(node.port, 60_000);
      },
    };
    nodes.push(node);
  }
  teardown(async () => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    rmSync(dir, { recursive: true, force: true });
  });
  await Promise.all(nodes.map((n) => n.restart()));
  return { nodes, servers: nodes.map((n) => `127.0.0.1:${n.port}`) };
}
