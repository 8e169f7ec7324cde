/**
 * TCP (RFC 3081): dial and listen, nothing else.
 *
 * @module
 */
import net from 'node:net';
import { listenError } from '../errors.js';
import { formatHostPort, setTransportInfo, type ListenAddress, type TransportInfo } from './transport.js';

/** Describe a TCP socket (connected or accepted): kind and both ends. */
export function tcpInfo(socket: net.Socket): TransportInfo {
  const info: { kind: 'tcp'; local?: string; remote?: string; remoteAddress?: string } = { kind: 'tcp' };
  if (socket.localAddress !== undefined && socket.localPort !== undefined) info.local = formatHostPort(socket.localAddress, socket.localPort);
  if (socket.remoteAddress !== undefined && socket.remotePort !== undefined) {
    info.remote = formatHostPort(socket.remoteAddress, socket.remotePort);
    info.remoteAddress = socket.remoteAddress;
  }
  return info;
}

/**
 * Open a TCP connection. The socket is returned at once (writes queue until
 * it connects); connection failures arrive as its `'error'` event.
 */
export function dialTcp(host: string, port: number): net.Socket {
  const socket = net.connect({ host, port });
  // The description is complete once connected; until then it names the target.
  setTransportInfo(socket, { kind: 'tcp', remote: formatHostPort(host, port) });
  socket.once('connect', () => setTransportInfo(socket, tcpInfo(socket)));
  return socket;
}

/**
 * Bind `server` to `host:port` (port 0: a free one). Rejects with a
 * `BEEP_ERR_LISTEN` {@link BeepError} naming the address and the reason.
 */
export function listenTcp(server: net.Server, port: number, host: string): Promise<ListenAddress & { kind: 'tcp' }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(listenError(err, host, port));
    server.once('error', onError);
    try {
      server.listen(port, host, () => {
        server.off('error', onError);
        const a = server.address() as net.AddressInfo;
        resolve({ kind: 'tcp', address: a.address, family: a.family, port: a.port });
      });
    } catch (err) {
      // A bad port, or already listening: thrown synchronously by node:net.
      server.off('error', onError);
      onError(err as Error);
    }
  });
}
