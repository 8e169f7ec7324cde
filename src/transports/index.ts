/**
 * The transport layer: stream transports a BEEP session runs over — TCP
 * (RFC 3081) and Unix domain sockets — and nothing else: dial, listen, and a
 * small description of a connected transport ({@link TransportInfo}). The
 * session layer takes any `Duplex`; this is where the `Duplex` comes from.
 *
 * @module
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import { dialTcp, listenTcp, tcpInfo } from './tcp.js';
import { acceptedUnix, dialUnix, listenUnix } from './unix.js';
import { recordedTransportInfo, setTransportInfo, type DialTarget, type ListenAddress, type ListenTarget, type TransportInfo } from './transport.js';

export type { TransportKind, TransportInfo, DialTarget, ListenTarget, ListenAddress } from './transport.js';
export { formatHostPort } from './transport.js';
export { MAX_UNIX_PATH, checkUnixPath } from './unix.js';
export { readInto, type RecycledReads } from './reads.js';

/** Whether a target names a Unix socket. */
export function isUnixTarget(target: DialTarget | ListenTarget): target is { readonly path: string } {
  return typeof (target as { path?: unknown }).path === 'string';
}

/** Human-readable form of a target: `host:port` or `unix:PATH`. */
export function formatTarget(target: DialTarget | ListenTarget): string {
  if (isUnixTarget(target)) return `unix:${target.path}`;
  const host = target.host ?? '127.0.0.1';
  return host.includes(':') ? `[${host}]:${target.port ?? 0}` : `${host}:${target.port ?? 0}`;
}

/**
 * Open a connection to `target`. The stream is returned at once (writes
 * queue until it connects); a failure to connect arrives as its `'error'`.
 */
export function dial(target: DialTarget): Duplex {
  if (isUnixTarget(target)) return dialUnix(target.path);
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `port must be an integer from 1 to 65535, got ${String(target.port)}`);
  }
  return dialTcp(target.host ?? '127.0.0.1', target.port);
}

/**
 * A listener not yet bound: `onConnection` gets each accepted stream. Bind
 * it with {@link listen}; close it with its `close()`.
 */
export function createListener(onConnection: (socket: Duplex) => void): net.Server {
  const server = net.createServer((socket) => {
    // The accepting side of a Unix socket: its path is the listener's.
    const bound = server.address();
    if (typeof bound === 'string') acceptedUnix(socket, bound);
    onConnection(socket);
  });
  return server;
}

/** Bind a listener made by {@link createListener} (or any `net.Server`) to `target`. */
export function listen(server: net.Server, target: ListenTarget): Promise<ListenAddress> {
  if (isUnixTarget(target)) return listenUnix(server, target.path);
  return listenTcp(server, target.port ?? 0, target.host ?? '127.0.0.1');
}

/**
 * Describe a transport stream: what its transport recorded, else what a
 * socket says of itself; `undefined` for a stream that is no socket (a
 * test's in-memory pair).
 */
export function describeTransport(socket: Duplex): TransportInfo | undefined {
  const recorded = recordedTransportInfo(socket);
  if (recorded && (recorded.kind === 'unix' || recorded.remoteAddress !== undefined)) return recorded;
  if (socket instanceof net.Socket) {
    if (socket.remoteAddress !== undefined || socket.localAddress !== undefined) {
      const info = tcpInfo(socket);
      // Kept: a socket forgets its addresses once closed.
      if (info.remoteAddress !== undefined) setTransportInfo(socket, info);
      return info;
    }
    return recorded ?? { kind: 'unix' };
  }
  return recorded;
}
