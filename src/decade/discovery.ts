/**
 * Finding a client's DECADE server through DNS (spec/decade.md §10), as
 * flows find their FNAA: a storage provider's domain publishes SRV records
 * `_decade._tcp.DOMAIN` (RFC 2782: lowest priority first, weighted within a
 * priority) and, optionally, TXT records at the same name (RFC 6763 §6
 * strings): `txtvers=1`. A client given `decade://DOMAIN` tries the targets
 * in that order; one given `HOST:PORT` connects there with no lookup.
 *
 * DNS is not authenticated: nothing it says lowers security. TLS is as the
 * caller configures it, and the name a TLS certificate must match is the
 * DOMAIN (not the SRV target) unless the caller sets `tls.serverName`.
 *
 * @module
 */
import { createResolver, DiscoveryError, type DnsResolver, type SrvTarget, type TxtParams } from '../discovery/index.js';
import { BeepError, ErrorCodes } from '../errors.js';
import { DecadeClient, type DecadeConnectOptions } from './client.js';
import { DecadeError } from './errors.js';

// The resolver and its types, for configuring discovery from `beepstream/decade` alone.
export { createResolver, DISCOVERY_CODES, DiscoveryError, type Discovered, type DiscoveryErrorCode, type DnsResolver, type ResolverOptions, type SrvTarget, type TxtParams } from '../discovery/index.js';

/** The SRV service label of a DECADE server: `_decade._tcp.DOMAIN`. */
export const DECADE_SRV_SERVICE = 'decade';

/** A server address as a client gives it: a host and port, or a domain to look up. */
export type DecadeAddress = { host: string; port: number } | { domain: string };

/**
 * Parse `HOST:PORT`, `[IPv6]:PORT` or `decade://DOMAIN` (SRV lookup);
 * `BAD_REQUEST` otherwise.
 */
export function parseDecadeAddress(text: string): DecadeAddress {
  const srv = /^decade:\/\/([A-Za-z0-9._-]{1,253})\/?$/.exec(text);
  if (srv) return { domain: (srv[1] as string).toLowerCase().replace(/\.$/, '') };
  const m = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new DecadeError('BAD_REQUEST', `${JSON.stringify(text.slice(0, 80))} is neither HOST:PORT nor decade://DOMAIN`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Options of {@link resolveDecadeServer}. */
export interface ResolveDecadeOptions {
  /** The DNS resolver (default: the system's servers). */
  resolver?: DnsResolver;
  /** Random source for the SRV weight order (tests). */
  random?: () => number;
}

/** A domain's DECADE servers, in the order to try them. */
export interface ResolvedDecade {
  domain: string;
  /** SRV targets in RFC 2782 order. */
  targets: SrvTarget[];
  /** The TXT parameters (empty when there are none). */
  params: TxtParams;
}

/**
 * Look up `_decade._tcp.DOMAIN` (SRV and TXT, in parallel). Throws
 * {@link DiscoveryError} when DNS has no usable answer, `BAD_REQUEST` for a
 * TXT `txtvers` other than 1.
 */
export async function resolveDecadeServer(domain: string, options: ResolveDecadeOptions = {}): Promise<ResolvedDecade> {
  const resolver = options.resolver ?? createResolver();
  const d = await resolver.discover(DECADE_SRV_SERVICE, 'tcp', domain, options.random);
  const { txtvers } = d.params;
  if (txtvers !== undefined && txtvers !== '1') throw new DecadeError('BAD_REQUEST', `TXT txtvers=${String(txtvers)} at ${d.name} is not 1`);
  return { domain: domain.toLowerCase().replace(/\.$/, ''), targets: d.targets, params: d.params };
}

/** A client connected to the server of an address. */
export interface DecadeConnection {
  client: DecadeClient;
  /** The server connected to. */
  target: { host: string; port: number };
  /** What DNS said, for a `decade://` address. */
  resolved?: ResolvedDecade;
}

/** Socket errors of a server that cannot be reached (nothing was said to it). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/**
 * Failures that mean "this server cannot be reached or serve now": the next
 * SRV target is tried — a socket error above, a timeout, a 421 greeting
 * (service not available). Anything else (a TLS handshake refused, the
 * DECADE profiles not offered) is the answer.
 */
function unreachable(err: unknown): boolean {
  if (err instanceof BeepError && (err.code === ErrorCodes.TIMEOUT || err.replyCode === 421)) return true;
  let e: unknown = err;
  for (let i = 0; i < 5 && e !== null && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Connect to the DECADE server of `address` (see {@link parseDecadeAddress}):
 * for `decade://DOMAIN`, the SRV targets one after the other until one
 * accepts the connection (a server that cannot be reached moves on; a
 * refusal, such as a failed TLS handshake, does not).
 */
export async function connectDecade(address: string | DecadeAddress, options: Omit<DecadeConnectOptions, 'host' | 'port'> & ResolveDecadeOptions = {}): Promise<DecadeConnection> {
  const a = typeof address === 'string' ? parseDecadeAddress(address) : address;
  const { resolver, random, ...connect } = options;
  if ('host' in a) return { client: await DecadeClient.connect({ ...connect, host: a.host, port: a.port }), target: a };
  const resolved = await resolveDecadeServer(a.domain, { ...(resolver ? { resolver } : {}), ...(random ? { random } : {}) });
  let last: unknown;
  for (const t of resolved.targets) {
    const tls = connect.tls === undefined ? undefined : { serverName: resolved.domain, ...connect.tls };
    try {
      const client = await DecadeClient.connect({ ...connect, host: t.host, port: t.port, ...(tls ? { tls } : {}) });
      return { client, target: { host: t.host, port: t.port }, resolved };
    } catch (err) {
      last = err;
      if (!unreachable(err)) throw err;
    }
  }
  throw last ?? new DiscoveryError('BAD_RECORD', resolved.domain, 'no DECADE server to try');
}
