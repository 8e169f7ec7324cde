/**
 * The octet-level fast path for the channel-0 messages beepstream writes
 * (src/channels/mgmtfast.ts) against the general parser: wherever the fast
 * path gives an element, the general parser gives the same one; the messages
 * beepstream's builders write take the fast path; anything else — other
 * spellings a conformant peer may use, and malformed documents — is left to
 * the general parser, which accepts or refuses it.
 */
import { Buffer } from 'node:buffer';
import test from 'ava';
import fc from 'fast-check';
import { buildClose, buildOk, buildProfileReply, buildStart, parseMgmt, parseMgmtGeneral, type MgmtElement } from '../../src/channels/mgmt.js';
import { fastMgmt } from '../../src/channels/mgmtfast.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const LIMITS = { maxBytes: 65536, maxDepth: 8 };

/** The general parser's outcome: the element, or the reply code it refuses with. */
function general(b: Uint8Array, limits = LIMITS): MgmtElement | { refused: number } {
  try {
    return parseMgmtGeneral(b, limits);
  } catch (err) {
    return { refused: (err as { replyCode: number }).replyCode };
  }
}

/** Wherever the fast path answers, it answers what the general parser does. Returns whether it answered. */
function agrees(t: import('ava').ExecutionContext, b: Uint8Array, limits = LIMITS): boolean {
  const fast = fastMgmt(b, limits.maxBytes, limits.maxDepth);
  if (fast === null) return false;
  t.deepEqual(fast, general(b, limits), Buffer.from(b).toString('latin1'));
  return true;
}

const URIS = ['urn:beepstream:bench:echo', 'http://iana.org/beep/TLS', 'http://iana.org/beep/SASL/OTP', 'h:/', 'z'];

/** What beepstream's builders write for the four shapes. */
function builderOutputs(): string[] {
  const out: string[] = [buildOk()];
  for (const u of URIS) {
    for (const n of [1, 2, 3, 98, 99, 1001, 65535, 2147483647]) out.push(buildStart(n, [{ uri: u }]));
    out.push(buildProfileReply(u));
  }
  for (const n of [0, 1, 2, 3, 2147483647]) for (const c of [100, 200, 421, 550, 599]) out.push(buildClose(n, c));
  return out;
}

test('the messages beepstream writes take the fast path and give what the general parser gives', (t) => {
  const docs = builderOutputs();
  for (const d of docs) t.true(agrees(t, bytes(d)), `fast path for ${d}`);
  // parseMgmt (the entry point) takes it too, and answers the same.
  for (const d of docs) t.deepEqual(parseMgmt(bytes(d)), parseMgmtGeneral(bytes(d)));
  // '"' unescaped is legal in a single-quoted value: both parsers take it alike.
  t.true(agrees(t, bytes(`<start number='1'><profile uri='x:a"b/d' /></start>`)));
  t.true(agrees(t, bytes(`<profile uri='x:a"b/d' />`)));
  // '>' is legal there too, but the general parser's shape scan refuses "/>" in a value: left to it.
  t.is(fastMgmt(bytes(`<profile uri='x:a/>b' />`), 65536, 8), null);
});

test('other spellings of the same messages are left to the general parser, which accepts them', (t) => {
  const others = [
    '<start number="1"><profile uri="urn:x" /></start>',
    "<start number='1'><profile uri='urn:x'/></start>",
    "<start  number='1'><profile uri='urn:x' /></start>",
    "<start number='1'>\n  <profile uri='urn:x' />\n</start>",
    "<start number='1'><profile uri='urn:x'></profile></start>",
    "<start number=' 1 '><profile uri='urn:x' /></start>",
    "<start number='1' serverName='a.example'><profile uri='urn:x' /></start>",
    "<start number='1'><profile uri='urn:x' /><profile uri='urn:y' /></start>",
    "<start number='1'><profile uri='urn:x'><![CDATA[hi]]></profile></start>",
    "<?xml version='1.0'?><start number='1'><profile uri='urn:x' /></start>",
    "<start number='1'><profile uri='urn:x' /></start>\n",
    "<start number='1'><profile uri='urn:a&amp;b' /></start>",
    // The builders escape '"' and '>' too: what they write then is left to the general parser.
    buildStart(1, [{ uri: 'x:a"b>c/d' }]),
    buildProfileReply('x:a"b>c/d'),
    "<start number='1'><profile uri='urn:a b' /></start>",
    "<start number='1'><profile uri='urn:\u00e9' /></start>",
    "<profile uri='urn:x'/>",
    '<profile uri="urn:x" />',
    "<profile uri='urn:x' encoding='none' />",
    '<ok/>',
    '<ok></ok>',
    ' <ok />',
    "<close number='1' code='200'/>",
    "<close code='200' number='1' />",
    "<close number='1' code='200'>bye</close>",
    "<close number='1' code='0200' />",
    "<close code='200' />",
    "<close number='1' code='200' xml:lang='en' />",
  ];
  for (const d of others) {
    t.is(fastMgmt(bytes(d), 65536, 8), null, d);
    t.false('refused' in general(bytes(d)), `general parser accepts ${d}`);
    // The entry point gives the general parser's answer.
    t.deepEqual(parseMgmt(bytes(d)), parseMgmtGeneral(bytes(d)), d);
  }
});

test('documents the general parser refuses are refused by the entry point, never taken by the fast path', (t) => {
  const bad = [
    "<start number='0'><profile uri='urn:x' /></start>",
    "<start number='2147483648'><profile uri='urn:x' /></start>",
    "<start number='99999999999'><profile uri='urn:x' /></start>",
    "<start number=''><profile uri='urn:x' /></start>",
    "<start number='1a'><profile uri='urn:x' /></start>",
    "<start number='1'><profile uri='' /></start>",
    "<start number='1'><profile uri='a<b' /></start>",
    "<start number='1'><profile uri='a&b' /></start>",
    "<start number='1'><profile uri='urn:x' /></start><ok />",
    "<start number='1'><profile uri='urn:x' /></starts>",
    "<profile uri='' />",
    "<close number='1' code='099' />",
    "<close number='1' code='600' />",
    "<close number='2147483648' code='200' />",
    "<close number='1' code='20' />",
    '<ok />x',
    '<ok /><ok />',
    '<ok',
  ];
  for (const d of bad) {
    t.is(fastMgmt(bytes(d), 65536, 8), null, d);
    const g = general(bytes(d));
    t.true('refused' in g, `general parser refuses ${d}`);
    t.throws(() => parseMgmt(bytes(d)), undefined, d);
  }
});

test('the fast path respects the size and depth limits the general parser applies', (t) => {
  const start = bytes(buildStart(1, [{ uri: 'urn:x' }]));
  t.is(fastMgmt(start, start.length - 1, 8), null);
  t.is(fastMgmt(start, start.length, 1), null);
  t.not(fastMgmt(start, start.length, 2), null);
  t.true('refused' in general(start, { maxBytes: start.length - 1, maxDepth: 8 }));
  t.true('refused' in general(start, { maxBytes: 65536, maxDepth: 1 }));
  t.throws(() => parseMgmt(start, { maxDepth: 1 }));
  t.throws(() => parseMgmt(start, { maxBytes: start.length - 1 }));
});

test('property: every one-octet change of a beepstream message is either answered as the general parser answers it, or left to it', (t) => {
  // Mutants of each builder output: an octet replaced, removed or inserted,
  // from the octets that matter to the shapes (quotes, digits, brackets,
  // white space, entity and URI characters, non-ASCII).
  const alphabet = Buffer.from(`'"<>/ \t\n&;=0123456789az:!~\x7f\x00\xc3\xa9`, 'latin1');
  const docs = builderOutputs().map(bytes);
  let fastTaken = 0;
  let leftToGeneral = 0;
  fc.assert(
    fc.property(fc.nat(docs.length - 1), fc.nat(600), fc.nat(alphabet.length - 1), fc.constantFrom('replace', 'remove', 'insert'), (di, pos, ai, op) => {
      const d = docs[di] as Buffer;
      const p = pos % (d.length + 1);
      const c = alphabet[ai] as number;
      let m: Buffer;
      if (op === 'replace') m = Buffer.concat([d.subarray(0, p), Buffer.of(c), d.subarray(p + 1)]);
      else if (op === 'remove') m = Buffer.concat([d.subarray(0, p), d.subarray(p + 1)]);
      else m = Buffer.concat([d.subarray(0, p), Buffer.of(c), d.subarray(p)]);
      if (agrees(t, m)) fastTaken++;
      else leftToGeneral++;
    }),
    { numRuns: 3000 },
  );
  // Both outcomes occur (the test exercises the agreement and the fallback).
  t.true(fastTaken > 0 && leftToGeneral > 0, `fast ${fastTaken}, general ${leftToGeneral}`);
});

test('a URI seen before is returned as the same string', (t) => {
  const a = fastMgmt(bytes("<profile uri='urn:same' />"), 65536, 8);
  const b = fastMgmt(bytes("<start number='7'><profile uri='urn:same' /></start>"), 65536, 8);
  t.deepEqual(a, { kind: 'profile', uri: 'urn:same' });
  t.deepEqual(b, { kind: 'start', number: 7, profiles: [{ uri: 'urn:same' }] });
  // Many distinct URIs (more than the cache holds) still decode correctly.
  for (let i = 0; i < 40; i++) t.deepEqual(fastMgmt(bytes(`<profile uri='urn:u${i}' />`), 65536, 8), { kind: 'profile', uri: `urn:u${i}` });
  t.deepEqual(fastMgmt(bytes("<profile uri='urn:same' />"), 65536, 8), { kind: 'profile', uri: 'urn:same' });
  // Long URIs are decoded, not remembered; still right on a second look.
  const long = `urn:${'x'.repeat(4000)}`;
  for (let i = 0; i < 2; i++) t.deepEqual(fastMgmt(bytes(`<profile uri='${long}' />`), 65536, 8), { kind: 'profile', uri: long });
});
