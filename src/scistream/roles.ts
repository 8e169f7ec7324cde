/**
 * The SciStream roles as one process model: an S2CS that owns its S2DS
 * (`startS2cs`), and the TLS-tuned, SASL-authenticated control connection an
 * S2UC or an application controller opens to it (`connectControl`).
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import { createServer, connect, type BeepServer, type Session, type SessionLimits } from '../channels/index.js';
import { tlsProfile, startTls, TLS_URI, saslProfiles, authenticate, saslUri, SASL_URI_PREFIX, AuthFailureLimiter, jwksValidator, oauthBearerServer, plainServer, scramSha256Server, type SaslClientMechanismFactory, type SaslServerMechanismFactory, type ScramCredentialStore } from '../profiles/index.js';
import { BeepError, ErrorCodes } from '../errors.js';
import { createControlServer, S2ucClient, type ControlServer, type ControlServerOptions } from './control/index.js';
import { createDataServer, sciStreamLimitsOf, type BeepDataServer, type DataServerOptions, type SciStreamLimits } from './data/index.js';

/** Options of {@link startS2cs}. */
export interface S2csOptions {
  /** Control listener address (default 127.0.0.1) and port (default 5000; 0 picks one). */
  host?: string;
  port?: number;
  /** TLS certificate and key (PEM) of the control listener: required, control sessions are TLS-tuned. */
  cert: string | Buffer;
  key: string | Buffer;
  /** SCRAM-SHA-256 (and PLAIN over TLS) credentials: a users file's map or any store. */
  users?: ScramCredentialStore;
  /** OAUTHBEARER: JWTs verified against this JWKS (file, URL or object). */
  jwks?: { jwks: string; issuer: string; audience: string };
  /** The data server: bind address, advertised address, port range, limits. */
  data?: Partial<DataServerOptions>;
  /** Control-plane policy (timeouts, quotas, …). */
  control?: Omit<ControlServerOptions, 'dataServer'>;
  /**
   * What a session may ask for (`num_conn`, striping, rate, sessions): over
   * `control.limits` and its shorthands (`control.maxConnPerSession`…),
   * validated once here and given to both the control registry and the data
   * server, so a client is refused with the limits this server enforces.
   */
  sciStreamLimits?: Partial<SciStreamLimits>;
  /** BEEP limits of the control sessions. */
  limits?: SessionLimits;
  /**
   * Failures the data server reports (a producer application refusing a
   * connection, an unreachable remote receiver, a data session lost…), with
   * the endpoint and errno when known and the tags of the sessions concerned.
   * The draft (§5) says these SHOULD be logged. Also counted in
   * {@link S2cs.dataErrors} and shown in the sessions' STATUS.
   */
  onDataError?: (report: DataErrorReport) => void;
}

/** A data-plane failure as the S2CS reports it (see {@link S2csOptions.onDataError}). */
export interface DataErrorReport {
  /** `host:port` the failure concerns, when known (e.g. the producer application). */
  endpoint?: string;
  /** The system error code (`ECONNREFUSED`, `ETIMEDOUT`…) or beepstream code (`BEEP_ERR_…`), when known. */
  errno?: string;
  /** Tags (`sessionTag(uid)`) of the sessions it was counted against. */
  tags: string[];
  /** The error as the data server reported it. */
  error: unknown;
}

type ErrLike = { code?: unknown; address?: unknown; port?: unknown; endpoint?: unknown; cause?: unknown };

/** Endpoint and errno of a data-server error, from it or its causes. */
export function describeDataError(err: unknown): { endpoint?: string; errno?: string } {
  const out: { endpoint?: string; errno?: string } = {};
  for (let e: unknown = err, i = 0; e !== null && typeof e === 'object' && i < 5; e = (e as ErrLike).cause, i++) {
    const x = e as ErrLike;
    if (out.errno === undefined && typeof x.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(x.code)) out.errno = x.code;
    if (out.endpoint === undefined) {
      if (typeof x.endpoint === 'string') out.endpoint = x.endpoint;
      else if (typeof x.address === 'string' && typeof x.port === 'number') out.endpoint = x.address.includes(':') ? `[${x.address}]:${x.port}` : `${x.address}:${x.port}`;
    }
  }
  return out;
}

/** A running S2CS with its S2DS. */
export interface S2cs {
  readonly server: BeepServer;
  readonly control: ControlServer;
  readonly data: BeepDataServer;
  /** `host:port` of the control listener. */
  readonly address: string;
  /** The SciStream limits in force (control registry and data server alike). */
  readonly limits: Readonly<SciStreamLimits>;
  /** Data-plane failures reported so far, by errno (`other` when none is known): for metrics. */
  readonly dataErrors: ReadonlyMap<string, number>;
  /** Release every SciStream session, free every port and stop listening. */
  close(): Promise<void>;
}

/** Start an S2CS (control server) that owns its S2DS (data server). */
export async function startS2cs(options: S2csOptions): Promise<S2cs> {
  const host = options.host ?? '127.0.0.1';
  const mechanisms: SaslServerMechanismFactory[] = [];
  if (options.users) mechanisms.push(scramSha256Server({ store: options.users }), plainServer({ store: options.users }));
  if (options.jwks) mechanisms.push(oauthBearerServer({ validateToken: jwksValidator(options.jwks) }));
  if (mechanisms.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'an S2CS needs users or a JWKS to authenticate its clients');
  // The one validation of the SciStream limits, before anything listens.
  const limits = sciStreamLimitsOf({ ...options.control, limits: { ...options.control?.limits, ...options.sciStreamLimits } });
  const dataErrors = new Map<string, number>();
  // Declared before the data server so its reports can reach the registry.
  // eslint-disable-next-line prefer-const
  let control: ControlServer | undefined;
  const callerOnError = options.data?.onError;
  const data = createDataServer({
    host,
    ...options.data,
    sciStreamLimits: limits,
    onError: (err) => {
      const d = describeDataError(err);
      const key = d.errno ?? 'other';
      dataErrors.set(key, (dataErrors.get(key) ?? 0) + 1);
      const tags = control ? control.registry.noteDataError(d) : [];
      callerOnError?.(err);
      options.onDataError?.({ ...d, tags, error: err });
    },
  });
  control = createControlServer({ ...options.control, limits, dataServer: data });
  const server = createServer({
    requireTls: true,
    profiles: [
      tlsProfile({ cert: options.cert, key: options.key }),
      ...saslProfiles({ mechanisms, limiter: new AuthFailureLimiter() }),
      control.profile,
    ],
    ...(options.limits ? { limits: options.limits } : {}),
  });
  let addr: AddressInfo;
  try {
    addr = await server.listen(options.port ?? 5000, host);
  } catch (err) {
    await data.close();
    throw err;
  }
  const address = addr.address.includes(':') ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
  return {
    server,
    control,
    data,
    address,
    limits,
    dataErrors,
    async close() {
      await control.close();
      await data.close();
      await server.close(2000);
    },
  };
}

/** Options of {@link connectControl}. */
export interface ControlConnectOptions {
  host: string;
  port: number;
  /** CA the S2CS certificate must chain to, and the name it must carry. */
  ca?: string | Buffer;
  serverName?: string;
  /** How to authenticate (e.g. `scramSha256Client({ username, password })`). */
  sasl: SaslClientMechanismFactory;
  timeout?: number;
}

/**
 * Open a control connection to an S2CS: connect, tune with TLS, authenticate
 * with SASL, and return an {@link S2ucClient} over it.
 */
export async function connectControl(options: ControlConnectOptions): Promise<S2ucClient> {
  const session: Session = await connect({ host: options.host, port: options.port, ...(options.timeout ? { timeout: options.timeout } : {}) });
  try {
    // Say what is missing rather than "550 all requested profiles are unsupported".
    if (!session.peerProfiles.includes(TLS_URI)) {
      throw new BeepError(ErrorCodes.START_REFUSED, `${options.host}:${options.port} does not offer TLS (its greeting lists no ${TLS_URI}): not an S2CS?`);
    }
    await startTls(session, {
      ...(options.ca ? { ca: options.ca } : {}),
      serverName: options.serverName ?? options.host,
    });
    if (!session.peerProfiles.includes(saslUri(options.sasl.name))) {
      const offered = session.peerProfiles.filter((p) => p.startsWith(SASL_URI_PREFIX)).map((p) => p.slice(SASL_URI_PREFIX.length));
      throw new BeepError(ErrorCodes.AUTH, `${options.host}:${options.port} does not offer SASL ${options.sasl.name}${offered.length ? ` (it offers ${offered.join(', ')})` : ''}`);
    }
    await authenticate(session, options.sasl);
  } catch (err) {
    session.destroy();
    throw err;
  }
  return new S2ucClient(session);
}
