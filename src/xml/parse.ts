/**
 * Reading XML safely, one way for every caller (channel 0, the TLS and SASL
 * profiles, SciStream control and data, DECADE): liberal in what is
 * well-formed XML (either quote, any white space, an XML declaration,
 * comments, processing instructions, CDATA) and strict about everything else.
 *
 * In order, before any XML parser runs, each in linear time:
 *
 * 1. the size, in octets, against `maxBytes` (`too-large`);
 * 2. the encoding: UTF-8 only, invalid octets refused, a leading BOM
 *    skipped, an XML declaration naming another encoding refused (`encoding`);
 * 3. no DOCTYPE, ENTITY, ELEMENT, ATTLIST or NOTATION declaration — RFC 3080
 *    §6.4 — so no entity is ever declared, let alone expanded (`doctype`);
 * 4. no character XML 1.0 cannot carry (`char`);
 * 5. a structural scan: nesting within `maxDepth` (`too-deep`), nothing but
 *    white space, comments and processing instructions after the root (`root`);
 *
 * then fast-xml-parser (validator, then parser, entity processing off), and a
 * walk that decodes the five predefined entities and numeric character
 * references — the same way for text and attribute values — and refuses any
 * other reference (`entity`), a reference to a non-character (`char`), a `<`
 * in an attribute value or `]]>` in text (`malformed`), and other than exactly
 * one root element (`root`). Every refusal is an {@link XmlError} with reply
 * code 500.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { XmlError } from './error.js';
import { hasNonXmlChar } from './escape.js';

/** Bounds on a received document. */
export interface XmlLimits {
  /** Largest document in octets (default {@link DEFAULT_XML_MAX_BYTES}). */
  maxBytes?: number;
  /** Deepest element nesting, the root being 1 (default {@link DEFAULT_XML_MAX_DEPTH}). */
  maxDepth?: number;
}

/** Options of {@link parseXml}. */
export interface XmlParseOptions extends XmlLimits {
  /** Lower-case element and attribute names (SciStream and DECADE documents are case-insensitive). Default false. */
  foldCase?: boolean;
}

/** Default largest document: 64 KiB. */
export const DEFAULT_XML_MAX_BYTES = 64 * 1024;
/** Default deepest nesting: 8 (the documents of beepstream's profiles need at most 3). */
export const DEFAULT_XML_MAX_DEPTH = 8;

/** One parsed element. */
export interface XmlElement {
  /** Element name (lower-cased with `foldCase`). */
  readonly name: string;
  /** Attribute values, decoded (names lower-cased with `foldCase`). */
  readonly attrs: ReadonlyMap<string, string>;
  /** Child elements in document order. */
  readonly children: readonly XmlElement[];
  /** All character data directly inside the element (text and CDATA sections, in document order), decoded, untrimmed. */
  readonly text: string;
  /** The CDATA sections directly inside the element, concatenated; `undefined` when there is none. */
  readonly cdata: string | undefined;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  commentPropName: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

const utf8 = new TextDecoder('utf-8', { fatal: true });
const DECLARATION = /<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;
const XML_DECL_ENCODING = /^<\?xml\s[^?>]*?encoding\s*=\s*(?:"([^"]*)"|'([^']*)')/;
const UTF8_NAMES = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

/**
 * Steps 1–4 of the module description: size, encoding, declarations and
 * characters. Returns the document as a string (without a BOM). For callers
 * with a fast path of their own for exact shapes, which must run after this.
 */
export function readDocument(input: string | Uint8Array, maxBytes = DEFAULT_XML_MAX_BYTES): string {
  const size = typeof input === 'string' ? (input.length > maxBytes ? Infinity : Buffer.byteLength(input)) : input.byteLength;
  if (size > maxBytes) throw new XmlError('too-large', `XML document larger than ${maxBytes} octets`);
  let xml: string;
  if (typeof input === 'string') xml = input;
  else {
    try {
      xml = utf8.decode(input);
    } catch (err) {
      throw new XmlError('encoding', 'XML document is not valid UTF-8', { cause: err });
    }
  }
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  const decl = XML_DECL_ENCODING.exec(xml.slice(0, 256));
  if (decl) {
    const enc = (decl[1] ?? decl[2] ?? '').trim().toLowerCase();
    if (!UTF8_NAMES.has(enc)) throw new XmlError('encoding', `XML encoding ${JSON.stringify(enc.slice(0, 20))} is not UTF-8`);
  }
  // RFC 3080 §6.4: no DOCTYPE; so no entity is ever declared or expanded.
  if (DECLARATION.test(xml)) throw new XmlError('doctype', 'DOCTYPE and entity declarations are not allowed');
  if (hasNonXmlChar(xml)) throw new XmlError('char', 'XML document holds a character XML cannot carry (a control character, U+FFFE, U+FFFF or a lone surrogate)');
  return xml;
}

/**
 * A cheap structural scan that runs before any XML parser: opening tags minus
 * closing ones, outside CDATA sections and comments. Reports whether nesting
 * exceeds `maxDepth` and whether anything but white space, comments or
 * processing instructions follows the end of the root element. Linear time.
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

/** Whether `xml` from `i` holds only white space, comments and processing instructions (a CDATA section is text, so not). */
function onlyMisc(xml: string, i: number): boolean {
  for (;;) {
    while (i < xml.length && /\s/.test(xml[i] as string)) i++;
    if (i >= xml.length) return true;
    if (xml[i] !== '<') return false;
    let next: number | null = null;
    if (xml.startsWith('<!--', i)) next = skipOver(xml, i);
    else if (xml[i + 1] === '?') {
      const at = xml.indexOf('?>', i + 2);
      next = at < 0 ? -1 : at + 2;
    }
    if (next === null || next < 0) return false;
    i = next;
  }
}

// `&` then a name or a character reference, then `;` — anything else after `&` is refused.
const REFERENCE = /&(?:(#[0-9]{1,8}|#x[0-9a-fA-F]{1,8}|[A-Za-z_:][A-Za-z0-9._:-]{0,31});)?/g;
const PREDEFINED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

/** Whether `cp` is an XML 1.0 `Char` (§2.2). */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/**
 * Decode the five predefined entities and numeric character references; throw
 * {@link XmlError} (`entity`) for any other reference or a bare `&`, (`char`)
 * for a reference to a character XML cannot carry (RFC 3080 §6.4).
 */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(REFERENCE, (_m, ref: string | undefined) => {
    if (ref === undefined) throw new XmlError('entity', "a bare '&' (not a complete entity or character reference)");
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!isXmlChar(cp)) throw new XmlError('char', `character reference &${ref}; is not an XML character`);
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[ref];
    if (v === undefined) throw new XmlError('entity', `entity reference &${ref}; is not allowed (only the five predefined ones and character references)`);
    return v;
  });
}

type Node = Record<string, unknown>;

function textOfNodes(nodes: unknown): string {
  let out = '';
  if (Array.isArray(nodes)) for (const n of nodes) if (n && typeof n === 'object' && typeof (n as Node)['#text'] === 'string') out += (n as Node)['#text'] as string;
  return out;
}

function convert(node: Node, depth: number, options: XmlParseOptions, maxDepth: number): XmlElement {
  if (depth > maxDepth) throw new XmlError('too-deep', `XML nested deeper than ${maxDepth}`);
  const rawName = Object.keys(node).find((k) => k !== ':@') as string;
  const name = options.foldCase ? rawName.toLowerCase() : rawName;
  const attrs = new Map<string, string>();
  const rawAttrs = node[':@'];
  if (rawAttrs && typeof rawAttrs === 'object') {
    for (const [k, v] of Object.entries(rawAttrs as Record<string, unknown>)) {
      const key = options.foldCase ? k.toLowerCase() : k;
      const value = String(v);
      if (value.includes('<')) throw new XmlError('malformed', `'<' in the value of attribute ${key.slice(0, 32)}`);
      if (attrs.has(key)) throw new XmlError('malformed', `attribute ${key.slice(0, 32)} is repeated`);
      attrs.set(key, decodeEntities(value));
    }
  }
  const children: XmlElement[] = [];
  let text = '';
  let cdata: string | undefined;
  const content = node[rawName];
  if (Array.isArray(content)) {
    for (const c of content as Node[]) {
      if (c === null || typeof c !== 'object') continue;
      if (typeof c['#text'] === 'string') {
        const t = c['#text'];
        if (t.includes(']]>')) throw new XmlError('malformed', "']]>' in text outside a CDATA section");
        text += decodeEntities(t);
      } else if ('#cdata' in c) {
        const t = textOfNodes(c['#cdata']);
        text += t;
        cdata = (cdata ?? '') + t;
      } else children.push(convert(c, depth + 1, options, maxDepth));
    }
  }
  return { name, attrs, children, text, cdata };
}

/**
 * Parse a document already read by {@link readDocument} (steps 5 on of the
 * module description) into its root element.
 */
export function parseDocument(xml: string, options: XmlParseOptions = {}): XmlElement {
  const maxDepth = options.maxDepth ?? DEFAULT_XML_MAX_DEPTH;
  const shape = scanXmlShape(xml, maxDepth);
  if (shape.tooDeep) throw new XmlError('too-deep', `XML nested deeper than ${maxDepth}`);
  if (shape.trailing) throw new XmlError('root', 'content after the root element');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new XmlError('malformed', `malformed XML: ${valid.err.msg.slice(0, 120)} (line ${valid.err.line}, column ${valid.err.col})`);
  let doc: unknown;
  try {
    doc = parser.parse(xml);
  } catch (err) {
    // The validator lets through a few documents the parser then refuses (reserved names, …).
    throw new XmlError('malformed', `malformed XML: ${((err as Error).message ?? '').slice(0, 120)}`, { cause: err });
  }
  const top = Array.isArray(doc) ? (doc as Node[]) : [];
  const roots: Node[] = [];
  for (const n of top) {
    if (n === null || typeof n !== 'object') continue;
    if (typeof n['#text'] === 'string') {
      if ((n['#text'] as string).trim() !== '') throw new XmlError('root', 'text outside the root element');
    } else if ('#cdata' in n) throw new XmlError('root', 'a CDATA section outside the root element');
    else roots.push(n);
  }
  if (roots.length !== 1) throw new XmlError('root', roots.length === 0 ? 'no root element' : 'more than one root element');
  return convert(roots[0] as Node, 1, options, maxDepth);
}

/**
 * Parse one received document into its root element, safely (see the module
 * description). Throws {@link XmlError} with reply code 500 when the document
 * is refused.
 */
export function parseXml(input: string | Uint8Array, options: XmlParseOptions = {}): XmlElement {
  return parseDocument(readDocument(input, options.maxBytes ?? DEFAULT_XML_MAX_BYTES), options);
}

/** The first child of `el` named `name`, if any. */
export function childOf(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}
