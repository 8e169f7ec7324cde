/**
 * The one safe XML reader and writer (`src/xml/`): the tree it gives, its
 * limits and reasons, escaping round trips (property), and the linear-time
 * shape scan.
 */
import test from 'ava';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';
import { BeepError, BeepOperationError, ErrorCodes } from '../../src/errors.js';
import {
  XmlError,
  attr,
  childOf,
  cleanText,
  decodeEntities,
  escapeAttr,
  escapeText,
  hasNonXmlChar,
  parseXml,
  readDocument,
  scanXmlShape,
  textElement,
  xmlErrorOf,
  type XmlErrorReason,
} from '../../src/xml/index.js';

function refused(t: import('ava').ExecutionContext, doc: string | Uint8Array, reason: XmlErrorReason, options?: Parameters<typeof parseXml>[1]): XmlError {
  const err = t.throws(() => parseXml(doc, options), { instanceOf: XmlError }) as XmlError;
  t.is(err.reason, reason, err.message);
  return err;
}

test('parseXml: names, decoded attributes, children in order, text and CDATA in document order', (t) => {
  const el = parseXml(`<?xml version="1.0"?><!-- c --><Root A="x &amp; y" b='&#65;'>one<kid n='1'/><![CDATA[<two>]]><kid n="2">in</kid>three</Root>`);
  t.is(el.name, 'Root');
  t.deepEqual([...el.attrs], [['A', 'x & y'], ['b', 'A']]);
  t.deepEqual(el.children.map((c) => [c.name, c.attrs.get('n'), c.text]), [['kid', '1', ''], ['kid', '2', 'in']]);
  t.is(el.text, 'one<two>three');
  t.is(el.cdata, '<two>');
  t.is(childOf(el, 'kid')?.attrs.get('n'), '1');
  t.is(childOf(el, 'none'), undefined);
  t.is(parseXml('<a>t</a>').cdata, undefined);
});

test('parseXml foldCase: element and attribute names lower-cased; a repeat after folding is refused', (t) => {
  const el = parseXml("<ReQuest UID='X'><NumConn>2</NumConn></ReQuest>", { foldCase: true });
  t.is(el.name, 'request');
  t.is(el.attrs.get('uid'), 'X');
  t.is(el.children[0]?.name, 'numconn');
  refused(t, "<a X='1' x='2'/>", 'malformed', { foldCase: true });
  t.notThrows(() => parseXml("<a X='1' x='2'/>"));
});

test('XmlError: a BeepOperationError with BEEP_ERR_XML_SYNTAX/500, or BEEP_ERR_XML_PARAMETER/501 for a parameter', (t) => {
  const err = refused(t, '<!DOCTYPE a><a/>', 'doctype');
  t.true(err instanceof BeepOperationError);
  t.true(err instanceof BeepError);
  t.is(err.code, ErrorCodes.XML_SYNTAX);
  t.is(err.beepCode, ErrorCodes.XML_SYNTAX);
  t.is(err.replyCode, 500);
  t.is(err.scope, 'operation');
  const p = new XmlError('parameter', 'missing uid');
  t.is(p.code, ErrorCodes.XML_PARAMETER);
  t.is(p.replyCode, 501);
  t.is(xmlErrorOf(new Error('wrap', { cause: new Error('x', { cause: p }) })), p);
  t.is(xmlErrorOf(new Error('plain')), undefined);
});

test('limits: size in octets (not characters), depth, both configurable', (t) => {
  const doc = `<a>${'é'.repeat(20)}</a>`; // 27 characters, 47 octets
  refused(t, doc, 'too-large', { maxBytes: 40 });
  t.notThrows(() => parseXml(doc, { maxBytes: 47 }));
  refused(t, Buffer.from(doc), 'too-large', { maxBytes: 46 });
  const nest = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
  t.notThrows(() => parseXml(nest(8)));
  refused(t, nest(9), 'too-deep');
  t.notThrows(() => parseXml(nest(3), { maxDepth: 3 }));
  refused(t, nest(4), 'too-deep', { maxDepth: 3 });
  refused(t, '<a/>'.padEnd(65537, ' '), 'too-large');
});

test('readDocument: UTF-8 with or without a BOM; other encodings and invalid octets refused; the declared encoding must be UTF-8', (t) => {
  t.is(readDocument(Buffer.from([0xef, 0xbb, 0xbf, 0x3c, 0x61, 0x2f, 0x3e])), '<a/>');
  t.is(readDocument('\ufeff<a/>'), '<a/>');
  t.is(readDocument("<?xml version='1.0' encoding='UTF-8'?><a/>"), "<?xml version='1.0' encoding='UTF-8'?><a/>");
  t.notThrows(() => readDocument('<?xml version="1.0" encoding="us-ascii"?><a/>'));
  t.is(t.throws(() => readDocument(Buffer.from([0xff, 0xfe, 0x3c, 0x00])), { instanceOf: XmlError })?.reason, 'encoding');
  t.is(t.throws(() => readDocument('<?xml version="1.0" encoding="Shift_JIS"?><a/>'), { instanceOf: XmlError })?.reason, 'encoding');
  t.is(t.throws(() => readDocument('<a>\ud800</a>'), { instanceOf: XmlError })?.reason, 'char');
});

test('decodeEntities: the five predefined and numeric references, nothing else', (t) => {
  t.is(decodeEntities('&lt;&gt;&amp;&quot;&apos;&#x41;&#66;&#x1f600;'), '<>&"\'AB\u{1F600}');
  t.is(decodeEntities('no references'), 'no references');
  for (const [s, reason] of [['&nbsp;', 'entity'], ['&amp', 'entity'], ['& ', 'entity'], ['&#;', 'entity'], ['&#0;', 'char'], ['&#xFFFE;', 'char'], ['&#xDFFF;', 'char'], ['&#8;', 'char']] as const) {
    t.is((t.throws(() => decodeEntities(s), { instanceOf: XmlError }) as XmlError).reason, reason, s);
  }
});

test('escaping: attr, textElement and the escapers produce what the reader decodes back', (t) => {
  t.is(escapeAttr(`a&<>'"\r\n\t`), 'a&amp;&lt;&gt;&apos;&quot;&#13;&#10;&#9;');
  t.is(escapeText('a&<>\r'), 'a&amp;&lt;&gt;&#13;');
  t.is(attr('x', undefined), '');
  t.is(attr('x', null), '');
  t.is(attr('x', 5), " x='5'");
  t.is(textElement('m', 'a<b'), '<m>a&lt;b</m>');
  t.is(cleanText('a\u0000b\ud800c', 10), 'a\ufffdb\ufffdc');
  t.is(cleanText('ab\u{1F600}', 3), 'ab', 'never cut inside a surrogate pair');
  t.true(hasNonXmlChar('\u0001'));
  t.false(hasNonXmlChar('tab\tnl\ncr\r'));
});

test('property: any string, cleaned, survives escape → parse in text and in attributes', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (raw) => {
      const s = cleanText(raw);
      const el = parseXml(`<r v='${escapeAttr(s)}' w="${escapeAttr(s)}">${escapeText(s)}</r>`);
      return el.attrs.get('v') === s && el.attrs.get('w') === s && el.text === s;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: parseXml throws nothing but XmlError on arbitrary input', (t) => {
  const pieces = fc.constantFrom('<', '>', '/', 'a', '=', "'", '"', '&', ';', '#', 'x', '<!--', '-->', '<![CDATA[', ']]>', '<?', '?>', '<!DOCTYPE', ' ', '\u0000', 'é', '&amp;', '&#0;');
  fc.assert(
    fc.property(fc.array(pieces, { maxLength: 60 }), fc.uint8Array({ maxLength: 40 }), (parts, bytes) => {
      for (const input of [parts.join(''), Buffer.concat([Buffer.from(parts.join('')), bytes])]) {
        try {
          parseXml(input);
        } catch (err) {
          if (!(err instanceof XmlError)) throw err;
        }
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('scanXmlShape: depth and trailing content, outside comments and CDATA', (t) => {
  t.deepEqual(scanXmlShape('<a><b/></a>', 8), { tooDeep: false, trailing: false });
  t.deepEqual(scanXmlShape('<a><b><c/></b></a>', 1), { tooDeep: true, trailing: false });
  t.deepEqual(scanXmlShape('<a></a> <!-- c --> <?pi?>', 8), { tooDeep: false, trailing: false });
  t.deepEqual(scanXmlShape('<a></a>x', 8), { tooDeep: false, trailing: true });
  t.deepEqual(scanXmlShape('<a></a><![CDATA[x]]>', 8), { tooDeep: false, trailing: true });
  t.deepEqual(scanXmlShape('<a><!-- <b><c><d> --><![CDATA[<e><f>]]></a>', 1), { tooDeep: false, trailing: false });
});

test('DECADE refusals name the reason only: a malformed DRP document never echoes its token', async (t) => {
  const { parseDrpRequest } = await import('../../src/decade/wire.js');
  const secret = 'eyJTOKENSECRETabc123';
  for (const doc of [`<status token='${secret}'`, `<status token='${secret}'></sta${secret}>`, `<${secret}/><x/>`, `<status token='${secret}' token='x'/>`, `<status token='&${secret.slice(0, 20)};'/>`]) {
    const err = t.throws(() => parseDrpRequest(Buffer.from(doc))) as Error;
    t.false(err.message.includes(secret.slice(0, 12)), err.message);
    t.regex(err.message, /^XML document refused \(/);
  }
});
