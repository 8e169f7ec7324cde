/**
 * The DECADE tests' one setup: a DECADE server on 127.0.0.1 over a store (a
 * temporary FileStore, or any store given), optionally behind TLS; its
 * accounts and keys; minting tokens; connecting clients (closed at
 * teardown); `decade serve` as a real process with an accounts file; and the
 * small sources and readers the transfer tests share.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ExecutionContext } from 'ava';
import { createServer, type BeepServer, type Session } from '../../src/channels/index.js';
import { tlsProfile } from '../../src/profiles/index.js';
import {
  createToken, DecadeClient, DecadeServer, FileStore, generateAccountKey, isDecadeError,
  type AccountKeyPair, type Created, type DecadeStore, type DecadeCode, type DecadeConnectOptions, type DecadeError, type DecadeEvent,
  type DecadeServerOptions, type TokenGrant,
} from '../../src/decade/index.js';
import { testPki, type TestPki } from './certs.js';
import { BIN, LISTEN_TIMEOUT_MS } from './cli.js';

/** Hex SHA-256 of some octets. */
export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface Harness<S extends DecadeStore = FileStore> {
  port: number;
  server: BeepServer;
  /** The file store's directory ('' for another store). */
  dir: string;
  store: S;
  decade: DecadeServer;
  keys: { alice: AccountKeyPair; bob: AccountKeyPair };
  events: DecadeEvent[];
  /** The certificates, when the server requires TLS (its clients then tune to TLS). */
  pki: TestPki | undefined;
  /** A token for `account` (default alice) granting `grant` (default every operation). */
  token(grant?: Partial<TokenGrant>): Promise<string>;
  /** A client connected to this server (over TLS when the server requires it), closed at teardown. */
  client(): Promise<DecadeClient>;
  /** A client and a token for `grant` (see {@link token}). */
  session(grant?: Partial<TokenGrant>): Promise<{ c: DecadeClient; token: string }>;
}

/** Options of {@link startDecadeOn}: the server's, plus alice's quota, shared keys, and TLS. */
export type StartOptions = { quota?: number | null; keys?: Harness['keys']; tls?: boolean } & Partial<DecadeServerOptions>;

/** A temporary directory removed at teardown. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'beepstream-decade-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * How long a teardown step (closing a server, a store, a client) may take
 * before the test fails instead: a close that waits on a stuck transfer
 * would otherwise hold the ava worker for ever. A bound, not a measurement.
 */
export const TEARDOWN_MS = 20_000;

/**
 * `p`, or after `ms` an Error saying that `what` did not finish (then
 * `onTimeout` runs first: force what was left, e.g. destroy a session). The
 * timer is always cleared.
 */
export async function bounded<T>(what: string, p: Promise<T>, ms = TEARDOWN_MS, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        onTimeout?.();
      } finally {
        reject(new Error(`${what} did not finish within ${ms} ms (a transfer stuck?); forced`));
      }
    }, ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Close a client within `ms`; past it the session is destroyed and this rejects saying so. */
export function closeClient(c: DecadeClient, ms = TEARDOWN_MS): Promise<void> {
  return bounded('closing a DECADE client', c.close(), ms, () => c.session.destroy());
}

/** Connect a client (to 127.0.0.1 unless `host` says otherwise), closed at teardown (bounded: {@link closeClient}). */
export async function connectClient(t: ExecutionContext, options: DecadeConnectOptions): Promise<DecadeClient> {
  const c = await DecadeClient.connect({ host: '127.0.0.1', ...options });
  t.teardown(() => closeClient(c));
  return c;
}

/** Start a server on a temporary FileStore (or `dir`) with accounts alice (quota as given, default unlimited) and bob. */
export async function startDecade(t: ExecutionContext, options: StartOptions & { dir?: string } = {}): Promise<Harness> {
  const dir = options.dir ?? (await tempDir(t));
  const h = await startDecadeOn(t, new FileStore({ dir }), options);
  h.dir = dir;
  return h;
}

/** Start a server as {@link startDecade} does, over `store` (opened here, closed at teardown); `keys` to share accounts between servers. */
export async function startDecadeOn<S extends DecadeStore>(t: ExecutionContext, store: S, options: StartOptions = {}): Promise<Harness<S>> {
  const { tls, keys: given, quota, ...serverOptions } = options;
  const keys = given ?? { alice: generateAccountKey(), bob: generateAccountKey() };
  const pki = tls ? testPki() : undefined;
  await store.open();
  const events: DecadeEvent[] = [];
  const decade = new DecadeServer({
    ...serverOptions,
    store,
    accounts: [
      { id: 'alice', publicKey: keys.alice.publicJwk, quota: quota ?? null },
      { id: 'bob', publicKey: keys.bob.publicJwk },
    ],
    onEvent: (e) => events.push(e),
  });
  const server = pki
    ? createServer({ profiles: [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), ...decade.profiles], requireTls: true })
    : createServer({ profiles: [...decade.profiles] });
  // Sessions the server accepted: destroyed if its close does not finish within the bound.
  const sessions = new Set<Session>();
  server.on('session', (s: Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => stopServer(decade, server, store, sessions));
  const token = (grant: Partial<TokenGrant> = {}): Promise<string> => {
    const account = grant.account ?? 'alice';
    const k = (keys as Record<string, AccountKeyPair>)[account] ?? keys.alice;
    return createToken({ account, operations: ['put', 'get', 'stat', 'rm'], ...grant }, k.privateJwk);
  };
  const client = (): Promise<DecadeClient> => connectClient(t, { port, ...(pki ? { tls: { ca: pki.ca, serverName: 'localhost' } } : {}) });
  return {
    port, server, dir: '', store, decade, keys, events, pki, token, client,
    session: async (grant) => ({ c: await client(), token: await token(grant) }),
  };
}

/**
 * The harness's teardown: refuse new operations, close the BEEP server (1 s
 * of grace, then its sessions are terminated) and the store, each within
 * {@link TEARDOWN_MS} — past it, the server's sessions are destroyed and
 * this rejects saying which step hung (the store is closed either way).
 */
export async function stopServer(decade: DecadeServer, server: BeepServer, store: DecadeStore, sessions: Set<Session>, ms = TEARDOWN_MS): Promise<void> {
  decade.close();
  const failures: unknown[] = [];
  await bounded('closing the DECADE server', server.close(1000), ms, () => {
    for (const s of sessions) s.destroy();
  }).catch((err: unknown) => failures.push(err));
  await bounded('closing the DECADE store', store.close(), ms).catch((err: unknown) => failures.push(err));
  if (failures.length > 0) throw failures[0];
}

/** Assert that `p` rejects with a DecadeError of `code`; returns it. */
export async function rejectsWith(t: ExecutionContext, p: Promise<unknown>, code: DecadeCode): Promise<DecadeError> {
  const err = await t.throwsAsync(p);
  t.true(isDecadeError(err), `a DecadeError, got ${String(err)}`);
  t.is((err as DecadeError).decadeCode, code, (err as Error).message);
  return err as DecadeError;
}

/** Deterministic pseudo-random octets. */
export function octets(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Poll `cond` every 25 ms until it holds; fails after `timeoutMs` (a bound, generous for a busy machine, not a measurement). */
export async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < timeoutMs / 25 + 1 && Date.now() < deadline; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (await cond()) return;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ---- sources and readers for transfers under way -----------------------------------------------

/** How long a test's source or reader waits for the next step before it fails (a bound, not a measurement). */
export const STEP_MS = 60_000;

/**
 * A source whose chunks are released one at a time by the test. A chunk not
 * released within `stepMs` fails the source (and so the PUT reading it).
 */
export function gated(chunks: Buffer[], stepMs = STEP_MS): { source: AsyncIterable<Buffer>; release: () => void } {
  let allowed = 0;
  let wake: (() => void) | null = null;
  return {
    release: () => {
      allowed++;
      wake?.();
    },
    source: (async function* () {
      for (let i = 0; i < chunks.length; i++) {
        // Each wake is a release, so this waits at most once per chunk.
        if (allowed <= i) await bounded(`the test's release of chunk ${i}`, new Promise<void>((r) => (wake = r)), stepMs);
        yield chunks[i] as Buffer;
      }
    })(),
  };
}

/** A source that yields `first` at once, then waits for `release` before yielding `rest`. */
export function held(first: Buffer, rest: Buffer): { source: AsyncIterable<Buffer>; release: () => void } {
  const g = gated([first, rest]);
  g.release();
  return g;
}

/** Read from `it` until at least `want` octets (or its end); each step bounded by `stepMs`. */
export async function readSome(it: AsyncIterator<Buffer>, want: number, stepMs = STEP_MS): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  // At most one step per octet wanted (an empty chunk counts too).
  for (let steps = 0; n < want && steps <= want; steps++) {
    const r = await bounded(`reading octet ${n} of ${want}`, it.next(), stepMs);
    if (r.done) break;
    parts.push(r.value);
    n += r.value.length;
  }
  return Buffer.concat(parts);
}

/** Start a PUT without waiting for it (its outcome is the promise; an unawaited failure is not unhandled). */
export function startPut(c: DecadeClient, token: string, name: string, size: number, source: AsyncIterable<Buffer>): Promise<Created> {
  const done = c.putStream(token, name, size, source);
  done.catch(() => undefined);
  return done;
}

/**
 * A PUT of `data` that sends its first `first` octets and holds the rest
 * back until `release` (or teardown): the server sits mid-PUT meanwhile.
 */
export function heldPut(t: ExecutionContext, c: DecadeClient, token: string, name: string, data: Buffer, first: number): { done: Promise<Created>; release: () => void } {
  const h = held(data.subarray(0, first), data.subarray(first));
  t.teardown(h.release);
  return { done: startPut(c, token, name, data.length, h.source), release: h.release };
}

// ---- `beepstream decade serve` as a process ----------------------------------------------------

/** A directory with an accounts file for `decade serve` (alice, with `quota` if given), and alice's key. */
export async function accountsFile(t: ExecutionContext, quota?: number): Promise<{ dir: string; key: AccountKeyPair; accounts: string }> {
  const dir = await tempDir(t);
  const key = generateAccountKey();
  const accounts = join(dir, 'accounts.json');
  await writeFile(accounts, JSON.stringify({ accounts: [{ id: 'alice', publicKey: key.publicJwk, ...(quota === undefined ? {} : { quota }) }] }));
  return { dir, key, accounts };
}

/** A running `decade serve`. */
export interface Serve { child: ChildProcess; address: string; port: number; lines: string[]; output: () => string }

/**
 * Start `beepstream decade serve ARGS` (give `--port 0`) as a real process;
 * resolves once it printed its address (first line) and what opening its
 * store swept (second line).
 */
export function serveProcess(args: string[], env: Record<string, string> = {}): Promise<Serve> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'decade', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const lines: string[] = [];
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`decade serve did not start within ${LISTEN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, LISTEN_TIMEOUT_MS);
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length === 2) {
        clearTimeout(timer);
        const address = (lines[0] as string).replace(/^listening on /, '');
        resolve({ child, address, port: Number(address.split(':').pop()), lines, output: () => lines.join('\n') + stderr });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (lines.length < 2) reject(new Error(`decade serve exited early with ${code}: ${stderr}`));
    });
  });
}

/** `kill -9` a process and wait (at most {@link TEARDOWN_MS}) until it has exited. */
export async function killNine(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await bounded(`process ${child.pid} exiting after SIGKILL`, new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()))));
}
