/**
 * Safe XML for the control profile: received documents are parsed liberally
 * (either quote, any white space, an XML declaration, comments, CDATA,
 * element and attribute names in any case) but safely — a DOCTYPE or entity
 * declaration is refused before parsing and never expanded, only the five
 * predefined entities and numeric references are decoded, size and nesting
 * are bounded. Sent text is escaped and cleaned of what XML cannot carry.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { decodeEntities, escapeAttr, escapeText, scanXmlShape } from '../../channels/index.js';
import { BAD_FORMAT_SYNTAX, SciStreamError } from './errors.js';

export { escapeAttr, escapeText };

/** One element of a parsed document: lower-cased names, decoded attribute values and text. */
export interface XmlElement {
  readonly name: string;
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Character data directly inside the element (text and CDATA), decoded, untrimmed. */
  readonly text: string;
}

/** Bounds on a received document. */
export interface XmlLimits {
  /** Largest document in octets (default 64 KiB). */
  maxBytes?: number;
  /** Deepest element nesting (default 6; control documents need 3). */
  maxDepth?: number;
}

/** Default largest control document, in octets. */
export const MAX_DOCUMENT = 64 * 1024;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
  transformTagName: (n: string) => n.toLowerCase(),
  transformAttributeName: (n: string) => n.toLowerCase(),
  // Every element becomes an array, so one shape covers one and many.
  isArray: (_name: string, _jpath: unknown, _leaf: boolean, isAttribute: boolean) => !isAttribute,
});

function syntax(message: string): SciStreamError {
  return new SciStreamError('BAD_FORMAT', message, { replyCode: BAD_FORMAT_SYNTAX });
}

function checkStructure(xml: string, maxDepth: number): void {
  // Before the parser runs: bounded nesting, and nothing after the root element
  // (the parser would silently drop trailing text).
  const shape = scanXmlShape(xml, maxDepth);
  if (shape.tooDeep) throw syntax(`XML nested deeper than ${maxDepth}`);
  if (shape.trailing) throw syntax('content after the root element');
}

function decode(s: string): string {
  try {
    return decodeEntities(s);
  } catch {
    throw syntax('entity references other than the predefined five and numeric ones are not allowed');
  }
}

function convert(name: string, v: unknown): XmlElement {
  if (typeof v === 'string') return { name, attrs: new Map(), children: [], text: decode(v) };
  const attrs = new Map<string, string>();
  const children: XmlElement[] = [];
  let text = '';
  let cdata = '';
  if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (k.startsWith('@')) attrs.set(k.slice(1), decode(String(val)));
      else if (k === '#text') text += decode(String(val));
      else if (k === '#cdata') cdata += Array.isArray(val) ? val.map(String).join('') : String(val);
      else for (const c of Array.isArray(val) ? val : [val]) children.push(convert(k, c));
    }
  }
  return { name, attrs, children, text: text + cdata };
}

/**
 * Parse one control document into its root element. Throws
 * {@link SciStreamError} `BAD_FORMAT` (reply code 500) when it is too large,
 * too deep, not well-formed, has a DOCTYPE or an unknown entity, or has other
 * than exactly one root element.
 */
export function parseXml(input: string | Uint8Array, limits: XmlLimits = {}): XmlElement {
  const maxBytes = limits.maxBytes ?? MAX_DOCUMENT;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) throw syntax(`control document larger than ${maxBytes} octets`);
  const xml = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  // RFC 3080 §6.4 spirit: no DOCTYPE, so no entity declaration is ever expanded.
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) throw syntax('DOCTYPE and entity declarations are not allowed');
  checkStructure(xml, limits.maxDepth ?? 6);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw syntax(`malformed XML: ${valid.err.msg}`);
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch (err) {
    throw syntax(`malformed XML: ${(err as Error).message.slice(0, 100)}`);
  }
  const roots = Object.keys(doc).filter((k) => k !== '#text' && k !== '#cdata');
  const root = roots[0];
  const list = root === undefined ? undefined : doc[root];
  if (roots.length !== 1 || root === undefined || !Array.isArray(list) || list.length !== 1) {
    throw syntax('expected exactly one root element');
  }
  const stray = doc['#text'];
  if ((typeof stray === 'string' && stray.trim() !== '') || doc['#cdata'] !== undefined) throw syntax('text outside the root element');
  return convert(root, list[0]);
}

// Characters XML 1.0 cannot carry even escaped (C0 controls other than TAB, LF, CR; U+FFFE, U+FFFF).
// eslint-disable-next-line no-control-regex
const NON_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Make human text sendable: lone surrogates and characters XML cannot carry
 * become U+FFFD, and the text is cut to `max` UTF-16 units (never inside a
 * surrogate pair).
 */
export function cleanText(s: string, max: number): string {
  let t = s.replace(LONE_SURROGATE, '\uFFFD').replace(NON_XML, '\uFFFD');
  if (t.length > max) {
    let end = max;
    const c = t.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end--;
    t = t.slice(0, end);
  }
  return t;
}

/** An attribute `name='value'`, escaped (with a leading space). */
export function attr(name: string, value: string | number | boolean): string {
  return ` ${name}='${escapeAttr(String(value))}'`;
}

/** An element `<name>text</name>` with escaped text. */
export function textElement(name: string, text: string): string {
  return `<${name}>${escapeText(text)}</${name}>`;
}
