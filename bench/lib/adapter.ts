/**
 * What every implementation under test (beepstream and each baseline) provides,
 * so each case is written once: a server handle on one side, connections and
 * streams ("channels") on the other.
 *
 * @module
 */

/**
 * What a stream is opened for: `sink` counts a bulk upload, `echo` sends every
 * octet back, `control` is an echo that the implementation may prioritise over
 * bulk traffic if it can (beepstream: a `control: true` profile; the baselines
 * have no such notion and treat it as `echo`). `slow` is a sink whose reader
 * consumes {@link SLOW_READ_RATE} octets per second (beepstream only: the
 * slow-reader case).
 */
export type StreamKind = 'sink' | 'echo' | 'control' | 'slow';

/** The pace of the `slow` sink: octets per second its reader consumes (1 MB/s). */
export const SLOW_READ_RATE = 1_000_000;

/** One stream / channel of a connection, client side. */
export interface BenchStream {
  /**
   * Upload `total` octets, written from `buf` over and over (never a new
   * allocation per chunk) with backpressure, and wait for the peer to confirm
   * it counted them. When `stop()` turns true the upload ends early; it then
   * resolves with the octets written (a baseline may not wait for the
   * confirmation of a shortened upload).
   */
  bulk(total: number, buf: Uint8Array, stop?: () => boolean): Promise<number>;
  /** Send `payload` and wait until as many octets came back (one round trip). */
  roundTrip(payload: Uint8Array): Promise<void>;
  /**
   * The same round trip without a promise: `done` is called once, with no
   * argument when as many octets came back, with the error that ended the
   * stream otherwise; never before this returns. The round-trip cases drive
   * every implementation through this (`lib/rtloop.ts`), so the driver
   * allocates nothing per round trip of its own.
   */
  roundTripCb(payload: Uint8Array, done: (err?: Error) => void): void;
  /** Close the stream gracefully and wait until it is gone. */
  close(): Promise<void>;
}

/** A connection (a session) from the client. */
export interface BenchConn {
  /** Open a stream on this connection (a fresh connection where the transport cannot multiplex). */
  open(kind: StreamKind): Promise<BenchStream>;
  /** Tear the connection down (no graceful wait). */
  destroy(): void;
  /** beepstream: the session's public `session.stats` counters now (a copy). */
  stats?(): Record<string, number>;
}

/** Client side of an implementation. */
export interface ClientImpl {
  connect(port: number): Promise<BenchConn>;
}

/** What a server can tell about itself. */
export interface ServerCounts {
  sessions: number;
  streams: number;
  /** Bulk (sink) payload octets received and counted since the process started. */
  received: number;
  /** Octets read off the TCP connections since the process started (framing, TLS and all). */
  wire: number;
  /** beepstream: the public `session.stats` counters summed over its sessions now. */
  stats?: Record<string, number>;
  /**
   * beepstream: payload octets received and not yet read by the profiles now,
   * over all sessions, and where the figure comes from: `flow` (the library's
   * per-channel flow snapshot) or `estimate` (`octetsIn` minus frame overhead
   * minus the octets the sinks counted).
   */
  buffered?: { octets: number; source: 'flow' | 'estimate' };
  /** beepstream with a flow snapshot: the largest `channel.flow.peakBuffered` of the open `slow` sink channels. */
  slowPeakBuffered?: number;
}

/** Server side of an implementation, listening on 127.0.0.1. */
export interface ServerImpl {
  readonly port: number;
  /** Sessions (connections) and streams/channels open right now, and bulk octets received so far. */
  counts(): ServerCounts;
  close(): Promise<void>;
}

/** Options every implementation receives (beepstream reads its limits from here). */
export interface ImplOptions {
  /** beepstream session limits (`receiveWindow`, `maxSendFrame`, …). */
  limits: Record<string, number>;
  /** Raise per-session stream limits (the scale cases open 10,000). */
  manyStreams: boolean;
  /** TLS material for the TLS baselines. */
  tls?: { key: string; cert: string; psk: string };
}

/** An implementation: its name in the results and its two sides. */
export interface Impl {
  readonly name: string;
  /** Can one connection carry many streams (false: one TCP connection per stream). */
  readonly multiplexed: boolean;
  server(options: ImplOptions): Promise<ServerImpl>;
  client(options: ImplOptions): ClientImpl;
}
