/**
 * The fuzz targets and their oracles. Each target throws (a {@link Violation}
 * or whatever escaped the code under test) when the input shows a bug:
 *
 * - only the documented error classes may be thrown, and never an error
 *   whose `cause` chain hides a programming error (`TypeError`, …);
 * - where a parse succeeds, what was parsed must survive an encode → decode
 *   round trip (or, for parsers without an encoder, rebuild the input);
 * - functions documented never to throw or reject (`SessionCore.receive`,
 *   the SASL mechanisms' `step`) must not.
 *
 * See `README.md` for what each target covers.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { isDeepStrictEqual } from 'node:util';
import { BeepError, BeepFramingError, ErrorCodes } from '../../src/errors.js';
import { FrameDecoder } from '../../src/framing/decoder.js';
import { encodeDataFrame, encodeSeqFrame } from '../../src/framing/encoder.js';
import { MAX_INT31, type Frame, type FrameHeader } from '../../src/framing/header.js';
import { parseEntityHeaders, type ParsedEntity } from '../../src/framing/mime.js';
import { SessionCore } from '../../src/channels/core.js';
import {
  MgmtSyntaxError,
  buildClose,
  buildError,
  buildGreeting,
  buildOk,
  buildProfileReply,
  buildStart,
  parseMgmt,
  type MgmtElement,
} from '../../src/channels/mgmt.js';
import { echoProfile } from '../../src/profiles/echo.js';
import { answersProfile } from '../../src/profiles/answers.js';
import { buildBlob, parseSaslElement, saslProfiles } from '../../src/profiles/sasl-beep.js';
import { SaslReasons } from '../../src/profiles/sasl/common.js';
import { buildGs2Header, escapeSaslname, parseGs2Header } from '../../src/profiles/sasl/gs2.js';
import { parseClientFinal, parseClientFirst, parseServerFinal, parseServerFirst } from '../../src/profiles/sasl/scram-messages.js';
import { createUserEntry, type ScramCredentials } from '../../src/profiles/sasl/scram-crypto.js';
import { scramSha256Server } from '../../src/profiles/sasl/scram-server.js';
import { scramSha256Client } from '../../src/profiles/sasl/scram-client.js';
import { parsePlainMessage, plainServer } from '../../src/profiles/sasl/plain.js';
import { buildBearerResponse, oauthBearerServer, parseBearerResponse } from '../../src/profiles/sasl/oauthbearer.js';
import { anonymousServer } from '../../src/profiles/sasl/anonymous.js';
import type { SaslContext, SaslServerMechanismFactory, SaslServerStep } from '../../src/profiles/sasl/types.js';
import { SciStreamError, codeForReplyCode } from '../../src/scistream/control/errors.js';
import { isEndpoint } from '../../src/scistream/control/ids.js';
import { MAX_MESSAGE_TEXT, buildErrorXml, buildMessage, parseErrorXml, parseMessage, parseRequest } from '../../src/scistream/control/messages.js';
import { cleanText } from '../../src/scistream/control/xml.js';
import type { FuzzTarget } from './engine.js';

/** An oracle violation that is not itself an exception of the code under test. */
export class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Violation';
  }
}

function check(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Violation(message);
}

/** Throw if a cause chain (depth ≤ 8) contains an error that is not a library error. */
function noHiddenBug(err: unknown, allowed: (e: Error) => boolean = (e) => e instanceof BeepError): void {
  let e: unknown = err;
  for (let i = 0; i < 8 && e !== undefined; i++) {
    if (!(e instanceof Error) || !allowed(e)) throw e;
    e = e.cause;
  }
}

/** Rethrow anything but the allowed error classes. */
function expectOnly(err: unknown, ...classes: (abstract new (...a: never[]) => Error)[]): void {
  if (!classes.some((c) => err instanceof c)) throw err;
}

const PROGRAMMING_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError];
const isProgrammingError = (e: unknown): boolean => PROGRAMMING_ERRORS.some((c) => e instanceof c) || (e instanceof Error && e.name === 'AssertionError');

/** Up to two split points derived from the input itself (so a file always replays the same way). */
function splits(data: Buffer): number[] {
  const n = data.length;
  if (n < 2) return [];
  const a = ((data[0] ?? 0) * 257 + (data[n - 1] ?? 0)) % n;
  let h = 0;
  for (let i = 0; i < n; i += 7) h = (h * 31 + (data[i] ?? 0)) >>> 0;
  const b = h % n;
  return [...new Set([a, b])].filter((p) => p > 0).sort((x, y) => x - y);
}

function chunksOf(data: Buffer, points: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(data.subarray(at, p));
    at = p;
  }
  out.push(data.subarray(at));
  return out;
}

// ---------------------------------------------------------------- 1. frame decoder

const FRAME_DICT = [
  'MSG', 'RPY', 'ANS', 'NUL', 'ERR', 'SEQ', 'END\r\n', '\r\n', ' . ', ' * ', ' ', 'MSG 0 0 . 0 0\r\nEND\r\n',
  'ANS 1 2 * 3 4 5\r\n', 'SEQ 0 0 4096\r\n', 'NUL 1 0 . 0 0\r\n', '4294967295', '2147483647', '2147483648',
];

interface Decoded {
  frames: { header: FrameHeader; payload: Buffer }[];
  error?: BeepFramingError;
}

/** Decode `data` split into `chunks`, optionally in streaming mode, checking the decoder's own contract. */
function decodeFrames(chunks: readonly Buffer[], streaming: boolean): Decoded {
  const frames: Decoded['frames'] = [];
  let announced: FrameHeader | null = null;
  let parts: Buffer[] = [];
  const dec = new FrameDecoder({
    maxHeaderLine: 80,
    maxFrameSize: 300,
    onHeader: (h) => {
      check(announced === null, 'onHeader called twice without a frame');
      announced = h;
    },
    ...(streaming ? { onPayload: (p: Uint8Array) => void parts.push(Buffer.from(p)) } : {}),
  });
  const onFrame = (f: Frame): void => {
    check(announced !== null, 'frame without onHeader');
    const { payload: _p, ...header } = f as Frame & { payload?: Uint8Array };
    check(isDeepStrictEqual({ ...(announced as FrameHeader) }, header), 'onHeader saw a different header than the frame');
    announced = null;
    let payload = Buffer.alloc(0);
    if (f.type !== 'SEQ') {
      payload = streaming ? Buffer.concat(parts) : Buffer.from(f.payload);
      if (streaming) check(f.payload.length === 0, 'streaming frame carries a payload');
      check(payload.length === f.size, `payload of ${payload.length} octets, header says ${f.size}`);
      check(f.type !== 'NUL' || (f.size === 0 && !f.more), 'NUL frame not complete and empty');
      check((f.type === 'ANS') === (f.ansno !== undefined), 'ansno on a non-ANS frame or missing on ANS');
    }
    parts = [];
    frames.push({ header, payload });
  };
  for (const c of chunks) {
    try {
      dec.push(c, onFrame);
    } catch (err) {
      expectOnly(err, BeepFramingError);
      noHiddenBug(err);
      const fe = err as BeepFramingError;
      check(([ErrorCodes.FRAME_SYNTAX, ErrorCodes.HEADER_TOO_LONG, ErrorCodes.FRAME_TOO_LARGE] as string[]).includes(fe.code), `unexpected decoder error code ${fe.code}`);
      // Not reusable after an error: the same error again.
      let again: unknown;
      try {
        dec.push(Buffer.from('SEQ 0 0 0\r\n'), onFrame);
      } catch (e) {
        again = e;
      }
      check(again === err, 'a failed decoder accepted more input');
      return { frames, error: fe };
    }
  }
  return { frames };
}

function encodeFrame(f: { header: FrameHeader; payload: Buffer }): Buffer {
  const h = f.header;
  if (h.type === 'SEQ') return Buffer.from(encodeSeqFrame(h.channel, h.ackno, h.window));
  // Received ansno may reach 2^32 − 1; the encoder sends at most 2^31 − 1.
  if (h.type === 'ANS' && (h.ansno ?? 0) > MAX_INT31) {
    return Buffer.concat([Buffer.from(`ANS ${h.channel} ${h.msgno} ${h.more ? '*' : '.'} ${h.seqno} ${h.size} ${h.ansno}\r\n`), f.payload, Buffer.from('END\r\n')]);
  }
  return Buffer.concat(encodeDataFrame({ type: h.type, channel: h.channel, msgno: h.msgno, more: h.more, seqno: h.seqno, ...(h.type === 'ANS' ? { ansno: h.ansno as number } : {}) }, f.payload));
}

/** The frame decoder, fed whole, split and streaming: same frames, and re-encoding them gives back the input. */
export const frameTarget: FuzzTarget = {
  name: 'frame',
  description: 'FrameDecoder (maxHeaderLine 80, maxFrameSize 300) fed the input whole, split at two input-derived points, and split in streaming mode: only BeepFramingError (syntax / too long / too large, no hidden cause), sticky after failure; the three decodings agree; every frame is consistent and re-encodes to exactly the input octets it came from.',
  dictionary: FRAME_DICT,
  maxLen: 1024,
  run(data) {
    const whole = decodeFrames([data], false);
    const pts = splits(data);
    const split = decodeFrames(chunksOf(data, pts), false);
    const streamed = decodeFrames(chunksOf(data, pts), true);
    for (const [name, other] of [['split', split], ['streaming', streamed]] as const) {
      check(isDeepStrictEqual(whole.frames, other.frames), `${name} decoding gave different frames`);
      check((whole.error === undefined) === (other.error === undefined), `${name} decoding ${other.error ? 'failed' : 'succeeded'} but whole decoding did not`);
    }
    const re = Buffer.concat(whole.frames.map(encodeFrame));
    check(re.equals(data.subarray(0, re.length)), 're-encoded frames differ from the input');
  },
};

// ---------------------------------------------------------------- 1b. MIME entity headers

/** parseEntityHeaders with a small limit: `null` (need more), a result, or a BeepFramingError. */
function entity(data: Buffer, final: boolean): ParsedEntity | null | BeepFramingError {
  try {
    return parseEntityHeaders(data, final, 96);
  } catch (err) {
    expectOnly(err, BeepFramingError);
    check((err as BeepFramingError).code === ErrorCodes.MESSAGE_TOO_LARGE, `unexpected error code ${(err as BeepFramingError).code}`);
    return err as BeepFramingError;
  }
}

/**
 * The entity-header parser as the message layer uses it: on a growing prefix
 * of the message (payload arrives in arbitrary pieces), committing to the
 * first non-null answer.
 */
export const mimeTarget: FuzzTarget = {
  name: 'mime',
  description: 'parseEntityHeaders (maxHeaderBytes 96), as IncomingMessage calls it on a growing prefix of a message: only BeepFramingError MESSAGE_TOO_LARGE; every prefix (final = false) answers null ("need more") or exactly what the whole message (final = true) answers, since the message layer commits to the first non-null answer.',
  dictionary: ['Content-Type', 'Content-Transfer-Encoding', ':', ': ', ' :', '\r\n', '\n', '\r\n\r\n', '\n\r\n', '\t', ' ', 'application/beep+xml', 'binary', 'base64'],
  maxLen: 512,
  run(data) {
    const whole = entity(data, true);
    check(whole !== null, 'null for a final message');
    for (let n = 0; n < data.length; n++) {
      const part = entity(data.subarray(0, n), false);
      if (part === null) continue;
      if (part instanceof BeepFramingError || whole instanceof BeepFramingError) {
        check(part instanceof BeepFramingError && whole instanceof BeepFramingError, `prefix of ${n} octets ${part instanceof BeepFramingError ? 'failed' : 'succeeded'}, the whole message did not`);
      } else {
        check(isDeepStrictEqual(part, whole), `prefix of ${n} octets committed to ${JSON.stringify(part)}, the whole message is ${JSON.stringify(whole)}`);
      }
      return;
    }
  },
};

// ---------------------------------------------------------------- 1c. session core

const ECHO_URI = 'http://xml.resource.org/profiles/NULL/ECHO';
const GREETING = 'Content-Type: application/beep+xml\r\n\r\n<greeting />\r\n';
const GREETING_FRAME = `RPY 0 0 . 0 ${GREETING.length}\r\n${GREETING}END\r\n`;

const SESSION_PROFILES = [
  echoProfile,
  answersProfile,
  ...saslProfiles({
    mechanisms: [
      anonymousServer({ enabled: true }),
      plainServer({ verify: (u, p) => u === 'user' && p === 'pencil', allowWithoutTls: true }),
    ],
  }),
];

/**
 * The session target's input, as the chunks to feed: raw octets (split at
 * input-derived points), or — after a `#F` or `#I` prefix — frames separated by 0xFF,
 * each `KEYWORD channel msgno more [ansno]` LF payload, for which the seqno
 * and size are filled in (per channel, channel 0 after the greeting), one
 * chunk per frame. `SEQ …` records are sent as written.
 */
export function assembleSession(data: Buffer): Buffer[] {
  if (data.length < 2 || data[0] !== 0x23 || (data[1] !== 0x46 && data[1] !== 0x49)) return chunksOf(data, splits(data));
  const seqnos = new Map<string, number>([['0', GREETING.length]]);
  const out: Buffer[] = [];
  let at = 2;
  for (let n = 0; at <= data.length && n < 256; n++) {
    let end = data.indexOf(0xff, at);
    if (end < 0) end = data.length;
    const rec = data.subarray(at, end);
    at = end + 1;
    const nl = rec.indexOf(0x0a);
    const head = rec.subarray(0, nl < 0 ? rec.length : nl).toString('latin1');
    const payload = nl < 0 ? Buffer.alloc(0) : rec.subarray(nl + 1);
    const tok = head.split(' ');
    if (tok[0] === 'SEQ') {
      out.push(Buffer.from(`${head}\r\n`, 'latin1'));
      continue;
    }
    const [kw = 'MSG', ch = '0', msgno = '0', more = '.', ...rest] = tok;
    const seq = seqnos.get(ch) ?? 0;
    seqnos.set(ch, (seq + payload.length) % 4294967296);
    const tail = rest.length > 0 ? ` ${rest.join(' ')}` : '';
    out.push(Buffer.concat([Buffer.from(`${kw} ${ch} ${msgno} ${more} ${seq} ${payload.length}${tail}\r\n`, 'latin1'), payload, Buffer.from('END\r\n')]));
  }
  return out;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Errors that escaped to the process while a session input ran (set up by the runner and the regression test). */
export const escaped: unknown[] = [];

/** Record unhandled rejections and uncaught exceptions into {@link escaped} (idempotent). */
export function watchEscapes(): void {
  if ((globalThis as { __fuzzWatch?: boolean }).__fuzzWatch) return;
  (globalThis as { __fuzzWatch?: boolean }).__fuzzWatch = true;
  process.on('unhandledRejection', (e) => void escaped.push(e));
  process.on('uncaughtException', (e) => void escaped.push(e));
}

/**
 * What the initiator does once greeted: start an echo channel, then send a
 * MSG expecting RPY, one expecting ANS…NUL and one more, then close it.
 * Every promise is watched: a rejection must be a library error.
 */
function initiatorScript(core: SessionCore, bad: unknown[]): void {
  const watch = (p: Promise<unknown>): void => void p.catch((e: unknown) => (e instanceof BeepError ? undefined : void bad.push(e)));
  watch(
    core.startChannel(ECHO_URI).then((ch) => {
      watch(ch.request('hello').then((m) => m.bytes()));
      watch((async () => {
        for await (const a of ch.requestAnswers('3')) await a.bytes();
      })());
      watch(ch.request(Buffer.alloc(300, 0x61)).then((m) => m.text()));
      watch(ch.close());
    }),
  );
}

/** A SessionCore fed a greeting then the input: it never throws, its output stays well-formed. */
export const sessionTarget: FuzzTarget = {
  name: 'session',
  description: 'A SessionCore fed a valid greeting then the input, with event-loop turns between chunks. Listener (echo, answers, SASL ANONYMOUS and PLAIN profiles; small limits): input raw and split at input-derived points, or "#F" frames with seqno/size filled in, one chunk per frame. Initiator ("#I" frames): it starts an echo channel and sends MSGs expecting RPY and ANS…NUL, then closes it — the input plays the listener. Oracle: receive() never throws, a termination error hides no programming error, profile handlers and the initiator\'s requests fail only with library errors, nothing escapes as an unhandled rejection, and every octet the core sends decodes as well-formed frames with continuous seqnos, none over maxSendFrame.',
  dictionary: [
    ...FRAME_DICT, '#F', '#I', '\xff', 'MSG 0 1 .\n', 'MSG 1 0 .\n', 'RPY 0 1 .\n', 'RPY 1 0 .\n', 'ANS 1 1 . 0\n', 'NUL 1 1 .\n', 'ERR 1 2 .\n', 'RPY 0 2 .\n',
    'SEQ 1 0 8192', 'Content-Type: application/beep+xml\r\n\r\n',
    `<start number='1'><profile uri='${ECHO_URI}'/></start>`, "<close number='1' code='200'/>", "<close code='200'/>", '<ok/>', "<error code='550'/>",
    `<profile uri='${ECHO_URI}'/>`, 'http://iana.org/beep/SASL/ANONYMOUS', 'http://iana.org/beep/SASL/PLAIN', 'urn:beepstream:profiles:answers',
    '<![CDATA[', ']]>', '<blob>', '</blob>', "<blob status='abort'/>", 'AHVzZXIAcGVuY2ls', '3:10',
  ],
  maxLen: 2048,
  async run(data) {
    watchEscapes();
    escaped.length = 0;
    const initiator = data[0] === 0x23 && data[1] === 0x49;
    const core = new SessionCore({
      role: initiator ? 'initiator' : 'listener',
      profiles: initiator ? [echoProfile] : SESSION_PROFILES,
      limits: { maxFrameSize: 2048, receiveWindow: 4096, maxMgmtMessage: 2048, maxMessageSize: 4096, maxChannels: 8, maxInboundQueue: 4, maxOutstanding: 4, maxSendFrame: 512 },
    });
    const handlerErrors: unknown[] = [];
    core.on('handlerError', (e) => void handlerErrors.push(e));
    const rejections: unknown[] = [];
    if (initiator) initiatorScript(core, rejections);
    const out = new FrameDecoder({ maxFrameSize: 1 << 20 });
    // Per channel, the seqno the core's next frame must carry (RFC 3080 §2.2.1.2; 0 again for a reused channel number).
    const nextSeq = new Map<number, number>();
    const sent = (f: Frame): void => {
      if (f.type === 'SEQ') return;
      const want = nextSeq.get(f.channel) ?? 0;
      check(f.seqno === want || f.seqno === 0, `the core sent seqno ${f.seqno} on channel ${f.channel}, expected ${want}`);
      check(f.size <= 512, `the core sent a ${f.size}-octet frame, over maxSendFrame`);
      nextSeq.set(f.channel, (f.seqno + f.size) % 4294967296);
    };
    const drain = (): void => {
      for (let i = 0; i < 1000; i++) {
        const bufs = core.pull();
        if (bufs === null) return;
        for (const b of bufs) {
          try {
            out.push(b, sent);
          } catch (err) {
            if (err instanceof Violation) throw err;
            throw new Violation(`the core sent a malformed frame: ${(err as Error).message}`);
          }
        }
      }
    };
    for (const chunk of [Buffer.from(GREETING_FRAME), ...assembleSession(data)]) {
      try {
        core.receive(chunk);
      } catch (err) {
        throw new Violation(`receive() threw: ${(err as Error)?.stack ?? String(err)}`);
      }
      drain();
      await tick();
      drain();
    }
    for (let i = 0; i < 4; i++) {
      await tick();
      drain();
    }
    if (core.failure) noHiddenBug(core.failure);
    core.transportClosed();
    await tick();
    check(core.state === 'closed', 'the core is not closed after transportClosed()');
    for (const e of handlerErrors) if (isProgrammingError(e)) throw e;
    for (const e of rejections) throw e;
    for (const e of escaped) throw e;
  },
};

// ---------------------------------------------------------------- 2. channel 0 XML

/** Rebuild a parsed channel-0 element with the builders. */
function rebuildMgmt(el: MgmtElement): string | null {
  switch (el.kind) {
    case 'greeting':
      return buildGreeting({ profiles: el.profiles, features: el.features, localize: el.localize });
    case 'start':
      if (el.profiles.some((p) => (p.content?.length ?? 0) > 4096)) return null; // the builder refuses > 4K (RFC 3080 §2.3.1.2)
      return buildStart(el.number, el.profiles.map((p) => (p.content === undefined ? { uri: p.uri } : { uri: p.uri, content: p.content })), el.serverName);
    case 'profile':
      if ((el.content?.length ?? 0) > 4096) return null;
      return buildProfileReply(el.uri, el.content);
    case 'close':
      return buildClose(el.number, el.code, el.diagnostic, el.lang);
    case 'ok':
      return buildOk();
    case 'error':
      return buildError(el.code, el.diagnostic, el.lang);
  }
}

/** What must survive a round trip: content bytes (not how they were encoded), an empty lang as none. */
function normalMgmt(el: MgmtElement): unknown {
  const prof = (p: { uri: string; content?: Buffer }): unknown => ({ uri: p.uri, content: p.content !== undefined && p.content.length > 0 ? p.content.toString('hex') : undefined });
  switch (el.kind) {
    case 'start':
      return { ...el, profiles: el.profiles.map(prof) };
    case 'profile':
      return { kind: 'profile', ...(prof(el) as object) };
    case 'close':
    case 'error':
      return { ...el, lang: el.lang || undefined };
    default:
      return el;
  }
}

function parseMgmtOrNull(input: Buffer | string): MgmtElement | null {
  try {
    return parseMgmt(input, { maxBytes: 8192 });
  } catch (err) {
    expectOnly(err, MgmtSyntaxError);
    return null;
  }
}

/** The channel-0 parser: only MgmtSyntaxError; what it accepts survives build → parse. */
export const mgmtTarget: FuzzTarget = {
  name: 'mgmt',
  description: 'parseMgmt (channel-0 XML): only MgmtSyntaxError; an element it accepts is rebuilt with the builders (buildGreeting, buildStart, …) and must parse again to the same element (profile content compared as bytes).',
  dictionary: [
    '<greeting', '</greeting>', '<start', '</start>', '<profile', '</profile>', '<close', '</close>', '<ok', '<error', '</error>', '/>', '>',
    " number='1'", ' number="3"', " code='200'", " code='550'", " uri='http://x/y'", " encoding='base64'", " serverName='a'", " xml:lang='en'",
    " features='x-a'", " localize='fr'", '<![CDATA[', ']]>', '<!DOCTYPE', '<!--', '-->', '<?xml version="1.0"?>', '&amp;', '&lt;', '&#x0;', '&#65;', '&#x10FFFF;', '&foo;',
    '&#13;', '\r\n', '\t', "'", '"', '=', 'AAEC', '==', '<uri>', '<number>', '<code>', '<encoding>',
  ],
  maxLen: 2048,
  run(data) {
    const el = parseMgmtOrNull(data);
    if (el === null) return;
    const xml = rebuildMgmt(el);
    if (xml === null) return;
    let again: MgmtElement;
    try {
      again = parseMgmt(xml, { maxBytes: 1 << 20 });
    } catch (err) {
      throw new Violation(`rebuilt element does not parse (${(err as Error).message}): ${xml.slice(0, 200)}`);
    }
    check(isDeepStrictEqual(normalMgmt(again), normalMgmt(el)), `round trip changed the element: ${xml.slice(0, 200)}`);
  },
};

// ---------------------------------------------------------------- 3. SASL

const SNONCE = 'c2VydmVyLW5vbmNl';
const SCRAM_SALT = Buffer.from('fuzz-salt-0123456', 'latin1');
const BINDING = { type: 'tls-exporter' as const, data: Buffer.from('0123456789abcdef0123456789abcdef') };
let scramUser: ScramCredentials | undefined;

const FAILURE_CODES = new Set([534, 535, 538]);
const REASONS = new Set<string>(Object.values(SaslReasons));

/** A server step must be well-shaped; a 454 here can only be a thrown (and masked) internal error. */
function checkServerStep(s: SaslServerStep): void {
  if (s.status === 'failure') {
    check(FAILURE_CODES.has(s.code), `server failed with code ${s.code} (${s.reason}): an internal error was masked`);
    check(REASONS.has(s.reason), `unknown failure reason ${JSON.stringify(s.reason)}`);
  } else if (s.status === 'continue') check(Buffer.isBuffer(s.challenge), 'challenge is not a Buffer');
  else check(typeof s.identity.authcid === 'string' && s.identity.authcid !== '', 'success without an authcid');
}

/** Drive a server mechanism with the 0xFF-separated client messages ("\xfe" alone: no initial response). */
async function driveServer(factory: SaslServerMechanismFactory, ctx: SaslContext, data: Buffer): Promise<void> {
  const mech = factory.create(ctx);
  let at = 0;
  for (let round = 0; round < 4 && at <= data.length; round++) {
    let end = data.indexOf(0xff, at);
    if (end < 0) end = data.length;
    const msg = data.subarray(at, end);
    at = end + 1;
    const step = await mech.step(msg.length === 1 && msg[0] === 0xfe ? undefined : Buffer.from(msg));
    checkServerStep(step);
    if (step.status !== 'continue') break;
  }
}

const scramServer = (plus: boolean): SaslServerMechanismFactory =>
  scramSha256Server({
    store: { get: (u) => (u === 'user' ? scramUser : undefined) },
    secret: Buffer.alloc(32, 7),
    plus,
    nonce: () => SNONCE,
    authorize: (c, z) => c === 'user' && z === 'admin',
  });

type SaslCase = (data: Buffer) => void | Promise<void>;

/** The SASL sub-targets, selected by the first input octet (see the README). */
const SASL_CASES: Record<string, SaslCase> = {
  g(data) {
    const text = data.toString('utf8');
    const h = parseGs2Header(text);
    if (h === undefined) return;
    check(h.raw + h.rest === text, 'gs2: raw + rest is not the message');
    check(buildGs2Header(h.cbind, h.authzid) === h.raw, 'gs2: rebuilt header differs');
  },
  f(data) {
    const text = data.toString('utf8');
    const m = parseClientFirst(text);
    if (m === undefined) return;
    check(m.gs2.raw + m.bare === text, 'client-first: header + bare is not the message');
    check(m.bare.startsWith(`n=${escapeSaslname(m.username)},r=${m.nonce}`), 'client-first: fields do not rebuild the message');
  },
  s(data) {
    const text = data.toString('utf8');
    const m = parseServerFirst(text);
    if (m === undefined) return;
    check(text.startsWith(`r=${m.nonce},s=${m.salt.toString('base64')},i=${m.iterations}`), 'server-first: fields do not rebuild the message');
  },
  c(data) {
    const text = data.toString('utf8');
    const m = parseClientFinal(text);
    if (m === undefined) return;
    check(`${m.withoutProof},p=${m.proof.toString('base64')}` === text, 'client-final: fields do not rebuild the message');
    check(m.withoutProof.startsWith(`c=${m.channelBinding.toString('base64')},r=${m.nonce}`), 'client-final: c= and r= do not rebuild');
  },
  v(data) {
    const text = data.toString('utf8');
    const m = parseServerFinal(text);
    if (m === undefined) return;
    const head = 'error' in m ? `e=${m.error}` : `v=${m.verifier.toString('base64')}`;
    check(text === head || text.startsWith(`${head},`), 'server-final: fields do not rebuild the message');
  },
  p(data) {
    const m = parsePlainMessage(data);
    if (m === undefined) return;
    check(Buffer.from(`${m.authzid}\0${m.authcid}\0${m.password}`, 'utf8').equals(data), 'plain: fields do not rebuild the message');
  },
  o(data) {
    const m = parseBearerResponse(data);
    if (m === undefined) return;
    const vchar = (s: string | undefined): boolean => s === undefined || /^[\x21-\x7E]+$/.test(s);
    if (!vchar(m.host) || !vchar(m.port)) return; // the builder sends VCHAR only
    const { token, ...request } = m;
    const again = parseBearerResponse(buildBearerResponse(token, request));
    check(isDeepStrictEqual(again, m), 'bearer: build → parse changed the request');
  },
  b(data) {
    let el;
    try {
      el = parseSaslElement(data);
    } catch (err) {
      expectOnly(err, MgmtSyntaxError);
      return;
    }
    if (el.kind !== 'blob') return;
    const again = parseSaslElement(buildBlob(el.data, el.status));
    check(isDeepStrictEqual(again, el), 'blob: build → parse changed the element');
  },
  S: (data) => driveServer(scramServer(false), { tls: true, advertisedMechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] }, data),
  P: (data) => driveServer(scramServer(true), { tls: true, channelBinding: BINDING }, data),
  async C(data) {
    const ctx: SaslContext = (data[1] ?? 0) & 1 ? { tls: true, channelBinding: BINDING } : { tls: true };
    const mech = scramSha256Client({ username: 'user', password: 'pencil', minIterations: 1, maxIterations: 64, nonce: () => 'fyko+d2lbbFgONRv9qkxdawL', plus: ((data[1] ?? 0) & 2) !== 0 && ctx.channelBinding !== undefined }).create(ctx);
    await mech.initial();
    const parts = data.subarray(2).toString('latin1').split('\xff').map((s) => Buffer.from(s, 'latin1'));
    for (const [i, p] of parts.slice(0, 3).entries()) {
      const r = i === parts.length - 1 && i > 0 ? await mech.finish(p.length > 0 ? p : undefined) : await mech.step(p);
      check(r.status === 'continue' || r.status === 'failure' || r.status === 'success', 'client: bad step result');
      if (r.status !== 'continue') break;
    }
  },
  L: (data) => driveServer(plainServer({ verify: (u, p) => u === 'user' && p === 'pencil', allowWithoutTls: true, authorize: (c, z) => c === 'user' && z === 'admin' }), { tls: false }, data),
  O: (data) =>
    driveServer(
      oauthBearerServer({
        validateToken: async (token) => (token === 'good' ? { valid: true, subject: 'alice', scope: ['read'] } : { valid: false, status: 'invalid_token', scope: 'read' }),
        authorize: (s, z) => s === 'alice' && z === 'admin',
      }),
      { tls: true },
      data,
    ),
  A: (data) => driveServer(anonymousServer({ enabled: true }), { tls: false }, data),
};
const SASL_KEYS = Object.keys(SASL_CASES);

/** The SASL parsers and server mechanisms. */
export const saslTarget: FuzzTarget = {
  name: 'sasl',
  description: 'SASL: the first octet selects a case (g gs2 header, f/s/c/v SCRAM client-first/server-first/client-final/server-final, p PLAIN message, o OAUTHBEARER response, b <blob> element, S/P SCRAM(-PLUS) server, C SCRAM client, L PLAIN server, O OAUTHBEARER server, A ANONYMOUS server; other octets map onto these). Parsers never throw (the <blob> parser only MgmtSyntaxError) and what they accept rebuilds the message; mechanisms driven with 0xFF-separated messages never reject and fail only with 534/535/538 and a fixed reason (a 454 means an internal error was masked).',
  dictionary: [
    'n,,', 'y,,', 'p=tls-exporter,', 'p=tls-unique,', 'a=', 'n=', 'r=', 's=', 'i=', 'c=', ',p=', 'v=', 'e=', 'm=', '=2C', '=3D', ',', '\x00', '\x01', '\xff', '\xfe',
    'auth=Bearer ', 'host=', 'port=', '\x01\x01', 'good', 'user', 'admin', 'pencil', SNONCE, 'fyko+d2lbbFgONRv9qkxdawL', 'biws', 'eSws', 'cD10bHMtZXhwb3J0ZXIsLA==',
    '<blob>', '</blob>', "<blob status='complete'>", " status='abort'", '<status>', '</status>', '<status/>', "<error code='535'>", '<code>', '</error>', 'AAAA', '====', 'i=4096', 'i=1',
  ],
  maxLen: 1024,
  async setup() {
    scramUser ??= await createUserEntry('pencil', 4096, { salt: SCRAM_SALT });
  },
  async run(data) {
    if (data.length === 0) return;
    const sel = String.fromCharCode(data[0] as number);
    const key = sel in SASL_CASES ? sel : (SASL_KEYS[(data[0] as number) % SASL_KEYS.length] as string);
    await (SASL_CASES[key] as SaslCase)(data.subarray(1));
  },
};

// ---------------------------------------------------------------- 4. SciStream control

/** The control messages parser: only SciStreamError; parse → build → parse is stable. */
export const scistreamTarget: FuzzTarget = {
  name: 'scistream',
  description: 'SciStream control documents: parseMessage and parseRequest throw only SciStreamError; a parsed message is rebuilt by buildMessage (which must accept it) and parses back to the same message (appresponse text as cleanText would send it); parseErrorXml never throws, and an error it parses survives buildErrorXml → parseErrorXml (code, reply code, retry_after, endpoint).',
  dictionary: [
    '<request', '<hello', '<updatetargets', '<release', '<status', '<response', '<appresponse', '<statusresponse', '<error', '<stats', '/>', '>',
    '</request>', '</hello>', '<prod_listener>', '</prod_listener>', '<remote_listener>', '<listener>', '</listener>', '<message>', '</message>', '<details>',
    " uid='0123456789abcdef0123456789abcdef'", " role='PROD'", " role='CONS'", " num_conn='1'", " rate='0'", " keep='true'", " state='active'", " version='1'",
    " code='BAD_FORMAT'", " reply='501'", " retry_after='5'", " endpoint='h:1'", 'host:5000', '[::1]:80', '127.0.0.1:65535', '<![CDATA[', ']]>', '&amp;', '&#13;',
    " expires_in='10'", " connections='1' open='0' bytes_to_producer='0' bytes_to_consumer='0'", 'NumConn', 'prod-listeners',
  ],
  maxLen: 2048,
  run(data) {
    let m;
    try {
      m = parseMessage(data);
    } catch (err) {
      expectOnly(err, SciStreamError);
    }
    try {
      parseRequest(data);
    } catch (err) {
      expectOnly(err, SciStreamError);
    }
    if (m !== undefined) {
      const xml = buildMessage(m);
      let again;
      try {
        again = parseMessage(xml);
      } catch (err) {
        throw new Violation(`rebuilt message does not parse (${(err as Error).message}): ${xml.slice(0, 200)}`);
      }
      const expected = m.type === 'appresponse' ? { ...m, message: cleanText(m.message, MAX_MESSAGE_TEXT).trim() } : m;
      check(isDeepStrictEqual(again, expected), `round trip changed the message: ${xml.slice(0, 200)}`);
    }
    const e = parseErrorXml(data, codeForReplyCode);
    if (e === null) return;
    check(e instanceof SciStreamError, 'parseErrorXml returned something else than a SciStreamError');
    const xml = buildErrorXml(e);
    const e2 = parseErrorXml(xml, codeForReplyCode);
    check(e2 !== null, `rebuilt error does not parse: ${xml.slice(0, 200)}`);
    check(e2.code === e.code, `error code ${e.code} became ${e2.code}`);
    check(e2.replyCode === (e.replyCode >= 400 && e.replyCode <= 599 ? e.replyCode : 451), `reply code ${e.replyCode} became ${e2.replyCode}`);
    check(e2.retryAfter === e.retryAfter, 'retry_after changed');
    check(e2.endpoint === (isEndpoint(e.endpoint) ? e.endpoint : undefined), 'endpoint changed');
  },
};

/** Every target, by name. */
export const TARGETS: readonly FuzzTarget[] = [frameTarget, mimeTarget, sessionTarget, mgmtTarget, saslTarget, scistreamTarget];
