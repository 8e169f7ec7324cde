/**
 * Flow URIs and their resolution through DNS (`spec/flows.md` §8):
 *
 * - `flow://NAME.NAMESPACE` — the first label is the flow, the rest the
 *   namespace (a DNS domain), e.g. `flow://orders.shop.example.com`;
 * - `flow://NAMESPACE/NAME` — any flow name (one with `.` or `_` too);
 * - `flow://HOST:PORT/NAME` — no DNS: that FNAA directly (development).
 *
 * A namespace's FNAA is found with SRV `_fnaa._tcp.NAMESPACE` (RFC 2782
 * order) and its parameters with TXT at the same name (RFC 6763 §6 strings):
 * `txtvers=1`, `profile=` (must be the flows profile URI when given) and
 * `prefix=` (prepended to the flow name on that FNAA, so several namespaces
 * can share one server). DNS is not authenticated: nothing it says lowers
 * security — TLS and SASL are as configured, and the TLS server name checked
 * is the namespace unless the caller sets another.
 *
 * @module
 */
import { createResolver, DiscoveryError, type DnsResolver, type SrvTarget, type TxtParams } from '../discovery/index.js';
import { FlowsError } from './errors.js';
import { connectFlows, type FlowsClient, type FlowsConnectOptions } from './client.js';
import { FLOWS_URI, checkFlowName } from './wire.js';

/** The SRV service label of an FNAA: `_fnaa._tcp.NAMESPACE`. */
export const FNAA_SRV_SERVICE = 'fnaa';

/** A parsed flow URI. */
export interface FlowUri {
  /** The flow's name as the URI gives it (before any TXT `prefix`). */
  flow: string;
  /** The namespace (a DNS domain), or the host of a `HOST:PORT` URI. */
  namespace: string;
  /** Set for `flow://HOST:PORT/NAME`: no DNS lookup. */
  port?: number;
}

/** A flow URI resolved to the servers to try. */
export interface ResolvedFlow extends FlowUri {
  /** The flow's name on the FNAA (TXT `prefix` + name). */
  serverFlow: string;
  /** FNAAs in the order to try. */
  targets: SrvTarget[];
  /** The TXT parameters (empty for a `HOST:PORT` URI). */
  params: TxtParams;
}

function bad(uri: string, why: string): FlowsError {
  return new FlowsError('BAD_REQUEST', `${JSON.stringify(uri)} is not a flow URI: ${why}`, { details: { field: 'uri' } });
}

/** Parse a `flow://` URI (see the module documentation); BAD_REQUEST (`field: uri`) when malformed. */
export function parseFlowUri(uri: string): FlowUri {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw bad(uri, 'not a URI');
  }
  if (u.protocol !== 'flow:') throw bad(uri, 'the scheme must be flow:');
  if (u.username || u.password || u.search || u.hash) throw bad(uri, 'no user, query or fragment allowed');
  const host = u.hostname.toLowerCase();
  const path = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (host === '') throw bad(uri, 'no namespace');
  if (u.port !== '') {
    if (path === '') throw bad(uri, 'flow://HOST:PORT/NAME needs the flow name');
    return { flow: checkUriFlow(uri, path), namespace: host, port: Number(u.port) };
  }
  if (path !== '') return { flow: checkUriFlow(uri, path), namespace: host };
  const dot = host.indexOf('.');
  if (dot <= 0 || dot === host.length - 1) throw bad(uri, 'flow://NAME.NAMESPACE needs a name and a namespace');
  return { flow: checkUriFlow(uri, host.slice(0, dot)), namespace: host.slice(dot + 1) };
}

function checkUriFlow(uri: string, name: string): string {
  try {
    return checkFlowName(name);
  } catch {
    throw bad(uri, `${JSON.stringify(name)} is not a flow name`);
  }
}

/** Options of {@link resolveFlowUri}. */
export interface ResolveFlowOptions {
  /** The DNS resolver (default: the system's servers). */
  resolver?: DnsResolver;
  /** Random source for the SRV weight order (tests). */
  random?: () => number;
}

/**
 * Resolve a flow URI: SRV and TXT at `_fnaa._tcp.NAMESPACE`. Throws
 * {@link DiscoveryError} when DNS has no answer, BAD_REQUEST for a malformed
 * URI or unusable TXT parameters.
 */
export async function resolveFlowUri(uri: string, options: ResolveFlowOptions = {}): Promise<ResolvedFlow> {
  const p = parseFlowUri(uri);
  if (p.port !== undefined) return { ...p, serverFlow: p.flow, targets: [{ host: p.namespace, port: p.port, priority: 0, weight: 0 }], params: Object.freeze({}) };
  const resolver = options.resolver ?? createResolver();
  const d = await resolver.discover(FNAA_SRV_SERVICE, 'tcp', p.namespace, options.random);
  const { txtvers, profile, prefix } = d.params;
  if (txtvers !== undefined && txtvers !== '1') throw bad(uri, `TXT txtvers=${String(txtvers)} at ${d.name} is not 1`);
  if (profile !== undefined && profile !== FLOWS_URI) throw bad(uri, `TXT profile at ${d.name} is not ${FLOWS_URI}`);
  if (prefix === true) throw bad(uri, `TXT prefix at ${d.name} has no value`);
  const serverFlow = `${prefix ?? ''}${p.flow}`;
  try {
    checkFlowName(serverFlow);
  } catch {
    throw bad(uri, `the TXT prefix at ${d.name} makes ${JSON.stringify(serverFlow)}, not a flow name`);
  }
  return { ...p, serverFlow, targets: d.targets, params: d.params };
}

/** A client connected to the FNAA of a flow URI. */
export interface FlowUriConnection {
  client: FlowsClient;
  /** The flow's name on that FNAA: use it with the client's methods. */
  flow: string;
  /** The FNAA connected to. */
  target: SrvTarget;
  resolved: ResolvedFlow;
}

/**
 * Resolve `uri` and connect to its FNAA, trying the SRV targets in order
 * until one accepts the connection (an UNAVAILABLE failure moves on; a
 * refusal such as failed authentication does not). The TLS server name
 * checked is the namespace unless `options.tls.serverName` is given.
 */
export async function connectFlowUri(uri: string, options: Omit<FlowsConnectOptions, 'host' | 'port'> & ResolveFlowOptions): Promise<FlowUriConnection> {
  const resolved = await resolveFlowUri(uri, options);
  let last: unknown;
  for (const target of resolved.targets) {
    const tls = options.tls === false ? false : { serverName: resolved.namespace, ...(options.tls ?? {}) };
    try {
      const client = await connectFlows({ ...options, host: target.host, port: target.port, tls });
      return { client, flow: resolved.serverFlow, target, resolved };
    } catch (err) {
      last = err;
      if (!(err instanceof FlowsError && err.flowsCode === 'UNAVAILABLE')) throw err;
      if (options.signal?.aborted) break;
    }
  }
  throw last ?? new DiscoveryError('BAD_RECORD', resolved.namespace, 'no FNAA to try');
}
