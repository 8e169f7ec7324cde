/**
 * Reading a DECADE request: its SDT entity headers, the peer's address and
 * identity, and stored records as DRP reports them. Used by the server.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { Channel, IncomingMessage } from '../channels/index.js';
import { DecadeError } from './errors.js';
import type { ClientInfo } from './tokens.js';
import type { ObjectRecord } from './store.js';
import type { ObjectInfo } from './wire.js';

/** A MIME type as `DECADE-Type` takes it. */
export const MIME = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$/;
const INT = /^\d{1,16}$/;

/** An entity header's value (names case-insensitive). */
export function header(msg: IncomingMessage, name: string): string | undefined {
  return msg.headers[name.toLowerCase()];
}

/** A whole-number header from 0 to `max`, or `BAD_REQUEST`. */
export function intHeader(msg: IncomingMessage, name: string, max: number): number | undefined {
  const v = header(msg, name);
  if (v === undefined) return undefined;
  const t = v.trim();
  if (!INT.test(t) || Number(t) > max) throw new DecadeError('BAD_REQUEST', `${name} must be a whole number from 0 to ${max}`);
  return Number(t);
}

/** The peer's IP address from `host:port` / `[v6]:port`, v4-mapped v6 unmapped. */
export function addressOf(remote: string | undefined): string | undefined {
  if (remote === undefined) return undefined;
  let host = remote.startsWith('[') ? remote.slice(1, remote.indexOf(']')) : remote.slice(0, remote.lastIndexOf(':'));
  if (host.toLowerCase().startsWith('::ffff:') && host.includes('.')) host = host.slice(7);
  return host;
}

/** Who is asking: address and SASL authorization identity. */
export function clientOf(channel: Channel): ClientInfo {
  const session = channel.session;
  return { address: addressOf(session?.remote), identity: session?.identity?.authzid };
}

/** A stored record as DRP reports it. */
export function toInfo(r: ObjectRecord, state: ObjectInfo['state'] = 'complete'): ObjectInfo {
  return { name: parseNameHex(r.hex), size: r.size, type: r.type, created: r.created, expires: r.expires, gets: r.gets, puts: r.puts, state };
}

/** The canonical name of a hex digest. */
export function parseNameHex(hex: string): string {
  return `ni:///sha-256;${Buffer.from(hex, 'hex').toString('base64url')}`;
}

