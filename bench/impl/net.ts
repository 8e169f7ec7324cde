/**
 * Baselines over plain sockets: raw TCP (node:net), TLS 1.3 with
 * TLS_AES_128_GCM_SHA256, and TLS 1.2 with PSK-AES128-GCM-SHA256 (node:tls).
 * None of them multiplexes: every stream is a TCP connection of its own.
 *
 * @module
 */
import net from 'node:net';
import tls from 'node:tls';
import type { BenchConn, BenchStream, ClientImpl, Impl, ImplOptions, ServerImpl, StreamKind } from '../lib/adapter.js';
import { ByteStream, ServerProtocol, WireMeter, duplexPipe, received } from '../lib/byteproto.js';

type Flavour = 'tcp' | 'tls13' | 'tls12psk';

const PSK_IDENTITY = 'beepstream-bench';
const TLS13_CIPHER = 'TLS_AES_128_GCM_SHA256';
const PSK_CIPHER = 'PSK-AES128-GCM-SHA256';

function serverTlsOptions(flavour: Flavour, o: ImplOptions): tls.TlsOptions {
  if (!o.tls) throw new Error('TLS material missing');
  if (flavour === 'tls13') {
    return { key: o.tls.key, cert: o.tls.cert, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: TLS13_CIPHER };
  }
  const psk = Buffer.from(o.tls.psk, 'hex');
  return {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: PSK_CIPHER,
    pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? psk : null),
  };
}

function clientTlsOptions(flavour: Flavour, o: ImplOptions): tls.ConnectionOptions {
  if (!o.tls) throw new Error('TLS material missing');
  if (flavour === 'tls13') {
    return { ca: o.tls.cert, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: TLS13_CIPHER };
  }
  const psk = Buffer.from(o.tls.psk, 'hex');
  return {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: PSK_CIPHER,
    pskCallback: () => ({ psk, identity: PSK_IDENTITY }),
    checkServerIdentity: () => undefined,
  };
}

function makeServer(flavour: Flavour, o: ImplOptions): Promise<ServerImpl> {
  let sessions = 0;
  const wire = new WireMeter();
  const onConnection = (socket: net.Socket): void => {
    socket.setNoDelay(true);
    sessions++;
    const proto = new ServerProtocol((b) => socket.write(b));
    socket.on('data', (c: Buffer) => proto.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => sessions--);
  };
  const server = flavour === 'tcp' ? net.createServer(onConnection) : tls.createServer(serverTlsOptions(flavour, o), onConnection);
  // The TCP connection under TLS: count what comes off the wire, records and all.
  server.on('connection', (raw: net.Socket) => wire.add(raw));
  server.on('tlsClientError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', 1024, () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        counts: () => ({ sessions, streams: sessions, received: received.octets, wire: wire.total }),
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

function dial(flavour: Flavour, port: number, o: ImplOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const onError = (e: Error): void => reject(e);
    if (flavour === 'tcp') {
      socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.off('error', onError);
        resolve(socket);
      });
    } else {
      socket = tls.connect({ host: '127.0.0.1', port, ...clientTlsOptions(flavour, o) }, () => {
        socket.off('error', onError);
        resolve(socket);
      });
    }
    socket.setNoDelay(true);
    socket.once('error', onError);
  });
}

function makeClient(flavour: Flavour, o: ImplOptions): ClientImpl {
  return {
    async connect(port: number): Promise<BenchConn> {
      const sockets = new Set<net.Socket>();
      const track = (s: net.Socket): net.Socket => {
        sockets.add(s);
        s.on('error', () => undefined);
        s.once('close', () => sockets.delete(s));
        return s;
      };
      // The "session" is the first connection; it carries the first stream.
      let first: net.Socket | null = track(await dial(flavour, port, o));
      return {
        async open(kind: StreamKind): Promise<BenchStream> {
          const s = first ?? track(await dial(flavour, port, o));
          first = null;
          return new ByteStream(duplexPipe(s), kind);
        },
        destroy() {
          for (const s of sockets) s.destroy();
        },
      };
    },
  };
}

function flavourImpl(flavour: Flavour, name: string): Impl {
  return {
    name,
    multiplexed: false,
    server: (o) => makeServer(flavour, o),
    client: (o) => makeClient(flavour, o),
  };
}

/** Raw TCP. */
export const tcpImpl = flavourImpl('tcp', 'raw-tcp');
/** TLS 1.3, TLS_AES_128_GCM_SHA256, ECDSA P-256 certificate. */
export const tls13Impl = flavourImpl('tls13', 'tls1.3-aes128gcm');
/** TLS 1.2, PSK-AES128-GCM-SHA256. */
export const tls12PskImpl = flavourImpl('tls12psk', 'tls1.2-psk-aes128gcm');
