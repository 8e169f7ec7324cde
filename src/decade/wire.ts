/**
 * The DECADE wire format over BEEP (`spec/decade.md`): the two profile URIs,
 * the entity headers of SDT requests, and the XML documents of DRP and of
 * SDT's replies.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BEEP_XML, mediaType } from '../framing/index.js';
import type { IncomingMessage, SessionLimits } from '../channels/index.js';
import { DecadeError, isDecadeCode, type DecadeCode } from './errors.js';
import { attr, escapeText, parseXml, MAX_STATUS_XML, type XmlElement } from './xml.js';

/** The DECADE resource protocol (DRP): tokens, status, attributes, delete. */
export const DRP_URI = 'http://beepstream.org/beep/DECADE-DRP';
/** The DECADE standard data transport (SDT): PUT and GET of object octets. */
export const SDT_URI = 'http://beepstream.org/beep/DECADE-SDT';

/** Entity headers of an SDT request (names as sent; received names are lower-cased). */
export const HEADERS = {
  op: 'DECADE-Op',
  name: 'DECADE-Name',
  token: 'DECADE-Token',
  size: 'DECADE-Size',
  type: 'DECADE-Type',
  ttl: 'DECADE-TTL',
  offset: 'DECADE-Offset',
  length: 'DECADE-Length',
  /** GET through this server from another DECADE server (`host:port`), spec §8. */
  source: 'DECADE-Source',
  /** The token the origin server is shown (spec §8). */
  sourceToken: 'DECADE-Source-Token',
} as const;

/**
 * Session limits for DECADE servers and clients: transfers are bulk, so
 * frames of 256 KiB and a 1 MiB initial window (auto-tuned upwards by the
 * flow policy) instead of the library's 64 KiB, as the SciStream data plane
 * does. `DecadeClient.connect` starts from these (the caller's `limits`
 * override them); give them to `createServer({ limits })` for a server.
 */
export const DECADE_LIMITS: Readonly<SessionLimits> = Object.freeze({
  receiveWindow: 1024 * 1024,
  maxSendFrame: 256 * 1024,
  sendHighWaterMark: 256 * 1024,
});

/** The media type of object octets on the wire. */
export const OCTETS = 'application/octet-stream';

/** One object's attributes (draft §6.1.4) as the server reports them. */
export interface ObjectInfo {
  /** Content name. */
  name: string;
  /** Size in octets. */
  size: number;
  /** MIME type given at PUT. */
  type: string;
  /** When stored, ms since the epoch. */
  created: number;
  /** When it expires (TTL), ms since the epoch; null: never. */
  expires: number | null;
  /** Successful GETs served. */
  gets: number;
  /** PUTs of it (the first stored it; later ones found it there). */
  puts: number;
  /** `complete`, or `uploading` while its first PUT is still streaming. */
  state: 'complete' | 'uploading';
}

/** An account's resources and objects (draft §6.1.3). */
export interface AccountStatus {
  account: string;
  /** Octets its objects take. */
  used: number;
  /** Its quota in octets; null: unlimited. */
  quota: number | null;
  /** Octets still available (quota − used − reserved by PUTs under way); null: unlimited. */
  available: number | null;
  /** Its objects (or the one asked for). */
  objects: ObjectInfo[];
}

/** A DRP request. */
export type DrpRequest = { kind: 'status'; token: string; name?: string } | { kind: 'delete'; token: string; name: string };

/** A positive SDT PUT reply. */
export interface Created {
  name: string;
  size: number;
  /** False when the account already held the object (nothing new stored). */
  fresh: boolean;
}

/** The header of a GET's answers: what octets follow. */
export interface RangeHeader {
  name: string;
  size: number;
  offset: number;
  length: number;
  type: string;
  state: 'complete' | 'uploading';
}

/** Build a DRP request document. The token is placed in it (the document is a secret). */
export function buildDrpRequest(r: DrpRequest): string {
  return r.kind === 'status' ? `<status${attr('token', r.token)}${attr('name', r.name)} />` : `<delete${attr('token', r.token)}${attr('name', r.name)} />`;
}

/** Parse a DRP request; `BAD_REQUEST` (501) for a well-formed document that is not one. */
export function parseDrpRequest(body: Uint8Array): DrpRequest {
  const el = parseXml(body);
  const token = el.attrs.get('token');
  if (token === undefined || token === '') throw new DecadeError('BAD_REQUEST', `<${el.name}> needs a token attribute`);
  if (el.name === 'status') {
    const name = el.attrs.get('name');
    return name === undefined ? { kind: 'status', token } : { kind: 'status', token, name };
  }
  if (el.name === 'delete') {
    const name = el.attrs.get('name');
    if (name === undefined) throw new DecadeError('BAD_REQUEST', '<delete> needs a name attribute');
    return { kind: 'delete', token, name };
  }
  throw new DecadeError('BAD_REQUEST', `unknown DRP request <${el.name.slice(0, 40)}>`);
}

function objectXml(o: ObjectInfo): string {
  return `<object${attr('name', o.name)}${attr('size', o.size)}${attr('type', o.type)}${attr('created', new Date(o.created).toISOString())}${o.expires === null ? '' : attr('expires', new Date(o.expires).toISOString())}${attr('gets', o.gets)}${attr('puts', o.puts)}${attr('state', o.state)} />`;
}

/** Build a `<status>` reply. */
export function buildStatus(s: AccountStatus): string {
  return `<status${attr('account', s.account)}${attr('used', s.used)}${attr('quota', s.quota)}${attr('available', s.available)}${attr('count', s.objects.length)}>${s.objects.map(objectXml).join('')}</status>`;
}

function int(el: XmlElement, name: string, optional = false): number {
  const v = el.attrs.get(name);
  if (v === undefined && optional) return -1;
  if (v === undefined || !/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new DecadeError('BAD_REQUEST', `<${el.name}> has no valid ${name}`, { origin: 'remote' });
  return Number(v);
}

function time(el: XmlElement, name: string): number | null {
  const v = el.attrs.get(name);
  if (v === undefined) return null;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new DecadeError('BAD_REQUEST', `<${el.name}> has no valid ${name}`, { origin: 'remote' });
  return t;
}

/** Parse a `<status>` reply. */
export function parseStatus(body: Uint8Array): AccountStatus {
  const el = parseXml(body, MAX_STATUS_XML);
  if (el.name !== 'status') throw new DecadeError('BAD_REQUEST', 'expected <status>', { origin: 'remote' });
  const quota = int(el, 'quota', true);
  const available = int(el, 'available', true);
  return {
    account: el.attrs.get('account') ?? '',
    used: int(el, 'used'),
    quota: quota < 0 ? null : quota,
    available: available < 0 ? null : available,
    objects: el.children.filter((c) => c.name === 'object').map((c) => ({
      name: c.attrs.get('name') ?? '',
      size: int(c, 'size'),
      type: c.attrs.get('type') ?? OCTETS,
      created: time(c, 'created') ?? 0,
      expires: time(c, 'expires'),
      gets: int(c, 'gets'),
      puts: int(c, 'puts'),
      state: c.attrs.get('state') === 'uploading' ? 'uploading' : 'complete',
    })),
  };
}

/** `<created>`, the positive reply to a PUT. */
export function buildCreated(c: Created): string {
  return `<created${attr('name', c.name)}${attr('size', c.size)}${attr('new', c.fresh)} />`;
}

/** Parse `<created>`. */
export function parseCreated(body: Uint8Array): Created {
  const el = parseXml(body);
  if (el.name !== 'created') throw new DecadeError('BAD_REQUEST', 'expected <created>', { origin: 'remote' });
  return { name: el.attrs.get('name') ?? '', size: int(el, 'size'), fresh: el.attrs.get('new') === 'true' };
}

/** `<range>`, the first answer to a GET. */
export function buildRange(r: RangeHeader): string {
  return `<range${attr('name', r.name)}${attr('size', r.size)}${attr('offset', r.offset)}${attr('length', r.length)}${attr('type', r.type)}${attr('state', r.state)} />`;
}

/** Parse `<range>`. */
export function parseRange(body: Uint8Array): RangeHeader {
  const el = parseXml(body);
  if (el.name !== 'range') throw new DecadeError('BAD_REQUEST', 'expected <range>', { origin: 'remote' });
  return {
    name: el.attrs.get('name') ?? '',
    size: int(el, 'size'),
    offset: int(el, 'offset'),
    length: int(el, 'length'),
    type: el.attrs.get('type') ?? OCTETS,
    state: el.attrs.get('state') === 'uploading' ? 'uploading' : 'complete',
  };
}

/** `<ok />`. */
export const OK_XML = '<ok />';

/** `<error code='NNN' decade='CODE'>text</error>`: a DECADE error as an ERR body or a GET's last answer. */
export function buildErrorXml(e: DecadeError): string {
  return `<error${attr('code', e.replyCode)}${attr('decade', e.decadeCode)}>${escapeText(e.message.slice(0, 400))}</error>`;
}

/** Turn a received `<error>` document into a {@link DecadeError} (origin remote). */
export function errorFromXml(body: Uint8Array, fallbackReply = 451): DecadeError {
  let el: XmlElement;
  try {
    el = parseXml(body);
  } catch {
    return new DecadeError('SERVER_ERROR', 'the server sent an unreadable error', { origin: 'remote', replyCode: fallbackReply });
  }
  const c = el.attrs.get('decade');
  const code: DecadeCode = isDecadeCode(c) ? c : 'SERVER_ERROR';
  const rc = Number(el.attrs.get('code'));
  return new DecadeError(code, el.text.trim() || code, { origin: 'remote', replyCode: Number.isInteger(rc) && rc >= 400 && rc <= 599 ? rc : fallbackReply });
}

/** The XML body of a message, or `BAD_REQUEST` if it is not `application/beep+xml`. */
export async function xmlBody(msg: IncomingMessage, max: number): Promise<Buffer> {
  if (mediaType(msg.contentType) !== BEEP_XML) {
    await msg.dump();
    throw new DecadeError('BAD_REQUEST', `expected ${BEEP_XML}, got ${msg.contentType.slice(0, 60)}`, { origin: 'remote' });
  }
  try {
    return await msg.bytes(max);
  } catch {
    throw new DecadeError('BAD_REQUEST', `document larger than ${max} octets`, { origin: 'remote' });
  }
}
