/**
 * What the inbound and outbound data paths share: their options, stream
 * accounting, rate buckets and a bounded TCP connect.
 *
 * @module
 */
import net from 'node:net';
import { BeepError, ErrorCodes } from '../../errors.js';
import type { SessionLimits } from '../../channels/index.js';
import type { DataPathStats } from '../dataplane.js';
import { TokenBucket } from './bucket.js';
import type { BridgeHooks, StreamBridge } from './bridge.js';
import type { HostPort, PortRange } from './ports.js';
import { DATA_LIMITS } from './wire.js';
import { CONNECTIONS_CEILING, NUM_CONN_CEILING } from '../limits.js';

/** TLS settings of data sessions (always TLS-PSK with the uid-derived key). */
export interface DataTlsOptions {
  /** Lowest TLS version accepted (default `TLSv1.3`; `TLSv1.2` allows the AEAD PSK suites). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Milliseconds from TCP accept/connect until TLS must be in place (default 10000). */
  handshakeTimeout?: number;
}

/** Resolved settings a data path runs with. */
export interface PathSettings {
  /** Address listeners bind to. */
  host: string;
  /** Address put in `listeners` (default: `host`). */
  advertiseHost: string;
  portRange: PortRange;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  handshakeTimeout: number;
  /** Limits of the data sessions. */
  limits: SessionLimits;
  /** TCP connections an outbound path stripes over unless its spec says (default 1). */
  connections: number;
  /** Milliseconds allowed for a TCP connect (producer application, remote receiver). */
  connectTimeout: number;
  /** Diagnostics: handler failures, refused peers, lost sessions. */
  report: (err: unknown) => void;
}

/** The rate buckets of a path: one per direction, shared by all its streams and connections. */
export interface DirectionBuckets {
  toProducer: TokenBucket | undefined;
  toConsumer: TokenBucket | undefined;
}

/** Buckets for `rate` octets per second in each direction (none when undefined). */
export function bucketsFor(rate: number | undefined): DirectionBuckets {
  if (rate === undefined) return { toProducer: undefined, toConsumer: undefined };
  return { toProducer: new TokenBucket(rate), toConsumer: new TokenBucket(rate) };
}

/** Most application connections per path: {@link NUM_CONN_CEILING} (`../limits.ts` says why). */
export const MAX_NUM_CONN = NUM_CONN_CEILING;

/** Most TCP connections one outbound path stripes its channels over: {@link CONNECTIONS_CEILING} (`../limits.ts` says why). */
export const MAX_CONNECTIONS = CONNECTIONS_CEILING;

/**
 * Validate striping (`connections`: TCP connections per outbound path),
 * whether given per path or as a data server's default. The one check of it.
 */
export function checkConnections(connections: number | undefined): void {
  if (connections === undefined) return;
  if (!Number.isInteger(connections) || connections < 1 || connections > MAX_CONNECTIONS) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `connections must be an integer from 1 to ${MAX_CONNECTIONS}, got ${connections}`);
  }
}

/**
 * Validate what a path spec carries: `numConn` (application connections,
 * 1–{@link MAX_NUM_CONN}), `rate`, and `connections` (striping,
 * 1–{@link MAX_CONNECTIONS}; a path never opens more connections than
 * `numConn`). Throws a {@link BeepError} `BEEP_ERR_INVALID_ARGUMENT` naming
 * the field. Every data path and the data server check here and nowhere else.
 */
export function checkSpec(spec: { uid: string; numConn: number; rate?: number | undefined; connections?: number | undefined }): void {
  if (!Number.isInteger(spec.numConn) || spec.numConn < 1 || spec.numConn > MAX_NUM_CONN) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `numConn must be an integer from 1 to ${MAX_NUM_CONN}, got ${spec.numConn}`);
  }
  if (spec.rate !== undefined && !(Number.isFinite(spec.rate) && spec.rate > 0)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `rate must be a positive number of octets per second, got ${spec.rate}`);
  }
  checkConnections(spec.connections);
}

/** Limits of data sessions: {@link DATA_LIMITS} under the caller's. */
export function dataLimits(limits: SessionLimits | undefined): SessionLimits {
  return { ...DATA_LIMITS, ...(limits ?? {}) };
}

/** Statistics kept by a path, plus the hooks its bridges report to. */
export class StreamStats {
  /** Application connections proxied so far. */
  connections = 0;
  /** Application connections open now. */
  open = 0;
  /** Octets carried towards the producer application. */
  bytesToProducer = 0;
  /** Octets carried towards the consumer application. */
  bytesToConsumer = 0;

  /** A snapshot in the contract's shape. */
  snapshot(): DataPathStats {
    return { connections: this.connections, open: this.open, bytesToProducer: this.bytesToProducer, bytesToConsumer: this.bytesToConsumer };
  }

  /**
   * Hooks for one bridge on the given side: the outbound sender sends towards
   * the producer, the inbound receiver towards the consumer.
   */
  hooks(side: 'inbound' | 'outbound', notifyReset: (b: StreamBridge) => boolean, done: (b: StreamBridge) => void): BridgeHooks {
    this.connections++;
    this.open++;
    const toProducer = (n: number): void => {
      this.bytesToProducer += n;
    };
    const toConsumer = (n: number): void => {
      this.bytesToConsumer += n;
    };
    return {
      sent: side === 'outbound' ? toProducer : toConsumer,
      received: side === 'outbound' ? toConsumer : toProducer,
      notifyReset,
      done: (b) => {
        this.open--;
        done(b);
      },
    };
  }
}

/**
 * Open a TCP connection with half-close allowed, paused (nothing is read
 * until a bridge pumps it), `TCP_NODELAY` on. Rejects after `timeoutMs`.
 * The socket keeps a no-op `error` listener so a failure before its bridge
 * exists never crashes the process.
 */
export function connectTcp(to: HostPort, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: to.host, port: to.port, allowHalfOpen: true });
    socket.on('error', () => undefined);
    socket.pause();
    const timer = setTimeout(() => fail(new Error(`connect to ${to.host}:${to.port} timed out after ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.off('connect', ok);
      socket.destroy();
      reject(err);
    };
    const ok = (): void => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.setNoDelay(true);
      resolve(socket);
    };
    socket.once('connect', ok);
    socket.once('error', fail);
  });
}

/** Wait for `p` at most `ms` milliseconds; never rejects. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
