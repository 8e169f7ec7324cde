/**
 * Identifiers of the control profile: session uids (draft §5.2.2: ≥128 bits
 * from a CSPRNG, as 32 hexadecimal digits) and `host:port` endpoints.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

/** A fresh session uid: 128 bits from the CSPRNG as 32 lowercase hexadecimal digits (draft §5.2.2, §9.2). */
export function newUid(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The non-secret name of a session for logs, events, metrics and status
 * pages: the first 12 hexadecimal digits (48 bits) of
 * SHA-256(`"scistream-tag:" + uid`). The uid is the data-plane secret (its
 * PSK is derived from it), so no part of it is ever shown; the tag is
 * one-way and tells an observer nothing about the uid, yet is stable for the
 * session and the same at both facilities.
 */
export function sessionTag(uid: string): string {
  return createHash('sha256').update('scistream-tag:' + uid, 'utf8').digest('hex').slice(0, 12);
}

const UID = /^[0-9a-f]{32}$/;

/** True for a canonical uid: exactly 32 lowercase hexadecimal digits. */
export function isUid(s: unknown): s is string {
  return typeof s === 'string' && UID.test(s);
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Parse a `host:port` endpoint: a DNS name, an IPv4 address or a bracketed
 * IPv6 address, and a port 1–65535 (no sign, no leading zero). Returns null
 * when it is not one.
 */
export function parseEndpoint(s: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]{2,45}\]|[^:[\]]{1,253}):([1-9][0-9]{0,4})$/.exec(s);
  if (!m) return null;
  const [, rawHost = '', p = ''] = m;
  const port = Number(p);
  if (port > 65535) return null;
  if (rawHost.startsWith('[')) {
    const h = rawHost.slice(1, -1);
    return net.isIPv6(h) ? { host: h, port } : null;
  }
  if (net.isIPv4(rawHost)) return { host: rawHost, port };
  const name = rawHost.endsWith('.') ? rawHost.slice(0, -1) : rawHost;
  if (name.length === 0 || !name.split('.').every((l) => LABEL.test(l)) || /^[0-9.]+$/.test(name)) return null;
  return { host: rawHost, port };
}

/** Format an endpoint (brackets around an IPv6 address). */
export function formatEndpoint(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** True for a valid `host:port` endpoint. */
export function isEndpoint(s: unknown): s is string {
  return typeof s === 'string' && parseEndpoint(s) !== null;
}
