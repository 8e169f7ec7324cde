/**
 * Channel 0 messages (RFC 3080 §2.3, DTD in §7.1): building them with correct
 * escaping, and parsing what peers send, liberally (any whitespace, single or
 * double quotes, CDATA or text, optional XML declaration) but safely (no
 * DOCTYPE, no entity other than the five predefined and numeric references,
 * bounded size and depth — RFC 3080 §6.4).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** A `<greeting>` (RFC 3080 §2.3.1.1). */
export interface Greeting {
  profiles: string[];
  features: string[];
  localize: string[];
}

/** One `<profile>` of a `<start>` or of its positive reply. */
export interface ProfileElement {
  uri: string;
  /** Initialization content, decoded (base64 undone) — `undefined` when absent. */
  content?: Buffer;
  /** Whether the content was sent base64-encoded. */
  base64?: boolean;
}

/** A `<start>` (RFC 3080 §2.3.1.2). */
export interface StartElement {
  number: number;
  serverName?: string;
  profiles: ProfileElement[];
}

/** A `<close>` (RFC 3080 §2.3.1.3). `number` defaults to 0 (DTD §7.1). */
export interface CloseElement {
  number: number;
  code: number;
  diagnostic: string;
  lang?: string;
}

/** An `<error>` (RFC 3080 §2.3.1.5). */
export interface ErrorElement {
  code: number;
  diagnostic: string;
  lang?: string;
}

/** Any channel-0 element, tagged. */
export type MgmtElement =
  | ({ kind: 'greeting' } & Greeting)
  | ({ kind: 'start' } & StartElement)
  | ({ kind: 'profile' } & ProfileElement)
  | ({ kind: 'close' } & CloseElement)
  | { kind: 'ok' }
  | ({ kind: 'error' } & ErrorElement);

/** A channel-0 message could not be understood; carries the reply code to answer with. */
export class MgmtSyntaxError extends Error {
  constructor(
    readonly replyCode: 500 | 501 | 553,
    message: string,
  ) {
    super(message);
    this.name = 'MgmtSyntaxError';
  }
}

// ---------------------------------------------------------------- building

/** Escape text for an attribute value quoted with `'`. */
export function escapeAttr(s: string): string {
  return s.replace(/[&<>'"\r\n\t]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case "'": return '&apos;';
      case '"': return '&quot;';
      default: return `&#${c.charCodeAt(0)};`;
    }
  });
}

/** Escape character data (CR as a reference: XML parsers normalise a literal CR to LF). */
export function escapeText(s: string): string {
  return s.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

// Characters XML 1.0 cannot carry even escaped (C0 controls other than TAB, LF, CR).
// eslint-disable-next-line no-control-regex
const NON_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

/** Largest piggybacked initialization content, in octets (RFC 3080 §2.3.1.2). */
export const MAX_PIGGYBACK = 4096;

/**
 * Serialise profile content: in CDATA when it is text that CDATA can carry,
 * base64 otherwise (binary, `]]>`, CR, characters XML cannot hold).
 */
function profileElement(uri: string, content: string | Uint8Array | undefined, forceBase64 = false): string {
  const u = escapeAttr(uri);
  if (content === undefined) return `<profile uri='${u}' />`;
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  if (bytes.length > MAX_PIGGYBACK) {
    throw new RangeError(`profile content of ${bytes.length} octets exceeds the 4K limit of RFC 3080 §2.3.1.2`);
  }
  const text = typeof content === 'string' ? content : null;
  // CDATA cannot carry a CR either: XML end-of-line handling turns it into LF.
  if (!forceBase64 && text !== null && !text.includes(']]>') && !text.includes('\r') && !NON_XML.test(text)) {
    return `<profile uri='${u}'><![CDATA[${text}]]></profile>`;
  }
  return `<profile uri='${u}' encoding='base64'>${bytes.toString('base64')}</profile>`;
}

/** Build a `<greeting>`. */
export function buildGreeting(g: Partial<Greeting>): string {
  let attrs = '';
  if (g.features && g.features.length) attrs += ` features='${escapeAttr(g.features.join(' '))}'`;
  if (g.localize && g.localize.length) attrs += ` localize='${escapeAttr(g.localize.join(' '))}'`;
  const profiles = g.profiles ?? [];
  if (profiles.length === 0) return `<greeting${attrs} />`;
  return `<greeting${attrs}>${profiles.map((p) => profileElement(p, undefined)).join('')}</greeting>`;
}

/** Build a `<start>`. */
export function buildStart(
  number: number,
  profiles: readonly { uri: string; content?: string | Uint8Array; base64?: boolean }[],
  serverName?: string,
): string {
  const sn = serverName === undefined ? '' : ` serverName='${escapeAttr(serverName)}'`;
  return `<start number='${number}'${sn}>${profiles.map((p) => profileElement(p.uri, p.content, p.base64)).join('')}</start>`;
}

/** Build the `<profile>` of a positive reply to a start. */
export function buildProfileReply(uri: string, content?: string | Uint8Array): string {
  return profileElement(uri, content);
}

/** Build a `<close>`; `number` is always written, even when 0. */
export function buildClose(number: number, code: number, diagnostic?: string, lang?: string): string {
  const l = lang ? ` xml:lang='${escapeAttr(lang)}'` : '';
  const head = `<close number='${number}' code='${code}'${l}`;
  return diagnostic ? `${head}>${escapeText(diagnostic)}</close>` : `${head} />`;
}

/** Build `<ok />`. */
export function buildOk(): string {
  return '<ok />';
}

/** Build an `<error>`. */
export function buildError(code: number, diagnostic?: string, lang?: string): string {
  const l = lang ? ` xml:lang='${escapeAttr(lang)}'` : '';
  return diagnostic ? `<error code='${code}'${l}>${escapeText(diagnostic)}</error>` : `<error code='${code}'${l} />`;
}

// ---------------------------------------------------------------- parsing

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => name === 'profile',
});

const ENTITY = /&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);/g;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

/** Decode the five predefined entities and numeric references; refuse any other (RFC 3080 §6.4). */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY, (_m, ref: string) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!Number.isFinite(cp) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp === 0) {
        throw new MgmtSyntaxError(500, `invalid character reference &${ref};`);
      }
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[ref];
    if (v === undefined) throw new MgmtSyntaxError(500, `entity reference &${ref}; not allowed in application/beep+xml`);
    return v;
  });
}

/** Limits on channel-0 documents. */
export interface MgmtLimits {
  /** Largest document, in octets (default 64 KiB). */
  maxBytes?: number;
  /** Deepest element nesting (default 8; channel-0 documents need 3). */
  maxDepth?: number;
}

/**
 * A cheap structural scan that runs before any XML parser: opening tags minus
 * closing ones, outside CDATA sections and comments. Reports whether nesting
 * exceeds `maxDepth` and whether anything but white space or processing
 * instructions follows the end of the root element.
 */
export function scanXmlShape(xml: string, maxDepth: number): { tooDeep: boolean; trailing: boolean } {
  // One pass with indexOf, in linear time: a regular expression searching for
  // the end of every "<" (or comment) took time quadratic in the size of a
  // document full of unterminated ones.
  let depth = 0;
  let i = 0;
  for (;;) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) return { tooDeep: false, trailing: false };
    const close = skipOver(xml, lt);
    if (close !== null) {
      if (close < 0) return { tooDeep: false, trailing: false }; // unterminated: nothing more to count
      i = close;
      continue;
    }
    const name = xml[lt + 1] === '/' ? lt + 2 : lt + 1;
    if (!/[A-Za-z_]/.test(xml[name] ?? '')) {
      i = lt + 1;
      continue;
    }
    const gt = xml.indexOf('>', name);
    if (gt < 0) return { tooDeep: false, trailing: false }; // no tag can end any more
    if (name === lt + 2) depth--;
    else if (xml[gt - 1] !== '/' && ++depth > maxDepth) return { tooDeep: true, trailing: false };
    i = gt + 1;
    if (depth === 0) return { tooDeep: false, trailing: !onlyMisc(xml, i) };
  }
}

/** At a `<`: the index just past the CDATA section or comment starting there (-1 if unterminated), or null if none does. */
function skipOver(xml: string, lt: number): number | null {
  const end = xml.startsWith('<![CDATA[', lt) ? ']]>' : xml.startsWith('<!--', lt) ? '-->' : null;
  if (end === null) return null;
  const at = xml.indexOf(end, lt + 4);
  return at < 0 ? -1 : at + 3;
}

/** Whether `xml` from `i` holds only white space, comments, CDATA sections and processing instructions. */
function onlyMisc(xml: string, i: number): boolean {
  for (;;) {
    while (i < xml.length && /\s/.test(xml[i] as string)) i++;
    if (i >= xml.length) return true;
    if (xml[i] !== '<') return false;
    let next = skipOver(xml, i);
    if (next === null && xml[i + 1] === '?') {
      const at = xml.indexOf('?>', i + 2);
      next = at < 0 ? -1 : at + 2;
    }
    if (next === null || next < 0) return false;
    i = next;
  }
}

function attr(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  return typeof v === 'string' ? decodeEntities(v) : undefined;
}

function textOf(o: unknown): string {
  if (typeof o === 'string') return decodeEntities(o);
  if (o && typeof o === 'object') {
    const rec = o as Record<string, unknown>;
    const t = rec['#text'];
    // Liberal: a diagnostic may come as CDATA (its sections are appended after the text).
    const c = rec['#cdata'];
    const cdata = typeof c === 'string' ? c : Array.isArray(c) ? c.filter((x) => typeof x === 'string').join('') : '';
    return (typeof t === 'string' ? decodeEntities(t) : '') + cdata;
  }
  return '';
}

function intAttr(o: Record<string, unknown>, name: string, min: number, max: number, dflt?: number): number {
  const v = attr(o, name);
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new MgmtSyntaxError(501, `missing ${name} attribute`);
  }
  const t = v.trim();
  if (!/^[0-9]{1,10}$/.test(t) || Number(t) < min || Number(t) > max) {
    throw new MgmtSyntaxError(501, `invalid ${name} attribute ${JSON.stringify(v.slice(0, 20))}`);
  }
  return Number(t);
}

function replyCode(o: Record<string, unknown>): number {
  return intAttr(o, 'code', 100, 599);
}

function tokens(v: string | undefined): string[] {
  return v === undefined ? [] : v.split(/\s+/).filter(Boolean);
}

function parseProfile(p: unknown): ProfileElement {
  if (p === null || typeof p !== 'object') {
    throw new MgmtSyntaxError(501, 'profile element needs a uri attribute');
  }
  const o = p as Record<string, unknown>;
  const uri = attr(o, 'uri');
  if (!uri) throw new MgmtSyntaxError(501, 'profile element needs a uri attribute');
  const encoding = (attr(o, 'encoding') ?? 'none').trim();
  if (encoding !== 'none' && encoding !== 'base64') throw new MgmtSyntaxError(501, `unknown profile encoding ${JSON.stringify(encoding)}`);
  const cdata = o['#cdata'];
  const raw = typeof cdata === 'string' ? cdata : textOf(o).trim() === '' ? undefined : textOf(o);
  const out: ProfileElement = { uri };
  if (raw !== undefined) {
    if (encoding === 'base64') {
      const b64 = raw.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new MgmtSyntaxError(501, 'profile content is not valid base64');
      out.content = Buffer.from(b64, 'base64');
      out.base64 = true;
    } else {
      out.content = Buffer.from(typeof cdata === 'string' ? raw : raw.trim(), 'utf8');
    }
  }
  return out;
}

// Exact shapes of the most frequent elements (as beepstream and most peers
// write them): parsed without the general XML machinery. Anything else —
// other quoting, CDATA, extra attributes — takes the full path below.
const ATTR_VALUE = `'([^'<&]*)'|"([^"<&]*)"`;
const FAST_OK = /^\s*<ok\s*\/>\s*$/;
const FAST_CLOSE = new RegExp(`^\\s*<close\\s+number=(?:'([0-9]{1,10})'|"([0-9]{1,10})")\\s+code=(?:'([0-9]{3})'|"([0-9]{3})")\\s*\\/>\\s*$`);
const FAST_PROFILE = new RegExp(`^\\s*<profile\\s+uri=(?:${ATTR_VALUE})\\s*\\/>\\s*$`);
const FAST_START = new RegExp(`^\\s*<start\\s+number=(?:'([0-9]{1,10})'|"([0-9]{1,10})")\\s*>\\s*<profile\\s+uri=(?:${ATTR_VALUE})\\s*\\/>\\s*<\\/start>\\s*$`);

function fastPath(xml: string): MgmtElement | null {
  if (xml.length > 512) return null;
  if (FAST_OK.test(xml)) return { kind: 'ok' };
  let m = FAST_CLOSE.exec(xml);
  if (m) {
    const number = Number(m[1] ?? m[2]);
    const code = Number(m[3] ?? m[4]);
    if (number > 2147483647 || code < 100 || code > 599) return null;
    return { kind: 'close', number, code, diagnostic: '' };
  }
  m = FAST_PROFILE.exec(xml);
  if (m) {
    const uri = m[1] ?? m[2] ?? '';
    return uri ? { kind: 'profile', uri } : null;
  }
  m = FAST_START.exec(xml);
  if (m) {
    const number = Number(m[1] ?? m[2]);
    const uri = m[3] ?? m[4] ?? '';
    if (number < 1 || number > 2147483647 || !uri) return null;
    return { kind: 'start', number, profiles: [{ uri }] };
  }
  return null;
}

/**
 * Parse a channel-0 document. Throws {@link MgmtSyntaxError} with the reply
 * code to send (500 malformed, 501 bad parameter) when it cannot be used.
 */
export function parseMgmt(input: string | Uint8Array, limits: MgmtLimits = {}): MgmtElement {
  const maxBytes = limits.maxBytes ?? 65536;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) throw new MgmtSyntaxError(500, `channel 0 message larger than ${maxBytes} octets`);
  const xml = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  // RFC 3080 §6.4: "neither the "XML" declaration ... nor the "DOCTYPE"
  // declaration ... may be present". An XML declaration is harmless and some
  // peers send one, so it is tolerated; a DOCTYPE (and so any entity
  // declaration) is refused before parsing and never expanded.
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) {
    throw new MgmtSyntaxError(500, 'DOCTYPE and entity declarations are not allowed');
  }
  const fast = fastPath(xml);
  if (fast) return fast;
  const maxDepth = limits.maxDepth ?? 8;
  if (scanXmlShape(xml, maxDepth).tooDeep) throw new MgmtSyntaxError(500, `XML nested deeper than ${maxDepth}`);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new MgmtSyntaxError(500, `malformed XML: ${valid.err.msg}`);
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch (err) {
    throw new MgmtSyntaxError(500, `malformed XML: ${(err as Error).message}`);
  }
  const roots = Object.keys(doc).filter((k) => k !== '#text');
  if (roots.length !== 1) throw new MgmtSyntaxError(500, 'expected exactly one root element');
  const name = roots[0] as string;
  const rawEl = doc[name];
  const el: Record<string, unknown> = rawEl !== null && typeof rawEl === 'object' && !Array.isArray(rawEl) ? (rawEl as Record<string, unknown>) : {};
  if (Array.isArray(rawEl)) {
    // isArray only wraps <profile>; a bare <profile> reply is a one-element array.
    if (rawEl.length !== 1) throw new MgmtSyntaxError(500, 'expected exactly one root element');
  }
  switch (name) {
    case 'greeting': {
      const profiles = (Array.isArray(el.profile) ? el.profile : []).map((p) => parseProfile(p).uri);
      return { kind: 'greeting', profiles, features: tokens(attr(el, 'features')), localize: tokens(attr(el, 'localize')) };
    }
    case 'start': {
      const number = intAttr(el, 'number', 1, 2147483647);
      const list = Array.isArray(el.profile) ? el.profile : [];
      if (list.length === 0) throw new MgmtSyntaxError(501, 'start element needs at least one profile');
      const out: { kind: 'start' } & StartElement = { kind: 'start', number, profiles: list.map(parseProfile) };
      const sn = attr(el, 'serverName');
      if (sn !== undefined) out.serverName = sn;
      return out;
    }
    case 'profile': {
      const p = Array.isArray(rawEl) ? rawEl[0] : rawEl;
      return { kind: 'profile', ...parseProfile(p) };
    }
    case 'close': {
      // DTD §7.1: number defaults to "0"; a missing number releases the session.
      const out: { kind: 'close' } & CloseElement = {
        kind: 'close',
        number: intAttr(el, 'number', 0, 2147483647, 0),
        code: replyCode(el),
        diagnostic: textOf(rawEl).trim(),
      };
      const lang = attr(el, 'xml:lang');
      if (lang !== undefined) out.lang = lang;
      return out;
    }
    case 'ok':
      return { kind: 'ok' };
    case 'error': {
      const out: { kind: 'error' } & ErrorElement = { kind: 'error', code: replyCode(el), diagnostic: textOf(rawEl).trim() };
      const lang = attr(el, 'xml:lang');
      if (lang !== undefined) out.lang = lang;
      return out;
    }
    default:
      throw new MgmtSyntaxError(500, `unexpected element <${name.slice(0, 32)}>`);
  }
}
