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
import { fastMgmt } from './mgmtfast.js';
import {
  XmlError,
  decodeEntities,
  escapeAttr,
  escapeText,
  hasNonXmlChar,
  parseDocument,
  readDocument,
  scanXmlShape,
  type XmlElement,
  type XmlErrorReason,
} from '../xml/index.js';

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

/**
 * A channel-0 message (or a TLS or SASL profile element) could not be
 * understood: an {@link XmlError} (`BEEP_ERR_XML_SYNTAX`, reply code 500, or
 * `BEEP_ERR_XML_PARAMETER`, 501) that keeps its name for `instanceof`.
 */
export class MgmtSyntaxError extends XmlError {
  /** A refusal with reply code 500 (the document; `reason` default `malformed`) or 501 (a parameter). */
  constructor(replyCode: 500 | 501, message: string, reason?: XmlErrorReason, options: { cause?: unknown } = {}) {
    super(replyCode === 501 ? 'parameter' : reason === undefined || reason === 'parameter' ? 'malformed' : reason, message, options);
  }

  /** The same refusal as a MgmtSyntaxError (`err` kept as its cause); `err` itself if it is one already. */
  static from(err: XmlError): MgmtSyntaxError {
    return err instanceof MgmtSyntaxError ? err : new MgmtSyntaxError(err.replyCode, err.message, err.reason, { cause: err });
  }
}

/** Run `f`, turning an {@link XmlError} into a {@link MgmtSyntaxError}. */
export function mgmtXml<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof XmlError) throw MgmtSyntaxError.from(err);
    throw err;
  }
}

// ---------------------------------------------------------------- building

export { escapeAttr, escapeText, decodeEntities, scanXmlShape };

/** Largest piggybacked initialization content, in octets (RFC 3080 §2.3.1.2). */
export const MAX_PIGGYBACK = 4096;

/** `<profile uri='…' />` of the URIs lately written (a start and its reply name the same few URIs again and again). */
const plainProfiles = new Map<string, string>();
const PLAIN_PROFILES = 64;

function plainProfile(uri: string): string {
  let el = plainProfiles.get(uri);
  if (el === undefined) {
    el = `<profile uri='${escapeAttr(uri)}' />`;
    if (plainProfiles.size >= PLAIN_PROFILES) plainProfiles.clear();
    plainProfiles.set(uri, el);
  }
  return el;
}

/**
 * Serialise profile content: in CDATA when it is text that CDATA can carry,
 * base64 otherwise (binary, `]]>`, CR, characters XML cannot hold).
 */
function profileElement(uri: string, content: string | Uint8Array | undefined, forceBase64 = false): string {
  if (content === undefined) return plainProfile(uri);
  const u = escapeAttr(uri);
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  if (bytes.length > MAX_PIGGYBACK) {
    throw new RangeError(`profile content of ${bytes.length} octets exceeds the 4K limit of RFC 3080 §2.3.1.2`);
  }
  const text = typeof content === 'string' ? content : null;
  // CDATA cannot carry a CR either: XML end-of-line handling turns it into LF.
  if (!forceBase64 && text !== null && !text.includes(']]>') && !text.includes('\r') && !hasNonXmlChar(text)) {
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
  let els = '';
  for (const p of profiles) els += profileElement(p.uri, p.content, p.base64);
  return `<start number='${number}'${sn}>${els}</start>`;
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

/** Limits on channel-0 documents. */
export interface MgmtLimits {
  /** Largest document, in octets (default 64 KiB). */
  maxBytes?: number;
  /** Deepest element nesting (default 8; channel-0 documents need 3). */
  maxDepth?: number;
}

function intAttr(el: XmlElement, name: string, min: number, max: number, dflt?: number): number {
  const v = el.attrs.get(name);
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

function replyCode(el: XmlElement): number {
  return intAttr(el, 'code', 100, 599);
}

function tokens(v: string | undefined): string[] {
  return v === undefined ? [] : v.split(/\s+/).filter(Boolean);
}

function parseProfile(el: XmlElement): ProfileElement {
  const uri = el.attrs.get('uri');
  if (!uri) throw new MgmtSyntaxError(501, 'profile element needs a uri attribute');
  const encoding = (el.attrs.get('encoding') ?? 'none').trim();
  if (encoding !== 'none' && encoding !== 'base64') throw new MgmtSyntaxError(501, `unknown profile encoding ${JSON.stringify(encoding)}`);
  // Content as CDATA is taken as is; as text, white space around it is not content.
  const raw = el.cdata !== undefined ? el.cdata : el.text.trim() === '' ? undefined : el.text.trim();
  const out: ProfileElement = { uri };
  if (raw !== undefined) {
    if (encoding === 'base64') {
      const b64 = raw.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new MgmtSyntaxError(501, 'profile content is not valid base64');
      out.content = Buffer.from(b64, 'base64');
      out.base64 = true;
    } else {
      out.content = Buffer.from(raw, 'utf8');
    }
  }
  return out;
}

// Exact shapes of the most frequent elements (as beepstream and most peers
// write them): parsed without the general XML machinery. Anything else —
// other quoting, CDATA, extra attributes — takes the full path below.
// No '>' in a value: legal XML, but the general parser's shape scan refuses "/>" inside one.
const ATTR_VALUE = `'([^'<&>]*)'|"([^"<&>]*)"`;
const FAST_OK = /^\s*<ok\s*\/>\s*$/;
const FAST_CLOSE = new RegExp(`^\\s*<close\\s+number=(?:'([0-9]{1,10})'|"([0-9]{1,10})")\\s+code=(?:'([0-9]{3})'|"([0-9]{3})")\\s*\\/>\\s*$`);
const FAST_PROFILE = new RegExp(`^\\s*<profile\\s+uri=(?:${ATTR_VALUE})\\s*\\/>\\s*$`);
const FAST_START = new RegExp(`^\\s*<start\\s+number=(?:'([0-9]{1,10})'|"([0-9]{1,10})")\\s*>\\s*<profile\\s+uri=(?:${ATTR_VALUE})\\s*\\/>\\s*<\\/start>\\s*$`);

function fastPath(xml: string, maxDepth: number): MgmtElement | null {
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
  // A start nests a profile: depth 2.
  m = maxDepth < 2 ? null : FAST_START.exec(xml);
  if (m) {
    const number = Number(m[1] ?? m[2]);
    const uri = m[3] ?? m[4] ?? '';
    if (number < 1 || number > 2147483647 || !uri) return null;
    return { kind: 'start', number, profiles: [{ uri }] };
  }
  return null;
}

/**
 * Parse a channel-0 document, with the one safe XML reader (`src/xml/`).
 * Throws {@link MgmtSyntaxError} with the reply code to send (500 malformed,
 * 501 bad parameter) when it cannot be used.
 */
export function parseMgmt(input: string | Uint8Array, limits: MgmtLimits = {}): MgmtElement {
  if (typeof input !== 'string') {
    // The exact messages beepstream writes, octet by octet (mgmtfast.ts); anything else below.
    const fast = fastMgmt(input, limits.maxBytes ?? 65536, limits.maxDepth ?? 8);
    if (fast !== null) return fast;
  }
  return mgmtXml(() => {
    // RFC 3080 §6.4: "neither the "XML" declaration ... nor the "DOCTYPE"
    // declaration ... may be present". An XML declaration is harmless and some
    // peers send one, so it is tolerated; a DOCTYPE (and so any entity
    // declaration) is refused before parsing and never expanded.
    const xml = readDocument(input, limits.maxBytes ?? 65536);
    const maxDepth = limits.maxDepth ?? 8;
    return fastPath(xml, maxDepth) ?? fromTree(parseDocument(xml, { maxDepth }));
  });
}

/**
 * @internal Parse with the general parser only (no fast path): what
 * {@link parseMgmt}'s fast paths are tested against.
 */
export function parseMgmtGeneral(input: string | Uint8Array, limits: MgmtLimits = {}): MgmtElement {
  return mgmtXml(() => fromTree(parseDocument(readDocument(input, limits.maxBytes ?? 65536), { maxDepth: limits.maxDepth ?? 8 })));
}

function fromTree(el: XmlElement): MgmtElement {
  const profiles = (): XmlElement[] => el.children.filter((c) => c.name === 'profile');
  switch (el.name) {
    case 'greeting':
      return { kind: 'greeting', profiles: profiles().map((p) => parseProfile(p).uri), features: tokens(el.attrs.get('features')), localize: tokens(el.attrs.get('localize')) };
    case 'start': {
      const number = intAttr(el, 'number', 1, 2147483647);
      const list = profiles();
      if (list.length === 0) throw new MgmtSyntaxError(501, 'start element needs at least one profile');
      const out: { kind: 'start' } & StartElement = { kind: 'start', number, profiles: list.map(parseProfile) };
      const sn = el.attrs.get('serverName');
      if (sn !== undefined) out.serverName = sn;
      return out;
    }
    case 'profile':
      return { kind: 'profile', ...parseProfile(el) };
    case 'close': {
      // DTD §7.1: number defaults to "0"; a missing number releases the session.
      const out: { kind: 'close' } & CloseElement = {
        kind: 'close',
        number: intAttr(el, 'number', 0, 2147483647, 0),
        code: replyCode(el),
        diagnostic: el.text.trim(),
      };
      const lang = el.attrs.get('xml:lang');
      if (lang !== undefined) out.lang = lang;
      return out;
    }
    case 'ok':
      return { kind: 'ok' };
    case 'error': {
      const out: { kind: 'error' } & ErrorElement = { kind: 'error', code: replyCode(el), diagnostic: el.text.trim() };
      const lang = el.attrs.get('xml:lang');
      if (lang !== undefined) out.lang = lang;
      return out;
    }
    default:
      throw new MgmtSyntaxError(500, `unexpected element <${el.name.slice(0, 32)}>`);
  }
}
