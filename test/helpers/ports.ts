/**
 * A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0,
 * read, and closed again. Nothing listens on it when this resolves (a
 * connection to it is refused) until something binds it — a server a test
 * configures with it, or, rarely, another process that took it meanwhile.
 */
import { createServer } from 'node:net';

/** See the module documentation. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
