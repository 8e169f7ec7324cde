/**
 * The flows profile's wire format (`spec/flows.md` §3–§4): the profile URI,
 * the JSON requests and replies, events, event types in Clark notation
 * (`{namespace}local-name`), type filters, and their validation. Strict when
 * building, strict when parsing: anything malformed is a {@link FlowsError}
 * (BAD_REQUEST or BAD_EVENT) naming the field, never a crash.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { FlowsError } from './errors.js';

/** URI of the flows profile (RFC 3080 §5.1 registration in `spec/flows.md` §1). */
export const FLOWS_URI = 'http://beepstream.org/beep/FLOWS';

/** Content type of every flows message. */
export const FLOWS_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Largest request or reply the profile reads, in octets (default; see `maxMessageBytes`). */
export const MAX_FLOWS_MESSAGE = 16 * 1024 * 1024;

/** Most events in one publish batch. */
export const MAX_BATCH = 10_000;

/** Largest payload of one event, in octets (decoded). */
export const MAX_EVENT_PAYLOAD = 1024 * 1024;

/** A permission on a flow (`spec/flows.md` §5). */
export type FlowPermission = 'publish' | 'subscribe' | 'admin';

/** Who holds each permission on a flow: authorization identities, or `*` for every authenticated one. */
export interface FlowAcl {
  publish: string[];
  subscribe: string[];
  admin: string[];
}

/** What `describe` and `list` report about a flow. */
export interface FlowInfo {
  /** The flow's name. */
  name: string;
  /** Free text given at creation. */
  description: string;
  /** When it was created (RFC 3339). */
  created: string;
  /** Offset of the first event stored (equals `nextOffset` when empty). */
  firstOffset: number;
  /** Offset the next event will get; offsets start at 1. */
  nextOffset: number;
  /** Events stored. */
  events: number;
  /** Who may do what. */
  acl: FlowAcl;
  /** How long and how much the flow keeps (absent limits: everything, forever). */
  retention: FlowRetention;
}

/**
 * Per-flow retention (`spec/flows.md` §7.1): events older than `maxAgeSeconds`
 * (by stored time) or beyond `maxBytes` of payload (oldest first) are
 * removed; `firstOffset` moves up. Offsets are never reused.
 */
export interface FlowRetention {
  /** Keep events at most this many seconds after they were stored. */
  maxAgeSeconds?: number;
  /** Keep at most this many octets of payload (the oldest events go first). */
  maxBytes?: number;
}

/** An event as a producer gives it to `publish`. */
export interface EventInit {
  /** Producer's sequence number: 1, 2, 3… per producer and flow. Assigned by the client when absent. */
  seq?: number;
  /** Unique id of the event (default: a random UUID). */
  id?: string;
  /** Event type in Clark notation: `{namespace-URI}local-name`. */
  type: string;
  /** Host the event comes from; the server checks the publisher may speak for it. */
  source: string;
  /** When the event happened (RFC 3339; default now). */
  time?: string;
  /** Media type of the payload (default `text/plain; charset=utf-8` for text, `application/octet-stream` for bytes). */
  contentType?: string;
  /** Language of human-readable text in the payload (BCP 47 tag). */
  lang?: string;
  /** The payload: text (UTF-8 on the wire) or bytes (base64 on the wire). */
  data: string | Uint8Array;
  /**
   * Route the event to one user (an authorization identity): only that
   * identity's subscriptions (and the flow's admins) receive it. Publishing
   * to another user than oneself needs the server's `routes` permission
   * (ROUTE_NOT_AUTHORIZED otherwise).
   */
  to?: string;
}

/** An event on the wire inside a publish batch (validated). */
export interface WireEvent {
  seq: number;
  id: string;
  type: string;
  source: string;
  time: string;
  contentType: string;
  lang?: string;
  to?: string;
  data?: string;
  data64?: string;
}

/** An event as delivered to a subscriber. */
export interface FlowEvent {
  /** Position in the flow (1, 2, 3…). */
  offset: number;
  /** Unique id given by the producer. */
  id: string;
  /** Event type, `{namespace}local-name` (NFC). */
  type: string;
  /** Host the event comes from (checked against the publisher's identity when stored). */
  source: string;
  /** When the event happened (RFC 3339, as the producer gave it). */
  time: string;
  /** When the server stored it (RFC 3339). */
  stored: string;
  /** Media type of the payload. */
  contentType: string;
  /** Language of the payload's human-readable text, if given. */
  lang?: string;
  /** Payload: a string when it was sent as text, bytes when sent as bytes. */
  data: string | Uint8Array;
  /** The producer id. */
  producer: string;
  /** The producer's sequence number. */
  seq: number;
  /** The authenticated identity that published it. */
  publisher: string;
  /** The user the event is routed to, if any. */
  to?: string;
}

/** Where a subscription starts. */
export type SubscribeFrom = 'start' | 'end' | 'acked' | { offset: number } | { time: string };

/** Requests (`spec/flows.md` §4), as sent in a MSG. */
export type FlowsRequest =
  | { op: 'create'; flow: string; description?: string; acl?: Partial<FlowAcl>; retention?: FlowRetention }
  | { op: 'describe'; flow: string }
  | { op: 'list' }
  | { op: 'delete'; flow: string }
  | { op: 'publish'; flow: string; producer: string; events: WireEvent[] }
  | { op: 'producer'; flow: string; producer: string }
  | { op: 'subscribe'; flow: string; from: SubscribeFrom; consumer?: string; types?: string[]; batch?: number; follow?: boolean }
  | { op: 'ack'; flow: string; consumer: string; offset: number }
  | { op: 'unsubscribe'; channel: number }
  | ({ op: 'acl'; flow: string } & AclChange);

/** The ops of {@link FlowsRequest}. */
export const FLOWS_OPS = ['create', 'describe', 'list', 'delete', 'publish', 'producer', 'subscribe', 'ack', 'unsubscribe', 'acl'] as const;

/**
 * A change of a flow's ACL (`spec/flows.md` §5.1), applied in this order:
 * `set` replaces the lists it names, `grant` adds identities, `revoke`
 * removes them.
 */
export interface AclChange {
  set?: Partial<FlowAcl>;
  grant?: Partial<FlowAcl>;
  revoke?: Partial<FlowAcl>;
}

/** The ACL after `change`; BAD_REQUEST (field `acl.admin`) if it would leave the flow without an admin. */
export function applyAclChange(acl: FlowAcl, change: AclChange): FlowAcl {
  const out: FlowAcl = { publish: [...acl.publish], subscribe: [...acl.subscribe], admin: [...acl.admin] };
  for (const k of ['publish', 'subscribe', 'admin'] as const) {
    const set = change.set?.[k];
    if (set) out[k] = [...set];
    for (const id of change.grant?.[k] ?? []) if (!out[k].includes(id)) out[k].push(id);
    const gone = change.revoke?.[k];
    if (gone) out[k] = out[k].filter((id) => !gone.includes(id));
    out[k] = [...new Set(out[k])];
  }
  if (out.admin.length === 0) bad('acl.admin', 'a flow keeps at least one admin');
  return out;
}

const FLOW_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;
// Control characters, lone surrogates, and (for names) white space are never accepted in a name.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;
const NAME_BAD = /[\s{}]|[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u;
const NS_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s{}<>"\\^`|\u0000-\u001f\u007f]+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const LANG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/;
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(?:\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(?:[A-Za-z0-9!#$&^_.+-]+|"[^"\\\r\n]*"))*$/;
const SOURCE = /^[^\s/@{}\u0000-\u001f\u007f]{1,255}$/u;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Throw BAD_REQUEST (501) for a parameter. */
function bad(field: string, why: string): never {
  throw new FlowsError('BAD_REQUEST', `${field}: ${why}`, { details: { field } });
}

/** Validate a flow name: 1–128 of A–Z a–z 0–9 `.` `_` `-`, starting and ending alphanumeric. */
export function checkFlowName(name: unknown, field = 'flow'): string {
  if (typeof name !== 'string' || !FLOW_NAME.test(name)) bad(field, 'a flow name is 1–128 of A–Z a–z 0–9 . _ - starting and ending with a letter or digit');
  return name;
}

/** Validate a producer or consumer name: 1–128 characters, no control characters. */
export function checkLabel(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 128 || CONTROL.test(value)) bad(field, 'expected 1–128 characters without control characters');
  return value.normalize('NFC');
}

/** A non-negative safe integer. */
function checkCount(value: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) bad(field, `expected an integer from ${min} to ${max}`);
  return value;
}

/**
 * Parse an event type in Clark notation, `{namespace}local-name`: the
 * namespace an absolute URI, the local name 1–256 characters of any script
 * without white space, braces or control characters. Both are NFC-normalized
 * (so a decomposed and a composed `é` name the same type).
 */
export function parseEventType(type: unknown, field = 'type'): { ns: string; name: string; type: string } {
  if (typeof type !== 'string') bad(field, 'expected "{namespace-URI}local-name"');
  // Hot path: a flow carries few distinct types; the checked, normalized result is cached (bounded).
  const hit = TYPE_CACHE.get(type);
  if (hit) return hit;
  const r = parseEventTypeUncached(type, field);
  if (TYPE_CACHE.size >= 1024) TYPE_CACHE.clear();
  TYPE_CACHE.set(type, Object.freeze(r));
  return r;
}

const TYPE_CACHE = new Map<string, { ns: string; name: string; type: string }>();
const MEDIA_OK = new Set<string>();

function parseEventTypeUncached(type: string, field: string): { ns: string; name: string; type: string } {
  const m = /^\{([^{}]*)\}(.*)$/su.exec(type);
  if (!m) bad(field, 'expected "{namespace-URI}local-name"');
  const ns = (m[1] as string).normalize('NFC');
  const name = (m[2] as string).normalize('NFC');
  if (ns.length > 1024 || !NS_URI.test(ns)) bad(field, 'the namespace must be an absolute URI');
  if (name.length === 0 || name.length > 256 || NAME_BAD.test(name)) bad(field, 'the local name must be 1–256 characters without white space, braces or control characters');
  return { ns, name, type: `{${ns}}${name}` };
}

/** A type filter: an exact type, or every type of a namespace (`{ns}*`). */
export interface TypeFilter {
  ns: string;
  /** Absent: every name in the namespace. */
  name?: string;
}

/** Parse a subscription's type filters (`{ns}name` or `{ns}*`); at most 64. */
export function parseTypeFilters(types: unknown): TypeFilter[] {
  if (!Array.isArray(types) || types.length > 64) bad('types', 'expected a list of at most 64 types');
  return types.map((t, i) => {
    if (typeof t === 'string' && t.endsWith('}*')) {
      const { ns } = parseEventType(`${t.slice(0, -1)}x`, `types[${i}]`);
      return { ns };
    }
    const { ns, name } = parseEventType(t, `types[${i}]`);
    return { ns, name };
  });
}

/** True when a type passes the filters (no filters: every type). */
export function matchesFilters(filters: readonly TypeFilter[], ns: string, name: string): boolean {
  return filters.length === 0 || filters.some((f) => f.ns === ns && (f.name === undefined || f.name === name));
}

function eventError(index: number, field: string, why: string): never {
  throw new FlowsError('BAD_EVENT', `events[${index}].${field}: ${why}`, { details: { index, field } });
}

/** Validate one event of a publish batch (`index` for messages). Returns it with its type normalized. */
export function checkWireEvent(e: unknown, index: number, maxPayload = MAX_EVENT_PAYLOAD): WireEvent & { ns: string; name: string; payload: Buffer; text: boolean } {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) eventError(index, '', 'expected an object');
  const o = e as Record<string, unknown>;
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 1) eventError(index, 'seq', 'expected an integer ≥ 1');
  if (typeof o.id !== 'string' || o.id.length === 0 || o.id.length > 256 || CONTROL.test(o.id)) eventError(index, 'id', 'expected 1–256 characters without control characters');
  let t: { ns: string; name: string; type: string };
  try {
    t = parseEventType(o.type, 'type');
  } catch (err) {
    eventError(index, 'type', (err as FlowsError).text.replace(/^type: /, ''));
  }
  if (typeof o.source !== 'string' || !SOURCE.test(o.source)) eventError(index, 'source', 'expected a host name (1–255 characters, no white space, / or @)');
  if (typeof o.time !== 'string' || !RFC3339.test(o.time) || Number.isNaN(Date.parse(o.time))) eventError(index, 'time', 'expected an RFC 3339 date-time');
  if (typeof o.contentType !== 'string' || (!MEDIA_OK.has(o.contentType) && !MEDIA_TYPE.test(o.contentType))) eventError(index, 'contentType', 'expected a media type, e.g. text/plain; charset=utf-8');
  if (!MEDIA_OK.has(o.contentType)) {
    if (MEDIA_OK.size >= 256) MEDIA_OK.clear();
    MEDIA_OK.add(o.contentType);
  }
  if (o.lang !== undefined && (typeof o.lang !== 'string' || !LANG.test(o.lang))) eventError(index, 'lang', 'expected a BCP 47 language tag, e.g. fr-CA');
  if (o.to !== undefined && (typeof o.to !== 'string' || o.to.length === 0 || o.to.length > 128 || CONTROL.test(o.to))) eventError(index, 'to', 'expected an identity of 1–128 characters without control characters');
  let payload: Buffer;
  let text: boolean;
  if (typeof o.data === 'string' && o.data64 === undefined) {
    if (/\p{Cs}/u.test(o.data)) eventError(index, 'data', 'text must be valid Unicode (a lone surrogate)');
    payload = Buffer.from(o.data, 'utf8');
    text = true;
  } else if (typeof o.data64 === 'string' && o.data === undefined) {
    if (o.data64.length % 4 !== 0 || !BASE64.test(o.data64)) eventError(index, 'data64', 'expected base64');
    payload = Buffer.from(o.data64, 'base64');
    text = false;
  } else {
    eventError(index, 'data', 'expected exactly one of data (text) and data64 (base64)');
  }
  if (payload.length > maxPayload) eventError(index, 'data', `payload larger than ${maxPayload} octets`);
  const out: WireEvent & { ns: string; name: string; payload: Buffer; text: boolean } = {
    seq: o.seq, id: o.id, type: t.type, source: o.source.toLowerCase(), time: o.time, contentType: o.contentType, ns: t.ns, name: t.name, payload, text,
  };
  if (o.lang !== undefined) out.lang = o.lang as string;
  if (o.to !== undefined) out.to = (o.to as string).normalize('NFC');
  return out;
}

/** Validate an ACL (at creation, or the lists of an `acl` change, named by `field`): lists of identities (or `*`). */
export function checkAcl(acl: unknown, field = 'acl'): Partial<FlowAcl> {
  if (acl === undefined) return {};
  if (acl === null || typeof acl !== 'object' || Array.isArray(acl)) bad(field, 'expected an object with publish, subscribe and admin lists');
  const out: Partial<FlowAcl> = {};
  for (const [k, v] of Object.entries(acl as Record<string, unknown>)) {
    if (k !== 'publish' && k !== 'subscribe' && k !== 'admin') bad(`${field}.${k}`, 'unknown permission (publish, subscribe, admin)');
    if (!Array.isArray(v) || v.length > 1024) bad(`${field}.${k}`, 'expected a list of at most 1024 identities');
    out[k] = v.map((id, i) => checkLabel(id, `${field}.${k}[${i}]`));
  }
  return out;
}

/** Validate a retention given at creation: `maxAgeSeconds` (1 s – 100 years) and `maxBytes` (≥ 1 KiB), both optional. */
export function checkRetention(r: unknown): FlowRetention {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) bad('retention', 'expected an object with maxAgeSeconds and/or maxBytes');
  const out: FlowRetention = {};
  for (const [k, v] of Object.entries(r as Record<string, unknown>)) {
    if (k === 'maxAgeSeconds') out.maxAgeSeconds = checkCount(v, 'retention.maxAgeSeconds', 1, 100 * 366 * 86400);
    else if (k === 'maxBytes') out.maxBytes = checkCount(v, 'retention.maxBytes', 1024);
    else bad(`retention.${k}`, 'unknown limit (maxAgeSeconds, maxBytes)');
  }
  return out;
}

/**
 * Parse a request body (a JSON object with an `op`). Malformed JSON is
 * BAD_REQUEST with reply code 500; a bad parameter BAD_REQUEST 501; a bad
 * event BAD_EVENT 553; an unknown op UNKNOWN_OP 504. Events of a publish are
 * checked by the server (with its payload limit), not here.
 */
export function parseRequest(body: Buffer): FlowsRequest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new FlowsError('BAD_REQUEST', 'the request is not well-formed JSON', { replyCode: 500 });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new FlowsError('BAD_REQUEST', 'the request must be a JSON object', { replyCode: 500 });
  const o = doc as Record<string, unknown>;
  switch (o.op) {
    case 'create': {
      const r: FlowsRequest = { op: 'create', flow: checkFlowName(o.flow) };
      if (o.description !== undefined) {
        if (typeof o.description !== 'string' || o.description.length > 1024 || /\p{Cs}/u.test(o.description)) bad('description', 'expected at most 1024 characters');
        r.description = o.description;
      }
      if (o.acl !== undefined) r.acl = checkAcl(o.acl);
      if (o.retention !== undefined) r.retention = checkRetention(o.retention);
      return r;
    }
    case 'describe':
    case 'delete':
      return { op: o.op, flow: checkFlowName(o.flow) };
    case 'list':
      return { op: 'list' };
    case 'publish': {
      if (!Array.isArray(o.events) || o.events.length === 0 || o.events.length > MAX_BATCH) bad('events', `expected a list of 1–${MAX_BATCH} events`);
      return { op: 'publish', flow: checkFlowName(o.flow), producer: checkLabel(o.producer, 'producer'), events: o.events as WireEvent[] };
    }
    case 'producer':
      return { op: 'producer', flow: checkFlowName(o.flow), producer: checkLabel(o.producer, 'producer') };
    case 'subscribe': {
      const r: FlowsRequest = { op: 'subscribe', flow: checkFlowName(o.flow), from: parseFrom(o.from) };
      if (o.consumer !== undefined) r.consumer = checkLabel(o.consumer, 'consumer');
      if (r.from === 'acked' && r.consumer === undefined) bad('from', '"acked" needs a consumer');
      if (o.types !== undefined) {
        parseTypeFilters(o.types);
        r.types = o.types as string[];
      }
      if (o.batch !== undefined) r.batch = checkCount(o.batch, 'batch', 1, 4096);
      if (o.follow !== undefined) {
        if (typeof o.follow !== 'boolean') bad('follow', 'expected true or false');
        r.follow = o.follow;
      }
      return r;
    }
    case 'ack':
      return { op: 'ack', flow: checkFlowName(o.flow), consumer: checkLabel(o.consumer, 'consumer'), offset: checkCount(o.offset, 'offset') };
    case 'unsubscribe':
      return { op: 'unsubscribe', channel: checkCount(o.channel, 'channel', 1, 2147483647) };
    case 'acl': {
      const r: FlowsRequest = { op: 'acl', flow: checkFlowName(o.flow) };
      for (const k of ['set', 'grant', 'revoke'] as const) if (o[k] !== undefined) r[k] = checkAcl(o[k], k);
      if (!r.set && !r.grant && !r.revoke) bad('set', 'expected at least one of set, grant and revoke');
      return r;
    }
    default:
      if (typeof o.op !== 'string') bad('op', `expected one of ${FLOWS_OPS.join(', ')}`);
      throw new FlowsError('UNKNOWN_OP', `unknown op ${JSON.stringify(o.op.slice(0, 64))} (known: ${FLOWS_OPS.join(', ')})`, { details: { field: 'op' } });
  }
}

/** Parse where a subscription starts: `start`, `end`, `acked`, `{offset}` or `{time}`. */
export function parseFrom(from: unknown): SubscribeFrom {
  if (from === undefined || from === 'end') return 'end';
  if (from === 'start' || from === 'acked') return from;
  if (from !== null && typeof from === 'object' && !Array.isArray(from)) {
    const o = from as Record<string, unknown>;
    if (Object.keys(o).length === 1 && o.offset !== undefined) return { offset: checkCount(o.offset, 'from.offset', 1) };
    if (Object.keys(o).length === 1 && typeof o.time === 'string' && RFC3339.test(o.time) && !Number.isNaN(Date.parse(o.time))) return { time: o.time };
  }
  bad('from', 'expected "start", "end", "acked", {"offset": N} or {"time": RFC 3339}');
}

/** Serialize a message body. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Turn a delivered wire event (`data` or `data64`) into a {@link FlowEvent}. */
export function eventFromWire(o: Record<string, unknown>): FlowEvent {
  const e: FlowEvent = {
    offset: o.offset as number,
    id: o.id as string,
    type: o.type as string,
    source: o.source as string,
    time: o.time as string,
    stored: o.stored as string,
    contentType: o.contentType as string,
    data: typeof o.data64 === 'string' ? new Uint8Array(Buffer.from(o.data64, 'base64')) : (o.data as string),
    producer: o.producer as string,
    seq: o.seq as number,
    publisher: o.publisher as string,
  };
  if (typeof o.lang === 'string') e.lang = o.lang;
  if (typeof o.to === 'string') e.to = o.to;
  return e;
}
