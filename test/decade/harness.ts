/**
 * A DECADE server on 127.0.0.1 over a temporary directory, its accounts and
 * keys, and token helpers, for the DECADE tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { createServer, type BeepServer } from '../../src/channels/index.js';
import {
  createToken, DecadeClient, DecadeServer, FileStore, generateAccountKey, isDecadeError,
  type AccountKeyPair, type DecadeStore, type DecadeCode, type DecadeError, type DecadeEvent, type DecadeServerOptions, type TokenGrant,
} from '../../src/decade/index.js';

export interface Harness<S extends DecadeStore = FileStore> {
  port: number;
  server: BeepServer;
  /** The file store's directory ('' for another store). */
  dir: string;
  store: S;
  decade: DecadeServer;
  keys: { alice: AccountKeyPair; bob: AccountKeyPair };
  events: DecadeEvent[];
  /** A token for `account` (default alice) granting `grant` (default every operation). */
  token(grant?: Partial<TokenGrant>): Promise<string>;
  client(): Promise<DecadeClient>;
}

/** A temporary directory removed at teardown. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'beepstream-decade-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Start a server with accounts alice (quota as given, default unlimited) and bob. */
export async function startDecade(t: ExecutionContext, options: { quota?: number | null; dir?: string } & Partial<DecadeServerOptions> = {}): Promise<Harness> {
  const dir = options.dir ?? (await tempDir(t));
  const h = await startDecadeOn(t, new FileStore({ dir }), options);
  h.dir = dir;
  return h;
}

/** Start a server as {@link startDecade} does, over `store` (opened here, closed at teardown); `keys` to share accounts between servers. */
export async function startDecadeOn<S extends DecadeStore>(t: ExecutionContext, store: S, options: { quota?: number | null; keys?: Harness['keys'] } & Partial<DecadeServerOptions> = {}): Promise<Harness<S>> {
  const dir = '';
  const keys = options.keys ?? { alice: generateAccountKey(), bob: generateAccountKey() };
  await store.open();
  const events: DecadeEvent[] = [];
  const decade = new DecadeServer({
    ...options,
    store,
    accounts: [
      { id: 'alice', publicKey: keys.alice.publicJwk, quota: options.quota ?? null },
      { id: 'bob', publicKey: keys.bob.publicJwk },
    ],
    onEvent: (e) => events.push(e),
  });
  const server = createServer({ profiles: [...decade.profiles] });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(async () => {
    decade.close();
    await server.close(1000);
    await store.close();
  });
  const h: Harness<S> = {
    port, server, dir, store, decade, keys, events,
    token: (grant = {}) => {
      const account = grant.account ?? 'alice';
      const k = (keys as Record<string, AccountKeyPair>)[account] ?? keys.alice;
      return createToken({ account, operations: ['put', 'get', 'stat', 'rm'], ...grant }, k.privateJwk);
    },
    client: async () => {
      const c = await DecadeClient.connect({ port, host: '127.0.0.1' });
      t.teardown(() => c.close());
      return c;
    },
  };
  return h;
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
