/**
 * Service discovery through DNS with `node:dns` only: SRV records locate a
 * service's servers (RFC 2782: lowest priority first, weighted random order
 * within a priority) and TXT records carry its parameters as `key=value`
 * strings (DNS-SD, RFC 6763 §6). The resolver is configurable — which DNS
 * servers (with ports), timeout, tries — so a deployment can point it at its
 * own servers and tests at a DNS server on 127.0.0.1. Used by the flows
 * profile (`flow://` URIs) and open to any other application.
 *
 * @module
 */
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { DiscoveryError } from './errors.js';

/** Options of {@link createResolver}. */
export interface ResolverOptions {
  /**
   * DNS servers to ask, as `ip`, `ip:port` or `[ipv6]:port` (default: the
   * system's, from /etc/resolv.conf).
   */
  servers?: readonly string[];
  /** Milliseconds per query attempt (default 2000). */
  timeout?: number;
  /** Attempts per server (default 2). */
  tries?: number;
}

/** One SRV record (RFC 2782). */
export interface SrvTarget {
  /** Host name to connect to (no trailing dot). */
  host: string;
  port: number;
  priority: number;
  weight: number;
}

/** Parameters from TXT records: keys lower-cased, first occurrence wins; a key without `=` is `true` (RFC 6763 §6.4). */
export type TxtParams = Readonly<Record<string, string | true>>;

/** What {@link DnsResolver.discover} found: the servers in the order to try them, and the service's parameters. */
export interface Discovered {
  /** The SRV owner name asked (`_service._proto.domain`). */
  name: string;
  /** Servers in RFC 2782 order (try them one after the other). */
  targets: SrvTarget[];
  /** Parameters from the TXT records at the same name (empty when there are none). */
  params: TxtParams;
}

const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** Check a DNS name (letters, digits, `-`, `_`; labels 1–63, total ≤ 253); returns it without a trailing dot. */
export function checkDnsName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253 || !n.split('.').every((l) => LABEL.test(l))) {
    throw new DiscoveryError('BAD_NAME', name, `${JSON.stringify(name)} is not a valid DNS name`);
  }
  return n;
}

function checkServer(s: string): string {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(s) ?? /^([0-9A-Fa-f:]+)()$/.exec(s);
  const port = m?.[2] ? Number(m[2]) : 53;
  if (!m || isIP(m[1] as string) === 0 || port < 1 || port > 65535) {
    throw new DiscoveryError('BAD_NAME', s, `DNS server ${JSON.stringify(s)} is not ip, ip:port or [ipv6]:port`);
  }
  return s;
}

/**
 * Order SRV records as RFC 2782 says: by priority, lowest first; within a
 * priority, a weighted random permutation (zero weights first so they get a
 * small chance). `random` returns [0, 1) (default Math.random).
 */
export function orderSrv(records: readonly SrvTarget[], random: () => number = Math.random): SrvTarget[] {
  const byPriority = new Map<number, SrvTarget[]>();
  for (const r of records) {
    const list = byPriority.get(r.priority) ?? [];
    list.push(r);
    byPriority.set(r.priority, list);
  }
  const out: SrvTarget[] = [];
  for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...(byPriority.get(p) as SrvTarget[])].sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      const pick = Math.floor(random() * (total + 1)); // RFC 2782: uniform in [0, total]
      let sum = 0;
      let i = 0;
      for (; i < left.length - 1; i++) {
        sum += (left[i] as SrvTarget).weight;
        if (sum >= pick) break;
      }
      out.push(...left.splice(i, 1));
    }
  }
  return out;
}

/** Parse DNS-SD style TXT strings (`key=value`, `key` alone: true). Keys are lower-cased; the first occurrence wins; empty strings and empty keys are ignored. */
export function parseTxt(strings: readonly string[]): TxtParams {
  const out: Record<string, string | true> = Object.create(null) as Record<string, string | true>;
  for (const s of strings) {
    const eq = s.indexOf('=');
    const key = (eq < 0 ? s : s.slice(0, eq)).toLowerCase();
    if (key.length === 0 || key in out) continue;
    out[key] = eq < 0 ? true : s.slice(eq + 1);
  }
  return Object.freeze(out);
}

/** A configured DNS resolver; see {@link createResolver}. */
export class DnsResolver {
  private readonly r: Resolver;
  /** The servers asked (as given, or the system's). */
  readonly servers: readonly string[];

  /** See {@link ResolverOptions}. */
  constructor(options: ResolverOptions = {}) {
    const timeout = options.timeout ?? 2000;
    const tries = options.tries ?? 2;
    if (!Number.isInteger(timeout) || timeout < 1 || !Number.isInteger(tries) || tries < 1) {
      throw new DiscoveryError('BAD_NAME', '', 'timeout and tries must be positive integers');
    }
    this.r = new Resolver({ timeout, tries });
    if (options.servers && options.servers.length > 0) this.r.setServers(options.servers.map(checkServer));
    this.servers = this.r.getServers();
  }

  private fail(name: string, err: unknown): DiscoveryError {
    const code = (err as { code?: string }).code ?? 'EUNKNOWN';
    if (code === 'ENOTFOUND' || code === 'ENODATA') {
      return new DiscoveryError('NOT_FOUND', name, `${name}: no such record (${code})`, { dnsCode: code, cause: err });
    }
    return new DiscoveryError('LOOKUP_FAILED', name, `${name}: DNS lookup failed (${code})`, { dnsCode: code, cause: err });
  }

  /** The SRV records of `name`, in RFC 2782 order. */
  async srv(name: string, random?: () => number): Promise<SrvTarget[]> {
    const n = checkDnsName(name);
    let records;
    try {
      records = await this.r.resolveSrv(n);
    } catch (err) {
      throw this.fail(n, err);
    }
    const targets = records.map((x) => ({ host: x.name.replace(/\.$/, ''), port: x.port, priority: x.priority, weight: x.weight }));
    // RFC 2782: a single record with target "." means the service is decidedly not available here.
    if (targets.length === 1 && (targets[0] as SrvTarget).host === '') throw new DiscoveryError('BAD_RECORD', n, `${n}: the service is not available (SRV target ".")`);
    const usable = targets.filter((x) => x.host !== '' && x.port > 0);
    if (usable.length === 0) throw new DiscoveryError('BAD_RECORD', n, `${n}: no usable SRV target`);
    return orderSrv(usable, random);
  }

  /** The TXT parameters at `name`; empty when the name has no TXT record. */
  async txt(name: string): Promise<TxtParams> {
    const n = checkDnsName(name);
    try {
      return parseTxt((await this.r.resolveTxt(n)).flat());
    } catch (err) {
      const e = this.fail(n, err);
      if (e.discoveryCode === 'NOT_FOUND') return parseTxt([]);
      throw e;
    }
  }

  /**
   * Locate `_service._proto.domain`: its SRV targets in the order to try
   * them and the TXT parameters at the same name, asked in parallel.
   */
  async discover(service: string, proto: 'tcp' | 'udp', domain: string, random?: () => number): Promise<Discovered> {
    const name = `_${service}._${proto}.${checkDnsName(domain)}`;
    const [targets, params] = await Promise.all([this.srv(name, random), this.txt(name)]);
    return { name, targets, params };
  }

  /** Cancel every query in flight (they reject with LOOKUP_FAILED, `ECANCELLED`). */
  cancel(): void {
    this.r.cancel();
  }
}

/** A resolver asking `options.servers` (default: the system's). */
export function createResolver(options: ResolverOptions = {}): DnsResolver {
  return new DnsResolver(options);
}
