/**
 * The SciStream roles as one process model: an S2CS that owns its S2DS
 * (`startS2cs`), and the TLS-tuned, SASL-authenticated control connection an
 * S2UC or an application controller opens to it (`connectControl`).
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import { createServer, connect, type BeepServer, type Session } from '../channels/session.js';
import type { SessionLimits } from '../channels/types.js';
import { tlsProfile, startTls } from '../profiles/tls.js';
import { saslProfiles, authenticate } from '../profiles/sasl-beep.js';
import {
  AuthFailureLimiter,
  jwksValidator,
  oauthBearerServer,
  plainServer,
  scramSha256Server,
  type SaslClientMechanismFactory,
  type SaslServerMechanismFactory,
  type ScramCredentialStore,
} from '../profiles/sasl/index.js';
import { createControlServer, S2ucClient, type ControlServer, type ControlServerOptions } from './control/index.js';
import { createDataServer, type BeepDataServer, type DataServerOptions } from './data/index.js';

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
  /** BEEP limits of the control sessions. */
  limits?: SessionLimits;
}

/** A running S2CS with its S2DS. */
export interface S2cs {
  readonly server: BeepServer;
  readonly control: ControlServer;
  readonly data: BeepDataServer;
  /** `host:port` of the control listener. */
  readonly address: string;
  /** Release every SciStream session, free every port and stop listening. */
  close(): Promise<void>;
}

/** Start an S2CS (control server) that owns its S2DS (data server). */
export async function startS2cs(options: S2csOptions): Promise<S2cs> {
  const host = options.host ?? '127.0.0.1';
  const mechanisms: SaslServerMechanismFactory[] = [];
  if (options.users) mechanisms.push(scramSha256Server({ store: options.users }), plainServer({ store: options.users }));
  if (options.jwks) mechanisms.push(oauthBearerServer({ validateToken: jwksValidator(options.jwks) }));
  if (mechanisms.length === 0) throw new Error('an S2CS needs users or a JWKS to authenticate its clients');
  const data = createDataServer({ host, ...options.data });
  const control = createControlServer({ ...options.control, dataServer: data });
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
    await startTls(session, {
      ...(options.ca ? { ca: options.ca } : {}),
      serverName: options.serverName ?? options.host,
    });
    await authenticate(session, options.sasl);
  } catch (err) {
    session.destroy();
    throw err;
  }
  return new S2ucClient(session);
}
