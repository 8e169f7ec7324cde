/**
 * The tiny wire protocol the byte-stream baselines (TCP, TLS, HTTP/2 streams,
 * yamux streams) speak, so every baseline does exactly the work beepstream's
 * profiles do:
 *
 * - `S` + 8-octet big-endian length + that many octets: the server counts them
 *   and answers one octet `K` (the bulk sink);
 * - `E` + anything: the server sends every octet back as it arrives (echo).
 *
 * {@link Pipe} is the least a transport must offer; {@link ByteStream} is the
 * client side over a pipe, {@link ServerProtocol} the server side.
 *
 * @module
 */
import type { Duplex } from 'node:stream';
import type { BenchStream, StreamKind } from './adapter.js';

const KIND_SINK = 0x53; // 'S'
const KIND_ECHO = 0x45; // 'E'
const ACK = new Uint8Array([0x4b]); // 'K'

/** The least a bidirectional byte stream must offer. */
export interface Pipe {
  /** Queue octets; false when the writer should wait for {@link drained}. */
  write(b: Uint8Array): boolean;
  /** Resolves when writing may go on (rejects if the stream closes first). */
  drained(): Promise<void>;
  /** Every chunk received. */
  onData(cb: (b: Uint8Array) => void): void;
  /** The stream is gone. */
  onClose(cb: (err?: Error) => void): void;
  /** Close gracefully and resolve once fully closed. */
  end(): Promise<void>;
  destroy(): void;
}

/** A {@link Pipe} over a Node Duplex (net.Socket, tls.TLSSocket, Http2Stream). */
export function duplexPipe(d: Duplex): Pipe {
  return {
    write: (b) => d.write(b),
    drained: () =>
      new Promise<void>((resolve, reject) => {
        if (!d.writableNeedDrain) return resolve();
        const ok = (): void => {
          d.off('close', bad);
          resolve();
        };
        const bad = (): void => {
          d.off('drain', ok);
          reject(new Error('stream closed while waiting for drain'));
        };
        d.once('drain', ok);
        d.once('close', bad);
      }),
    onData: (cb) => {
      d.on('data', cb);
    },
    onClose: (cb) => {
      d.once('close', () => cb());
      d.on('error', (e) => cb(e));
    },
    end: () =>
      new Promise<void>((resolve) => {
        if (d.destroyed || d.closed) return resolve();
        d.once('close', () => resolve());
        d.end();
      }),
    destroy: () => d.destroy(),
  };
}

/** Client side of the protocol over a {@link Pipe}. */
export class ByteStream implements BenchStream {
  private received = 0;
  private expected = 0;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  /** The callback of the {@link roundTripCb} in flight. */
  private doneCb: ((err?: Error) => void) | null = null;
  private failure: Error | null = null;
  private readonly pipe: Pipe;

  constructor(pipe: Pipe, kind: StreamKind) {
    this.pipe = pipe;
    pipe.onData((b) => {
      this.received += b.byteLength;
      if (this.received < this.expected) return;
      const cb = this.doneCb;
      if (cb !== null) {
        this.doneCb = null;
        cb();
      } else if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w.resolve();
      }
    });
    pipe.onClose((err) => {
      this.failure ??= err ?? new Error('stream closed');
      const w = this.waiter;
      this.waiter = null;
      w?.reject(this.failure);
      const cb = this.doneCb;
      this.doneCb = null;
      cb?.(this.failure);
    });
    pipe.write(new Uint8Array([kind === 'sink' ? KIND_SINK : KIND_ECHO])); // control: an echo like any other
  }

  private waitReceived(): Promise<void> {
    if (this.received >= this.expected) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  async bulk(total: number, buf: Uint8Array, stop?: () => boolean): Promise<number> {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(Math.floor(total / 2 ** 32), 0);
    head.writeUInt32BE(total % 2 ** 32, 4);
    this.pipe.write(head);
    let sent = 0;
    while (sent < total) {
      if (stop?.()) return sent;
      const n = Math.min(buf.byteLength, total - sent);
      const ok = this.pipe.write(n === buf.byteLength ? buf : buf.subarray(0, n));
      sent += n;
      if (!ok) await this.pipe.drained();
    }
    this.expected += ACK.byteLength;
    await this.waitReceived();
    return sent;
  }

  roundTrip(payload: Uint8Array): Promise<void> {
    this.expected += payload.byteLength;
    this.pipe.write(payload);
    return this.waitReceived();
  }

  roundTripCb(payload: Uint8Array, done: (err?: Error) => void): void {
    if (this.failure) {
      process.nextTick(done, this.failure);
      return;
    }
    this.expected += payload.byteLength;
    this.doneCb = done;
    this.pipe.write(payload);
  }

  close(): Promise<void> {
    return this.pipe.end();
  }
}

/** Bulk payload octets counted by every {@link ServerProtocol} of this process. */
export const received = { octets: 0 };

/** Sum of `bytesRead` over sockets, the closed ones included. */
export class WireMeter {
  private readonly open = new Set<{ bytesRead: number }>();
  private closed = 0;

  /** Count what `socket` reads from now until it closes. */
  add(socket: { bytesRead: number; once(event: 'close', cb: () => void): unknown }): void {
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.closed += socket.bytesRead;
    });
  }

  get total(): number {
    let n = this.closed;
    for (const s of this.open) n += s.bytesRead;
    return n;
  }
}

/** Server side of the protocol for one stream: feed it every chunk received. */
export class ServerProtocol {
  private kind = 0;
  private headLen = 0;
  private remaining = 0;
  private readonly head = Buffer.alloc(8);
  /** Octets of bulk payload counted. */
  counted = 0;
  private readonly send: (b: Uint8Array) => void;

  constructor(send: (b: Uint8Array) => void) {
    this.send = send;
  }

  push(chunk: Uint8Array): void {
    let off = 0;
    const len = chunk.byteLength;
    while (off < len) {
      if (this.kind === 0) {
        this.kind = chunk[off++] as number;
        continue;
      }
      if (this.kind === KIND_ECHO) {
        this.send(off === 0 ? chunk : chunk.subarray(off));
        return;
      }
      if (this.kind !== KIND_SINK) throw new Error(`unknown stream kind ${this.kind}`);
      if (this.headLen < 8) {
        this.head[this.headLen++] = chunk[off++] as number;
        if (this.headLen === 8) {
          this.remaining = this.head.readUInt32BE(0) * 2 ** 32 + this.head.readUInt32BE(4);
          if (this.remaining === 0) this.send(ACK);
        }
        continue;
      }
      const n = Math.min(this.remaining, len - off);
      this.remaining -= n;
      this.counted += n;
      received.octets += n;
      off += n;
      if (n > 0 && this.remaining === 0) this.send(ACK);
      if (this.remaining === 0) return; // anything after a complete upload is ignored
    }
  }
}
