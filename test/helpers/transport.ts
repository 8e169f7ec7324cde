/**
 * The transport a test suite runs over, so one test body serves TCP and Unix
 * domain sockets alike. A suite file's tests listen with {@link listenForTest}
 * and connect with what it returns; a wrapper in `test/transports/` sets
 * {@link useTestTransport}('unix') and imports the suite file again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { BeepServer } from '../../src/channels/session.js';

/** Transports a suite can run over. */
export type TestTransport = 'tcp' | 'unix';

/** Where a client connects: spread into `connect({ ...at })`. */
export type ConnectTarget = { port: number; host?: string } | { path: string };

const KEY = Symbol.for('beepstream.test.transport');

/** Run every suite imported after this call over `kind` (the wrappers in test/transports/ call it first). */
export function useTestTransport(kind: TestTransport): void {
  (globalThis as Record<symbol, unknown>)[KEY] = kind;
}

/** The transport this test file runs over (TCP unless a wrapper chose otherwise). */
export function testTransport(): TestTransport {
  return (globalThis as Record<symbol, unknown>)[KEY] === 'unix' ? 'unix' : 'tcp';
}

/** A fresh temporary directory for socket files, removed when the test ends. */
export function socketDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Listen on the test transport: 127.0.0.1 port 0 for TCP, a socket file in a
 * fresh temporary directory (removed afterwards) for Unix sockets.
 */
export async function listenForTest(t: ExecutionContext, server: BeepServer): Promise<ConnectTarget> {
  if (testTransport() === 'unix') {
    const path = join(socketDir(t), 'beep.sock');
    await server.listen({ path });
    return { path };
  }
  const { port } = await server.listen(0, '127.0.0.1');
  return { port };
}

/**
 * Prove which transport a suite really ran over: a session made the suite's
 * way reports that kind on both ends (the wrappers in test/transports/ add it).
 */
export async function checkTransport(t: ExecutionContext, kind: TestTransport): Promise<void> {
  const { createServer, connect } = await import('../../src/channels/session.js');
  const server = createServer();
  const at = await listenForTest(t, server);
  const accepted = new Promise<import('../../src/channels/session.js').Session>((r) => server.once('session', r));
  const client = await connect({ ...at });
  t.teardown(async () => {
    client.destroy();
    await server.close(200).catch(() => undefined);
  });
  t.is(testTransport(), kind);
  t.is(client.transport?.kind, kind, 'the client side');
  t.is((await accepted).handle.transport?.kind, kind, 'the accepting side');
  if (kind === 'unix') t.deepEqual(at, { path: (at as { path: string }).path }, 'connected by path, no port');
}
