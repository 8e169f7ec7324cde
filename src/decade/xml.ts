/**
 * Safe XML for the DRP profile and the XML answers of SDT, in the style of
 * the other control profiles: fast-xml-parser with entity processing off, a
 * DOCTYPE or entity declaration refused before parsing, only the five
 * predefined entities and numeric references decoded, size and nesting
 * bounded. Sent values are escaped.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { decodeEntities, escapeAttr, escapeText, scanXmlShape } from '../channels/index.js';
import { DecadeError } from './errors.js';

export { escapeAttr, escapeText };

/** One parsed element: lower-cased names, decoded attribute values. */
export interface XmlElement {
  readonly name: string;
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  readonly text: string;
}

/** Largest DRP document accepted, in octets (tokens travel in it, and a status listing comes back in it). */
export const MAX_XML = 64 * 1024;

/** Largest status answer accepted by a client, in octets. */
export const MAX_STATUS_XML = 16 * 1024 * 1024;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
  transformTagName: (n: string) => n.toLowerCase(),
  transformAttributeName: (n: string) => n.toLowerCase(),
  isArray: (_n: string, _j: unknown, _l: boolean, isAttribute: boolean) => !isAttribute,
});

function syntax(message: string): DecadeError {
  return new DecadeError('BAD_REQUEST', message, { replyCode: 500 });
}

function decode(s: string): string {
  try {
    return decodeEntities(s);
  } catch {
    throw syntax('only the predefined and numeric entity references are allowed');
  }
}

function convert(name: string, v: unknown): XmlElement {
  if (typeof v === 'string') return { name, attrs: new Map(), children: [], text: decode(v) };
  const attrs = new Map<string, string>();
  const children: XmlElement[] = [];
  let text = '';
  if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (k.startsWith('@')) attrs.set(k.slice(1), decode(String(val)));
      else if (k === '#text') text += decode(String(val));
      else for (const c of Array.isArray(val) ? val : [val]) children.push(convert(k, c));
    }
  }
  return { name, attrs, children, text };
}

/**
 * Parse one document into its root element. Throws {@link DecadeError}
 * `BAD_REQUEST` (reply code 500) when it is too large or too deep, not
 * well-formed, has a DOCTYPE or an unknown entity, or not exactly one root.
 */
export function parseXml(input: string | Uint8Array, maxBytes = MAX_XML, maxDepth = 4): XmlElement {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) throw syntax(`document larger than ${maxBytes} octets`);
  const xml = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) throw syntax('DOCTYPE and entity declarations are not allowed');
  const shape = scanXmlShape(xml, maxDepth);
  if (shape.tooDeep) throw syntax(`XML nested deeper than ${maxDepth}`);
  if (shape.trailing) throw syntax('content after the root element');
  if (XMLValidator.validate(xml) !== true) throw syntax('malformed XML');
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch {
    throw syntax('malformed XML');
  }
  const roots = Object.keys(doc).filter((k) => k !== '#text');
  const root = roots[0];
  const list = root === undefined ? undefined : doc[root];
  if (roots.length !== 1 || root === undefined || !Array.isArray(list) || list.length !== 1) throw syntax('expected exactly one root element');
  return convert(root, list[0]);
}

/** ` name='value'`, escaped; nothing for undefined. */
export function attr(name: string, value: string | number | boolean | undefined | null): string {
  return value === undefined || value === null ? '' : ` ${name}='${escapeAttr(String(value))}'`;
}
