/**
 * The contract between the SciStream control plane (S2CS) and its data
 * server (S2DS): the control server asks the data server to open the data
 * path of one SciStream session and to close it again.
 *
 * Direction (draft §2): the producer application listens; the consumer
 * application connects. Consumer app → outbound sender (consumer S2DS) →
 * BEEP over TLS-PSK → inbound receiver (producer S2DS) → producer app.
 *
 * @module
 */

/** Statistics of one data path, for STATUS replies and progress lines. */
export interface DataPathStats {
  /** Application connections proxied so far. */
  connections: number;
  /** Application connections open now. */
  open: number;
  /** Octets carried towards the producer application. */
  bytesToProducer: number;
  /** Octets carried towards the consumer application. */
  bytesToConsumer: number;
}

/** An open data path; `close()` frees every listener, socket and BEEP session it holds. */
export interface DataPath {
  /** `host:port` endpoints: inbound — for the remote outbound sender; outbound — for the local consumer app. */
  readonly listeners: readonly string[];
  /** Counters of the path so far. */
  stats(): DataPathStats;
  /** Close the path: stop listening, close every stream and BEEP session it holds. */
  close(): Promise<void>;
  /** Resolves when the path closed (released, failed, or timed out). */
  readonly closed: Promise<void>;
}

/** Parameters of the producer side (inbound receiver). */
export interface InboundSpec {
  /** Session uid: 32 hex characters from a CSPRNG; the data-plane PSK is derived from it. */
  uid: string;
  /** Producer application endpoints (`host:port`), from HELLO's prod_listeners. */
  targets: readonly string[];
  /** Most application connections (the draft's num_conn). */
  numConn: number;
  /** Octets per second for the whole session (token bucket); undefined = unlimited. */
  rate?: number;
}

/** Parameters of the consumer side (outbound sender). */
export interface OutboundSpec {
  uid: string;
  /** The remote inbound receiver's endpoints (from UPDATETARGETS / the producer's RESPONSE). */
  remotes: readonly string[];
  numConn: number;
  rate?: number;
  /**
   * Spread the channels over this many BEEP connections (striping), 1–16,
   * at most `numConn` are opened; default: the data server's `connections`
   * option, else 1.
   */
  connections?: number;
}

/** What an S2CS needs from its data server. */
export interface DataServer {
  /** Open the producer side of a session's data path (the inbound receiver). */
  openInbound(spec: InboundSpec): Promise<DataPath>;
  /** Open the consumer side of a session's data path (the outbound sender). */
  openOutbound(spec: OutboundSpec): Promise<DataPath>;
  /** Close every open path and stop. */
  close(): Promise<void>;
}
