import { Buffer } from 'node:buffer';
import test from 'ava';
import fc from 'fast-check';
import {
  MAX_PIGGYBACK,
  MgmtSyntaxError,
  buildClose,
  buildError,
  buildGreeting,
  buildOk,
  buildProfileReply,
  buildStart,
  decodeEntities,
  escapeAttr,
  escapeText,
  parseMgmt,
  type MgmtElement,
} from '../../src/channels/mgmt.js';

const SASL_OTP = 'http://iana.org/beep/SASL/OTP';
const TLS = 'http://iana.org/beep/TLS';

/** Assert `xml` is refused with a MgmtSyntaxError carrying `code`. */
function refused(t: import('ava').ExecutionContext, xml: string | Uint8Array, code: 500 | 501, opts?: Parameters<typeof parseMgmt>[1]): MgmtSyntaxError {
  const err = t.throws(() => parseMgmt(xml, opts), { instanceOf: MgmtSyntaxError }, typeof xml === 'string' ? xml.slice(0, 80) : 'bytes');
  t.is(err?.replyCode, code, `reply code for ${typeof xml === 'string' ? xml.slice(0, 80) : 'bytes'}: ${err?.message}`);
  return err as MgmtSyntaxError;
}

// ---------------------------------------------------------------- building

test('buildGreeting: RFC 3080 §2.3.1.1 syntax', (t) => {
  t.is(buildGreeting({}), '<greeting />');
  t.is(buildGreeting({ profiles: [] }), '<greeting />');
  t.is(
    buildGreeting({ profiles: [TLS, SASL_OTP] }),
    `<greeting><profile uri='${TLS}' /><profile uri='${SASL_OTP}' /></greeting>`,
  );
  t.is(
    buildGreeting({ profiles: [TLS], features: ['x-a', 'x-b'], localize: ['fr', 'en-US'] }),
    `<greeting features='x-a x-b' localize='fr en-US'><profile uri='${TLS}' /></greeting>`,
  );
  t.is(buildGreeting({ features: ['x-f'] }), "<greeting features='x-f' />");
});

test('buildStart: RFC 3080 §2.3.1.2 syntax', (t) => {
  t.is(buildStart(1, [{ uri: SASL_OTP }]), `<start number='1'><profile uri='${SASL_OTP}' /></start>`);
  t.is(
    buildStart(3, [{ uri: TLS }, { uri: SASL_OTP }], 'example.com'),
    `<start number='3' serverName='example.com'><profile uri='${TLS}' /><profile uri='${SASL_OTP}' /></start>`,
  );
  t.is(
    buildStart(5, [{ uri: TLS, content: '<ready />' }]),
    `<start number='5'><profile uri='${TLS}'><![CDATA[<ready />]]></profile></start>`,
  );
  t.is(
    buildStart(7, [{ uri: TLS, content: 'hi', base64: true }]),
    `<start number='7'><profile uri='${TLS}' encoding='base64'>aGk=</profile></start>`,
  );
});

test('buildProfileReply: RFC 3080 example with CDATA', (t) => {
  t.is(buildProfileReply(TLS), `<profile uri='${TLS}' />`);
  t.is(buildProfileReply(TLS, '<proceed />'), `<profile uri='${TLS}'><![CDATA[<proceed />]]></profile>`);
  t.is(buildProfileReply(TLS, ''), `<profile uri='${TLS}'><![CDATA[]]></profile>`);
});

test('buildClose always writes number, even 0; diagnostics escaped', (t) => {
  t.is(buildClose(0, 200), "<close number='0' code='200' />");
  t.is(buildClose(1, 200), "<close number='1' code='200' />");
  t.is(buildClose(1, 550, 'still working'), "<close number='1' code='550'>still working</close>");
  t.is(buildClose(0, 421, 'bye', 'en-US'), "<close number='0' code='421' xml:lang='en-US'>bye</close>");
  t.is(buildClose(2, 200, 'a<b>&c'), "<close number='2' code='200'>a&lt;b&gt;&amp;c</close>");
  t.is(buildClose(2, 200, 'a\r\nb'), "<close number='2' code='200'>a&#13;\nb</close>");
  t.like(parseMgmt(buildClose(2, 200, 'a\r\nb')), { diagnostic: 'a\r\nb' });
});

test('buildOk and buildError', (t) => {
  t.is(buildOk(), '<ok />');
  t.is(buildError(421), "<error code='421' />");
  t.is(buildError(550, 'still working'), "<error code='550'>still working</error>");
  t.is(buildError(550, 'x', 'fr'), "<error code='550' xml:lang='fr'>x</error>");
  t.is(buildError(501, `<&>'"`), `<error code='501'>&lt;&amp;&gt;'"</error>`);
});

test('escapeAttr escapes & < > \' " and whitespace controls; escapeText escapes & < >', (t) => {
  t.is(escapeAttr(`a&b<c>d'e"f`), 'a&amp;b&lt;c&gt;d&apos;e&quot;f');
  t.is(escapeAttr('t\tn\nr\r'), 't&#9;n&#10;r&#13;');
  t.is(escapeText(`a&b<c>d'e"f`), `a&amp;b&lt;c&gt;d'e"f`);
  t.is(escapeText(']]>'), ']]&gt;');
  t.is(escapeText('a\r\nb\tc\n'), 'a&#13;\nb\tc\n', 'CR survives XML end-of-line normalisation only as a reference');
  t.is(escapeAttr('plain'), 'plain');
});

test('attribute values are escaped in every builder', (t) => {
  const nasty = `x'y"z<&>`;
  const esc = 'x&apos;y&quot;z&lt;&amp;&gt;';
  t.is(buildStart(1, [{ uri: `urn:${nasty}` }], nasty), `<start number='1' serverName='${esc}'><profile uri='urn:${esc}' /></start>`);
  t.is(buildGreeting({ profiles: [`urn:${nasty}`] }), `<greeting><profile uri='urn:${esc}' /></greeting>`);
  t.is(buildError(500, 'd', nasty), `<error code='500' xml:lang='${esc}'>d</error>`);
  t.is(buildClose(1, 200, undefined, nasty), `<close number='1' code='200' xml:lang='${esc}' />`);
});

test('piggyback: text in CDATA; binary, "]]>" and non-XML characters in base64', (t) => {
  t.is(buildProfileReply(TLS, 'a & <b>'), `<profile uri='${TLS}'><![CDATA[a & <b>]]></profile>`);
  const bin = new Uint8Array([0, 1, 2, 0xff]);
  t.is(buildProfileReply(TLS, bin), `<profile uri='${TLS}' encoding='base64'>AAEC/w==</profile>`);
  t.is(buildProfileReply(TLS, new TextEncoder().encode('text as bytes')), `<profile uri='${TLS}' encoding='base64'>${Buffer.from('text as bytes').toString('base64')}</profile>`);
  const tricky = 'ends ]]> early';
  t.is(buildProfileReply(TLS, tricky), `<profile uri='${TLS}' encoding='base64'>${Buffer.from(tricky).toString('base64')}</profile>`);
  const crlf = 'line 1\r\nline 2';
  t.is(buildProfileReply(TLS, crlf), `<profile uri='${TLS}' encoding='base64'>${Buffer.from(crlf).toString('base64')}</profile>`, 'CDATA cannot carry CR');
  t.is(buildProfileReply(TLS, 'line 1\nline 2'), `<profile uri='${TLS}'><![CDATA[line 1\nline 2]]></profile>`);
  const ctl = 'bell\u0007';
  t.is(buildProfileReply(TLS, ctl), `<profile uri='${TLS}' encoding='base64'>${Buffer.from(ctl).toString('base64')}</profile>`);
  // A sub-array view is encoded from its own bytes only.
  const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
  t.is(buildProfileReply(TLS, backing.subarray(2, 5)), `<profile uri='${TLS}' encoding='base64'>AQID</profile>`);
  // Each round-trips through the parser.
  for (const c of ['a & <b>', tricky, ctl, crlf]) {
    const el = parseMgmt(buildProfileReply(TLS, c));
    t.is(el.kind, 'profile');
    if (el.kind === 'profile') t.is(el.content?.toString('utf8'), c);
  }
});

test('piggyback content over 4096 octets throws RangeError; exactly 4096 is fine', (t) => {
  t.is(MAX_PIGGYBACK, 4096);
  t.notThrows(() => buildProfileReply(TLS, 'a'.repeat(4096)));
  t.notThrows(() => buildProfileReply(TLS, new Uint8Array(4096)));
  t.throws(() => buildProfileReply(TLS, 'a'.repeat(4097)), { instanceOf: RangeError });
  t.throws(() => buildProfileReply(TLS, new Uint8Array(4097)), { instanceOf: RangeError });
  t.throws(() => buildStart(1, [{ uri: TLS, content: 'b'.repeat(5000) }]), { instanceOf: RangeError });
  // Counted in octets, not characters: 2049 two-octet characters.
  t.throws(() => buildProfileReply(TLS, '\u00e9'.repeat(2049)), { instanceOf: RangeError });
  t.notThrows(() => buildProfileReply(TLS, '\u00e9'.repeat(2048)));
});

// ---------------------------------------------------------------- parsing: each element

test('parseMgmt: greeting', (t) => {
  t.deepEqual(parseMgmt('<greeting />'), { kind: 'greeting', profiles: [], features: [], localize: [] });
  t.deepEqual(parseMgmt(`<greeting><profile uri='${TLS}' /></greeting>`), { kind: 'greeting', profiles: [TLS], features: [], localize: [] });
  t.deepEqual(
    parseMgmt(`<greeting features='x-a  x-b' localize='fr en'>\r\n  <profile uri='${TLS}' />\r\n  <profile uri='${SASL_OTP}' />\r\n</greeting>`),
    { kind: 'greeting', profiles: [TLS, SASL_OTP], features: ['x-a', 'x-b'], localize: ['fr', 'en'] },
  );
});

test('parseMgmt: start with serverName and several profiles', (t) => {
  const el = parseMgmt(`<start number='1' serverName='example.com'><profile uri='${TLS}' /><profile uri='${SASL_OTP}'><![CDATA[<x/>]]></profile></start>`);
  t.is(el.kind, 'start');
  if (el.kind !== 'start') return;
  t.is(el.number, 1);
  t.is(el.serverName, 'example.com');
  t.is(el.profiles.length, 2);
  t.is(el.profiles[0]?.uri, TLS);
  t.is(el.profiles[0]?.content, undefined);
  t.is(el.profiles[1]?.uri, SASL_OTP);
  t.is(el.profiles[1]?.content?.toString(), '<x/>');
  t.falsy(el.profiles[1]?.base64);
});

test('parseMgmt: start content in base64', (t) => {
  const el = parseMgmt(`<start number='2147483647'><profile uri='${TLS}' encoding='base64'>\n AAEC\n /w==\n</profile></start>`);
  t.is(el.kind, 'start');
  if (el.kind !== 'start') return;
  t.is(el.number, 2147483647);
  t.deepEqual([...(el.profiles[0]?.content ?? [])], [0, 1, 2, 255]);
  t.true(el.profiles[0]?.base64);
});

test('parseMgmt: profile (positive reply to start)', (t) => {
  t.deepEqual(parseMgmt(`<profile uri='${TLS}' />`), { kind: 'profile', uri: TLS });
  const el = parseMgmt(`<profile uri='${TLS}'><![CDATA[<proceed />]]></profile>`);
  t.is(el.kind, 'profile');
  if (el.kind === 'profile') t.is(el.content?.toString(), '<proceed />');
});

test('parseMgmt: close, ok, error', (t) => {
  t.deepEqual(parseMgmt("<close number='1' code='200' />"), { kind: 'close', number: 1, code: 200, diagnostic: '' });
  t.deepEqual(parseMgmt("<close number='0' code='421' xml:lang='en'>shutting down</close>"), {
    kind: 'close',
    number: 0,
    code: 421,
    diagnostic: 'shutting down',
    lang: 'en',
  });
  t.deepEqual(parseMgmt('<ok />'), { kind: 'ok' });
  t.deepEqual(parseMgmt("<error code='550'>still working</error>"), { kind: 'error', code: 550, diagnostic: 'still working' });
  t.deepEqual(parseMgmt("<error code='501' xml:lang='fr' />"), { kind: 'error', code: 501, diagnostic: '', lang: 'fr' });
});

test('parseMgmt accepts bytes as well as strings (UTF-8)', (t) => {
  const bytes = Buffer.from("<error code='550'>d\u00e9j\u00e0</error>", 'utf8');
  t.deepEqual(parseMgmt(bytes), { kind: 'error', code: 550, diagnostic: 'd\u00e9j\u00e0' });
  const view = new Uint8Array(Buffer.from('xx<ok />yy')).subarray(2, 8);
  t.deepEqual(parseMgmt(view), { kind: 'ok' });
});

// ---------------------------------------------------------------- parsing: liberal

test('parseMgmt is liberal: double quotes, whitespace, self-closing or not', (t) => {
  t.deepEqual(parseMgmt('<close number="3" code="200"/>'), { kind: 'close', number: 3, code: 200, diagnostic: '' });
  t.deepEqual(parseMgmt('\r\n  <close   number = "3"\n\tcode="200" ></close >  \r\n'), { kind: 'close', number: 3, code: 200, diagnostic: '' });
  t.deepEqual(parseMgmt('<ok></ok>'), { kind: 'ok' });
  t.deepEqual(parseMgmt('<ok/>'), { kind: 'ok' });
  t.deepEqual(parseMgmt(' <ok />\r\n'), { kind: 'ok' });
  t.deepEqual(parseMgmt("<close number=' 5 ' code=' 200'/>"), { kind: 'close', number: 5, code: 200, diagnostic: '' });
});

test('parseMgmt is liberal: an XML declaration and comments are tolerated', (t) => {
  t.deepEqual(parseMgmt('<?xml version="1.0" encoding="UTF-8"?>\n<ok />'), { kind: 'ok' });
  t.deepEqual(parseMgmt("<?xml version='1.0'?><greeting />"), { kind: 'greeting', profiles: [], features: [], localize: [] });
  t.deepEqual(parseMgmt('<!-- hello --><ok />'), { kind: 'ok' });
});

test('parseMgmt is liberal: a close without number releases the session (number 0)', (t) => {
  t.deepEqual(parseMgmt("<close code='200' />"), { kind: 'close', number: 0, code: 200, diagnostic: '' });
});

test('parseMgmt is liberal: content as CDATA or as plain text', (t) => {
  const plain = parseMgmt(`<profile uri='${TLS}'>&lt;ready /&gt;</profile>`);
  t.is(plain.kind, 'profile');
  if (plain.kind === 'profile') t.is(plain.content?.toString(), '<ready />');
  const cdata = parseMgmt(`<profile uri='${TLS}'><![CDATA[<ready />]]></profile>`);
  if (cdata.kind === 'profile') t.is(cdata.content?.toString(), '<ready />');
  else t.fail();
  const ws = parseMgmt(`<profile uri='${TLS}'>\n   \n</profile>`);
  if (ws.kind === 'profile') t.is(ws.content, undefined, 'whitespace only is no content');
  else t.fail();
  // Diagnostics too may come as CDATA.
  t.deepEqual(parseMgmt("<error code='550'><![CDATA[a <b> & c]]></error>"), { kind: 'error', code: 550, diagnostic: 'a <b> & c' });
  t.deepEqual(parseMgmt("<close number='1' code='550'><![CDATA[busy]]></close>"), { kind: 'close', number: 1, code: 550, diagnostic: 'busy' });
});

test('parseMgmt decodes the predefined entities and numeric references', (t) => {
  t.deepEqual(parseMgmt("<error code='500'>&lt;&gt;&amp;&apos;&quot; &#65;&#x42;&#x1F600;</error>"), {
    kind: 'error',
    code: 500,
    diagnostic: `<>&'" AB\u{1F600}`,
  });
  const el = parseMgmt("<start number='1' serverName='a&amp;b&#39;c'><profile uri='http://x/?a=1&amp;b=2' /></start>");
  t.is(el.kind, 'start');
  if (el.kind !== 'start') return;
  t.is(el.serverName, "a&b'c");
  t.is(el.profiles[0]?.uri, 'http://x/?a=1&b=2');
  t.is(decodeEntities('&#9;&#10;&#13;'), '\t\n\r');
  t.is(decodeEntities('no refs'), 'no refs');
});

// ---------------------------------------------------------------- parsing: strict

test('parseMgmt refuses DOCTYPE and ENTITY declarations with 500, without expanding', (t) => {
  refused(t, `<!DOCTYPE close [<!ENTITY x "boom">]><close number='1' code='200'>&x;</close>`, 500);
  refused(t, '<!DOCTYPE ok><ok />', 500);
  refused(t, '<!doctype ok><ok />', 500);
  refused(t, `<?xml version="1.0"?><!DOCTYPE ok SYSTEM "file:///etc/passwd"><ok />`, 500);
  // Billion laughs: refused before any expansion (and promptly).
  const lol = ['<!DOCTYPE lolz [', '<!ENTITY lol "lol">'];
  for (let i = 1; i < 10; i++) lol.push(`<!ENTITY lol${i} "${`&lol${i - 1 === 0 ? '' : i - 1};`.repeat(10)}">`);
  lol.push(']>', "<error code='500'>&lol9;</error>");
  const started = process.hrtime.bigint();
  const err = refused(t, lol.join('\n'), 500);
  t.true(Number(process.hrtime.bigint() - started) / 1e6 < 1000);
  t.false(err.message.includes('lollol'));
  // A stray ENTITY declaration (no DOCTYPE) is refused too.
  refused(t, `<ok /><!ENTITY x "y">`, 500);
});

test('parseMgmt refuses unknown entities and invalid character references (500)', (t) => {
  refused(t, "<error code='500'>&foo;</error>", 500);
  refused(t, "<error code='500'>&nbsp;</error>", 500);
  refused(t, "<start number='1' serverName='&ext;'><profile uri='a:b' /></start>", 500);
  refused(t, "<greeting><profile uri='&ext;' /></greeting>", 500);
  refused(t, "<error code='500'>&#0;</error>", 500);
  refused(t, "<error code='500'>&#xD800;</error>", 500);
  refused(t, "<error code='500'>&#x110000;</error>", 500);
  refused(t, "<error code='500'>&#99999999999;</error>", 500);
  refused(t, "<error code='500'>a & b</error>", 500);
});

test('parseMgmt: wrong, unknown or multiple roots are 500', (t) => {
  refused(t, '', 500);
  refused(t, '   ', 500);
  refused(t, 'hello', 500);
  refused(t, '<foo />', 500);
  refused(t, '<Ok />', 500);
  refused(t, '<ok /><ok />', 500);
  refused(t, "<ok /><error code='500' />", 500);
  refused(t, "<profile uri='a:b' /><profile uri='c:d' />", 500);
  refused(t, '<ok>', 500);
  refused(t, '<ok></error>', 500);
  refused(t, "<close number='1' code='200'", 500);
});

test('parseMgmt: bad or missing numbers and codes are 501', (t) => {
  refused(t, "<close number='x' code='200' />", 501);
  refused(t, "<close number='-1' code='200' />", 501);
  refused(t, "<close number='2147483648' code='200' />", 501);
  refused(t, "<close number='1.5' code='200' />", 501);
  refused(t, "<close number='1' />", 501);
  refused(t, "<close number='1' code='99' />", 501);
  refused(t, "<close number='1' code='600' />", 501);
  refused(t, "<close number='1' code='2x0' />", 501);
  refused(t, "<error code='' />", 501);
  refused(t, '<error />', 501);
  refused(t, "<start number='0'><profile uri='a:b' /></start>", 501);
  refused(t, "<start><profile uri='a:b' /></start>", 501);
  refused(t, "<start number='1' />", 501, undefined);
  refused(t, "<start number='1'><profile /></start>", 501);
  refused(t, "<start number='1'><profile uri='a:b' encoding='rot13'>x</profile></start>", 501);
  refused(t, "<start number='1'><profile uri='a:b' encoding='base64'>!!not base64!!</profile></start>", 501);
});

test('parseMgmt: nesting deeper than the limit is refused (500)', (t) => {
  const nest = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
  refused(t, `<error code='500'>${nest(8)}</error>`, 500); // depth 9 > 8
  refused(t, nest(1000), 500);
  refused(t, "<start number='1'><profile uri='a:b'></profile></start>", 500, { maxDepth: 1 });
  t.is(parseMgmt("<start number='1'><profile uri='a:b'></profile></start>", { maxDepth: 2 }).kind, 'start');
  // A self-closing child is nested too: the general parser and the fast paths agree on it.
  refused(t, "<start number='1'><profile uri='a:b' /></start>", 500, { maxDepth: 1 });
  refused(t, Buffer.from("<start number='1'><profile uri='a:b' /></start>"), 500, { maxDepth: 1 });
  t.is(parseMgmt("<start number='1'><profile uri='a:b' /></start>", { maxDepth: 2 }).kind, 'start');
  // Tags inside CDATA do not count.
  const el = parseMgmt(`<profile uri='${TLS}'><![CDATA[${nest(50)}]]></profile>`);
  if (el.kind === 'profile') t.is(el.content?.toString(), nest(50));
  else t.fail();
});

test('parseMgmt: documents over the size limit are refused (500)', (t) => {
  refused(t, '<ok />' + ' '.repeat(65536), 500);
  t.is(parseMgmt('<ok />' + ' '.repeat(65536 - 6)).kind, 'ok', 'exactly 64 KiB is fine');
  refused(t, '<ok />', 500, { maxBytes: 5 });
  t.is(parseMgmt('<ok />', { maxBytes: 6 }).kind, 'ok');
  // Counted in octets.
  refused(t, `<error code='500'>${'\u00e9'.repeat(20)}</error>`, 500, { maxBytes: 50 });
  refused(t, Buffer.alloc(70000, 0x20), 500);
});

// ---------------------------------------------------------------- round trips

/** Every string made only of characters XML 1.0 can carry. */
const XML_CHARS = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
const xmlString = (max = 40): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: max }),
    fc.string({ maxLength: max }),
    fc.stringMatching(/^[ &<>'"\]\t\r\nA-Za-z]{0,30}$/),
  ).filter((s) => XML_CHARS.test(s));
const nonEmpty = (a: fc.Arbitrary<string>): fc.Arbitrary<string> => a.filter((s) => s.length > 0);
const token = nonEmpty(xmlString(12)).filter((s) => /^\S+$/.test(s));
const u31 = fc.integer({ min: 0, max: 2147483647 });
const code = fc.integer({ min: 100, max: 599 });

test('property: greeting round trip', (t) => {
  fc.assert(
    fc.property(fc.array(nonEmpty(xmlString()), { maxLength: 5 }), fc.array(token, { maxLength: 4 }), fc.array(token, { maxLength: 4 }), (profiles, features, localize) => {
      const el = parseMgmt(buildGreeting({ profiles, features, localize }));
      t.deepEqual(el, { kind: 'greeting', profiles, features, localize });
      return true;
    }),
  );
});

test('property: start round trip (text, binary and absent content; serverName)', (t) => {
  const content = fc.oneof(
    fc.constant(undefined),
    xmlString(80),
    fc.uint8Array({ maxLength: 300 }),
  );
  const profile = fc.record({ uri: nonEmpty(xmlString()), content, base64: fc.boolean() });
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 2147483647 }), fc.array(profile, { minLength: 1, maxLength: 4 }), fc.option(xmlString(), { nil: undefined }), (number, profiles, serverName) => {
      const xml = buildStart(number, profiles, serverName);
      const el = parseMgmt(xml) as MgmtElement;
      if (el.kind !== 'start') throw new Error(`expected start, got ${el.kind}`);
      if (el.number !== number) throw new Error('number');
      if (el.serverName !== serverName) throw new Error(`serverName ${JSON.stringify(el.serverName)} != ${JSON.stringify(serverName)}`);
      if (el.profiles.length !== profiles.length) throw new Error('profile count');
      profiles.forEach((p, i) => {
        const got = el.profiles[i];
        if (got?.uri !== p.uri) throw new Error(`uri ${JSON.stringify(got?.uri)} != ${JSON.stringify(p.uri)}`);
        const want = p.content === undefined ? undefined : Buffer.from(typeof p.content === 'string' ? Buffer.from(p.content, 'utf8') : p.content);
        if (want === undefined) {
          if (got.content !== undefined) throw new Error('unexpected content');
        } else if (got.content === undefined) {
          // An empty CDATA section may come back as no content at all.
          if (want.length !== 0) throw new Error(`content lost in ${xml}`);
        } else if (!got.content.equals(want)) {
          throw new Error(`content ${got.content.toString('hex')} != ${want.toString('hex')} in ${xml}`);
        }
      });
      return true;
    }),
  );
  t.pass();
});

test('property: close and error round trip (diagnostics compared trimmed)', (t) => {
  const lang = fc.option(token, { nil: undefined });
  fc.assert(
    fc.property(u31, code, fc.option(xmlString(60), { nil: undefined }), lang, (number, c, diagnostic, l) => {
      const close = parseMgmt(buildClose(number, c, diagnostic, l));
      const wantClose: MgmtElement = { kind: 'close', number, code: c, diagnostic: (diagnostic ?? '').trim() };
      if (l !== undefined) wantClose.lang = l;
      t.deepEqual(close, wantClose);
      const err = parseMgmt(buildError(c, diagnostic, l));
      const wantErr: MgmtElement = { kind: 'error', code: c, diagnostic: (diagnostic ?? '').trim() };
      if (l !== undefined) wantErr.lang = l;
      t.deepEqual(err, wantErr);
      return true;
    }),
  );
});

test('property: profile reply round trip', (t) => {
  fc.assert(
    fc.property(nonEmpty(xmlString()), fc.oneof(xmlString(200), fc.uint8Array({ maxLength: 4096 })), (uri, content) => {
      const el = parseMgmt(buildProfileReply(uri, content));
      if (el.kind !== 'profile' || el.uri !== uri) throw new Error('uri');
      const want = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
      const got = el.content ?? Buffer.alloc(0);
      if (!got.equals(want)) throw new Error(`content mismatch for ${JSON.stringify(content)}`);
      return true;
    }),
  );
  t.pass();
});

test('property: parseMgmt never throws anything but MgmtSyntaxError', (t) => {
  const soup = fc.array(
    fc.constantFrom('<', '>', '/', "'", '"', '=', '&', ';', '#', 'x', '!', '?', '[', ']', 'CDATA', 'close', 'start', 'profile', 'greeting', 'error', 'ok', 'number', 'code', 'uri', ' ', '1', '200', '&amp;', '&#', '<![CDATA[', ']]>', '<!--', '-->'),
    { maxLength: 40 },
  ).map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(soup, fc.string({ maxLength: 60 })), (s) => {
      try {
        parseMgmt(s);
      } catch (err) {
        if (!(err instanceof MgmtSyntaxError)) throw err;
        if (![500, 501, 553].includes(err.replyCode)) throw new Error(`reply code ${err.replyCode}`);
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: the fast path for ok/close/profile/start gives exactly what the full parser gives', (t) => {
  const uri = fc.stringMatching(/^[a-z][a-z0-9+.-]{0,8}:[A-Za-z0-9/._~:-]{1,40}$/);
  const doc = fc.oneof(
    fc.constant('<ok />'),
    fc.tuple(fc.integer({ min: 0, max: 2147483647 }), fc.integer({ min: 100, max: 599 })).map(([n, c]) => `<close number='${n}' code='${c}' />`),
    fc.tuple(fc.integer({ min: 0, max: 4294967295 }), fc.integer({ min: 0, max: 999 })).map(([n, c]) => `<close number='${n}' code='${String(c).padStart(3, '0')}' />`),
    fc.tuple(fc.integer({ min: 0, max: 4294967295 }), uri).map(([n, u]) => `<start number='${n}'><profile uri='${u}' /></start>`),
    uri.map((u) => `<profile uri='${u}' />`),
    fc.tuple(fc.integer({ min: 1, max: 2147483647 }), uri).map(([n, u]) => `<start number='${n}'><profile uri='${u}' /></start>`),
  );
  fc.assert(
    fc.property(doc, (xml) => {
      // A trailing comment is legal XML that the fast path does not take.
      const outcome = (x: string): unknown => {
        try {
          return parseMgmt(x);
        } catch (err) {
          return { refused: (err as { replyCode?: number }).replyCode };
        }
      };
      t.deepEqual(outcome(xml), outcome(`${xml}<!-- slow path -->`));
    }),
    { numRuns: 300 },
  );
});

test('buildStart and buildProfileReply write the same, escaped, for a URI seen before and after many others', (t) => {
  const odd = `urn:x:a&b<c>'d"e`;
  const want = `<profile uri='urn:x:a&amp;b&lt;c&gt;&apos;d&quot;e' />`;
  t.is(buildProfileReply(odd), want);
  for (let i = 0; i < 200; i++) t.is(buildProfileReply(`urn:x:${i}`), `<profile uri='urn:x:${i}' />`);
  t.is(buildProfileReply(odd), want);
  t.is(buildStart(3, [{ uri: odd }, { uri: 'urn:y' }]), `<start number='3'>${want}<profile uri='urn:y' /></start>`);
});
