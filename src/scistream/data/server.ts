/**
 * The SciStream data server (S2DS) over BEEP: {@link createDataServer} gives
 * the control plane a {@link DataServer} that opens inbound (producer side)
 * and outbound (consumer side) data paths and frees them again.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../../errors.js';
import type { SessionLimits } from '../../channels/index.js';
import type { DataPath, DataServer, InboundSpec, OutboundSpec } from '../dataplane.js';
import { checkConnections, type DataTlsOptions, type PathSettings } from './common.js';
import { InboundPath } from './inbound.js';
import { OutboundPath } from './outbound.js';
import { checkPortRange, type PortRange } from './ports.js';
import { CONNECTIONS_CEILING, NUM_CONN_CEILING, resolveSciStreamLimits, type SciStreamLimits } from '../limits.js';

/** Options of {@link createDataServer}. */
export interface DataServerOptions {
  /** Address every listener binds to (inbound: for the remote S2DS; outbound: for the consumer application). */
  host: string;
  /** Address written into `listeners` (default `host`), e.g. a public name when binding 0.0.0.0. */
  advertiseHost?: string;
  /** Ports to listen on, both inclusive; `[0, 0]` (default) lets the system pick. */
  portRange?: PortRange;
  /** TLS-PSK settings of the data sessions. */
  tls?: DataTlsOptions;
  /** BEEP limits of the data sessions, over `DATA_LIMITS`. */
  limits?: SessionLimits;
  /**
   * TCP connections an outbound path stripes its channels over when its spec
   * does not say (`OutboundSpec.connections`): 1–16, default 1, never more
   * than the path's `numConn`. This is how an S2CS configuration turns
   * striping on (`startS2cs({ data: { connections: 4 } })`): its control
   * server opens outbound paths without a `connections` of their own.
   */
  connections?: number;
  /** Milliseconds allowed to connect to a producer application or a remote receiver (default 10000). */
  connectTimeout?: number;
  /** Diagnostics (refused handshakes, lost sessions, unreachable targets); default: ignore. */
  onError?: (err: unknown) => void;
  /**
   * The S2CS's limits (`maxNumConn`, `maxConnections`), the same object its
   * control registry enforces (`startS2cs` passes it): a path asking for more
   * is refused with `BEEP_ERR_LIMIT` naming the limit. Default: the data
   * plane's ceilings (`maxNumConn` {@link NUM_CONN_CEILING}, `maxConnections`
   * {@link CONNECTIONS_CEILING}).
   */
  sciStreamLimits?: Partial<SciStreamLimits>;
}

/** A {@link DataServer} that also lists its open paths. */
export class BeepDataServer implements DataServer {
  private readonly settings: PathSettings;
  /** The limits paths are checked against (validated once). */
  readonly limits: Readonly<SciStreamLimits>;
  private readonly open = new Set<DataPath>();
  private closing = false;

  constructor(options: DataServerOptions) {
    if (typeof options?.host !== 'string' || options.host.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'host is required');
    const handshakeTimeout = options.tls?.handshakeTimeout ?? 10_000;
    const connectTimeout = options.connectTimeout ?? 10_000;
    if (!(handshakeTimeout > 0) || !(connectTimeout > 0)) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'timeouts must be positive');
    checkConnections(options.connections);
    this.limits = resolveSciStreamLimits({ maxNumConn: NUM_CONN_CEILING, ...options.sciStreamLimits });
    const report = options.onError ?? (() => undefined);
    this.settings = {
      host: options.host,
      advertiseHost: options.advertiseHost ?? options.host,
      portRange: checkPortRange(options.portRange),
      minVersion: options.tls?.minVersion ?? 'TLSv1.3',
      handshakeTimeout,
      limits: options.limits ?? {},
      connections: options.connections ?? 1,
      connectTimeout,
      report: (err) => {
        try {
          report(err);
        } catch {
          /* a diagnostic hook never breaks the data path */
        }
      },
    };
  }

  /** Paths open now. */
  get paths(): readonly DataPath[] {
    return [...this.open];
  }

  private track<T extends DataPath>(path: T): T {
    this.open.add(path);
    void path.closed.then(() => this.open.delete(path));
    return path;
  }

  /** Refuse a path beyond this server's limits (the registry refuses such a REQUEST first; this guards direct callers). */
  private checkLimits(spec: { numConn: number; connections?: number | undefined }): void {
    // Values beyond the ceilings are not limits but invalid arguments: checkSpec names them.
    if (Number.isInteger(spec.numConn) && spec.numConn <= NUM_CONN_CEILING && spec.numConn > this.limits.maxNumConn) {
      throw new BeepError(ErrorCodes.LIMIT, `numConn ${spec.numConn} exceeds this server's limit of ${this.limits.maxNumConn}`);
    }
    if (spec.connections !== undefined && Number.isInteger(spec.connections) && spec.connections <= CONNECTIONS_CEILING && spec.connections > this.limits.maxConnections) {
      throw new BeepError(ErrorCodes.LIMIT, `connections ${spec.connections} exceeds this server's limit of ${this.limits.maxConnections}`);
    }
  }

  /** Producer side: listen for the remote outbound sender; streams go to `spec.targets`. */
  async openInbound(spec: InboundSpec): Promise<DataPath> {
    if (this.closing) throw new BeepError(ErrorCodes.INVALID_STATE, 'data server closed');
    this.checkLimits(spec);
    return this.track(await InboundPath.open(spec, this.settings));
  }

  /** Consumer side: connect to `spec.remotes` and listen for the consumer application. */
  async openOutbound(spec: OutboundSpec): Promise<DataPath> {
    if (this.closing) throw new BeepError(ErrorCodes.INVALID_STATE, 'data server closed');
    this.checkLimits(spec);
    return this.track(await OutboundPath.open(spec, this.settings));
  }

  /** Close every path; no new ones are opened afterwards. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.open].map((p) => p.close()));
  }
}

/**
 * Create a SciStream data server speaking the BEEP data profile
 * (`spec/scistream-data.md`).
 *
 * @example
 * ```ts
 * const ds = createDataServer({ host: '127.0.0.1', portRange: [5100, 5199] });
 * const inbound = await ds.openInbound({ uid, targets: ['127.0.0.1:7000'], numConn: 4 });
 * // … give inbound.listeners to the consumer side, which calls
 * // ds2.openOutbound({ uid, remotes: inbound.listeners, numConn: 4 }) …
 * await inbound.close();
 * ```
 */
export function createDataServer(options: DataServerOptions): BeepDataServer {
  return new BeepDataServer(options);
}
