/**
 * @internal
 * The channel-0 messages beepstream itself writes, recognised octet by octet
 * without decoding, regular expressions or the XML parser:
 *
 * - `<start number='N'><profile uri='U' /></start>` (one profile, no content, no serverName)
 * - `<profile uri='U' />` (the positive reply to a start, no content)
 * - `<close number='N' code='CCC' />` (no diagnostic)
 * - `<ok />`
 *
 * exactly as `buildStart`, `buildProfileReply`, `buildClose` and `buildOk`
 * write them. `U` is 1 or more octets from `!` to `~` other than `'`, `<`, `>`
 * and `&` (so no entity to decode, no white space to normalise, nothing but
 * ASCII); `N` is 1–10 digits, `CCC` 3. Anything else — another peer's
 * spelling, double quotes, white space, an XML declaration, an out-of-range
 * number — gives `null`, and the caller parses the document with the general
 * parser (RFC 3080 §2.3: liberal in what is accepted). Where this returns an
 * element, the general parser returns the same one (test/channels/mgmtfast.test.ts).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { MgmtElement } from './mgmt.js';

const enc = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const START = enc("<start number='");
const START_MID = enc("'><profile uri='");
const START_END = enc("' /></start>");
const PROFILE = enc("<profile uri='");
const PROFILE_END = enc("' />");
const CLOSE = enc("<close number='");
const CLOSE_MID = enc("' code='");
const CLOSE_END = enc("' />");
const OK = enc('<ok />');

const LT = 0x3c;
const CH_S = 0x73; // s
const CH_P = 0x70; // p
const CH_C = 0x63; // c
const CH_O = 0x6f; // o

/** Largest channel number (RFC 3080 §2.2.1.1). */
const MAX_CHANNEL = 2147483647;

/** Does `lit` occur in `b` at `i`? The index past it, or -1. */
function lit(b: Uint8Array, i: number, l: Uint8Array): number {
  const n = l.length;
  if (i + n > b.length) return -1;
  for (let k = 0; k < n; k++) if (b[i + k] !== l[k]) return -1;
  return i + n;
}

/** 1–10 decimal digits at `i`, then `'`: their value ({@link numEnd} set to the quote's index), or -1. */
function digits(b: Uint8Array, i: number): number {
  let v = 0;
  let k = i;
  for (; k < b.length && k - i <= 10; k++) {
    const c = b[k] as number;
    if (c === 0x27) break;
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  const n = k - i;
  if (n < 1 || n > 10 || k >= b.length) return -1;
  numEnd = k;
  return v;
}

/** Where the last {@link digits} stopped (module state: no tuple per call). */
let numEnd = 0;

/** A URI's octets from `i` to the closing `'`: the index of the quote, or -1. */
function uriEnd(b: Uint8Array, i: number): number {
  let k = i;
  for (; k < b.length; k++) {
    const c = b[k] as number;
    if (c === 0x27) break;
    // Printable ASCII but for "'" (ends it), "<" and "&" (the XML reader refuses
    // or decodes them) and ">" (the general parser's shape scan refuses "/>" in a value).
    if (c < 0x21 || c > 0x7e || c === LT || c === 0x26 || c === 0x3e) return -1;
  }
  return k === i || k >= b.length ? -1 : k;
}

/** URIs lately seen, as strings and as octets: the same URI is not decoded again on every start. */
const recent: { bytes: Uint8Array; str: string }[] = [];
const RECENT = 16;
const RECENT_MAX_URI = 512;
let recentNext = 0;

function uriString(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  for (const r of recent) {
    const rb = r.bytes;
    if (rb.length !== n) continue;
    let k = 0;
    while (k < n && rb[k] === b[start + k]) k++;
    if (k === n) return r.str;
  }
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const str = buf.toString('latin1', start, end);
  // Only short URIs are remembered: what a peer sends keeps at most 16 × 512 octets here.
  if (n > RECENT_MAX_URI) return str;
  const entry = { bytes: Buffer.from(str, 'latin1'), str };
  if (recent.length < RECENT) recent.push(entry);
  else {
    recent[recentNext] = entry;
    recentNext = (recentNext + 1) % RECENT;
  }
  return str;
}

/**
 * The element of a channel-0 document in one of the exact shapes of the
 * module comment, or `null` (parse it with the general parser). `maxBytes`
 * and `maxDepth` are the limits the general parser would apply: a document
 * they would refuse gives `null`.
 */
export function fastMgmt(b: Uint8Array, maxBytes: number, maxDepth: number): MgmtElement | null {
  const len = b.length;
  if (len > maxBytes || len < 6 || b[0] !== LT || maxDepth < 1) return null;
  switch (b[1]) {
    case CH_O:
      return len === OK.length && lit(b, 0, OK) === len ? { kind: 'ok' } : null;
    case CH_P: {
      const i = lit(b, 0, PROFILE);
      if (i < 0) return null;
      const e = uriEnd(b, i);
      if (e < 0 || lit(b, e, PROFILE_END) !== len) return null;
      return { kind: 'profile', uri: uriString(b, i, e) };
    }
    case CH_C: {
      let i = lit(b, 0, CLOSE);
      if (i < 0) return null;
      const number = digits(b, i);
      if (number < 0 || number > MAX_CHANNEL) return null;
      i = lit(b, numEnd, CLOSE_MID);
      if (i < 0) return null;
      const code = digits(b, i);
      if (numEnd - i !== 3 || code < 100 || code > 599 || lit(b, numEnd, CLOSE_END) !== len) return null;
      return { kind: 'close', number, code, diagnostic: '' };
    }
    case CH_S: {
      if (maxDepth < 2) return null;
      let i = lit(b, 0, START);
      if (i < 0) return null;
      const number = digits(b, i);
      if (number < 1 || number > MAX_CHANNEL) return null;
      i = lit(b, numEnd, START_MID);
      if (i < 0) return null;
      const e = uriEnd(b, i);
      if (e < 0 || lit(b, e, START_END) !== len) return null;
      return { kind: 'start', number, profiles: [{ uri: uriString(b, i, e) }] };
    }
    default:
      return null;
  }
}
