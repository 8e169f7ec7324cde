/**
 * Model-based attack on a listener core: the test plays the initiator at the
 * octet level, writing raw frames — mostly valid, some subtly invalid — into a
 * sans-IO `SessionCore`, and reads everything the core writes back.
 *
 * {@link AttackModel} is a reference implementation of the rules of RFC 3080
 * §2.2.1.1 (poorly-formed frames: keyword, parameters, channel, msgno,
 * keyword sequence of a reply, continuation, seqno), §2.2.1.2 and RFC 3081
 * §3.1 (window overrun, SEQ acknowledging unsent octets), written from the
 * RFC text and what the attacker has seen on the wire, not from src. For every
 * octet written it predicts whether the core must have terminated the session
 * by then; the harness checks after every `receive()` call that it did so
 * exactly then (not earlier, not later) with the right kind of error, that
 * `receive()` never throws, and that nothing comes out afterwards.
 *
 * Where the implementation is deliberately stricter than the letter of the
 * RFC the model follows it, and says so (NUL while an ANS of the same reply
 * is incomplete).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { BeepError, BeepFramingError, ErrorCodes } from '../../src/errors.js';
import { SessionCore } from '../../src/channels/core.js';
import type { Channel } from '../../src/channels/channel.js';
import type { SessionLimits } from '../../src/channels/types.js';
import { FrameDecoder, type Frame } from '../../src/framing/index.js';
import { ANSWERS_URI, ECHO_URI, answersProfile, defineProfile, echoProfile } from '../../src/profiles/index.js';
import { add32, dist32, lte32 } from './model-wire.js';

/** Profiles the listener serves (plus one it does not know). */
export const ATTACK_URIS = {
  echo: ECHO_URI,
  answers: ANSWERS_URI,
  gate: 'urn:beepstream:test:model:gate',
  errEarly: 'urn:beepstream:test:model:err-early',
  unknown: 'urn:beepstream:test:model:unknown',
} as const;
/** A profile of {@link ATTACK_URIS}. */
export type AttackProfile = keyof typeof ATTACK_URIS;

type Kind = 'MSG' | 'RPY' | 'ERR' | 'ANS' | 'NUL';

/** One channel as the attacker knows it. */
interface ACh {
  readonly number: number;
  readonly profile: AttackProfile | 'mgmt';
  // ---- attacker → listener
  /** Next seqno the listener expects from us. */
  seq: number;
  /** Right edge the listener advertised (4096 until its first SEQ). */
  edge: number;
  /** Our previous frame on the channel was intermediate. */
  lastMore: { msgno: number; kind: Kind } | null;
  /** Our MSGs from their first frame until received and answered. */
  inbound: Map<number, { received: boolean; replyDone: boolean }>;
  /** Payloads of our MSGs (for continuing them), by msgno. */
  payloads: Map<number, { data: Buffer; sent: number }>;
  // ---- listener → attacker
  /** Octets the listener sent on the channel (the next seqno we expect). */
  lSent: number;
  /** Right edge we advertised to the listener. */
  myEdge: number;
  /** The listener's MSGs we have seen and not yet answered completely. */
  lOutstanding: Map<number, { replyKind: Kind | undefined; ans: Set<number> }>;
  /** The listener's MSGs we answered completely (replying again is poorly formed). */
  lDone: number[];
  /** The listener's previous frame on the channel was intermediate. */
  lLastMore: { msgno: number; kind: Kind } | null;
  /** A close of ours is in flight. */
  closing: boolean;
}

function newCh(number: number, profile: ACh['profile']): ACh {
  return {
    number, profile, seq: 0, edge: 4096, lastMore: null, inbound: new Map(), payloads: new Map(),
    lSent: 0, myEdge: 4096, lOutstanding: new Map(), lDone: [], lLastMore: null, closing: false,
  };
}

/** A frame as written, with what the model needs to judge it. */
export interface RawOut {
  bytes: Buffer;
  /** Header fields as written (for a header spoiled on purpose, see `syntaxAt`). */
  h: { type: Kind | 'SEQ'; channel: number; msgno: number; more: boolean; seqno: number; size: number; ansno: number; ackno: number; window: number };
  /** Offset (in `bytes`) of the octet at which a syntax error becomes detectable, if any. */
  syntaxAt?: number;
  /** Offset of the first trailer octet that is wrong, if any. */
  trailerAt?: number;
  /** Offset of the header's LF. */
  lf: number;
  label: string;
}

/** Build a data frame (header, payload, trailer) as RFC 3080 §2.2.1 writes it. */
export function rawData(type: Kind, channel: number, msgno: number, more: boolean, seqno: number, payload: Buffer, ansno = 0): RawOut {
  const header = `${type} ${channel} ${msgno} ${more ? '*' : '.'} ${seqno} ${payload.length}${type === 'ANS' ? ` ${ansno}` : ''}\r\n`;
  const bytes = Buffer.concat([Buffer.from(header, 'latin1'), payload, Buffer.from('END\r\n', 'latin1')]);
  return {
    bytes, lf: header.length - 1,
    h: { type, channel, msgno, more, seqno, size: payload.length, ansno, ackno: 0, window: 0 },
    label: header.trim(),
  };
}

/** Build a SEQ frame (RFC 3081 §3.1.3). */
export function rawSeq(channel: number, ackno: number, window: number): RawOut {
  const header = `SEQ ${channel} ${ackno} ${window}\r\n`;
  return {
    bytes: Buffer.from(header, 'latin1'), lf: header.length - 1,
    h: { type: 'SEQ', channel, msgno: 0, more: false, seqno: 0, size: 0, ansno: 0, ackno, window },
    label: header.trim(),
  };
}

/** A termination the model expects. */
interface Verdict {
  /** Offset in the frame at which the core can tell. */
  at: number;
  /** Acceptable error codes. */
  codes: string[];
  why: string;
}

const P = ErrorCodes.PROTOCOL;

/** What the attacker knows, and the reference rules. */
export class AttackModel {
  /** Our greeting has been sent completely (RFC 3080 §2.3.1.1: nothing else before it). */
  greeted = false;
  readonly channels = new Map<number, ACh>([[0, newCh(0, 'mgmt')]]);
  /** Channels closed by agreement, most recent last (the listener tolerates SEQs for them). */
  readonly closed: number[] = [];
  /** Our `<start>` requests in flight: channel-0 msgno → channel and profile. */
  readonly starts = new Map<number, { channel: number; profile: AttackProfile }>();
  /** Our `<close>` requests in flight: channel-0 msgno → channel. */
  readonly closes = new Map<number, number>();
  /** Next channel number we ask for (odd: we are the initiator). */
  nextChannel = 1;
  /** Octets written so far. */
  fed = 0;
  /** The listener's MSGs (`channel:msgno`) for which we wrote at least one valid reply frame. */
  readonly replied = new Set<string>();
  /** Where the core must terminate, once a poorly-formed frame was written. */
  predicted: (Verdict & { abs: number; frame: string }) | null = null;

  constructor() {
    // The listener's greeting is a reply to a MSG 0 nobody sent; ours likewise.
    (this.channels.get(0) as ACh).lOutstanding.set(0, { replyKind: undefined, ans: new Set() });
  }

  /** Channels that exist for both sides and take data frames now. */
  dataChannels(): ACh[] {
    return [...this.channels.values()].filter((c) => c.number !== 0 && !c.closing);
  }

  /** A channel number the listener certainly does not have. */
  unknownChannel(n: number): number {
    const choices: number[] = [];
    const recent = this.closed.at(-1);
    if (recent !== undefined) choices.push(recent);
    choices.push(2 + 2 * (n % 50)); // even: only the listener would start those, and it starts none
    choices.push(this.nextChannel + 2 * (1 + (n % 7))); // odd, never asked for
    choices.push(2147483647);
    return choices[n % choices.length] as number;
  }

  /**
   * Judge one frame against the state, RFC 3080 §2.2.1.1 in order. Returns
   * the violation, or null after applying the frame's effects.
   */
  judge(f: RawOut): Verdict | null {
    if (f.syntaxAt !== undefined) return { at: f.syntaxAt, codes: [ErrorCodes.FRAME_SYNTAX], why: 'header syntax' };
    const h = f.h;
    // RFC 3080 §2.2.1.1: "if the header starts with "NUL", and the continuation indicator is intermediate or the payload size is non-zero".
    if (h.type === 'NUL' && (h.more || h.size !== 0)) return { at: f.lf, codes: [ErrorCodes.FRAME_SYNTAX], why: 'NUL not complete and empty' };
    const atHeader = (codes: string[], why: string): Verdict => ({ at: f.lf, codes, why });
    const ch = this.channels.get(h.channel);
    if (h.type === 'SEQ') {
      // RFC 3081 §3.1.3: channel and ackno must be valid.
      if (!ch) return this.closed.includes(h.channel) ? null : atHeader([P], `SEQ for unknown channel ${h.channel}`);
      if (!lte32(h.ackno, ch.lSent)) return atHeader([P], `SEQ acks ${h.ackno}, beyond the ${ch.lSent} octets sent`);
      ch.myEdge = add32(h.ackno, h.window);
      return null;
    }
    const codes: string[] = [];
    const why: string[] = [];
    const bad = (code: string, w: string): void => {
      codes.push(code);
      why.push(w);
    };
    const ch0 = this.channels.get(0) as ACh;
    // "except during session establishment": until our greeting, only RPY/ERR 0 0.
    if (ch0.lOutstanding.has(0) && !(h.channel === 0 && h.msgno === 0 && (h.type === 'RPY' || h.type === 'ERR'))) bad(P, 'before the greeting');
    if (!ch) {
      bad(P, `channel ${h.channel} does not exist`);
      return atHeader(codes, why.join('; '));
    }
    if (h.seqno !== ch.seq) bad(ErrorCodes.SEQNO_MISMATCH, `seqno ${h.seqno}, expected ${ch.seq}`);
    else if (h.size > dist32(ch.seq, ch.edge) || !lte32(ch.seq, ch.edge)) bad(ErrorCodes.WINDOW_OVERRUN, `${h.size} octets, window ${dist32(ch.seq, ch.edge)}`);
    const lm = ch.lastMore;
    if (lm) {
      if (lm.msgno !== h.msgno) bad(P, `msgno ${h.msgno} inside unfinished ${lm.kind} ${lm.msgno}`);
      if ((lm.kind === 'MSG') !== (h.type === 'MSG') || (h.type !== 'NUL' && lm.kind !== h.type)) bad(P, `${h.type} continues ${lm.kind}`);
      // Stricter than the letter of §2.2.1.1 (which only asks that the frame before a NUL be an ANS), as the core is.
      if (h.type === 'NUL') bad(P, 'NUL while an ANS frame is intermediate');
    }
    if (h.type === 'MSG') {
      if (ch.inbound.get(h.msgno)?.received) bad(P, `MSG ${h.msgno} reuses a msgno awaiting its reply`);
    } else {
      const pr = ch.lOutstanding.get(h.msgno);
      if (!pr) bad(P, ch.lDone.includes(h.msgno) ? `${h.type} after the reply was complete (e.g. ANS after NUL)` : `${h.type} ${h.msgno}: no MSG awaiting a reply`);
      else if (h.type === 'NUL') {
        if (pr.replyKind !== undefined && pr.replyKind !== 'ANS') bad(P, `NUL after ${pr.replyKind}`);
        // Stricter than the letter, as the core is: NUL ends the reply, so every answer must be complete.
        if (pr.ans.size > 0) bad(P, 'NUL while answers are incomplete');
      } else if (pr.replyKind !== undefined && pr.replyKind !== h.type) bad(P, `${h.type} after ${pr.replyKind}`);
    }
    if (codes.length > 0) return atHeader(codes, why.join('; '));
    if (f.trailerAt !== undefined) {
      // The header was fine: the payload streams to the message (a request may resolve on its head) before the trailer fails.
      if (h.type !== 'MSG') this.replied.add(`${h.channel}:${h.msgno}`);
      return { at: f.trailerAt, codes: [ErrorCodes.FRAME_SYNTAX], why: 'trailer' };
    }
    // Valid: apply.
    ch.seq = add32(ch.seq, h.size);
    ch.lastMore = h.more ? { msgno: h.msgno, kind: h.type } : null;
    if (h.type === 'MSG') {
      const im = ch.inbound.get(h.msgno) ?? { received: false, replyDone: false };
      ch.inbound.set(h.msgno, im);
      const p = ch.payloads.get(h.msgno);
      if (p) p.sent += h.size;
      if (!h.more) {
        im.received = true;
        ch.payloads.delete(h.msgno);
        if (im.replyDone) ch.inbound.delete(h.msgno);
      }
      return null;
    }
    const pr = ch.lOutstanding.get(h.msgno) as { replyKind: Kind | undefined; ans: Set<number> };
    this.replied.add(`${h.channel}:${h.msgno}`);
    let done = false;
    if (h.type === 'NUL') done = true;
    else {
      pr.replyKind = h.type;
      if (h.type === 'ANS') {
        if (h.more) pr.ans.add(h.ansno);
        else pr.ans.delete(h.ansno);
      } else done = !h.more;
    }
    if (done) {
      ch.lOutstanding.delete(h.msgno);
      ch.lDone.push(h.msgno);
      if (h.channel === 0 && h.msgno === 0) this.greeted = true;
    }
    return null;
  }
}

/** What the attacker reads back, and what must hold of it. */
export class AttackHarness {
  readonly model = new AttackModel();
  readonly core: SessionCore;
  readonly violations: string[] = [];
  readonly closeEvents: (BeepError | undefined)[] = [];
  readonly trace: string[] = [];
  /** The listener's requests (LRequest) and how they ended. */
  readonly requests: { label: string; key: string; settled: null | { ok: boolean; error?: unknown } }[] = [];
  private readonly decoder = new FrameDecoder({ maxFrameSize: 1 << 30 });
  /** Channel-0 reply bodies of the listener being collected, by msgno. */
  private readonly mgmtReply = new Map<number, Buffer>();
  private readonly gates = new Map<number, { open: boolean; waiters: (() => void)[] }>();
  /** Channels started by the attacker, the listener's objects. */
  readonly listenerChannels = new Map<number, Channel>();
  /** Coverage counters. */
  readonly stats: Record<string, number> = {};

  constructor(limits: SessionLimits) {
    const gateOf = (n: number): { open: boolean; waiters: (() => void)[] } => {
      let g = this.gates.get(n);
      if (!g) {
        g = { open: false, waiters: [] };
        this.gates.set(n, g);
      }
      return g;
    };
    const gate = defineProfile({
      uri: ATTACK_URIS.gate,
      async onMessage(msg, res, ch) {
        const g = gateOf(ch.number);
        // Hold the MSG unanswered (and unread) until the test opens the gate.
        if (!g.open) await new Promise<void>((r) => g.waiters.push(r));
        const body = await msg.bytes();
        await res.reply(`ok ${body.length}`);
      },
    });
    const errEarly = defineProfile({
      uri: ATTACK_URIS.errEarly,
      async onMessage(_msg, res) {
        await res.error(554, 'early');
      },
    });
    this.core = new SessionCore({ role: 'listener', profiles: [echoProfile, answersProfile, gate, errEarly], limits });
    this.core.on('close', (err) => {
      this.closeEvents.push(err);
      this.note(`listener closed: ${err ? `${err.code} ${err.message}` : 'released'}`);
    });
    this.core.on('channel', (ch) => this.listenerChannels.set(ch.number, ch));
    this.core.on('handlerError', () => undefined);
  }

  note(line: string): void {
    this.trace.push(line);
    if (this.trace.length > 300) this.trace.splice(0, 100);
  }

  violation(msg: string): void {
    if (this.violations.length < 30) this.violations.push(msg);
  }

  count(k: string): void {
    this.stats[k] = (this.stats[k] ?? 0) + 1;
  }

  /** Octets of each reply message written so far, by `channel:msgno:ansno|r`. */
  private readonly replyOffsets = new Map<string, number>();

  /**
   * The next `size` octets of a reply message: an empty MIME header block
   * (CRLF, RFC 3080 §2.2) then `a`s, so that every reply is a well-formed entity.
   */
  replyPayload(key: string, size: number): Buffer {
    const off = this.replyOffsets.get(key) ?? 0;
    this.replyOffsets.set(key, off + size);
    const b = Buffer.alloc(size, 0x61);
    for (let i = off; i < 2 && i < off + size; i++) b[i - off] = i === 0 ? 0x0d : 0x0a;
    return b;
  }

  /** Open the gate of a gate channel: its held MSGs are answered. */
  openGate(n: number): void {
    const g = this.gates.get(n) ?? { open: false, waiters: [] };
    this.gates.set(n, g);
    g.open = true;
    for (const w of g.waiters.splice(0)) w();
  }

  /**
   * Write frames (judged in order by the model) cut at `cuts` (fractions),
   * checking after each `receive()` that the core is terminated exactly when
   * the model says.
   */
  write(frames: RawOut[], cuts: readonly number[] = []): void {
    const m = this.model;
    let offset = m.fed;
    for (const f of frames) {
      if (m.predicted === null) {
        const v = m.judge(f);
        if (v) {
          m.predicted = { ...v, abs: offset + v.at, frame: f.label };
          this.count(`violation:${v.why.replace(/[0-9]+/g, 'N').slice(0, 40)}`);
          this.note(`wrote ${f.label} — poorly formed (${v.why}): termination expected at octet ${offset + v.at}`);
        } else {
          this.count(`ok:${f.h.type}`);
          this.note(`wrote ${f.label}`);
        }
      }
      offset += f.bytes.length;
    }
    const all = Buffer.concat(frames.map((f) => f.bytes));
    const points = [...new Set(cuts.map((c) => Math.floor(c * all.length)))].filter((p) => p > 0 && p < all.length).sort((a, b) => a - b);
    let prev = 0;
    for (const p of [...points, all.length]) {
      if (p === prev) continue;
      const chunk = all.subarray(prev, p);
      const wasClosed = this.core.isClosed;
      try {
        this.core.receive(chunk);
      } catch (err) {
        this.violation(`receive() threw: ${(err as Error)?.stack ?? String(err)}`);
      }
      m.fed += chunk.length;
      prev = p;
      this.checkTermination(wasClosed);
    }
  }

  /** The core is closed iff the model predicted a termination within the octets written. */
  private checkTermination(wasClosed: boolean): void {
    const m = this.model;
    const due = m.predicted !== null && m.fed > m.predicted.abs;
    const closed = this.core.isClosed;
    if (closed && !due) {
      this.violation(`terminated at octet ${m.fed} without a poorly-formed frame (${this.core.failure?.code} ${this.core.failure?.message})`);
    } else if (!closed && due) {
      const p = m.predicted as NonNullable<AttackModel['predicted']>;
      this.violation(`not terminated after octet ${p.abs} of ${p.frame} (${p.why}); ${m.fed} written`);
    } else if (closed && !wasClosed && m.predicted) {
      const f = this.core.failure;
      if (!(f instanceof BeepFramingError)) this.violation(`terminated with ${f?.constructor.name ?? 'nothing'}, expected a BeepFramingError`);
      else if (!m.predicted.codes.includes(f.code)) this.violation(`terminated with ${f.code} (${f.message}), expected ${m.predicted.codes.join(' or ')} (${m.predicted.why})`);
    }
  }

  /** Let the listener work, and read (and check) all it writes. Acks with SEQs if `ack`. */
  async drain(ack: boolean): Promise<void> {
    for (let i = 0, idle = 0; i < 40 && idle < 3; i++) {
      await new Promise((r) => setImmediate(r));
      const wasClosed = this.core.isClosed;
      let out: Uint8Array[] | null = null;
      try {
        out = this.core.pull();
      } catch (err) {
        this.violation(`pull() threw: ${(err as Error).message}`);
      }
      if (out && wasClosed) this.violation('output after the session ended');
      if (out) {
        idle = 0;
        for (const b of out) this.read(b);
      } else idle++;
      this.checkTermination(wasClosed);
      if (ack && !this.core.isClosed) this.ackAll();
    }
    // Management must keep flowing: keep channel 0's window open.
    const ch0 = this.model.channels.get(0) as ACh;
    if (!this.core.isClosed && dist32(ch0.lSent, ch0.myEdge) < 2048) this.write([rawSeq(0, ch0.lSent, 65536)]);
  }

  /** Acknowledge everything the listener sent and open a 64 KiB window on every channel. */
  ackAll(): void {
    const frames: RawOut[] = [];
    for (const c of this.model.channels.values()) {
      if (dist32(c.lSent, c.myEdge) < 16384) frames.push(rawSeq(c.number, c.lSent, 65536));
    }
    if (frames.length > 0) this.write(frames);
  }

  private read(b: Uint8Array): void {
    try {
      this.decoder.push(b, (f) => this.onFrame(f));
    } catch (err) {
      this.violation(`the listener wrote undecodable octets: ${(err as Error).message}`);
    }
  }

  /** One frame from the listener: check it against our windows, learn from it. */
  private onFrame(f: Frame): void {
    const m = this.model;
    const ch = m.channels.get(f.channel);
    if (f.type === 'SEQ') {
      this.note(`read SEQ ${f.channel} ${f.ackno} ${f.window}`);
      if (!ch) return; // for a channel closed meanwhile
      const edge = add32(f.ackno, f.window);
      if (!lte32(f.ackno, ch.seq)) this.violation(`listener SEQ ${f.channel} acks ${f.ackno}, beyond our ${ch.seq}`);
      if (!lte32(ch.edge, edge)) this.violation(`listener SEQ ${f.channel} moves its edge left (${ch.edge} -> ${edge})`);
      ch.edge = edge;
      this.count('read:SEQ');
      return;
    }
    this.note(`read ${f.type} ${f.channel} ${f.msgno} ${f.more ? '*' : '.'} ${f.seqno} ${f.size}`);
    this.count(`read:${f.type}`);
    if (!ch) {
      this.violation(`listener wrote ${f.type} on channel ${f.channel}, which we do not have`);
      return;
    }
    if (f.seqno !== ch.lSent) this.violation(`listener ${f.type} ${f.channel}: seqno ${f.seqno}, expected ${ch.lSent}`);
    if (f.size > 0 && (f.size > dist32(f.seqno, ch.myEdge) || !lte32(f.seqno, ch.myEdge))) this.violation(`listener ${f.type} ${f.channel}: ${f.size} octets beyond our window (edge ${ch.myEdge})`);
    ch.lSent = add32(ch.lSent, f.size);
    const lm = ch.lLastMore;
    if (lm && !(lm.msgno === f.msgno && (lm.kind === f.type || (lm.kind === 'ANS' && f.type === 'ANS')))) {
      this.violation(`listener ${f.type} ${f.channel} ${f.msgno} interrupts its unfinished ${lm.kind} ${lm.msgno}`);
    }
    ch.lLastMore = f.more ? { msgno: f.msgno, kind: f.type } : null;
    if (f.type === 'MSG') {
      if (!ch.lOutstanding.has(f.msgno) && !ch.lDone.includes(f.msgno)) ch.lOutstanding.set(f.msgno, { replyKind: undefined, ans: new Set() });
      return;
    }
    // A reply to one of our MSGs.
    const im = ch.inbound.get(f.msgno);
    if (f.channel === 0 && f.msgno === 0) return; // the listener's greeting
    if (!im) {
      this.violation(`listener replied ${f.type} to msgno ${f.msgno} on channel ${f.channel}, which we did not send or it answered already`);
      return;
    }
    if (f.channel === 0) {
      this.mgmtReply.set(f.msgno, Buffer.concat([this.mgmtReply.get(f.msgno) ?? Buffer.alloc(0), f.payload]));
    }
    const final = f.type === 'NUL' || ((f.type === 'RPY' || f.type === 'ERR') && !f.more);
    if (!final) return;
    im.replyDone = true;
    if (im.received) ch.inbound.delete(f.msgno);
    if (f.channel === 0) this.onMgmtReply(f.msgno, f.type, this.mgmtReply.get(f.msgno) ?? Buffer.alloc(0));
  }

  private onMgmtReply(msgno: number, type: Kind, body: Buffer): void {
    this.mgmtReply.delete(msgno);
    const m = this.model;
    const text = body.toString('latin1');
    const start = m.starts.get(msgno);
    if (start) {
      m.starts.delete(msgno);
      if (type === 'RPY' && text.includes('<profile')) {
        m.channels.set(start.channel, newCh(start.channel, start.profile));
        this.count(`started:${start.profile}`);
      } else this.count('start refused');
      return;
    }
    const closing = m.closes.get(msgno);
    if (closing !== undefined) {
      m.closes.delete(msgno);
      const ch = m.channels.get(closing);
      if (type === 'RPY' && text.includes('<ok')) {
        m.channels.delete(closing);
        m.closed.push(closing);
        if (m.closed.length > 200) m.closed.shift();
        this.count('closed');
      } else if (ch) ch.closing = false;
    }
  }

  /**
   * The listener sends a MSG on channel `n` (as its application would), with
   * `requestAnswers()` or `request()` (which rejects an ANS reply and dumps
   * it: an ANS cut short by the termination must not leave an unhandled
   * rejection, which would fail the test file).
   */
  listenerRequest(n: number, body: string, answers: boolean): void {
    const ch = this.core.channels.get(n);
    if (!ch) return;
    const r: AttackHarness['requests'][number] = { label: `listener MSG ${n} ${ch.nextMsgno}`, key: `${n}:${ch.nextMsgno}`, settled: null };
    this.requests.push(r);
    const ok = (): void => {
      r.settled = { ok: true };
      // Only a reply (its first frame, valid, before any termination) can complete a request.
      if (!this.model.replied.has(r.key)) this.violation(`${r.label} completed without a valid reply frame`);
    };
    const failed = (error: unknown): void => {
      r.settled = { ok: false, error };
    };
    if (answers) {
      void (async () => {
        for await (const m of ch.requestAnswers(body)) await m.bytes();
      })().then(ok, failed);
      return;
    }
    ch.request(body).then((msg) => {
      ok();
      msg.dump().catch(() => undefined);
    }, failed);
  }

  /** Invariants after every command; throws with the report. */
  check(): void {
    const m = this.model;
    if (this.core.isClosed) {
      if (this.closeEvents.length !== 1) this.violation(`close emitted ${this.closeEvents.length} times`);
      if (!(this.core.failure instanceof BeepError)) this.violation('terminated without a BeepError failure');
    } else {
      // Channels the model knows exist at the listener.
      for (const c of m.channels.values()) {
        if (!c.closing && !this.core.channels.has(c.number)) this.violation(`channel ${c.number} is missing at the listener`);
      }
    }
    if (this.violations.length > 0) {
      throw new Error(`attack model violations:\n  ${this.violations.join('\n  ')}\ntrace (last events):\n  ${this.trace.slice(-50).join('\n  ')}`);
    }
  }

  /** After the run: if terminated, everything the listener had pending has failed. */
  async finish(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    if (this.core.isClosed) {
      for (const r of this.requests) {
        if (r.settled === null) this.violation(`${r.label} still pending after the termination`);
        else if (!r.settled.ok && !(r.settled.error instanceof BeepError)) this.violation(`${r.label} rejected with a non-BeepError`);
      }
      if (this.core.pull() !== null) this.violation('output after the termination');
      try {
        this.core.receive(Buffer.from('MSG 0 1 . 0 0\r\nEND\r\n'));
      } catch (err) {
        this.violation(`receive() after the termination threw: ${(err as Error).message}`);
      }
    }
    this.check();
  }
}

// ------------------------------------------------------------------ frame generation

/** How a generated frame is spoiled (or not). */
export type Mutation =
  | 'none' | 'seqno' | 'overrun' | 'channel' | 'msgno' | 'keyword' | 'badkw' | 'badnum' | 'nulsyntax' | 'trailer';

const KEYWORD_SWAP: Record<Kind, Kind> = { MSG: 'RPY', RPY: 'ANS', ANS: 'ERR', ERR: 'MSG', NUL: 'ANS' };

/**
 * Spoil `f` (a frame built for `ch` from the model's state) by `mut`; `n`
 * picks among variants. The model, not the mutation, decides what is poorly formed.
 */
function mutate(m: AttackModel, ch: ACh, f: RawOut, mut: Mutation, n: number): RawOut {
  const h = { ...f.h };
  const payloadOf = (x: RawOut): Buffer => x.bytes.subarray(x.lf + 1, x.bytes.length - 5);
  const rebuild = (type: Kind, payload: Buffer = payloadOf(f)): RawOut => rawData(type, h.channel, h.msgno, h.more, h.seqno, payload, h.ansno);
  switch (mut) {
    case 'none':
      return f;
    case 'seqno':
      // Mostly off by one (either way), sometimes far off.
      h.seqno = add32(h.seqno, [1, 2 ** 32 - 1, 1 + (n % 4096), 2 ** 32 - 1 - (n % 4096)][n % 4] as number);
      return rebuild(h.type as Kind);
    case 'overrun': {
      const room = dist32(ch.seq, ch.edge);
      if (room > 300_000) return f;
      return rebuild(h.type as Kind, Buffer.alloc(room + 1 + (n % 64), 0x78));
    }
    case 'channel':
      h.channel = m.unknownChannel(n);
      return rebuild(h.type as Kind);
    case 'msgno': {
      if (h.type === 'MSG') {
        // Reuse a msgno awaiting its reply if there is one.
        const waiting = [...ch.inbound.entries()].filter(([, v]) => v.received).map(([k]) => k);
        h.msgno = waiting.length > 0 ? (waiting[n % waiting.length] as number) : h.msgno + 1 + (n % 3);
      } else {
        // A reply for a MSG answered already (e.g. ANS after NUL), or never sent.
        h.msgno = ch.lDone.length > 0 && n % 2 === 0 ? (ch.lDone[n % ch.lDone.length] as number) : 1000 + (n % 1000);
      }
      return rebuild(h.type as Kind);
    }
    case 'keyword': {
      const t = KEYWORD_SWAP[h.type as Kind];
      if (t === 'NUL') return f;
      return rebuild(t, payloadOf(f));
    }
    case 'badkw': {
      const bytes = Buffer.from(f.bytes);
      bytes.write(['MSH', 'RPZ', 'msg', 'XXX'][n % 4] as string, 0, 'latin1');
      return { ...f, bytes, syntaxAt: 2, label: `${f.label} (bad keyword)` };
    }
    case 'badnum': {
      // A non-canonical number (leading zero) in the seqno field: unparseable.
      const head = f.bytes.subarray(0, f.lf + 1).toString('latin1');
      const parts = head.trimEnd().split(' ');
      const idx = f.h.type === 'SEQ' ? 2 : 4;
      parts[idx] = `0${parts[idx]}`;
      const header = `${parts.join(' ')}\r\n`;
      const bytes = Buffer.concat([Buffer.from(header, 'latin1'), f.bytes.subarray(f.lf + 1)]);
      return { ...f, bytes, lf: header.length - 1, syntaxAt: header.length - 1, label: `${header.trim()} (non-canonical number)` };
    }
    case 'nulsyntax': {
      const header = `NUL ${h.channel} ${h.msgno} ${n % 2 === 0 ? '*' : '.'} ${h.seqno} ${n % 2 === 0 ? 0 : 1 + (n % 5)}\r\n`;
      const bytes = Buffer.from(header, 'latin1');
      return { ...f, bytes, lf: header.length - 1, syntaxAt: header.length - 1, label: `${header.trim()} (NUL must be '.' and empty)` };
    }
    case 'trailer': {
      if (f.h.type === 'SEQ') return f;
      const bytes = Buffer.from(f.bytes);
      const k = n % 5;
      bytes[bytes.length - 5 + k] = 0x58; // 'X'
      return { ...f, bytes, trailerAt: bytes.length - 5 + k, label: `${f.label} (bad trailer)` };
    }
  }
}

// ------------------------------------------------------------------ commands

type ACmd = fc.AsyncCommand<AttackModel, AttackHarness>;

async function after(h: AttackHarness, ack: boolean): Promise<void> {
  await h.drain(ack);
  h.check();
}

/** Send our greeting (RPY 0 0). */
class GreetCmd implements ACmd {
  check(m: Readonly<AttackModel>): boolean {
    return !m.greeted && m.predicted === null;
  }
  async run(_m: AttackModel, h: AttackHarness): Promise<void> {
    const ch0 = h.model.channels.get(0) as ACh;
    const payload = Buffer.from('Content-Type: application/beep+xml\r\n\r\n<greeting />\r\n', 'latin1');
    h.write([rawData('RPY', 0, 0, false, ch0.seq, payload)]);
    await after(h, false);
  }
  toString(): string {
    return 'greet';
  }
}

/** Ask for a channel (MSG on channel 0 with `<start>`). */
class StartCmd implements ACmd {
  constructor(readonly profile: AttackProfile, readonly mut: Mutation, readonly n: number, readonly cuts: number[]) {}
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null && (m.channels.get(0) as ACh).lastMore === null && m.channels.size < 16;
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const ch0 = m.channels.get(0) as ACh;
    const msgno = nextMsgno(ch0);
    const number = m.nextChannel;
    m.nextChannel += 2;
    const payload = Buffer.from(`Content-Type: application/beep+xml\r\n\r\n<start number='${number}'><profile uri='${ATTACK_URIS[this.profile]}' /></start>\r\n`, 'latin1');
    const f = mutate(m, ch0, rawData('MSG', 0, msgno, false, ch0.seq, payload), this.mut, this.n);
    const before = m.predicted;
    h.write([f], this.cuts);
    if (before === null && m.predicted === null && f.h.msgno === msgno && f.h.channel === 0) m.starts.set(msgno, { channel: number, profile: this.profile });
    await after(h, false);
  }
  toString(): string {
    return `start(${this.profile}${this.mut === 'none' ? '' : `,${this.mut}/${this.n}`})`;
  }
}

function nextMsgno(ch: ACh): number {
  let n = 1;
  while (ch.inbound.has(n) || ch.lDone.includes(n) || ch.payloads.has(n)) n++;
  return n;
}

/** Close a channel (MSG on channel 0 with `<close>`). */
class CloseCmd implements ACmd {
  constructor(readonly pick: number) {}
  private candidates(m: Readonly<AttackModel>): ACh[] {
    return m.dataChannels().filter((c) => c.lastMore === null && c.lOutstanding.size === 0 && [...c.inbound.values()].every((v) => v.received));
  }
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null && (m.channels.get(0) as ACh).lastMore === null && this.candidates(m).length > 0;
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const list = this.candidates(m);
    const c = list[this.pick % list.length] as ACh;
    const ch0 = m.channels.get(0) as ACh;
    const msgno = nextMsgno(ch0);
    const payload = Buffer.from(`Content-Type: application/beep+xml\r\n\r\n<close number='${c.number}' code='200' />\r\n`, 'latin1');
    h.write([rawData('MSG', 0, msgno, false, ch0.seq, payload)]);
    if (m.predicted === null) {
      m.closes.set(msgno, c.number);
      c.closing = true;
    }
    await after(h, true);
  }
  toString(): string {
    return `close(#${this.pick})`;
  }
}

/** MSG frames on a channel: continue the unfinished MSG, or begin a new one. */
class MsgCmd implements ACmd {
  constructor(
    readonly pick: number,
    readonly size: number,
    readonly frames: number[],
    readonly mut: Mutation,
    readonly mutAt: number,
    readonly n: number,
    readonly cuts: number[],
    readonly ack: boolean,
    readonly reuse: boolean,
  ) {}
  private candidates(m: Readonly<AttackModel>): ACh[] {
    return m.dataChannels().filter((c) => c.lastMore === null || c.lastMore.kind === 'MSG');
  }
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null && this.candidates(m).length > 0;
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const list = this.candidates(m);
    const ch = list[this.pick % list.length] as ACh;
    let msgno: number;
    let p: { data: Buffer; sent: number };
    if (ch.lastMore) {
      msgno = ch.lastMore.msgno;
      p = ch.payloads.get(msgno) ?? { data: Buffer.alloc(0), sent: 0 };
      ch.payloads.set(msgno, p);
    } else {
      // reuse: a new MSG with the msgno of one that awaits its reply (poorly formed), if there is one.
      const waiting = [...ch.inbound.entries()].filter(([, v]) => v.received && !v.replyDone).map(([k]) => k);
      msgno = this.reuse && waiting.length > 0 ? (waiting[this.n % waiting.length] as number) : nextMsgno(ch);
      const body = ch.profile === 'answers' ? Buffer.from(`${this.size % 4}:${this.size % 20000}`) : Buffer.alloc(this.size, 0x30 + (msgno % 10));
      p = { data: Buffer.concat([Buffer.from('\r\n'), body]), sent: 0 };
      ch.payloads.set(msgno, p);
    }
    const out: RawOut[] = [];
    // Frames are built one at a time from a scratch copy of the state, so
    // that each continues the previous one (the model judges them for real in write()).
    let seq = ch.seq;
    let sent = p.sent;
    let room = dist32(ch.seq, ch.edge);
    for (let i = 0; i < this.frames.length; i++) {
      const left = p.data.length - sent;
      const size = Math.min(this.frames[i] as number, left, room);
      const more = sent + size < p.data.length;
      if (size === 0 && more && i > 0) break; // window closed: wait for a SEQ
      let f = rawData('MSG', ch.number, msgno, more, seq, p.data.subarray(sent, sent + size));
      if (i === this.mutAt % this.frames.length) f = mutate(m, { ...ch, seq }, f, this.mut, this.n);
      out.push(f);
      seq = add32(seq, size);
      sent += size;
      room -= size;
      if (!more) break;
    }
    h.write(out, this.cuts);
    await after(h, this.ack);
  }
  toString(): string {
    return `msg(#${this.pick},${this.size}B,frames ${this.frames.join('/')}${this.reuse ? ',reuse' : ''}${this.mut === 'none' ? '' : `,${this.mut}@${this.mutAt}/${this.n}`}${this.ack ? ',ack' : ''})`;
  }
}

/** Reply frames to a MSG of the listener: RPY, ERR, ANS or NUL (continuing an unfinished reply first). */
class ReplyCmd implements ACmd {
  constructor(
    readonly pick: number,
    readonly kind: 'RPY' | 'ERR' | 'ANS' | 'NUL',
    readonly sizes: number[],
    readonly ansno: number,
    readonly mut: Mutation,
    readonly mutAt: number,
    readonly n: number,
    readonly ack: boolean,
    /** Use the keyword as given, even where it is out of sequence (NUL after RPY, ERR after ANS, NUL with answers open…). */
    readonly raw: boolean,
    /** End the reply (or answer) with this command's last frame. */
    readonly finish: boolean,
  ) {}
  private candidates(m: Readonly<AttackModel>): ACh[] {
    return m.dataChannels().filter((c) => (c.lastMore === null && (c.lOutstanding.size > 0 || (this.raw && c.lDone.length > 0))) || (c.lastMore !== null && c.lastMore.kind !== 'MSG'));
  }
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null && this.candidates(m).length > 0;
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const list = this.candidates(m);
    const ch = list[this.pick % list.length] as ACh;
    let msgno: number;
    let kind: Kind = this.kind;
    let ansno = this.ansno % 3;
    if (ch.lastMore) {
      // Continue the unfinished reply (raw: with the keyword as given, e.g.
      // NUL inside an ANS). An ANS may be interleaved with another answer of
      // the same reply (RFC 3080 §2.2.1): ansno picks which.
      msgno = ch.lastMore.msgno;
      if (!this.raw) kind = ch.lastMore.kind;
    } else if (this.raw) {
      // Any keyword, for a MSG awaiting its reply or one answered already
      // (e.g. ANS after NUL); a NUL goes where answers are still open, if any.
      const open = [...ch.lOutstanding.entries()].filter(([, v]) => v.ans.size > 0).map(([k]) => k);
      const keys = kind === 'NUL' && open.length > 0 ? open : [...ch.lOutstanding.keys(), ...ch.lDone.slice(-3)];
      msgno = keys[this.n % keys.length] as number;
      const pr = ch.lOutstanding.get(msgno);
      if (kind === 'ANS' && pr && pr.ans.size > 0) ansno = [...pr.ans][0] as number;
    } else {
      const keys = [...ch.lOutstanding.keys()];
      msgno = keys[this.pick % keys.length] as number;
      const pr = ch.lOutstanding.get(msgno) as { replyKind: Kind | undefined; ans: Set<number> };
      // A valid next keyword for this reply.
      if (pr.replyKind === 'RPY' || pr.replyKind === 'ERR') kind = pr.replyKind;
      else if (pr.replyKind === 'ANS' && (kind === 'RPY' || kind === 'ERR')) kind = 'ANS';
      if (kind === 'NUL' && pr.ans.size > 0) kind = 'ANS';
      if (kind === 'ANS' && pr.ans.size > 0) ansno = [...pr.ans][0] as number;
    }
    const out: RawOut[] = [];
    let seq = ch.seq;
    let room = dist32(ch.seq, ch.edge);
    const sizes = kind === 'NUL' ? [0] : this.sizes;
    for (let i = 0; i < sizes.length; i++) {
      const size = Math.min(sizes[i] as number, room);
      // The last frame is intermediate unless `finish`: the reply is continued by a later command.
      const more = kind !== 'NUL' && (i < sizes.length - 1 ? size > 0 : !this.finish);
      let f = rawData(kind, ch.number, msgno, more, seq, h.replyPayload(`${ch.number}:${msgno}:${kind === 'ANS' ? ansno : 'r'}`, size), ansno);
      if (i === this.mutAt % sizes.length) f = mutate(m, { ...ch, seq }, f, kind === 'NUL' && this.mut === 'badnum' ? 'nulsyntax' : this.mut, this.n);
      out.push(f);
      seq = add32(seq, size);
      room -= size;
      if (!more) break;
    }
    h.write(out);
    await after(h, this.ack);
  }
  toString(): string {
    return `reply(#${this.pick},${this.kind}${this.raw ? ' raw' : ''}${this.finish ? '' : ' unfinished'},${this.sizes.join('/')},ansno ${this.ansno}${this.mut === 'none' ? '' : `,${this.mut}@${this.mutAt}/${this.n}`})`;
  }
}

/** A SEQ frame: acknowledge (part of) what the listener sent, announce a window. */
class SeqCmd implements ACmd {
  constructor(readonly pick: number, readonly back: number, readonly window: number, readonly mut: 'none' | 'beyond' | 'channel' | 'syntax' | 'closed', readonly n: number) {}
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null;
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const list = [...m.channels.values()];
    const ch = list[this.pick % list.length] as ACh;
    // The listener may already have removed a channel we are closing (it then ignores SEQs for it): only valid SEQs there.
    const mut = ch.closing && this.mut === 'beyond' ? 'none' : this.mut;
    let channel = ch.number;
    let ackno = (ch.lSent - Math.min(this.back, ch.lSent) + 2 ** 32) % 2 ** 32;
    let window = this.window;
    let syntax = false;
    switch (mut) {
      case 'beyond':
        // Just beyond what was sent, or as far as serial arithmetic allows (2^31).
        ackno = add32(ch.lSent, [1, 2, 2 ** 31, 1 + (this.n % 2 ** 31)][this.n % 4] as number);
        break;
      case 'channel':
        channel = m.unknownChannel(this.n);
        break;
      case 'closed':
        if (m.closed.length > 0) channel = m.closed[this.n % m.closed.length] as number;
        break;
      case 'syntax':
        window = 2147483648 + (this.n % 1000);
        syntax = true;
        break;
      case 'none':
        break;
    }
    const f = rawSeq(channel, ackno, window);
    if (syntax) f.syntaxAt = f.lf;
    h.write([f]);
    await after(h, false);
  }
  toString(): string {
    return `seq(#${this.pick},-${this.back},${this.window}${this.mut === 'none' ? '' : `,${this.mut}/${this.n}`})`;
  }
}

/** The listener sends a MSG of its own on a channel. */
class ListenerMsgCmd implements ACmd {
  constructor(readonly pick: number, readonly size: number, readonly answers: boolean) {}
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null && m.dataChannels().length > 0;
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const list = m.dataChannels();
    const ch = list[this.pick % list.length] as ACh;
    h.listenerRequest(ch.number, 'q'.repeat(this.size), this.answers);
    await after(h, false);
  }
  toString(): string {
    return `listener-msg(#${this.pick},${this.size}B${this.answers ? ',answers' : ''})`;
  }
}

/** Open the gate of a gate channel. */
class GateCmd implements ACmd {
  constructor(readonly pick: number) {}
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null && m.dataChannels().some((c) => c.profile === 'gate');
  }
  async run(m: AttackModel, h: AttackHarness): Promise<void> {
    const list = m.dataChannels().filter((c) => c.profile === 'gate');
    h.openGate((list[this.pick % list.length] as ACh).number);
    await after(h, true);
  }
  toString(): string {
    return `open-gate(#${this.pick})`;
  }
}

/** Acknowledge everything. */
class AckCmd implements ACmd {
  check(m: Readonly<AttackModel>): boolean {
    return m.predicted === null;
  }
  async run(_m: AttackModel, h: AttackHarness): Promise<void> {
    await after(h, true);
  }
  toString(): string {
    return 'ack';
  }
}

const mutArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 30, arbitrary: fc.constant<Mutation>('none') },
  { weight: 1, arbitrary: fc.constantFrom<Mutation>('seqno', 'overrun', 'channel', 'msgno', 'keyword', 'badkw', 'badnum', 'nulsyntax', 'trailer') },
);
const cutsArb = fc.array(fc.integer({ min: 1, max: 999 }).map((x) => x / 1000), { maxLength: 5 });

/** The attacker's commands. */
export function attackCommands(): fc.Arbitrary<ACmd>[] {
  const greet = fc.constant<ACmd>(new GreetCmd());
  const start = fc
    .tuple(fc.constantFrom<AttackProfile>('echo', 'echo', 'gate', 'errEarly', 'answers', 'unknown'), mutArb, fc.nat(), cutsArb)
    .map(([p, mu, n, c]): ACmd => new StartCmd(p, mu, n, c));
  const close = fc.nat().map((p): ACmd => new CloseCmd(p));
  const msg = fc
    .tuple(
      fc.nat(),
      fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 3001, max: 150_000 })),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 2001, max: 70_000 })), { minLength: 1, maxLength: 4 }),
      mutArb,
      fc.nat(),
      fc.nat(),
      cutsArb,
      fc.boolean(),
      fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
    )
    .map(([p, s, fr, mu, at, n, c, a, r]): ACmd => new MsgCmd(p, s, fr, mu, at, n, c, a, r));
  const reply = fc
    .tuple(
      fc.nat(),
      fc.constantFrom<'RPY' | 'ERR' | 'ANS' | 'NUL'>('RPY', 'ERR', 'ANS', 'ANS', 'NUL'),
      fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 3 }),
      fc.nat(),
      mutArb,
      fc.nat(),
      fc.nat(),
      fc.boolean(),
      fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
      fc.integer({ min: 0, max: 3 }).map((x) => x > 0),
    )
    .map(([p, k, s, a, mu, at, n, ack, raw, fin]): ACmd => new ReplyCmd(p, k, s, a, mu, at, n, ack, raw, fin));
  const seq = fc
    .tuple(
      fc.nat(),
      fc.oneof(fc.constant(0), fc.nat({ max: 5000 })),
      fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 4097, max: 1 << 20 })),
      fc.oneof({ weight: 12, arbitrary: fc.constant<'none'>('none') }, { weight: 1, arbitrary: fc.constantFrom<'beyond' | 'channel' | 'syntax' | 'closed'>('beyond', 'channel', 'syntax', 'closed') }),
      fc.nat(),
    )
    .map(([p, b, w, mu, n]): ACmd => new SeqCmd(p, b, w, mu, n));
  const lmsg = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 9000 }), fc.boolean()).map(([p, s, a]): ACmd => new ListenerMsgCmd(p, s, a));
  const gate = fc.nat().map((p): ACmd => new GateCmd(p));
  const ack = fc.constant<ACmd>(new AckCmd());
  return [
    fc.oneof(
      { weight: 1, arbitrary: greet },
      { weight: 3, arbitrary: start },
      { weight: 1, arbitrary: close },
      { weight: 8, arbitrary: msg },
      { weight: 5, arbitrary: reply },
      { weight: 3, arbitrary: seq },
      { weight: 3, arbitrary: lmsg },
      { weight: 1, arbitrary: gate },
      { weight: 2, arbitrary: ack },
    ),
  ];
}

/** Per-run configuration of the attacked listener. */
export interface AttackConfig {
  limits: SessionLimits;
  /** Greet before the first command (otherwise frames may come before the greeting). */
  greetFirst: boolean;
}

/** Small windows and frames so that overruns and SEQs matter. */
export const attackConfigArb: fc.Arbitrary<AttackConfig> = fc
  .tuple(fc.constantFrom(4096, 8192, 65536), fc.constantFrom(1, 2), fc.constantFrom(1024, 4096, 65536), fc.integer({ min: 0, max: 9 }))
  .map(([rw, g, f, greet]) => ({
    limits: { receiveWindow: rw, maxReceiveWindow: rw * g, maxSendFrame: f },
    greetFirst: greet > 0,
  }));

/** Set up a harness for one run (greeting first unless the config says otherwise). */
export async function attackSetup(config: AttackConfig): Promise<AttackHarness> {
  const h = new AttackHarness(config.limits);
  if (config.greetFirst) {
    const ch0 = h.model.channels.get(0) as ACh;
    const payload = Buffer.from('Content-Type: application/beep+xml\r\n\r\n<greeting />\r\n', 'latin1');
    h.write([rawData('RPY', 0, 0, false, ch0.seq, payload)]);
  }
  await h.drain(false);
  return h;
}
