/**
 * What every transport shares: the description of a connected transport and
 * the registry that attaches one to the stream it describes.
 *
 * @module
 */
import type { Duplex } from 'node:stream';

/** The kinds of stream transport. */
export type TransportKind = 'tcp' | 'unix';

/**
 * A connected transport, as the session layer and profiles see it: which
 * kind, and its two ends in the kind's own notation (`host:port` for TCP,
 * with IPv6 in brackets; the socket path for a Unix domain socket).
 */
export interface TransportInfo {
  readonly kind: TransportKind;
  /** Our end, when known. */
  readonly local?: string;
  /** The peer's end, when known (a Unix socket's accepting side has none). */
  readonly remote?: string;
  /** The peer's IP address, for TCP: what per-address limits and SASL's `remoteAddress` use. */
  readonly remoteAddress?: string;
}

/** Where to dial: a TCP `host`/`port`, or a Unix socket `path`. */
export type DialTarget = { readonly host?: string; readonly port: number } | { readonly path: string };

/** Where to listen: a TCP `port` (0: any free one) on `host`, or a Unix socket `path`. */
export type ListenTarget = { readonly host?: string; readonly port?: number } | { readonly path: string };

/** The bound address of a listener. */
export type ListenAddress =
  | { readonly kind: 'tcp'; readonly address: string; readonly family: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

const described = new WeakMap<Duplex, TransportInfo>();

/** @internal Record what `socket` is (done by the transport that made it). */
export function setTransportInfo(socket: Duplex, info: TransportInfo): void {
  described.set(socket, info);
}

/** @internal The description recorded for `socket` by the transport that made it, if any. */
export function recordedTransportInfo(socket: Duplex): TransportInfo | undefined {
  return described.get(socket);
}

/** `host:port`, IPv6 literals in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
