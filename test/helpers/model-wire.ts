/**
 * Wire-level reference checks for the model-based tests (test/channels/model.test.ts).
 *
 * {@link WireBook} watches both directions of one BEEP session as the test
 * moves bytes between two sans-IO cores: every frame a core hands out through
 * `pull()` is decoded and checked against RFC 3080 §2.2.1 / §2.6 and RFC 3081
 * §3.1 from what that core had *received* by then (the SEQ frames delivered to
 * it), and every octet the test delivers is accounted to the receiver.
 *
 * Serial arithmetic here is written from RFC 1982 / RFC 3080 §2.2.1.2
 * directly, independently of `src/channels/window.ts`.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { FrameDecoder, type Frame } from '../../src/framing/index.js';

/** 2^32: the size of the sequence-number space (RFC 3080 §2.2.1.2). */
export const SEQ_SPACE = 2 ** 32;

/** `(a + b) mod 2^32` for non-negative integers. */
export function add32(a: number, b: number): number {
  return (a + b) % SEQ_SPACE;
}

/** Forward distance from `from` to `to`, modulo 2^32. */
export function dist32(from: number, to: number): number {
  return (((to - from) % SEQ_SPACE) + SEQ_SPACE) % SEQ_SPACE;
}

/** RFC 1982 comparison: `a` is at or before `b`. */
export function lte32(a: number, b: number): boolean {
  return dist32(a, b) < 2 ** 31;
}

/** The two peers of a session in the model tests. */
export type Side = 'I' | 'L';

/** The other peer. */
export function otherSide(s: Side): Side {
  return s === 'I' ? 'L' : 'I';
}

/** Required parity of channel numbers a side allocates (RFC 3080 §2.3.1.2): initiator odd, listener even. */
export function parityOk(side: Side, n: number): boolean {
  return n > 0 && (n % 2 === 1) === (side === 'I');
}

/** Octets of a frame on the wire: canonical header line, payload, trailer. */
export function frameLength(f: Frame): number {
  if (f.type === 'SEQ') return `SEQ ${f.channel} ${f.ackno} ${f.window}\r\n`.length;
  const ans = f.type === 'ANS' ? ` ${f.ansno}` : '';
  return `${f.type} ${f.channel} ${f.msgno} ${f.more ? '*' : '.'} ${f.seqno} ${f.size}${ans}\r\n`.length + f.size + 5;
}

interface Pending {
  frame: Frame;
  payload: Buffer;
  end: number;
}

/** What one side has sent on one channel, and what it knows of the peer's window. */
interface SendState {
  /** Next seqno this side must use (RFC 3080 §2.2.1.2). */
  seq: number;
  /** Right edge this side may send up to: from the peer's SEQ frames delivered to it (RFC 3081 §3.1). */
  edgeKnown: number;
  /** The right edge this side announced in its last SEQ (never moves left). */
  announced: number;
  /**
   * Buffer bound of the last announcement: the window announced plus what the
   * announcer had buffered then. The announcer never buffers more than this
   * (RFC 3081 §3.1: the peer may send no more than the window).
   */
  cap: number;
  /** Previous frame on the channel was intermediate: its msgno and keyword. */
  lastMore: { msgno: number; kind: string } | null;
  /** This side's MSGs on the channel, in the order their first frames were sent. */
  msgOrder: number[];
  /** The MSG being sent (first frame out, final frame not yet). */
  msgOpen: number | null;
  /** This side's MSGs awaiting a complete reply (the reply's final frame not yet delivered). */
  awaiting: Set<number>;
  /** MSGs of this side that the peer answered with ERR before they were complete (RFC 3080 §2.6.3). */
  mustEndEmpty: Set<number>;
  /** Replies of this side to the peer's MSGs: state per msgno. */
  replies: Map<number, 'RPY' | 'ERR' | 'ANS' | 'done'>;
  /** Answers in progress per msgno. */
  ansOpen: Map<number, Set<number>>;
  /** Replies of this side begun / completed (indices into the peer's msgOrder). */
  repliesStarted: number;
  repliesDone: number;
  /** Replies to this side's MSGs whose final frame has been delivered to this side. */
  completeDelivered: Set<number>;
  /** ANS messages to this side's MSGs delivered complete, per msgno. */
  ansDelivered: Map<number, number>;
}

function newSendState(): SendState {
  return {
    seq: 0,
    edgeKnown: 4096,
    announced: 4096,
    cap: 4096,
    lastMore: null,
    msgOrder: [],
    msgOpen: null,
    awaiting: new Set(),
    mustEndEmpty: new Set(),
    replies: new Map(),
    ansOpen: new Map(),
    repliesStarted: 0,
    repliesDone: 0,
    completeDelivered: new Set(),
    ansDelivered: new Map(),
  };
}

/**
 * Both directions of one session, frame by frame. Violations are collected
 * in {@link WireBook.violations} (the test asserts it stays empty).
 */
export class WireBook {
  /** Everything found wrong, in order. */
  readonly violations: string[] = [];
  /** Frames seen per keyword (plus `preemptEnd`: empty final MSG frames after a pre-emptive ERR), for coverage reports. */
  readonly stats: Record<string, number> = {};
  private readonly decoders: Record<Side, FrameDecoder>;
  private readonly pending: Record<Side, Pending[]> = { I: [], L: [] };
  private readonly pulled: Record<Side, number> = { I: 0, L: 0 };
  private readonly delivered: Record<Side, number> = { I: 0, L: 0 };
  private readonly frameStart: Record<Side, number> = { I: 0, L: 0 };
  /** Payload of a channel-0 MSG being sent, until its final frame. */
  private readonly mgmtBody: Record<Side, Map<number, Buffer>> = { I: new Map(), L: new Map() };
  private readonly state: Record<Side, Map<number, SendState>> = { I: new Map(), L: new Map() };
  /** Channel-0 MSGs of each side: msgno → the `<start>`/`<close>` channel number they carry. */
  private readonly mgmt: Record<Side, Map<number, { op: 'start' | 'close'; channel: number }>> = { I: new Map(), L: new Map() };
  /** Positive replies to a side's `<start>` / `<close>` that were delivered to it, by channel number. */
  readonly startDelivered: Record<Side, Set<number>> = { I: new Set(), L: new Set() };
  readonly closeDelivered: Record<Side, Set<number>> = { I: new Set(), L: new Set() };

  constructor() {
    const dec = (): FrameDecoder => new FrameDecoder({ maxFrameSize: 1 << 30 });
    this.decoders = { I: dec(), L: dec() };
    // The greeting is a reply to a MSG 0 on channel 0 that nobody sent (RFC 3080 §2.3.1.1).
    for (const s of ['I', 'L'] as const) {
      const st = this.ch(s, 0);
      st.msgOrder.push(0);
      st.awaiting.add(0);
    }
  }

  /** Per-side, per-channel state, created on first use (channel numbers are never reused in a run). */
  private ch(side: Side, channel: number): SendState {
    let s = this.state[side].get(channel);
    if (!s) {
      s = newSendState();
      this.state[side].set(channel, s);
    }
    return s;
  }

  private fail(msg: string): void {
    if (this.violations.length < 50) this.violations.push(msg);
  }

  /** Octets pulled from `side` and not yet delivered to its peer. */
  inFlight(side: Side): number {
    return this.pulled[side] - this.delivered[side];
  }

  /**
   * Frames `side` handed out (one `pull()`): decode and check each against
   * what `side` may send now. `bufferedOf(c)` reads the sender's receive
   * buffer of channel `c` (for the cap of its SEQ frames).
   */
  onPulled(side: Side, bufs: readonly Uint8Array[], bufferedOf: (channel: number) => number | undefined): void {
    for (const b of bufs) {
      const chunk = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      try {
        this.decoders[side].push(chunk, (f) => {
          const payload = f.type === 'SEQ' ? Buffer.alloc(0) : Buffer.from(f.payload);
          // Exact stream offset of the frame's last octet (+1): the header is
          // canonical (the decoder refuses anything else), so its length is known.
          const end = this.frameStart[side] + frameLength(f);
          this.frameStart[side] = end;
          this.checkSent(side, f, payload, bufferedOf);
          this.pending[side].push({ frame: f, payload, end });
        });
      } catch (err) {
        this.fail(`${side} sent undecodable octets: ${(err as Error).message}`);
      }
      this.pulled[side] += chunk.length;
    }
  }

  /** Called with a one-line summary of every frame as it is delivered (for traces). */
  onFrameDelivered: ((side: Side, summary: string) => void) | undefined;

  /** `n` more octets sent by `side` reached its peer. */
  onDelivered(side: Side, n: number): void {
    this.delivered[side] += n;
    const q = this.pending[side];
    // A frame counts as delivered once its last octet has.
    while (q.length > 0 && (q[0] as Pending).end <= this.delivered[side]) {
      const p = q.shift() as Pending;
      if (this.onFrameDelivered) {
        const f = p.frame;
        const text = f.channel === 0 && f.type !== 'SEQ' ? ` ${p.payload.toString('latin1').replace(/^[^<]*/s, '').slice(0, 60)}` : '';
        this.onFrameDelivered(side, f.type === 'SEQ' ? `SEQ ${f.channel} ${f.ackno} ${f.window}` : `${f.type} ${f.channel} ${f.msgno} ${f.more ? '*' : '.'} ${f.seqno} ${f.size}${f.type === 'ANS' ? ` ${f.ansno}` : ''}${text}`);
      }
      this.applyDelivered(side, p.frame, p.payload);
    }
  }

  private checkSent(side: Side, f: Frame, payload: Buffer, bufferedOf: (channel: number) => number | undefined): void {
    const peer = otherSide(side);
    const st = this.ch(side, f.channel);
    this.stats[f.type] = (this.stats[f.type] ?? 0) + 1;
    if (f.type === 'SEQ') {
      const edge = add32(f.ackno, f.window);
      // The ackno is the next octet expected: exactly what the peer has sent so far, or less.
      const peerSent = this.ch(peer, f.channel).seq;
      if (!lte32(f.ackno, peerSent)) this.fail(`${side} SEQ ${f.channel} acks ${f.ackno}, beyond ${peerSent} sent`);
      // RFC 3081 §3.1.4 after RFC 1122: the right edge never moves left.
      if (!lte32(st.announced, edge)) this.fail(`${side} SEQ ${f.channel} moves its right edge left (${st.announced} -> ${edge})`);
      st.announced = edge;
      const buffered = bufferedOf(f.channel);
      if (buffered !== undefined) st.cap = f.window + buffered;
      return;
    }
    const where = `${side} ${f.type} ${f.channel} ${f.msgno}${f.type === 'ANS' ? ` ansno ${f.ansno}` : ''}`;
    if (f.seqno !== st.seq) this.fail(`${where}: seqno ${f.seqno}, expected ${st.seq}`);
    // RFC 3081 §3.1.2: within the window the receiver advertised (and this side has received).
    if (f.size > 0 && (!lte32(add32(f.seqno, f.size), st.edgeKnown) || dist32(f.seqno, st.edgeKnown) < f.size)) {
      this.fail(`${where}: ${f.size} octets at ${f.seqno} beyond the known right edge ${st.edgeKnown}`);
    }
    st.seq = add32(st.seq, f.size);
    // RFC 3080 §2.2.1: frames of one message are sent without intervening
    // frames of other messages on the channel; only ANS of one reply may interleave.
    if (st.lastMore) {
      const lm = st.lastMore;
      const okAns = lm.kind === 'ANS' && f.type === 'ANS' && lm.msgno === f.msgno;
      if (!okAns && (lm.msgno !== f.msgno || lm.kind !== f.type)) this.fail(`${where}: interrupts ${lm.kind} ${lm.msgno}, which is not complete`);
    }
    if (f.type === 'MSG') {
      if (st.msgOpen !== f.msgno) {
        // A new MSG: its msgno must not be awaiting a reply (RFC 3080 §2.2.1.1, msgno).
        if (st.awaiting.has(f.msgno)) this.fail(`${where}: msgno reused while its reply is incomplete`);
        st.msgOrder.push(f.msgno);
        st.awaiting.add(f.msgno);
        st.msgOpen = f.msgno;
      }
      if (f.channel === 0) {
        const body = Buffer.concat([this.mgmtBody[side].get(f.msgno) ?? Buffer.alloc(0), payload]);
        if (f.more) this.mgmtBody[side].set(f.msgno, body);
        else {
          this.mgmtBody[side].delete(f.msgno);
          this.noteMgmt(side, f.msgno, body);
        }
      }
      if (st.mustEndEmpty.has(f.msgno)) {
        // RFC 3080 §2.6.3: after a pre-emptive ERR, the next frame is final and empty.
        if (f.more || f.size !== 0) this.fail(`${where}: after a pre-emptive ERR the MSG must end with an empty final frame`);
        this.stats.preemptEnd = (this.stats.preemptEnd ?? 0) + 1;
        st.mustEndEmpty.delete(f.msgno);
      }
      if (!f.more) st.msgOpen = null;
      st.lastMore = f.more ? { msgno: f.msgno, kind: f.type } : null;
      return;
    }
    // A reply of `side` to the peer's MSG f.msgno.
    const order = this.ch(peer, f.channel).msgOrder;
    const state = st.replies.get(f.msgno);
    if (state === 'done') {
      this.fail(`${where}: reply frame after the reply was complete${f.type === 'ANS' ? ' (ANS after NUL)' : ''}`);
      return;
    }
    if (state === undefined) {
      if (order[st.repliesStarted] !== f.msgno) {
        this.fail(`${where}: reply begun out of order (RFC 3080 §2.6.1): expected a reply to msgno ${order[st.repliesStarted] ?? '(none)'}`);
      }
      st.repliesStarted++;
    } else if (f.type === 'NUL' ? state !== 'ANS' : state !== f.type) {
      this.fail(`${where}: follows ${state} frames of the same reply`);
    }
    let done = false;
    if (f.type === 'ANS') {
      const open = st.ansOpen.get(f.msgno) ?? new Set<number>();
      if (f.more) open.add(f.ansno ?? -1);
      else open.delete(f.ansno ?? -1);
      st.ansOpen.set(f.msgno, open);
      st.replies.set(f.msgno, 'ANS');
    } else if (f.type === 'NUL') {
      if ((st.ansOpen.get(f.msgno)?.size ?? 0) > 0) this.fail(`${where}: NUL while answers are incomplete`);
      if (f.more || f.size !== 0) this.fail(`${where}: NUL must be complete and empty`);
      done = true;
    } else {
      st.replies.set(f.msgno, f.type);
      done = !f.more;
    }
    if (done) {
      st.replies.set(f.msgno, 'done');
      if (order[st.repliesDone] !== f.msgno) {
        this.fail(`${where}: reply completed out of order (RFC 3080 §2.6.1): expected msgno ${order[st.repliesDone] ?? '(none)'}`);
      }
      st.repliesDone++;
    }
    st.lastMore = f.more ? { msgno: f.msgno, kind: f.type } : null;
  }

  private noteMgmt(side: Side, msgno: number, payload: Buffer): void {
    const text = payload.toString('latin1');
    const m = /<(start|close)\b[^>]*\bnumber=['"]([0-9]+)['"]/.exec(text);
    if (m) this.mgmt[side].set(msgno, { op: m[1] as 'start' | 'close', channel: Number(m[2]) });
  }

  private applyDelivered(side: Side, f: Frame, payload: Buffer): void {
    const peer = otherSide(side);
    if (f.type === 'SEQ') {
      // The peer may now send up to this edge.
      const ps = this.ch(peer, f.channel);
      const edge = add32(f.ackno, f.window);
      if (lte32(ps.edgeKnown, edge)) ps.edgeKnown = edge;
      return;
    }
    if (f.type === 'MSG') return;
    // A reply by `side` to the peer's MSG, now at the peer.
    const ps = this.ch(peer, f.channel);
    if (f.type === 'ERR' && ps.msgOpen === f.msgno) ps.mustEndEmpty.add(f.msgno);
    if (f.type === 'ANS' && !f.more) ps.ansDelivered.set(f.msgno, (ps.ansDelivered.get(f.msgno) ?? 0) + 1);
    const final = f.type === 'NUL' || ((f.type === 'RPY' || f.type === 'ERR') && !f.more);
    if (!final) return;
    ps.completeDelivered.add(f.msgno);
    ps.awaiting.delete(f.msgno);
    if (f.channel === 0) {
      const m = this.mgmt[peer].get(f.msgno);
      if (m && f.type === 'RPY') {
        const text = payload.toString('latin1');
        if (m.op === 'start' && text.includes('<profile')) this.startDelivered[peer].add(m.channel);
        if (m.op === 'close' && text.includes('<ok')) this.closeDelivered[peer].add(m.channel);
      }
    }
  }

  /** The complete reply to `side`'s MSG `msgno` on `channel` has been delivered to `side`. */
  replyDelivered(side: Side, channel: number, msgno: number): boolean {
    return this.state[side].get(channel)?.completeDelivered.has(msgno) ?? false;
  }

  /** How many complete ANS messages answering `side`'s MSG `msgno` were delivered to it. */
  answersDelivered(side: Side, channel: number, msgno: number): number {
    return this.state[side].get(channel)?.ansDelivered.get(msgno) ?? 0;
  }

  /** The buffer bound `side` announced for `channel` (4096 before any SEQ). */
  capOf(side: Side, channel: number): number {
    return this.state[side].get(channel)?.cap ?? 4096;
  }
}
