/**
 * The messages of the SciStream control profile (draft-scistream-protocol-02
 * §4, plus STATUS) as `application/beep+xml` documents: typed values, a strict
 * builder ({@link buildMessage}: every field validated, text escaped) and a
 * liberal parser ({@link parseMessage}: names in any case with or without `_`
 * and `-`, fields as attributes or child elements, lists as repeated
 * elements or separated text, surrounding white space ignored). The syntax is
 * specified in `spec/scistream-control.md` §3.
 *
 * Every parse failure is a {@link SciStreamError}: BAD_FORMAT (500 not a
 * well-formed document, 501 a missing or invalid field), INVALID_UID for a
 * uid that is not 32 hexadecimal digits, VERSION_ERR for a version other
 * than 1, NOT_IMPLEMENTED for an unknown element.
 *
 * @module
 */
import type { DataPathStats } from '../dataplane.js';
import { NUM_CONN_WIRE_MAX } from '../limits.js';
import { SCISTREAM_CODES, SciStreamError, type SciStreamErrorCode } from './errors.js';
import { isEndpoint, isUid, parseEndpoint } from './ids.js';
import { attr, cleanText, escapeText, parseXml, textElement, type XmlElement, type XmlLimits } from './xml.js';

/** URI of the control profile (RFC 3080 §5.1 registration in `spec/scistream-control.md`). */
export const CONTROL_URI = 'urn:beepstream:scistream:control:1';

/** The protocol version this implementation speaks (a `version` field other than this gets VERSION_ERR). */
export const PROTOCOL_VERSION = 1;

/** Most endpoints in one list. */
export const MAX_LISTENERS = 256;

/** Longest human message / details sent, in UTF-16 units. */
export const MAX_MESSAGE_TEXT = 256;
/** Longest details text sent, in UTF-16 units. */
export const MAX_DETAILS_TEXT = 512;
/**
 * Longest `<error>` document sent, in UTF-16 units: the channel layer hands a
 * non-RFC-3080 ERR body to the caller as a diagnostic cut at 1024 units.
 */
export const MAX_ERROR_DOCUMENT = 1024;

/** A side of a SciStream session. */
export type SciStreamRole = 'PROD' | 'CONS';

/**
 * S2CS state of one session (Appendix A.2 as implemented; see the spec §6):
 * `pending` — REQUEST accepted, waiting for HELLO (PROD) or UPDATETARGETS (CONS);
 * `setup` — the data server is opening the path; `active` — the path is open;
 * `releasing` — being released; `closed` — gone.
 */
export type ControlSessionState = 'pending' | 'setup' | 'active' | 'releasing' | 'closed';

/** REQUEST (S2UC → S2CS). */
export interface RequestMessage {
  type: 'request';
  uid: string;
  role: SciStreamRole;
  /** Most application connections, 1–65535 (the wire syntax, {@link NUM_CONN_WIRE_MAX}; the S2CS's `SciStreamLimits.maxNumConn` is lower). */
  numConn: number;
  /** Octets per second for the whole session; absent = unlimited. */
  rate?: number;
  /** Keep the session when the requesting BEEP session closes (default false). */
  keep?: boolean;
  /**
   * CONS: stripe the data path over this many TCP (BEEP) connections to the
   * producer side (a beepstream extension, like `keep`; default 1, at most
   * `num_conn` are used). Ignored for PROD: the receiver takes what comes.
   */
  connections?: number;
}

/** HELLO (application controller → S2CS). */
export interface HelloMessage {
  type: 'hello';
  uid: string;
  role: SciStreamRole;
  /** Producer application endpoints (`host:port`); at least one for PROD. */
  prodListeners: string[];
}

/** UPDATETARGETS (S2UC → S2CS). */
export interface UpdateTargetsMessage {
  type: 'updatetargets';
  uid: string;
  role: SciStreamRole;
  /** The remote inbound receiver's endpoints; at least one for CONS. */
  remoteListeners: string[];
}

/** RELEASE (S2UC → S2CS). */
export interface ReleaseMessage {
  type: 'release';
  uid: string;
}

/** STATUS query (S2UC → S2CS), an extension of the draft. */
export interface StatusMessage {
  type: 'status';
  uid: string;
}

/** Messages that start an exchange. */
export type ControlRequest = RequestMessage | HelloMessage | UpdateTargetsMessage | ReleaseMessage | StatusMessage;

/** RESPONSE (to REQUEST, UPDATETARGETS, RELEASE). */
export interface ResponseMessage {
  type: 'response';
  uid: string;
  state: ControlSessionState;
  /** PROD: the inbound receiver's endpoints; CONS: where the consumer application connects. */
  listeners: string[];
  /** PROD: the producer application endpoints registered by HELLO. */
  prodListeners: string[];
}

/** APPRESPONSE (to HELLO). */
export interface AppResponseMessage {
  type: 'appresponse';
  uid: string;
  message: string;
  /** Same as the RESPONSE's `listeners`. */
  listeners: string[];
}

/** Reply to STATUS. */
export interface StatusResponseMessage {
  type: 'statusresponse';
  uid: string;
  role: SciStreamRole;
  state: ControlSessionState;
  numConn: number;
  rate?: number;
  keep: boolean;
  listeners: string[];
  prodListeners: string[];
  remoteListeners: string[];
  /** Milliseconds left before a pending session times out. */
  expiresIn?: number;
  /** Data-path statistics, once the path exists. */
  stats?: DataPathStats;
  /** Failed data connections of this session the S2DS reported (e.g. a producer application refusing), if any. */
  dataErrors?: DataErrorSummary;
}

/**
 * Data-connection failures of one session (a beepstream extension of
 * STATUSRESPONSE, `<data_errors count='N' endpoint='host:port'
 * errno='ECONNREFUSED' />`; peers that do not know it ignore it).
 */
export interface DataErrorSummary {
  /** How many failures so far. */
  count: number;
  /** The endpoint of the last one, when known. */
  endpoint?: string;
  /** Its system error code (`ECONNREFUSED`…) or beepstream code, when known. */
  errno?: string;
}

/** Messages of positive replies. */
export type ControlReply = ResponseMessage | AppResponseMessage | StatusResponseMessage;

/** Any control message. */
export type ControlPlaneMessage = ControlRequest | ControlReply;

// ---------------------------------------------------------------- fields

function bad(message: string): SciStreamError {
  return new SciStreamError('BAD_FORMAT', message);
}

function localBad(message: string): SciStreamError {
  return new SciStreamError('BAD_FORMAT', `cannot send: ${message}`);
}

// ---------------------------------------------------------------- building

function checkUid(uid: string): string {
  if (!isUid(uid)) throw new SciStreamError('INVALID_UID', 'cannot send: a uid is 32 lowercase hexadecimal digits');
  return attr('uid', uid);
}

function checkInt(name: string, v: number, min: number, max: number): string {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw localBad(`${name} must be an integer from ${min} to ${max}`);
  return attr(name, v);
}

function checkRole(role: SciStreamRole): string {
  if (role !== 'PROD' && role !== 'CONS') throw localBad('role must be PROD or CONS');
  return attr('role', role);
}

function checkState(state: ControlSessionState): string {
  if (!STATES.includes(state)) throw localBad('unknown session state');
  return attr('state', state);
}

function endpoints(name: string, list: readonly string[]): string {
  if (list.length > MAX_LISTENERS) throw localBad(`more than ${MAX_LISTENERS} endpoints`);
  return list.map((e) => {
    if (!isEndpoint(e)) throw localBad(`${JSON.stringify(String(e).slice(0, 64))} is not a host:port endpoint`);
    return textElement(name, e);
  }).join('');
}

function element(name: string, attrs: string, content: string): string {
  return content === '' ? `<${name}${attrs} />` : `<${name}${attrs}>${content}</${name}>`;
}

function statsElement(s: DataPathStats): string {
  return `<stats${checkInt('connections', s.connections, 0, Number.MAX_SAFE_INTEGER)}${checkInt('open', s.open, 0, Number.MAX_SAFE_INTEGER)}`
    + `${checkInt('bytes_to_producer', s.bytesToProducer, 0, Number.MAX_SAFE_INTEGER)}${checkInt('bytes_to_consumer', s.bytesToConsumer, 0, Number.MAX_SAFE_INTEGER)} />`;
}

function dataErrorsElement(d: DataErrorSummary): string {
  return `<data_errors${checkInt('count', d.count, 0, Number.MAX_SAFE_INTEGER)}`
    + `${d.endpoint !== undefined && isEndpoint(d.endpoint) ? attr('endpoint', d.endpoint) : ''}`
    + `${d.errno !== undefined && /^[A-Z][A-Z0-9_]{0,63}$/.test(d.errno) ? attr('errno', d.errno) : ''} />`;
}

/**
 * Serialise a message, strictly: a field that is not valid throws
 * {@link SciStreamError} (INVALID_UID for a non-canonical uid, BAD_FORMAT
 * otherwise) and nothing is sent. Human text is escaped and cleaned.
 */
export function buildMessage(m: ControlPlaneMessage): string {
  switch (m.type) {
    case 'request':
      return element('request', checkUid(m.uid) + checkRole(m.role) + checkInt('num_conn', m.numConn, 1, NUM_CONN_WIRE_MAX)
        + (m.rate === undefined ? '' : checkInt('rate', m.rate, 1, Number.MAX_SAFE_INTEGER)) + (m.keep ? attr('keep', 'true') : '')
        + (m.connections === undefined ? '' : checkInt('connections', m.connections, 1, NUM_CONN_WIRE_MAX)), '');
    case 'hello':
      return element('hello', checkUid(m.uid) + checkRole(m.role), endpoints('prod_listener', m.prodListeners));
    case 'updatetargets':
      return element('updatetargets', checkUid(m.uid) + checkRole(m.role), endpoints('remote_listener', m.remoteListeners));
    case 'release':
    case 'status':
      return element(m.type, checkUid(m.uid), '');
    case 'response':
      return element('response', checkUid(m.uid) + checkState(m.state), endpoints('listener', m.listeners) + endpoints('prod_listener', m.prodListeners));
    case 'appresponse':
      return element('appresponse', checkUid(m.uid), textElement('message', cleanText(m.message, MAX_MESSAGE_TEXT)) + endpoints('listener', m.listeners));
    case 'statusresponse':
      return element(
        'statusresponse',
        checkUid(m.uid) + checkRole(m.role) + checkState(m.state) + checkInt('num_conn', m.numConn, 1, NUM_CONN_WIRE_MAX)
          + (m.rate === undefined ? '' : checkInt('rate', m.rate, 1, Number.MAX_SAFE_INTEGER)) + attr('keep', m.keep ? 'true' : 'false')
          + (m.expiresIn === undefined ? '' : checkInt('expires_in', m.expiresIn, 0, Number.MAX_SAFE_INTEGER)),
        endpoints('listener', m.listeners) + endpoints('prod_listener', m.prodListeners) + endpoints('remote_listener', m.remoteListeners)
          + (m.stats ? statsElement(m.stats) : '') + (m.dataErrors ? dataErrorsElement(m.dataErrors) : ''),
      );
    default:
      throw localBad(`unknown message type ${JSON.stringify((m as { type?: unknown }).type)}`);
  }
}

/**
 * Serialise an error as `<error code='…' reply='…' [retry_after='…']
 * [endpoint='…']>message[<details>…</details>]</error>`, at most
 * {@link MAX_ERROR_DOCUMENT} UTF-16 units (details, then the message, are cut).
 */
export function buildErrorXml(e: SciStreamError): string {
  let message = cleanText(e.message, MAX_MESSAGE_TEXT);
  let details = e.details === undefined ? undefined : cleanText(e.details, MAX_DETAILS_TEXT);
  const reply = Number.isInteger(e.replyCode) && e.replyCode >= 400 && e.replyCode <= 599 ? e.replyCode : 451;
  let head = attr('code', e.code) + attr('reply', reply);
  if (e.retryAfter !== undefined && Number.isSafeInteger(e.retryAfter) && e.retryAfter >= 0) head += attr('retry_after', e.retryAfter);
  if (e.endpoint !== undefined && isEndpoint(e.endpoint)) head += attr('endpoint', e.endpoint);
  for (;;) {
    const body = escapeText(message) + (details === undefined ? '' : textElement('details', details));
    const xml = element('error', head, body);
    if (xml.length <= MAX_ERROR_DOCUMENT) return xml;
    if (details !== undefined && details.length > 0) details = cleanText(details, Math.floor(details.length / 2));
    else message = cleanText(message, Math.floor(message.length / 2));
  }
}

// ---------------------------------------------------------------- parsing

const STATES: readonly ControlSessionState[] = ['pending', 'setup', 'active', 'releasing', 'closed'];

const norm = (n: string): string => n.toLowerCase().replace(/[-_]/g, '');

function children(el: XmlElement, names: readonly string[]): XmlElement[] {
  return el.children.filter((c) => names.includes(norm(c.name)));
}

/** A single field, as an attribute or a child element; trimmed. */
function field(el: XmlElement, name: string): string | undefined {
  for (const [k, v] of el.attrs) if (norm(k) === name) return v.trim();
  const c = children(el, [name])[0];
  return c === undefined ? undefined : c.text.trim();
}

function required(el: XmlElement, name: string): string {
  const v = field(el, name);
  if (v === undefined || v === '') throw bad(`<${el.name}> needs ${name}`);
  return v;
}

function parseUid(el: XmlElement): string {
  const v = required(el, 'uid');
  if (!/^[0-9a-fA-F]{32}$/.test(v)) throw new SciStreamError('INVALID_UID', 'a uid is 32 hexadecimal digits');
  return v.toLowerCase();
}

function parseRole(el: XmlElement): SciStreamRole {
  const v = required(el, 'role').toUpperCase();
  if (v === 'PROD' || v === 'PRODUCER') return 'PROD';
  if (v === 'CONS' || v === 'CONSUMER') return 'CONS';
  throw bad('role must be PROD or CONS');
}

function intField(el: XmlElement, name: string, min: number, max: number, optional: true): number | undefined;
function intField(el: XmlElement, name: string, min: number, max: number, optional?: false): number;
function intField(el: XmlElement, name: string, min: number, max: number, optional = false): number | undefined {
  const v = field(el, name);
  if (v === undefined || (optional && v === '')) {
    if (optional) return undefined;
    throw bad(`<${el.name}> needs ${name}`);
  }
  if (!/^\+?[0-9]{1,16}$/.test(v)) throw bad(`${name} must be a decimal integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(`${name} must be from ${min} to ${max}`);
  return n;
}

function parseBool(el: XmlElement, name: string): boolean {
  const v = field(el, name);
  if (v === undefined || v === '') return false;
  const t = v.toLowerCase();
  if (t === 'true' || t === '1' || t === 'yes') return true;
  if (t === 'false' || t === '0' || t === 'no') return false;
  throw bad(`${name} must be true or false`);
}

/**
 * A list of endpoints: repeated elements (`<prod_listener>`, or the proto
 * name `<prod_listeners>`) whose text is one or more endpoints separated by
 * white space or commas, or which hold `<listener>` elements; or an attribute
 * of that name holding such a list.
 */
function parseList(el: XmlElement, names: readonly string[]): string[] {
  const raw: string[] = [];
  for (const [k, v] of el.attrs) if (names.includes(norm(k))) raw.push(v);
  for (const c of children(el, names)) {
    const inner = children(c, ['listener', 'endpoint']);
    if (inner.length > 0) for (const i of inner) raw.push(i.text);
    else raw.push(c.text);
  }
  const out: string[] = [];
  for (const r of raw) {
    for (const item of r.split(/[\s,]+/)) {
      if (item === '') continue;
      if (parseEndpoint(item) === null) throw bad(`${JSON.stringify(item.slice(0, 64))} is not a host:port endpoint`);
      out.push(item);
      if (out.length > MAX_LISTENERS) throw bad(`more than ${MAX_LISTENERS} endpoints`);
    }
  }
  return out;
}

function parseState(el: XmlElement): ControlSessionState {
  const v = required(el, 'state').toLowerCase();
  const s = STATES.find((x) => x === v);
  if (!s) throw bad('unknown session state');
  return s;
}

const LISTENERS = ['listener', 'listeners'];
const PROD_LISTENERS = ['prodlistener', 'prodlisteners'];
const REMOTE_LISTENERS = ['remotelistener', 'remotelisteners'];
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

function parseStats(el: XmlElement): DataPathStats | undefined {
  const s = children(el, ['stats'])[0];
  if (!s) return undefined;
  return {
    connections: intField(s, 'connections', 0, MAX_COUNT),
    open: intField(s, 'open', 0, MAX_COUNT),
    bytesToProducer: intField(s, 'bytestoproducer', 0, MAX_COUNT),
    bytesToConsumer: intField(s, 'bytestoconsumer', 0, MAX_COUNT),
  };
}

/**
 * Parse a control message (request or reply). Throws {@link SciStreamError}
 * (see the module comment) when it cannot be used. `<error>` documents are
 * parsed by {@link parseErrorXml}, not here.
 */
export function parseMessage(input: string | Uint8Array, limits?: XmlLimits): ControlPlaneMessage {
  const el = parseXml(input, limits);
  const version = field(el, 'version');
  if (version !== undefined && version !== '' && !/^1(\.0*)?$/.test(version)) {
    throw new SciStreamError('VERSION_ERR', `protocol version ${JSON.stringify(version.slice(0, 16))} is not supported`, { details: `this server speaks version ${PROTOCOL_VERSION}` });
  }
  switch (norm(el.name)) {
    case 'request': {
      const out: RequestMessage = { type: 'request', uid: parseUid(el), role: parseRole(el), numConn: intField(el, 'numconn', 1, NUM_CONN_WIRE_MAX) };
      const rate = intField(el, 'rate', 0, Number.MAX_SAFE_INTEGER, true);
      // Liberal: proto3 sends an unset rate as 0; it means "no limit".
      if (rate !== undefined && rate > 0) out.rate = rate;
      if (parseBool(el, 'keep')) out.keep = true;
      const k = intField(el, 'connections', 1, NUM_CONN_WIRE_MAX, true);
      if (k !== undefined) out.connections = k;
      return out;
    }
    case 'hello':
      return { type: 'hello', uid: parseUid(el), role: parseRole(el), prodListeners: parseList(el, [...PROD_LISTENERS, ...LISTENERS]) };
    case 'updatetargets':
      return { type: 'updatetargets', uid: parseUid(el), role: parseRole(el), remoteListeners: parseList(el, [...REMOTE_LISTENERS, ...LISTENERS]) };
    case 'release':
    case 'status':
      return { type: norm(el.name) as 'release' | 'status', uid: parseUid(el) };
    case 'response':
      return { type: 'response', uid: parseUid(el), state: parseState(el), listeners: parseList(el, LISTENERS), prodListeners: parseList(el, PROD_LISTENERS) };
    case 'appresponse':
      return { type: 'appresponse', uid: parseUid(el), message: field(el, 'message') ?? '', listeners: parseList(el, LISTENERS) };
    case 'statusresponse': {
      const out: StatusResponseMessage = {
        type: 'statusresponse', uid: parseUid(el), role: parseRole(el), state: parseState(el), numConn: intField(el, 'numconn', 1, NUM_CONN_WIRE_MAX),
        keep: parseBool(el, 'keep'), listeners: parseList(el, LISTENERS), prodListeners: parseList(el, PROD_LISTENERS), remoteListeners: parseList(el, REMOTE_LISTENERS),
      };
      const rate = intField(el, 'rate', 0, Number.MAX_SAFE_INTEGER, true);
      if (rate !== undefined && rate > 0) out.rate = rate;
      const exp = intField(el, 'expiresin', 0, Number.MAX_SAFE_INTEGER, true);
      if (exp !== undefined) out.expiresIn = exp;
      const stats = parseStats(el);
      if (stats) out.stats = stats;
      const de = children(el, ['dataerrors'])[0];
      if (de) {
        const d: DataErrorSummary = { count: intField(de, 'count', 0, MAX_COUNT) };
        const ep = field(de, 'endpoint');
        if (ep !== undefined && isEndpoint(ep)) d.endpoint = ep;
        const errno = field(de, 'errno');
        if (errno !== undefined && /^[A-Z][A-Z0-9_]{0,63}$/.test(errno)) d.errno = errno;
        out.dataErrors = d;
      }
      return out;
    }
    case 'error':
      throw bad('an <error> is not a message; use parseErrorXml');
    default:
      throw new SciStreamError('NOT_IMPLEMENTED', `unknown control message <${el.name.slice(0, 32)}>`);
  }
}

/** Parse a request: as {@link parseMessage}, but a reply element is BAD_FORMAT. */
export function parseRequest(input: string | Uint8Array, limits?: XmlLimits): ControlRequest {
  const m = parseMessage(input, limits);
  if (m.type === 'response' || m.type === 'appresponse' || m.type === 'statusresponse') throw bad(`<${m.type}> is a reply, not a request`);
  return m;
}

/**
 * Parse an `<error>` document into a {@link SciStreamError} (origin
 * `remote`), liberally: an unknown `code` falls back to the one the `reply`
 * code stands for; the message may be the element's text or a `<message>`
 * child. Returns null when the input is not an `<error>` at all.
 */
export function parseErrorXml(input: string | Uint8Array, codeOf: (reply: number) => SciStreamErrorCode): SciStreamError | null {
  let el: XmlElement;
  try {
    el = parseXml(input);
  } catch {
    return null;
  }
  if (norm(el.name) !== 'error') return null;
  const replyText = field(el, 'reply');
  const reply = replyText !== undefined && /^[1-5][0-9]{2}$/.test(replyText) ? Number(replyText) : undefined;
  const codeText = (el.attrs.get('code') ?? '').trim().toUpperCase();
  let code: SciStreamErrorCode;
  if (codeText !== 'SUCCESS' && (SCISTREAM_CODES as readonly string[]).includes(codeText)) code = codeText as SciStreamErrorCode;
  else code = codeOf(reply ?? (/^[1-5][0-9]{2}$/.test(codeText) ? Number(codeText) : 451));
  const message = (field(el, 'message') ?? el.text).trim();
  const details = field(el, 'details');
  const retryText = field(el, 'retryafter');
  const retryAfter = retryText !== undefined && /^[0-9]{1,15}$/.test(retryText) ? Number(retryText) : undefined;
  const endpoint = field(el, 'endpoint');
  return new SciStreamError(code, message, {
    ...(reply === undefined ? {} : { replyCode: reply }),
    ...(details === undefined ? {} : { details }),
    ...(retryAfter === undefined ? {} : { retryAfter }),
    ...(endpoint === undefined || endpoint === '' ? {} : { endpoint }),
    origin: 'remote',
  });
}
