/**
 * A scripted raw-socket BEEP peer for conformance tests.
 *
 * It speaks bytes over node:net directly and parses what the listener sends
 * with its own minimal frame parser (deliberately independent of
 * src/framing). It tracks, per channel:
 *
 * - the next sequence number it expects from the server (so SEQ frames carry
 *   a correct ackno, and gaps in the server's numbering are detected),
 * - the right window edge it advertised (so a server frame beyond it is
 *   detected: RFC 3081 §3.1.2),
 * - its own next sequence number and the server's advertised edge (so MSG
 *   frames built with {@link RawPeer.msg} carry correct seqnos).
 *
 * It also checks that the frames of a server message are not interrupted by
 * other messages on the channel (RFC 3080 §2.2.1; interleaved ANS excepted),
 * that NUL never precedes the end of an answer, and that the server's SEQ
 * frames never acknowledge unsent octets or move a window edge left.
 *
 * Anything the server does wrong at the framing level is recorded in
 * {@link RawPeer.violations}; tests assert it stays empty.
 *
 * Every wait is bounded by a timeout.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import { createServer, echoProfile, answersProfile, type BeepServer, type ChannelProfile, type ServerOptions, type Session } from '../../src/index.js';

export const ECHO = 'http://xml.resource.org/profiles/NULL/ECHO';
export const ANSWERS = 'urn:beepstream:profiles:answers';
export const BEEP_XML_HEAD = 'Content-Type: application/beep+xml\r\n\r\n';
/** The initiator's greeting of RFC 3080 §2.3.1.1, exactly 52 octets. */
export const RFC_GREETING_PAYLOAD = `${BEEP_XML_HEAD}<greeting />\r\n`;
/** Bounds of the waits (not measurements): generous, so a loaded machine does not fail them. */
export const DEFAULT_TIMEOUT = 30_000;
const INITIAL_WINDOW = 4096;

export type DataKeyword = 'MSG' | 'RPY' | 'ERR' | 'ANS' | 'NUL';

export interface RawDataFrame {
  readonly type: DataKeyword;
  readonly channel: number;
  readonly msgno: number;
  readonly more: boolean;
  readonly seqno: number;
  readonly size: number;
  readonly ansno?: number;
  readonly payload: Buffer;
  /** The payload as UTF-8 text. */
  readonly text: string;
  /** The header line, without CRLF. */
  readonly header: string;
  /** Position in arrival order (0 = first frame received). */
  readonly index: number;
}

export interface RawSeqFrame {
  readonly type: 'SEQ';
  readonly channel: number;
  readonly ackno: number;
  readonly window: number;
  readonly header: string;
  readonly index: number;
}

export type RawFrame = RawDataFrame | RawSeqFrame;

export function isData(f: RawFrame): f is RawDataFrame {
  return f.type !== 'SEQ';
}

/** Build a data frame by hand, exactly as RFC 3080 §2.2.1 writes it. */
export function buildFrame(
  type: DataKeyword,
  channel: number,
  msgno: number,
  more: boolean,
  seqno: number,
  payload: string | Buffer = '',
  ansno?: number,
): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const tail = type === 'ANS' ? ` ${ansno ?? 0}` : '';
  const header = `${type} ${channel} ${msgno} ${more ? '*' : '.'} ${seqno} ${body.length}${tail}\r\n`;
  return Buffer.concat([Buffer.from(header, 'latin1'), body, Buffer.from('END\r\n', 'latin1')]);
}

/** Octet length of a payload as it will be sent. */
export function octets(payload: string | Buffer): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
}

const NUM = /^(?:0|[1-9][0-9]*)$/;

function num(tok: string | undefined, max: number): number {
  if (tok === undefined || !NUM.test(tok)) throw new Error(`bad number ${JSON.stringify(tok)}`);
  const n = Number(tok);
  if (n > max) throw new Error(`number ${tok} out of range`);
  return n;
}

/** A reply message reassembled from its frames. */
export interface RawMessage {
  type: DataKeyword;
  channel: number;
  msgno: number;
  ansno?: number;
  frames: RawDataFrame[];
  payload: Buffer;
  /** Payload as text. */
  text: string;
  /** Text after the MIME header block (first empty line), or all of it. */
  body: string;
}

function splitBody(text: string): string {
  if (text.startsWith('\r\n')) return text.slice(2);
  const i = text.indexOf('\r\n\r\n');
  return i < 0 ? text : text.slice(i + 4);
}

interface Waiter {
  check: () => boolean;
}

export class RawPeer {
  readonly socket: net.Socket;
  /** Every frame received, in order. */
  readonly frames: RawFrame[] = [];
  /** Server misbehaviour detected by the tracker (should stay empty). */
  readonly violations: string[] = [];
  /** Socket errors seen (e.g. ECONNRESET after the server destroyed the connection). */
  readonly socketErrors: Error[] = [];
  /** Total octets received on the socket. */
  bytesIn = 0;
  closed = false;
  /** The server half-closed (FIN) before the socket closed. */
  gotEnd = false;
  /** Time of the last octet received. */
  lastDataAt = Date.now();

  private buf: Buffer = Buffer.alloc(0);
  private broken = false;
  private readonly consumed = new Set<number>();
  private readonly waiters = new Set<Waiter>();
  /** Next seqno expected from the server, per channel. */
  private readonly inSeq = new Map<number, number>();
  /** Right edge we advertised to the server, per channel. */
  private readonly inEdge = new Map<number, number>();
  /** Our next seqno, per channel. */
  private readonly outSeq = new Map<number, number>();
  /** Right edge the server advertised to us, per channel. */
  private readonly outEdge = new Map<number, number>();
  private readonly msgnos = new Map<number, number>();
  private readonly autoAcks = new Map<number, number>();
  /** Per channel: the server's previous frame was intermediate ("*"): its keyword and msgno. */
  private readonly lastMore = new Map<number, { type: DataKeyword; msgno: number }>();
  /** Per channel and msgno: answers the server has begun and not completed. */
  private readonly openAnswers = new Map<string, Set<number>>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.gotEnd = true;
    });
    socket.on('error', (err) => this.socketErrors.push(err));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = DEFAULT_TIMEOUT): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.setNoDelay(true);
      const peer = new RawPeer(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect timeout after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(peer);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  // ------------------------------------------------------------------ inbound

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    this.lastDataAt = Date.now();
    if (this.broken) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      this.parse();
    } catch (err) {
      this.broken = true;
      this.violations.push(`unparseable bytes from server: ${(err as Error).message}`);
    }
    this.wake();
  }

  private parse(): void {
    for (;;) {
      const lf = this.buf.indexOf('\r\n', 0, 'latin1');
      if (lf < 0) {
        if (this.buf.length > 128) throw new Error('header line longer than 128 octets');
        return;
      }
      const header = this.buf.toString('latin1', 0, lf);
      const t = header.split(' ');
      const kw = t[0];
      if (kw === 'SEQ') {
        if (t.length !== 4) throw new Error(`bad SEQ header ${JSON.stringify(header)}`);
        const f: RawSeqFrame = {
          type: 'SEQ',
          channel: num(t[1], 2147483647),
          ackno: num(t[2], 4294967295),
          window: num(t[3], 2147483647),
          header,
          index: this.frames.length,
        };
        this.buf = this.buf.subarray(lf + 2);
        this.onSeq(f);
        this.frames.push(f);
        continue;
      }
      if (kw !== 'MSG' && kw !== 'RPY' && kw !== 'ERR' && kw !== 'ANS' && kw !== 'NUL') {
        throw new Error(`unknown keyword in ${JSON.stringify(header)}`);
      }
      const want = kw === 'ANS' ? 7 : 6;
      if (t.length !== want) throw new Error(`bad ${kw} header ${JSON.stringify(header)}`);
      if (t[3] !== '.' && t[3] !== '*') throw new Error(`bad continuation in ${JSON.stringify(header)}`);
      const size = num(t[5], 2147483647);
      const total = lf + 2 + size + 5;
      if (this.buf.length < total) return;
      if (this.buf.toString('latin1', lf + 2 + size, total) !== 'END\r\n') {
        throw new Error(`missing trailer after ${JSON.stringify(header)}`);
      }
      const payload = Buffer.from(this.buf.subarray(lf + 2, lf + 2 + size));
      const f: RawDataFrame = {
        type: kw,
        channel: num(t[1], 2147483647),
        msgno: num(t[2], 2147483647),
        more: t[3] === '*',
        seqno: num(t[4], 4294967295),
        size,
        ...(kw === 'ANS' ? { ansno: num(t[6], 4294967295) } : {}),
        payload,
        text: payload.toString('utf8'),
        header,
        index: this.frames.length,
      };
      if (kw === 'NUL' && (f.more || size !== 0)) this.violations.push(`bad NUL frame ${header}`);
      this.buf = this.buf.subarray(total);
      this.onDataFrame(f);
      this.frames.push(f);
    }
  }

  private onDataFrame(f: RawDataFrame): void {
    const expected = this.inSeq.get(f.channel) ?? 0;
    if (f.seqno !== expected) {
      this.violations.push(`channel ${f.channel}: server seqno ${f.seqno}, expected ${expected} (${f.header})`);
    }
    const edge = this.inEdge.get(f.channel) ?? INITIAL_WINDOW;
    if (f.seqno + f.size > edge) {
      this.violations.push(`channel ${f.channel}: server frame ${f.header} ends at ${f.seqno + f.size}, beyond advertised edge ${edge}`);
    }
    this.inSeq.set(f.channel, f.seqno + f.size);
    // RFC 3080 §2.2.1: the frames of a message are sent without intervening
    // frames of other messages on the channel (ANS of one reply excepted).
    const prev = this.lastMore.get(f.channel);
    if (prev && (prev.msgno !== f.msgno || prev.type !== f.type)) {
      this.violations.push(`channel ${f.channel}: ${f.header} interrupts ${prev.type} ${prev.msgno}, whose last frame was intermediate`);
    }
    if (f.more) this.lastMore.set(f.channel, { type: f.type, msgno: f.msgno });
    else this.lastMore.delete(f.channel);
    const key = `${f.channel}/${f.msgno}`;
    if (f.type === 'ANS') {
      const open = this.openAnswers.get(key) ?? new Set<number>();
      if (f.more) open.add(f.ansno ?? -1);
      else open.delete(f.ansno ?? -1);
      this.openAnswers.set(key, open);
    } else if (f.type === 'NUL') {
      const open = this.openAnswers.get(key);
      if (open && open.size > 0) this.violations.push(`channel ${f.channel}: NUL for msgno ${f.msgno} while answers ${[...open].join(',')} are incomplete`);
      this.openAnswers.delete(key);
    }
    const w = this.autoAcks.get(f.channel);
    if (w !== undefined && f.size > 0) this.ack(f.channel, w);
  }

  private onSeq(f: RawSeqFrame): void {
    const sent = this.outSeq.get(f.channel) ?? 0;
    if (f.ackno > sent) this.violations.push(`SEQ ${f.channel} acknowledges ${f.ackno}, but only ${sent} octets were sent`);
    const edge = f.ackno + f.window;
    // RFC 3081 §3.1.4 after RFC 1122 §4.2.2.16: the right edge should never move left.
    if (edge < this.serverEdge(f.channel)) this.violations.push(`${f.header} retracts the window edge from ${this.serverEdge(f.channel)} to ${edge}`);
    this.outEdge.set(f.channel, edge);
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (w.check()) this.waiters.delete(w);
    }
  }

  /** Wait until `test` returns a value other than undefined, or fail after `timeoutMs`. */
  private waitUntil<T>(test: () => T | undefined, what: string, timeoutMs: number, failOnClose = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; recent frames:\n${this.describe(8)}`));
      }, timeoutMs);
      const waiter: Waiter = {
        check: () => {
          const v = test();
          if (v !== undefined) {
            clearTimeout(timer);
            resolve(v);
            return true;
          }
          if (failOnClose && this.closed) {
            clearTimeout(timer);
            reject(new Error(`connection closed while waiting for ${what}; recent frames:\n${this.describe(8)}`));
            return true;
          }
          return false;
        },
      };
      if (!waiter.check()) this.waiters.add(waiter);
    });
  }

  /** The last `n` frames, for diagnostics. */
  describe(n = 10): string {
    return this.frames
      .slice(-n)
      .map((f) => `  #${f.index} ${f.header}${isData(f) && f.size > 0 ? ` ${JSON.stringify(f.text.slice(0, 80))}` : ''}`)
      .join('\n');
  }

  /**
   * The earliest not-yet-consumed frame matching `pred` (frames already
   * received count); it is marked consumed. Other frames stay available.
   */
  expectFrame<F extends RawFrame = RawFrame>(pred: (f: RawFrame) => boolean, timeoutMs = DEFAULT_TIMEOUT, what = 'a matching frame'): Promise<F> {
    return this.waitUntil(() => {
      for (const f of this.frames) {
        if (!this.consumed.has(f.index) && pred(f)) {
          this.consumed.add(f.index);
          return f as F;
        }
      }
      return undefined;
    }, what, timeoutMs);
  }

  /** Wait for a data frame of one of `types` on channel/msgno. */
  expectData(types: DataKeyword | readonly DataKeyword[], channel: number, msgno: number, timeoutMs = DEFAULT_TIMEOUT): Promise<RawDataFrame> {
    const list = typeof types === 'string' ? [types] : types;
    return this.expectFrame<RawDataFrame>(
      (f) => isData(f) && list.includes(f.type) && f.channel === channel && f.msgno === msgno,
      timeoutMs,
      `${list.join('|')} ${channel} ${msgno}`,
    );
  }

  /** Collect a whole RPY or ERR (all its frames) on channel/msgno. */
  async expectReply(channel: number, msgno: number, timeoutMs = DEFAULT_TIMEOUT): Promise<RawMessage> {
    const deadline = Date.now() + timeoutMs;
    const first = await this.expectData(['RPY', 'ERR'], channel, msgno, timeoutMs);
    const frames = [first];
    let last = first;
    while (last.more) {
      last = await this.expectData(first.type, channel, msgno, Math.max(1, deadline - Date.now()));
      frames.push(last);
    }
    return toMessage(frames);
  }

  /** Resolve when the server has closed the connection (FIN or reset). */
  waitClosed(timeoutMs = DEFAULT_TIMEOUT): Promise<void> {
    return this.waitUntil(() => (this.closed ? true : undefined), 'the server to close the connection', timeoutMs, false).then(() => undefined);
  }

  /**
   * Resolve once no octet has arrived for `quietMs`, counted from the later of
   * the call and the last octet received (or the socket closed); fail after `timeoutMs`.
   */
  waitQuiet(quietMs = 150, timeoutMs = DEFAULT_TIMEOUT): Promise<void> {
    const start = Date.now();
    const deadline = start + timeoutMs;
    return new Promise((resolve, reject) => {
      const tick = (): void => {
        if (this.closed || Date.now() - Math.max(start, this.lastDataAt) >= quietMs) return resolve();
        if (Date.now() > deadline) return reject(new Error(`server never went quiet within ${timeoutMs} ms`));
        setTimeout(tick, Math.min(quietMs, 25));
      };
      tick();
    });
  }

  /** Index to pass to {@link framesSince}. */
  mark(): number {
    return this.frames.length;
  }

  framesSince(mark: number): RawFrame[] {
    return this.frames.slice(mark);
  }

  /** Data frames (responses) received since `mark`. */
  dataFramesSince(mark: number): RawDataFrame[] {
    return this.frames.slice(mark).filter(isData);
  }

  /** Every data frame received on `channel`. */
  dataOn(channel: number): RawDataFrame[] {
    return this.frames.filter((f): f is RawDataFrame => isData(f) && f.channel === channel);
  }

  /** Payload octets received on `channel` so far. */
  received(channel: number): number {
    return this.inSeq.get(channel) ?? 0;
  }

  /** Wait until at least `n` payload octets have been received on `channel`. */
  waitReceived(channel: number, n: number, timeoutMs = DEFAULT_TIMEOUT): Promise<void> {
    return this.waitUntil(() => (this.received(channel) >= n ? true : undefined), `${n} octets on channel ${channel}`, timeoutMs).then(() => undefined);
  }

  /** Right edge we advertised on `channel`. */
  advertisedEdge(channel: number): number {
    return this.inEdge.get(channel) ?? INITIAL_WINDOW;
  }

  /** Right edge the server advertised on `channel` for our frames. */
  serverEdge(channel: number): number {
    return this.outEdge.get(channel) ?? INITIAL_WINDOW;
  }

  // ------------------------------------------------------------------ outbound

  /** Write raw bytes (strings as UTF-8). Errors (the server may have gone) are recorded, not thrown. */
  send(data: string | Buffer): void {
    if (this.socket.destroyed) return;
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Our next sequence number on `channel`. */
  seq(channel: number): number {
    return this.outSeq.get(channel) ?? 0;
  }

  /** Advance our sequence number on `channel` by `n` (after sending a hand-built frame). */
  advance(channel: number, n: number): void {
    this.outSeq.set(channel, this.seq(channel) + n);
  }

  /** Allocate our next msgno on `channel` (channel 0 starts at 1). */
  nextMsgno(channel: number): number {
    const n = this.msgnos.get(channel) ?? (channel === 0 ? 1 : 0);
    this.msgnos.set(channel, n + 1);
    return n;
  }

  /** Forget all state of `channel` (it was closed; a new one starts at seqno 0). */
  resetChannel(channel: number): void {
    this.inSeq.delete(channel);
    this.inEdge.delete(channel);
    this.outSeq.delete(channel);
    this.outEdge.delete(channel);
    this.msgnos.delete(channel);
    this.autoAcks.delete(channel);
    this.lastMore.delete(channel);
    for (const k of [...this.openAnswers.keys()]) if (k.startsWith(`${channel}/`)) this.openAnswers.delete(k);
  }

  /**
   * Build a data frame with our tracked seqno for `channel`, advance it, and
   * return the bytes (without sending). Throws if it would overrun the window
   * the server advertised (a bug in the test, unless `unchecked`).
   */
  frame(type: DataKeyword, channel: number, msgno: number, payload: string | Buffer = '', opts: { more?: boolean; ansno?: number; unchecked?: boolean } = {}): Buffer {
    const n = octets(payload);
    const seqno = this.seq(channel);
    if (!opts.unchecked && seqno + n > this.serverEdge(channel)) {
      throw new Error(`test bug: ${n} octets at ${seqno} would overrun the server's window (edge ${this.serverEdge(channel)}) on channel ${channel}`);
    }
    this.advance(channel, n);
    return buildFrame(type, channel, msgno, opts.more ?? false, seqno, payload, opts.ansno);
  }

  /** Send a MSG frame with the tracked seqno. */
  msg(channel: number, msgno: number, payload: string | Buffer, more = false): void {
    this.send(this.frame('MSG', channel, msgno, payload, { more }));
  }

  /** Send a one-frame MSG with a fresh msgno; returns the msgno. */
  request(channel: number, payload: string | Buffer): number {
    const msgno = this.nextMsgno(channel);
    this.msg(channel, msgno, payload);
    return msgno;
  }

  /** Send a channel-0 MSG carrying `xml` as application/beep+xml; returns the msgno. */
  mgmt(xml: string): number {
    return this.request(0, BEEP_XML_HEAD + xml);
  }

  /** Send `SEQ channel ackno window`, ackno being everything received so far; updates the advertised edge. */
  ack(channel: number, window: number, ackno = this.received(channel)): void {
    this.inEdge.set(channel, Math.max(this.advertisedEdge(channel), ackno + window));
    this.send(`SEQ ${channel} ${ackno} ${window}\r\n`);
  }

  /** From now on answer every data frame received on `channel` with a SEQ advertising `window`. */
  autoAck(channel: number, window: number): void {
    this.autoAcks.set(channel, window);
    if (this.received(channel) + window > this.advertisedEdge(channel)) this.ack(channel, window);
  }

  /** Wait until the server's window on `channel` allows `n` more octets. */
  waitWindow(channel: number, n: number, timeoutMs = DEFAULT_TIMEOUT): Promise<void> {
    return this.waitUntil(() => (this.seq(channel) + n <= this.serverEdge(channel) ? true : undefined), `window for ${n} octets on channel ${channel}`, timeoutMs).then(() => undefined);
  }

  // ------------------------------------------------------------------ scripted steps

  /** Wait for the server's greeting, then send ours. Returns the server's greeting frame. */
  async greet(payload = RFC_GREETING_PAYLOAD): Promise<RawDataFrame> {
    const g = await this.expectData('RPY', 0, 0);
    this.send(this.frame('RPY', 0, 0, payload));
    return g;
  }

  /** Start a channel; resolves with the positive reply, rejects on ERR. */
  async startChannel(number: number, uri: string | readonly string[], extra = ''): Promise<RawMessage> {
    const uris = typeof uri === 'string' ? [uri] : uri;
    const msgno = this.mgmt(`<start number='${number}'>${uris.map((u) => `<profile uri='${u}' />`).join('')}${extra}</start>`);
    const r = await this.expectReply(0, msgno);
    if (r.type !== 'RPY') throw new Error(`start of channel ${number} refused: ${r.text}`);
    return r;
  }

  /** One echo round trip on `channel`: returns true when the body came back intact. */
  async echo(channel: number, body: string, timeoutMs = DEFAULT_TIMEOUT): Promise<boolean> {
    const msgno = this.request(channel, `\r\n${body}`);
    const r = await this.expectReply(channel, msgno, timeoutMs);
    return r.type === 'RPY' && r.body === body;
  }

  destroy(): void {
    this.socket.destroy();
  }

}

/**
 * A scripted listener for a test: a plain TCP server on 127.0.0.1 whose every
 * connection goes to `onSocket`; its sockets are destroyed and the server
 * closed at teardown. Resolves to the port.
 */
export async function scriptedListener(t: { teardown(f: () => void): void }, onSocket: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as net.AddressInfo).port;
}

/**
 * For a scripted listener written in a test: split what the initiator writes on
 * `socket` into whole frames and call `onMsg` for each MSG (SEQ frames and the
 * initiator's greeting, an RPY, are skipped). A minimal parser of its own,
 * independent of src/framing, as {@link RawPeer}'s is.
 */
export function onMsgFrames(socket: net.Socket, onMsg: (channel: number, msgno: number, payload: string) => void): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const [kw, ch, msgno, , , size] = buf.toString('latin1', 0, eol).split(' ');
      if (kw === 'SEQ') {
        buf = buf.subarray(eol + 2);
        continue;
      }
      const end = eol + 2 + Number(size) + 5; // payload, then "END\r\n"
      if (buf.length < end) return;
      const payload = buf.toString('latin1', eol + 2, end - 5);
      buf = buf.subarray(end);
      if (kw === 'MSG') onMsg(Number(ch), Number(msgno), payload);
    }
  });
}

export function toMessage(frames: RawDataFrame[]): RawMessage {
  const first = frames[0];
  if (!first) throw new Error('no frames');
  const payload = Buffer.concat(frames.map((f) => f.payload));
  const text = payload.toString('utf8');
  return {
    type: first.type,
    channel: first.channel,
    msgno: first.msgno,
    ...(first.ansno === undefined ? {} : { ansno: first.ansno }),
    frames,
    payload,
    text,
    body: splitBody(text),
  };
}

/** Reply code of an `<error code='NNN'>` element (either quote style), or undefined. */
export function errorCode(xml: string): number | undefined {
  const m = /<error\b[^>]*\bcode\s*=\s*["'](\d{3})["']/.exec(xml);
  return m ? Number(m[1]) : undefined;
}

/** URIs of the `<profile>` elements in `xml`. */
export function profileUris(xml: string): string[] {
  return [...xml.matchAll(/<profile\b[^>]*\buri\s*=\s*(["'])(.*?)\1/g)].map((m) => m[2] as string);
}

/** Poll `test` until true (bounded). */
export async function until(test: () => boolean, timeoutMs = DEFAULT_TIMEOUT, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Harness {
  server: BeepServer;
  port: number;
  /** Errors thrown by profile handlers on any session (should stay empty). */
  handlerErrors: unknown[];
  /** Server-side sessions, in the order their connections were accepted. */
  sessions: Session[];
  /** Connect a raw peer (closed automatically at teardown). */
  peer(): Promise<RawPeer>;
  /** Connect, exchange greetings, and start `channels` (number → profile URI). */
  ready(channels?: Record<number, string>): Promise<RawPeer>;
}

/**
 * Start a listener serving echo, answers and `extra` on 127.0.0.1:0, torn down
 * after the test (peers destroyed first, so teardown never waits on them).
 */
export async function harness(t: ExecutionContext, extra: readonly ChannelProfile[] = [], options: Omit<ServerOptions, 'profiles'> = {}): Promise<Harness> {
  const server = createServer({ ...options, profiles: [echoProfile, answersProfile, ...extra] });
  const handlerErrors: unknown[] = [];
  const sessions: Session[] = [];
  server.on('session', (s) => {
    sessions.push(s);
    s.on('handlerError', (e) => handlerErrors.push(e));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const peers: RawPeer[] = [];
  t.teardown(async () => {
    for (const p of peers) p.destroy();
    await Promise.race([server.close(200), new Promise((r) => setTimeout(r, 3000))]);
  });
  const h: Harness = {
    server,
    port,
    handlerErrors,
    sessions,
    async peer() {
      const p = await RawPeer.connect(port);
      peers.push(p);
      return p;
    },
    async ready(channels = {}) {
      const p = await h.peer();
      await p.greet();
      for (const [n, uri] of Object.entries(channels)) await p.startChannel(Number(n), uri);
      return p;
    },
  };
  return h;
}
