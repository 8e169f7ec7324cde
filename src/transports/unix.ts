/**
 * Unix domain sockets: dial and listen on a socket path, nothing else. The
 * listener never removes a file it did not create: an existing path is
 * refused (address in use); its own socket file goes when it closes.
 *
 * @module
 */
import net from 'node:net';
import { BeepError, ErrorCodes, listenError } from '../errors.js';
import { setTransportInfo, type ListenAddress } from './transport.js';

/** Longest socket path accepted (Linux's `sun_path` holds 108 octets with the NUL). */
export const MAX_UNIX_PATH = 107;

/** Refuse a path that cannot name a socket. */
export function checkUnixPath(path: string): void {
  if (typeof path !== 'string' || path.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'a Unix socket path must be a non-empty string');
  if (path.includes('\0')) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'a Unix socket path must not contain NUL');
  if (Buffer.byteLength(path) > MAX_UNIX_PATH) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `a Unix socket path must be at most ${MAX_UNIX_PATH} octets`);
}

/** Connect to the Unix socket at `path`; failures arrive as the socket's `'error'` event. */
export function dialUnix(path: string): net.Socket {
  checkUnixPath(path);
  const socket = net.connect({ path });
  setTransportInfo(socket, { kind: 'unix', remote: path });
  return socket;
}

/** Describe a socket accepted on the Unix socket at `path`. */
export function acceptedUnix(socket: net.Socket, path: string): void {
  setTransportInfo(socket, { kind: 'unix', local: path });
}

/**
 * Bind `server` to a Unix socket at `path`. Rejects with `BEEP_ERR_LISTEN`
 * if the path exists (even a stale socket: remove it first) or cannot be
 * created.
 */
export function listenUnix(server: net.Server, path: string): Promise<ListenAddress & { kind: 'unix' }> {
  return new Promise((resolve, reject) => {
    try {
      checkUnixPath(path);
    } catch (err) {
      reject(err);
      return;
    }
    const onError = (err: Error): void => reject(listenError(err, 'unix', path));
    server.once('error', onError);
    try {
      server.listen({ path, exclusive: true }, () => {
        server.off('error', onError);
        resolve({ kind: 'unix', path });
      });
    } catch (err) {
      server.off('error', onError);
      onError(err as Error);
    }
  });
}
