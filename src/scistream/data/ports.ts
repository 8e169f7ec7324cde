/**
 * Addresses and listening ports of the data plane: `host:port` strings (IPv6
 * in brackets) and listening on a free port of a configured range.
 *
 * @module
 */
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { BeepError, ErrorCodes } from '../../errors.js';

/** A parsed `host:port`. */
export interface HostPort {
  host: string;
  port: number;
}

/** Parse `host:port` or `[v6]:port`. Throws `BEEP_ERR_INVALID_ARGUMENT`. */
export function parseHostPort(s: string): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):([0-9]{1,5})$/.exec(typeof s === 'string' ? s.trim() : '');
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `not a host:port: ${JSON.stringify(s)}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Format `host:port`, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A port range `[low, high]`, both inclusive; `[0, 0]` means any free port. */
export type PortRange = readonly [number, number];

/** Validate a range; undefined means `[0, 0]`. */
export function checkPortRange(range: PortRange | undefined): PortRange {
  if (range === undefined) return [0, 0];
  const [lo, hi] = range;
  if (lo === 0 && hi === 0) return [0, 0];
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535 || lo > hi) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `port range must be [0, 0] or 1 ≤ low ≤ high ≤ 65535, got [${lo}, ${hi}]`);
  }
  return [lo, hi];
}

function listenOnce(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}

/**
 * Make `server` listen on `host` at a free port of `range` (tried from a
 * random point, wrapping around; ports in use or forbidden are skipped).
 * Resolves with the port; rejects with `BEEP_ERR_LIMIT` when none is free.
 */
export async function listenInRange(server: net.Server, host: string, range?: PortRange): Promise<number> {
  const [lo, hi] = checkPortRange(range);
  if (lo === 0) return listenOnce(server, host, 0);
  const span = hi - lo + 1;
  const start = randomInt(span);
  for (let k = 0; k < span; k++) {
    const port = lo + ((start + k) % span);
    try {
      return await listenOnce(server, host, port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') continue;
      throw err;
    }
  }
  throw new BeepError(ErrorCodes.LIMIT, `no free port in ${lo}-${hi} on ${host}`);
}

/**
 * Stop listening (the port is free once this resolves) and wait until the
 * connections it accepted are gone — destroy them first. Never rejects.
 */
export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

/**
 * Abort a TCP connection (RST) where possible, else just destroy it.
 *
 * Not while our FIN is being sent (`end()` called, not yet finished): libuv
 * refuses to reset a socket with a shutdown in flight, and Node then leaves
 * the descriptor open — the peer would wait for ever. Closing it instead
 * follows the FIN; the peer's further writes are answered with a reset.
 */
export function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded && !socket.writableFinished) {
    socket.destroy();
    return;
  }
  if (socket.readyState === 'open' || socket.readyState === 'readOnly' || socket.readyState === 'writeOnly') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      /* fall through */
    }
  }
  socket.destroy();
}
