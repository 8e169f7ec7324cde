/**
 * Helpers of the data-plane tests: deterministic data generated chunk by
 * chunk (never all in memory), real TCP applications at both ends, a data
 * path pair over loopback, and bounded waits.
 */
import net from 'node:net';
import { Buffer } from 'node:buffer';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { createDataServer, type DataServerOptions } from '../../../src/scistream/data/index.js';
import type { DataPath, InboundSpec, OutboundSpec } from '../../../src/scistream/dataplane.js';

export const MiB = 1024 * 1024;

// Waits are bounds, not measurements: never under 30 s, so a loaded machine (two busy cores,
// test files running at once) does not fail a test whose step takes 50 ms when quiet.
const MIN_BOUND_MS = 30_000;

/** Reject with `what` unless `p` settles within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = Math.max(ms, MIN_BOUND_MS);
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${bound} ms: ${what}`)), bound)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolve after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `test` every 10 ms until true, at most `ms`. */
export async function until(test: () => boolean, ms: number, what: string): Promise<void> {
  const bound = Math.max(ms, MIN_BOUND_MS);
  const end = Date.now() + bound;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out after ${bound} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A fresh session uid (128 bits from a CSPRNG, 32 hex digits). */
export const newUid = (): string => randomBytes(16).toString('hex');

const ZEROS = Buffer.alloc(256 * 1024);

/**
 * Deterministic pseudo-random octets: the AES-128-CTR keystream of a key
 * derived from `seed`, produced one chunk at a time.
 */
export class DataGenerator {
  private readonly cipher;
  remaining: number;

  constructor(seed: string, total: number) {
    const key = createHash('sha256').update(seed).digest().subarray(0, 16);
    this.cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
    this.remaining = total;
  }

  /** The next chunk (at most `max` octets), or null at the end. */
  next(max = 64 * 1024): Buffer | null {
    if (this.remaining <= 0) return null;
    const n = Math.min(max, this.remaining, ZEROS.length);
    this.remaining -= n;
    return this.cipher.update(ZEROS.subarray(0, n));
  }
}

/** What a writer did. */
export interface WriteResult {
  bytes: number;
  sha256: string;
  /** How many times write() returned false (backpressure). */
  backpressure: number;
  /** Milliseconds spent waiting for 'drain'. */
  waitedMs: number;
}

/**
 * Write `total` generated octets to `socket`, honouring backpressure, then
 * end it (unless `end` is false). Resolves with the SHA-256 of what was written.
 */
export function writeData(socket: net.Socket, seed: string, total: number, options: { end?: boolean; chunk?: number; onProgress?: (n: number) => void } = {}): Promise<WriteResult> {
  const gen = new DataGenerator(seed, total);
  const hash = createHash('sha256');
  let bytes = 0;
  let backpressure = 0;
  let waitedMs = 0;
  let since = 0;
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    const onClose = (): void => reject(new Error(`socket closed after ${bytes} of ${total} octets written`));
    socket.once('close', onClose);
    const pumpMore = (): void => {
      if (since > 0) waitedMs += performance.now() - since;
      since = 0;
      for (;;) {
        const c = gen.next(options.chunk);
        if (c === null) {
          socket.off('close', onClose);
          socket.off('error', onError);
          if (options.end !== false) socket.end();
          resolve({ bytes, sha256: hash.digest('hex'), backpressure, waitedMs });
          return;
        }
        hash.update(c);
        bytes += c.length;
        options.onProgress?.(bytes);
        if (!socket.write(c)) {
          backpressure++;
          since = performance.now();
          socket.once('drain', pumpMore);
          return;
        }
      }
    };
    pumpMore();
  });
}

/** What a reader got. */
export interface ReadResult {
  bytes: number;
  sha256: string;
}

/** Read `socket` to its end, hashing; rejects on error or a close without end. */
export function readAll(socket: net.Socket, onData?: (n: number) => void): Promise<ReadResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      onData?.(bytes);
    });
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed without end after ${bytes} octets`)));
  });
}

/** A producer application: a real TCP server (half-open allowed). */
export interface ProducerApp {
  server: net.Server;
  /** `host:port` to give as a target. */
  address: string;
  port: number;
  /** Every connection accepted so far. */
  sockets: net.Socket[];
  close(): Promise<void>;
}

/** Start a producer application calling `onConnection` for each accepted connection. */
export async function producerApp(onConnection: (socket: net.Socket, n: number) => void = () => undefined): Promise<ProducerApp> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    sockets.push(s);
    onConnection(s, sockets.length - 1);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Connect a consumer application to `hostport` (half-open allowed). */
export function consumerApp(hostport: string): Promise<net.Socket> {
  const i = hostport.lastIndexOf(':');
  const host = hostport.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostport.slice(i + 1));
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true });
    // Tests listen for the errors they expect; none may crash the worker.
    s.on('error', () => undefined);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** An inbound and an outbound path of one session, on two data servers (one per facility). */
export interface PathPair {
  inbound: DataPath;
  outbound: DataPath;
  errors: unknown[];
  close(): Promise<void>;
}

/** Open the producer side, then the consumer side pointing at it; closed at teardown. */
export async function openPair(
  t: ExecutionContext | null,
  inbound: Omit<InboundSpec, 'uid'> & { uid?: string },
  outbound: Omit<OutboundSpec, 'uid' | 'remotes'> & { uid?: string },
  options: Partial<DataServerOptions> = {},
): Promise<PathPair> {
  const uid = inbound.uid ?? newUid();
  const errors: unknown[] = [];
  const producerSide = createDataServer({ host: '127.0.0.1', onError: (e) => errors.push(e), ...options });
  const consumerSide = createDataServer({ host: '127.0.0.1', onError: (e) => errors.push(e), ...options });
  const inPath = await producerSide.openInbound({ ...inbound, uid });
  let outPath: DataPath;
  try {
    outPath = await consumerSide.openOutbound({ ...outbound, uid: outbound.uid ?? uid, remotes: inPath.listeners });
  } catch (err) {
    await inPath.close();
    throw err;
  }
  const close = async (): Promise<void> => {
    await Promise.all([consumerSide.close(), producerSide.close()]);
  };
  t?.teardown(close);
  return { inbound: inPath, outbound: outPath, errors, close };
}
