/**
 * The one table of hostile (and tricky but valid) XML documents, and the
 * callers it runs through: every place in beepstream that parses XML it
 * received. A case builds its document around `inner`, placed as the content
 * of the caller's own root element (`wrap`), so the same attack reaches every
 * parser in a document it would otherwise accept.
 */
import { Buffer } from 'node:buffer';
import { parseXml, type XmlErrorReason } from '../../src/xml/index.js';
import { parseMgmt } from '../../src/channels/mgmt.js';
import { parseTlsElement } from '../../src/profiles/tls.js';
import { parseSaslElement } from '../../src/profiles/sasl-beep.js';
import { parseMessage } from '../../src/scistream/control/messages.js';
import { parseControl, parseStreamInit } from '../../src/scistream/data/wire.js';
import { parseDrpRequest } from '../../src/decade/wire.js';
import { parseXml as parseDecadeXml } from '../../src/decade/xml.js';

/** What a caller must do with a document. */
export type Verdict = { accept: true; text?: string } | { accept: false; reason: XmlErrorReason };

/** One row: a name, the document (built around the caller's root), the verdict. */
export interface HostileCase {
  name: string;
  doc: (wrap: (inner: string) => string) => string | Uint8Array;
  verdict: Verdict;
}

/** A caller: how to wrap `inner` into a document it accepts, and how to parse (returning the text it exposes, if any). */
export interface XmlCaller {
  name: string;
  wrap: (inner: string) => string;
  /** Parse the document as the caller does; the decoded text inside the root, where the caller exposes one. */
  parse: (doc: Uint8Array) => string | undefined;
}

const UID = '0123456789abcdef0123456789abcdef';

/** Every caller that parses received XML. */
export const CALLERS: readonly XmlCaller[] = [
  { name: 'src/xml parseXml', wrap: (i) => `<r a='1'>${i}</r>`, parse: (d) => parseXml(d).text.trim() },
  { name: 'channel 0 (parseMgmt)', wrap: (i) => `<error code='550'>${i}</error>`, parse: (d) => (parseMgmt(d) as { diagnostic: string }).diagnostic },
  { name: 'TLS profile (parseTlsElement)', wrap: (i) => `<error code='550'>${i}</error>`, parse: (d) => (parseTlsElement(d) as { diagnostic: string }).diagnostic },
  { name: 'SASL profile (parseSaslElement)', wrap: (i) => `<error code='550'>${i}</error>`, parse: (d) => (parseSaslElement(d) as { diagnostic: string }).diagnostic },
  {
    name: 'SciStream control (parseMessage)',
    wrap: (i) => `<appresponse uid='${UID}'><message>${i}</message></appresponse>`,
    parse: (d) => (parseMessage(d) as { message: string }).message,
  },
  { name: 'SciStream data-control (parseControl)', wrap: (i) => `<reset channel='1'>${i}</reset>`, parse: (d) => void parseControl(d) },
  { name: 'SciStream data init (parseStreamInit)', wrap: (i) => `<stream index='0'>${i}</stream>`, parse: (d) => void parseStreamInit(d) },
  {
    name: 'DECADE DRP (parseDrpRequest)',
    wrap: (i) => `<status token='t'>${i}</status>`,
    parse: (d) => {
      parseDrpRequest(d);
      return parseDecadeXml(d).text.trim();
    },
  },
];

/** A document whose text at `inner` is replaced by raw octets. */
function withBytes(wrap: (inner: string) => string, bytes: number[]): Uint8Array {
  const [head, tail] = wrap('\u0000SPLIT\u0000').split('\u0000SPLIT\u0000') as [string, string];
  return Buffer.concat([Buffer.from(head), Buffer.from(bytes), Buffer.from(tail)]);
}

const LAUGHS = ['<!DOCTYPE lolz [', '<!ENTITY lol "lol">']
  .concat(Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`))
  .concat([']>'])
  .join('\n');

const refuse = (reason: XmlErrorReason): Verdict => ({ accept: false, reason });

/** The table. */
export const HOSTILE: readonly HostileCase[] = [
  // Declarations: refused before any parser runs, so nothing is ever declared or expanded.
  { name: 'DOCTYPE with an internal entity', doc: (w) => `<!DOCTYPE r [<!ENTITY x "boom">]>${w('&x;')}`, verdict: refuse('doctype') },
  { name: 'billion laughs', doc: (w) => `${LAUGHS}${w('&lol9;')}`, verdict: refuse('doctype') },
  { name: 'external entity (XXE, file)', doc: (w) => `<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${w('&xxe;')}`, verdict: refuse('doctype') },
  { name: 'external DTD (network)', doc: (w) => `<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">${w('x')}`, verdict: refuse('doctype') },
  { name: 'parameter entity', doc: (w) => `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p"> %p;]>${w('x')}`, verdict: refuse('doctype') },
  { name: 'doctype in lower case after an XML declaration', doc: (w) => `<?xml version="1.0"?><!doctype r>${w('x')}`, verdict: refuse('doctype') },
  { name: 'ENTITY declaration after the root', doc: (w) => `${w('x')}<!ENTITY x "y">`, verdict: refuse('doctype') },
  { name: 'DOCTYPE hidden in a CDATA section (refused all the same)', doc: (w) => w('<![CDATA[<!DOCTYPE r>]]>'), verdict: refuse('doctype') },
  { name: 'DOCTYPE hidden in a comment (refused all the same)', doc: (w) => w('<!-- <!DOCTYPE r> -->'), verdict: refuse('doctype') },
  // Entities and character references.
  { name: 'undeclared entity', doc: (w) => w('&xxe;'), verdict: refuse('entity') },
  { name: 'HTML entity', doc: (w) => w('&nbsp;'), verdict: refuse('entity') },
  { name: 'unknown entity in an attribute', doc: (w) => w("<a v='&xxe;'/>"), verdict: refuse('entity') },
  { name: 'bare & in an attribute', doc: (w) => w("<a v='a & b'/>"), verdict: refuse('entity') },
  { name: 'bare & in text', doc: (w) => w('a & b'), verdict: refuse('malformed') },
  { name: 'character reference to NUL', doc: (w) => w('&#0;'), verdict: refuse('char') },
  { name: 'character reference to a C0 control', doc: (w) => w('&#x1B;'), verdict: refuse('char') },
  { name: 'character reference to a surrogate', doc: (w) => w('&#xD800;'), verdict: refuse('char') },
  { name: 'character reference beyond Unicode', doc: (w) => w('&#x110000;'), verdict: refuse('char') },
  { name: 'character reference with too many digits', doc: (w) => w('&#99999999999;'), verdict: refuse('entity') },
  // Characters and encoding.
  { name: 'literal NUL', doc: (w) => w('a\u0000b'), verdict: refuse('char') },
  { name: 'literal ESC (a C0 control)', doc: (w) => w('a\u001bb'), verdict: refuse('char') },
  { name: 'literal U+FFFE', doc: (w) => withBytes(w, [0xef, 0xbf, 0xbe]), verdict: refuse('char') },
  { name: 'invalid UTF-8', doc: (w) => withBytes(w, [0xc3, 0x28]), verdict: refuse('encoding') },
  { name: "overlong UTF-8 for '<'", doc: (w) => withBytes(w, [0xc0, 0xbc]), verdict: refuse('encoding') },
  { name: 'UTF-8-encoded surrogate (CESU-8)', doc: (w) => withBytes(w, [0xed, 0xa0, 0x80]), verdict: refuse('encoding') },
  { name: 'UTF-16 declared', doc: (w) => `<?xml version="1.0" encoding="UTF-16"?>${w('x')}`, verdict: refuse('encoding') },
  { name: 'ISO-8859-1 declared', doc: (w) => `<?xml version='1.0' encoding='ISO-8859-1'?>${w('x')}`, verdict: refuse('encoding') },
  // Size and depth.
  { name: 'oversize (1 MiB)', doc: (w) => w(' '.repeat(1 << 20)), verdict: refuse('too-large') },
  { name: 'deep nesting (100 levels)', doc: (w) => w('<a>'.repeat(100) + '</a>'.repeat(100)), verdict: refuse('too-deep') },
  { name: 'deep nesting, never closed', doc: (w) => w('<a>'.repeat(100)), verdict: refuse('too-deep') },
  // Structure.
  { name: 'unterminated tag', doc: (w) => w('<a'), verdict: refuse('malformed') },
  { name: 'unterminated document', doc: (w) => w('x').slice(0, -1), verdict: refuse('malformed') },
  { name: 'mismatched closing tag', doc: (w) => w('<a></b>'), verdict: refuse('malformed') },
  { name: 'duplicate attributes', doc: (w) => w("<a x='1' x='2'/>"), verdict: refuse('malformed') },
  { name: "'<' in an attribute value", doc: (w) => w("<a x='<'/>"), verdict: refuse('malformed') },
  { name: "']]>' in text", doc: (w) => w(']]>'), verdict: refuse('malformed') },
  { name: 'unterminated CDATA section', doc: (w) => w('<![CDATA[abc'), verdict: refuse('malformed') },
  { name: 'prototype-polluting element name', doc: (w) => w('<__proto__/>'), verdict: refuse('malformed') },
  { name: 'empty document', doc: () => '', verdict: refuse('malformed') },
  { name: 'text before the root', doc: (w) => `junk${w('x')}`, verdict: refuse('malformed') },
  { name: 'text after the root', doc: (w) => `${w('x')}junk`, verdict: refuse('root') },
  { name: 'two roots', doc: (w) => `${w('x')}${w('y')}`, verdict: refuse('root') },
  { name: 'CDATA section after the root', doc: (w) => `${w('x')}<![CDATA[y]]>`, verdict: refuse('root') },
  // Valid, and decoded the same way by everyone.
  { name: 'the five predefined entities (a &amp; b &lt;x&gt;)', doc: (w) => w('a &amp; b &lt;x&gt; &quot;&apos;'), verdict: { accept: true, text: `a & b <x> "'` } },
  { name: 'numeric character references', doc: (w) => w('&#65;&#x42;&#x1F600;&#x9;.'), verdict: { accept: true, text: 'AB\u{1F600}\t.' } },
  { name: 'CDATA section with markup', doc: (w) => w('<![CDATA[<b> & </b>]]>'), verdict: { accept: true, text: '<b> & </b>' } },
  { name: "']]>' split over two CDATA sections", doc: (w) => w('<![CDATA[a]]]]><![CDATA[>b]]>'), verdict: { accept: true, text: 'a]]>b' } },
  { name: 'entity-looking text inside CDATA stays literal', doc: (w) => w('<![CDATA[&xxe;&#0;]]>'), verdict: { accept: true, text: '&xxe;&#0;' } },
  { name: 'comments and processing instructions are dropped', doc: (w) => w('a<!-- c -->b<?pi x?>c'), verdict: { accept: true, text: 'abc' } },
  { name: 'XInclude is never resolved', doc: (w) => w('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>'), verdict: { accept: true, text: '' } },
  { name: 'UTF-8 BOM and declaration', doc: (w) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`<?xml version="1.0" encoding="utf-8"?>${w('é')}`)]), verdict: { accept: true, text: 'é' } },
];
