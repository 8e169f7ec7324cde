/**
 * The @chainsafe/libp2p-yamux baseline over a node:net socket, with its
 * default configuration (256 KiB initial stream window auto-tuned up to
 * 16 MiB, keep-alive pings that feed the RTT estimate) except the stream
 * counts, raised so the scale cases can open 10,000 streams.
 *
 * v8 of the muxer (libp2p v3 API) takes a `MessageStream`; {@link SocketConn}
 * adapts a `net.Socket` to it on top of `AbstractMessageStream` from
 * `@libp2p/utils` (a dependency of the muxer). v8 calls `Promise.withResolvers`
 * (Node 22+); `lib/polyfill.ts` supplies it on Node 20.
 *
 * @module
 */
import '../lib/polyfill.js';
import net from 'node:net';
import { yamux } from '@chainsafe/libp2p-yamux';
import { AbstractMessageStream, type SendResult } from '@libp2p/utils';
import { logger } from '@libp2p/logger';
import type { BenchConn, BenchStream, ClientImpl, Impl, ServerImpl, StreamKind } from '../lib/adapter.js';
import { ByteStream, ServerProtocol, WireMeter, received, type Pipe } from '../lib/byteproto.js';

type Muxer = ReturnType<ReturnType<ReturnType<typeof yamux>>['createStreamMuxer']>;
type YStream = Awaited<ReturnType<Muxer['createStream']>>;
type Chunks = Uint8Array | Iterable<Uint8Array>;

const log = logger('beepstream:bench:yamux');
const config = { maxInboundStreams: 1_000_000, maxOutboundStreams: 1_000_000 };

/** A net.Socket as the libp2p `MessageStream` the muxer reads from and writes to. */
class SocketConn extends AbstractMessageStream {
  private readonly socket: net.Socket;

  constructor(socket: net.Socket, direction: 'inbound' | 'outbound') {
    super({ log, direction });
    this.socket = socket;
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('drain', () => this.safeDispatchEvent('drain'));
    socket.on('error', () => undefined);
    socket.once('close', () => this.onTransportClosed());
  }

  sendData(data: Parameters<AbstractMessageStream['sendData']>[0]): SendResult {
    let canSendMore = true;
    for (const b of data) canSendMore = this.socket.write(b);
    return { sentBytes: data.byteLength, canSendMore };
  }

  sendReset(): void {
    this.socket.resetAndDestroy();
  }

  sendPause(): void {
    this.socket.pause();
  }

  sendResume(): void {
    this.socket.resume();
  }

  async close(): Promise<void> {
    this.socket.end();
  }
}

function muxerOver(socket: net.Socket, direction: 'inbound' | 'outbound'): Muxer {
  socket.setNoDelay(true);
  return yamux(config)().createStreamMuxer(new SocketConn(socket, direction));
}

function forEachChunk(data: Chunks, cb: (b: Uint8Array) => void): void {
  if (data instanceof Uint8Array) cb(data);
  else for (const b of data) cb(b);
}

/**
 * Octets a writer may leave queued in a stream before it waits. A yamux
 * stream's `send()` queues without bound (`maxWriteBufferLength` is Infinity)
 * and it signals `drain` on every window update while anything is queued, so
 * a writer that only awaits `onDrain()` keeps adding and the queue grows until
 * the process stalls. Waiting until the queue is under this mark is the
 * backpressure every other transport here applies.
 */
const WRITE_HWM = 1024 * 1024;

function nextEvent(s: YStream, names: string[]): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = s as unknown as EventTarget;
    const done = (): void => {
      for (const n of names) t.removeEventListener(n, done);
      resolve();
    };
    for (const n of names) t.addEventListener(n, done);
  });
}

function streamPipe(s: YStream): Pipe {
  return {
    write: (b) => s.send(b) && s.writeBufferLength <= WRITE_HWM,
    drained: async () => {
      await s.onDrain();
      while (s.writeBufferLength > WRITE_HWM && s.status === 'open') await nextEvent(s, ['drain', 'idle', 'close']);
    },
    onData: (cb) => s.addEventListener('message', (e) => forEachChunk(e.data as Chunks, cb)),
    onClose: (cb) => s.addEventListener('close', (e) => cb((e as Event & { error?: Error }).error)),
    end: async () => {
      if (s.status === 'closed' || s.status === 'aborted' || s.status === 'reset') return;
      const gone = new Promise<void>((r) => s.addEventListener('close', () => r(), { once: true }));
      await s.close();
      await gone;
    },
    destroy: () => s.abort(new Error('destroyed')),
  };
}

async function server(): Promise<ServerImpl> {
  let sessions = 0;
  let streams = 0;
  const wire = new WireMeter();
  const srv = net.createServer((socket) => {
    wire.add(socket);
    sessions++;
    socket.once('close', () => sessions--);
    const muxer = muxerOver(socket, 'inbound');
    muxer.addEventListener('stream', (e) => {
      const s = e.detail;
      streams++;
      s.addEventListener('close', () => streams--, { once: true });
      const proto = new ServerProtocol((b) => {
        s.send(b);
      });
      s.addEventListener('message', (m) => forEachChunk(m.data as Chunks, (b) => proto.push(b)));
      s.addEventListener('remoteCloseWrite', () => void s.close().catch(() => undefined));
    });
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
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
      const muxer = muxerOver(socket, 'outbound');
      return {
        async open(kind: StreamKind): Promise<BenchStream> {
          const s = await muxer.createStream();
          return new ByteStream(streamPipe(s), kind);
        },
        destroy() {
          muxer.abort(new Error('destroyed'));
          socket.destroy();
        },
      };
    },
  };
}

/** @chainsafe/libp2p-yamux over TCP. */
export const yamuxImpl: Impl = { name: 'yamux', multiplexed: true, server, client };
