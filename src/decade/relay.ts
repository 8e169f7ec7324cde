/**
 * Server to server (draft-ietf-decade-arch-03 §7; spec/decade.md §8): a
 * DECADE server fetches an object from another DECADE server — the origin —
 * for a client that holds a token for it there, stores it, and serves the
 * client's GET from the octets as they arrive. This module holds the origins
 * a server may reach and one pooled session to each.
 *
 * @module
 */
import type { ConnectOptions } from '../channels/index.js';
import type { TlsClientOptions } from '../profiles/index.js';
import { DecadeClient } from './client.js';
import { DecadeError } from './errors.js';

/** Options of a server's fetching from other DECADE servers. */
export interface RelayOptions {
  /**
   * Origins this server may fetch from, as `host:port` (exactly as clients
   * name them in `DECADE-Source`). Any other origin is refused with
   * `PERMISSION_DENIED`: a server never dials an address a client made up.
   */
  allow: readonly string[];
  /** TLS towards the origins (tokens are secrets: use it across any untrusted network). */
  tls?: TlsClientOptions;
  /** Other `connect` options towards the origins (limits, timeouts). */
  connect?: Omit<ConnectOptions, 'host' | 'port'>;
}

/** `host:port` / `[v6]:port` → its parts, or a `BAD_REQUEST`. */
export function parseOrigin(origin: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(origin);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new DecadeError('BAD_REQUEST', 'DECADE-Source must be host:port');
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Sessions to the allowed origins, one each, opened on first use and reused. */
export class OriginPool {
  private readonly allowed: Set<string>;
  private readonly sessions = new Map<string, Promise<DecadeClient>>();
  private closed = false;

  constructor(private readonly options: RelayOptions) {
    for (const o of options.allow) parseOrigin(o);
    this.allowed = new Set(options.allow);
  }

  /** A session to `origin` (refused unless allowed). */
  client(origin: string): Promise<DecadeClient> {
    if (this.closed) return Promise.reject(new DecadeError('NOT_AVAILABLE', 'the server is shutting down'));
    if (!this.allowed.has(origin)) return Promise.reject(new DecadeError('PERMISSION_DENIED', 'this server does not fetch from that origin'));
    let p = this.sessions.get(origin);
    if (p === undefined) {
      const { host, port } = parseOrigin(origin);
      const made: Promise<DecadeClient> = DecadeClient.connect({ ...this.options.connect, host, port, ...(this.options.tls ? { tls: this.options.tls } : {}) }).catch((err: unknown) => {
        throw err instanceof DecadeError ? err : new DecadeError('NOT_AVAILABLE', 'the origin server cannot be reached', { cause: err });
      });
      p = made;
      this.sessions.set(origin, made);
      // A failed or closed session is forgotten: the next fetch dials again.
      const forget = (): void => {
        if (this.sessions.get(origin) === made) this.sessions.delete(origin);
      };
      made.then(
        (c) => {
          c.session.once('close', forget);
          // A fetch starts with its request, not with a channel start.
          c.keepSpare();
        },
        () => forget(),
      );
    }
    return p;
  }

  /** Close every session. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(), () => undefined)));
  }
}
