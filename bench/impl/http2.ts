/**
 * The node:http2 baseline (cleartext h2c over TCP), tuned the way a careful
 * user would: 4 MiB initial stream window and a 64 MiB connection window on
 * both sides, no limit on concurrent streams. One POST stream per channel; the
 * request and response bodies speak the byte protocol of `lib/byteproto.ts`.
 *
 * @module
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type { BenchConn, BenchStream, ClientImpl, Impl, ServerImpl, StreamKind } from '../lib/adapter.js';
import { ByteStream, ServerProtocol, WireMeter, duplexPipe, received } from '../lib/byteproto.js';
import { MiB } from '../lib/stats.js';

/** Per-stream window (SETTINGS_INITIAL_WINDOW_SIZE). */
export const H2_STREAM_WINDOW = 4 * MiB;
/** Connection window (WINDOW_UPDATE on stream 0 via setLocalWindowSize). */
export const H2_CONNECTION_WINDOW = 64 * MiB;
const MAX_STREAMS = 1_000_000;
/** MB of buffered data nghttp2 may hold per session before refusing streams (default 10). */
const MAX_SESSION_MEMORY = 1024;

const settings: http2.Settings = { initialWindowSize: H2_STREAM_WINDOW, maxConcurrentStreams: MAX_STREAMS };

function noDelay(session: http2.Http2Session): void {
  try {
    (session.socket as net.Socket).setNoDelay(true);
  } catch {
    /* the socket proxy may refuse it */
  }
}

async function server(): Promise<ServerImpl> {
  let sessions = 0;
  let streams = 0;
  const wire = new WireMeter();
  const srv = http2.createServer({ settings, maxSessionMemory: MAX_SESSION_MEMORY });
  srv.on('connection', (raw: net.Socket) => wire.add(raw));
  srv.on('session', (s) => {
    sessions++;
    noDelay(s);
    s.setLocalWindowSize(H2_CONNECTION_WINDOW);
    s.on('error', () => undefined);
    s.once('close', () => sessions--);
  });
  srv.on('stream', (stream) => {
    streams++;
    stream.once('close', () => streams--);
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200 });
    const proto = new ServerProtocol((b) => stream.write(b));
    stream.on('data', (c: Buffer) => proto.push(c));
    stream.on('end', () => stream.end());
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', 1024, () => resolve());
  });
  return {
    port: (srv.address() as net.AddressInfo).port,
    counts: () => ({ sessions, streams, received: received.octets, wire: wire.total }),
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

function client(): ClientImpl {
  return {
    async connect(port: number): Promise<BenchConn> {
      const session = http2.connect(`http://127.0.0.1:${port}`, {
        settings,
        peerMaxConcurrentStreams: MAX_STREAMS,
        maxSessionMemory: MAX_SESSION_MEMORY,
      });
      session.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        let connected = false;
        let settled = false;
        const done = (): void => {
          if (connected && settled) {
            session.off('error', reject);
            resolve();
          }
        };
        session.once('error', reject);
        session.once('connect', () => {
          connected = true;
          noDelay(session);
          session.setLocalWindowSize(H2_CONNECTION_WINDOW);
          done();
        });
        session.once('remoteSettings', () => {
          settled = true;
          done();
        });
      });
      return {
        async open(kind: StreamKind): Promise<BenchStream> {
          const req = session.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
          req.on('error', () => undefined);
          return new ByteStream(duplexPipe(req), kind);
        },
        destroy() {
          session.destroy();
        },
      };
    },
  };
}

/** node:http2 with tuned windows. */
export const http2Impl: Impl = { name: 'http2', multiplexed: true, server, client };
