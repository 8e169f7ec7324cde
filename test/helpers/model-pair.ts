/**
 * Model-based test of a BEEP session between two sans-IO cores (initiator ↔
 * listener): the harness, its reference model and its fast-check commands.
 *
 * The test moves every octet itself (the pump is a command: any split, any
 * time), so any interleaving of channel starts, closes, MSGs and their replies
 * (RPY, ERR, ANS…NUL, multi-frame), SEQ frames, stalled readers, release and
 * reset can be produced. The {@link PairModel} predicts the outcome of every
 * operation from RFC 3080/3081; the {@link WireBook} checks every frame on the
 * wire; {@link PairHarness.checkInvariants} runs after every command and
 * {@link PairHarness.finish} pumps the session to quiescence and checks that
 * nothing is left pending.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { BeepError, BeepReplyError, ErrorCodes } from '../../src/errors.js';
import { SessionCore } from '../../src/channels/core.js';
import type { Channel } from '../../src/channels/channel.js';
import type { IncomingMessage } from '../../src/channels/message.js';
import type { ChannelProfile, SessionLimits } from '../../src/channels/types.js';
import { ANSWERS_URI, ECHO_URI, answersProfile, defineProfile, echoProfile } from '../../src/profiles/index.js';
import { WireBook, otherSide, parityOk, type Side } from './model-wire.js';

export type { Side } from './model-wire.js';

/** Profiles the model uses. */
export type ProfileKind = 'echo' | 'answers' | 'refuse' | 'err';

/** Profile URIs, by kind. */
export const MODEL_URIS: Readonly<Record<ProfileKind, string>> = {
  echo: ECHO_URI,
  answers: ANSWERS_URI,
  refuse: 'urn:beepstream:test:model:refuse',
  err: 'urn:beepstream:test:model:err',
};

/** Reply code of the ERR profile and of refusals. */
const ERR_CODE = 554;
const REFUSE_CODE = 550;

/**
 * What the model predicts for an operation:
 * - `reply`: completes as the profile defines (echo body, N answers, ERR 554; start/close succeed);
 * - `refused`: start refused / close declined with 550;
 * - `invalid-state`: rejected at once with `BEEP_ERR_INVALID_STATE`;
 * - `racy`: either `reply` or a BeepError (the outcome depends on a race the RFC leaves open);
 * - `fail`: a BeepError (the session is gone);
 * - `any`: resolves or rejects with a BeepError.
 */
export type Expect = 'reply' | 'refused' | 'invalid-state' | 'racy' | 'fail' | 'any';

/** Outcome of a MSG exchange, as seen by the requester. */
type MsgResult =
  | { kind: 'echo'; body: Buffer }
  | { kind: 'answers'; ansnos: number[]; sizes: number[]; bad: number }
  | { kind: 'err'; replyCode: number | undefined; diagnostic: string };

interface OpBase {
  readonly id: number;
  readonly side: Side;
  /** May be relaxed to `racy` when a release makes the outcome a race. */
  expect: Expect;
  /** Issued after the reset. */
  readonly afterReset: boolean;
  settled: { ok: boolean; value?: unknown; error?: unknown; atReset: boolean } | null;
  readonly label: string;
}
interface StartOp extends OpBase { kind: 'start'; profile: ProfileKind; predicted: number | undefined }
interface MsgOp extends OpBase {
  kind: 'msg';
  channel: number;
  profile: ProfileKind;
  msgno: number | undefined;
  body: Buffer;
  early: boolean;
  answers: { n: number; size: number } | undefined;
  /** Answer bodies read so far (ANS fully received and read). */
  answersRead: number;
  /** Where the exchange is, for reports of operations that never settle. */
  stage: string;
}
interface CloseOp extends OpBase { kind: 'close'; channel: number; decline: boolean }
interface ReleaseOp extends OpBase { kind: 'release' }
type Op = StartOp | MsgOp | CloseOp | ReleaseOp;

/** A channel the model knows to exist (its start succeeded). */
export interface ModelChannel {
  readonly number: number;
  readonly starter: Side;
  readonly profile: ProfileKind;
  state: 'open' | 'closed';
  /** A close by that side is in flight. */
  closing: Record<Side, boolean>;
  /** A declined close is in flight. */
  declinePending: boolean;
}

/** The reference model: what exists and what is expected. */
export interface PairModel {
  phase: 'open' | 'releasing' | 'reset';
  /** Channel numbers are predicted only until a release or reset makes allocation racy. */
  predictable: boolean;
  nextChannel: Record<Side, number>;
  channels: ModelChannel[];
  releasedBy: Set<Side>;
  /** Stalled readers, by `${side}:${channel}`. */
  stalled: Set<string>;
}

/** Per-run configuration. */
export interface PairConfig {
  limits: Record<Side, SessionLimits>;
  /** Exchange greetings before the first command. */
  greet: boolean;
}

/** Deterministic pseudo-random body of `size` octets (xorshift32 from `seed`). */
export function makeBody(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (seed | 0) || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeInt32LE(x | 0, i);
  }
  for (; i < size; i++) b[i] = (i * 131 + seed) & 0xff;
  return b;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Reader {
  msg: IncomingMessage;
}

/**
 * Two cores, the wire between them, and everything observed. Commands act on
 * it; it records violations rather than throwing from callbacks, and
 * {@link checkInvariants} turns them into a failure.
 */
export class PairHarness {
  readonly model: PairModel;
  readonly cores: Record<Side, SessionCore>;
  readonly book = new WireBook();
  readonly violations: string[] = [];
  readonly ops: Op[] = [];
  /** Octets pulled from a side and not yet delivered. */
  private readonly wire: Record<Side, Buffer[]> = { I: [], L: [] };
  /** The transport from that side has been closed towards its peer. */
  private readonly eofSent: Record<Side, boolean> = { I: false, L: false };
  /** Channels the peer started, from the `channel` event. */
  readonly peerStarted: Record<Side, Map<number, Channel>> = { I: new Map(), L: new Map() };
  readonly closeEvents: Record<Side, (BeepError | undefined)[]> = { I: [], L: [] };
  /** Handler invocations per side: `${channel}:${msgno}` → count. */
  readonly handled: Record<Side, Map<string, number>> = { I: new Map(), L: new Map() };
  readonly handlerErrors: Record<Side, unknown[]> = { I: [], L: [] };
  /** One-shot: the next close request `side` receives for a channel is declined. */
  private readonly declineNext = new Set<string>();
  private readonly readers = new Map<string, Set<Reader>>();
  /** Responses per (side, channel), in order of arrival: op ids. */
  private readonly responseOrder = new Map<string, number[]>();
  private nextOp = 1;
  resetDone = false;
  /** The last events of the run (operations, deliveries, closes), for failure reports. */
  readonly trace: string[] = [];

  constructor(config: PairConfig) {
    this.model = {
      phase: 'open',
      predictable: true,
      nextChannel: { I: 1, L: 2 },
      channels: [],
      releasedBy: new Set(),
      stalled: new Set(),
    };
    this.cores = {
      I: new SessionCore({ role: 'initiator', profiles: this.profilesFor('I'), limits: config.limits.I }),
      L: new SessionCore({ role: 'listener', profiles: this.profilesFor('L'), limits: config.limits.L }),
    };
    this.book.onFrameDelivered = (side, f) => this.note(`${side}->${otherSide(side)} ${f}`);
    for (const side of ['I', 'L'] as const) {
      const core = this.cores[side];
      core.on('channel', (ch) => {
        if (!parityOk(otherSide(side), ch.number)) this.violation(`${side}: peer started channel ${ch.number}, wrong parity for ${otherSide(side)}`);
        if (this.peerStarted[side].has(ch.number)) this.violation(`${side}: channel ${ch.number} announced twice`);
        if (this.resetDone) this.violation(`${side}: channel ${ch.number} announced after the reset`);
        this.peerStarted[side].set(ch.number, ch);
      });
      core.on('close', (err) => {
        this.closeEvents[side].push(err);
        this.note(`${side} session closed${err ? `: ${err.code} ${err.message}` : ' (released)'}`);
        if (err !== undefined && !(err instanceof BeepError)) this.violation(`${side}: close event with a non-BeepError ${String(err)}`);
        if (err !== undefined && !this.resetDone) this.violation(`${side}: session terminated unexpectedly: ${err.code} ${err.message}`);
      });
      core.on('handlerError', (err) => this.handlerErrors[side].push(err));
    }
  }

  /** Add a line to the trace (bounded). */
  note(line: string): void {
    this.trace.push(line);
    if (this.trace.length > 400) this.trace.splice(0, this.trace.length - 300);
  }

  /** Record a violation (checked after every command). */
  violation(msg: string): void {
    if (this.violations.length < 50) this.violations.push(msg);
  }

  private profilesFor(side: Side): ChannelProfile[] {
    const onCloseRequest = (ch: Channel) => {
      const key = `${side}:${ch.number}`;
      if (this.declineNext.delete(key)) return { accept: false as const, code: REFUSE_CODE, diagnostic: 'declined by the model' };
      return undefined;
    };
    const note = (ch: Channel, msg: IncomingMessage): void => {
      const key = `${ch.number}:${msg.msgno}`;
      const n = (this.handled[side].get(key) ?? 0) + 1;
      this.handled[side].set(key, n);
      if (n > 1) this.violation(`${side}: MSG ${key} handed to the profile ${n} times`);
      if (this.cores[side].isClosed) this.violation(`${side}: MSG ${key} handed to the profile after the session ended`);
    };
    return [
      defineProfile({
        uri: ECHO_URI,
        onCloseRequest,
        onMessage(msg, res, ch) {
          note(ch, msg);
          return echoProfile.onMessage(msg, res);
        },
      }),
      defineProfile({
        uri: ANSWERS_URI,
        onCloseRequest,
        onMessage(msg, res, ch) {
          note(ch, msg);
          return answersProfile.onMessage(msg, res);
        },
      }),
      defineProfile({
        uri: MODEL_URIS.err,
        onCloseRequest,
        async onMessage(msg, res, ch) {
          note(ch, msg);
          if (msg.headers['x-early'] === '1') {
            // Pre-emptive negative reply (RFC 3080 §2.6.3), before the MSG is read.
            await res.error(ERR_CODE, 'early');
            return;
          }
          const body = await msg.bytes();
          await res.error(ERR_CODE, `late ${body.length}`);
        },
      }),
      defineProfile({
        uri: MODEL_URIS.refuse,
        onStart: () => ({ accept: false, code: REFUSE_CODE, diagnostic: 'refused by the model' }),
      }),
    ];
  }

  // ------------------------------------------------------------ wire

  /** Pull up to `pulls` batches of at most `budget` octets from `side` onto the wire. */
  pullFrom(side: Side, pulls: number, budget: number): void {
    const core = this.cores[side];
    for (let i = 0; i < pulls; i++) {
      let out: Uint8Array[] | null;
      try {
        out = core.pull(budget);
      } catch (err) {
        this.violation(`${side}.pull() threw: ${(err as Error).stack ?? String(err)}`);
        return;
      }
      if (!out) return;
      this.book.onPulled(side, out, (c) => core.channels.get(c)?.recv.buffered);
      for (const b of out) this.wire[side].push(Buffer.from(b));
    }
  }

  /** Octets on the wire from `side`. */
  wireBytes(side: Side): number {
    let n = 0;
    for (const b of this.wire[side]) n += b.length;
    return n;
  }

  /**
   * Deliver the first `n` octets on the wire from `side` to its peer, cut at
   * the given fractions (0..1) into separate `receive()` calls.
   */
  deliver(side: Side, n: number, cuts: readonly number[] = []): void {
    const peer = this.cores[otherSide(side)];
    const all = Buffer.concat(this.wire[side]);
    const take = Math.max(0, Math.min(n, all.length));
    this.wire[side] = take < all.length ? [all.subarray(take)] : [];
    if (take === 0) return;
    const points = [...new Set(cuts.map((f) => Math.floor(Math.min(Math.max(f, 0), 1) * take)))].filter((p) => p > 0 && p < take).sort((a, b) => a - b);
    let prev = 0;
    for (const p of [...points, take]) {
      const chunk = all.subarray(prev, p);
      try {
        peer.receive(chunk);
      } catch (err) {
        this.violation(`${otherSide(side)}.receive() threw: ${(err as Error).stack ?? String(err)}`);
      }
      this.book.onDelivered(side, chunk.length);
      prev = p;
    }
  }

  /**
   * A side whose session ended and whose wire is empty closes its transport:
   * the peer sees EOF — possibly in the same turn as the last octets (as a
   * stream may emit 'end' right after its last 'data').
   */
  private eof(): void {
    for (const side of ['I', 'L'] as const) {
      if (this.cores[side].isClosed && this.wire[side].length === 0 && !this.eofSent[side]) {
        this.eofSent[side] = true;
        this.cores[otherSide(side)].transportClosed();
      }
    }
  }

  /** Let handlers and stream callbacks run. */
  async settle(rounds = 2): Promise<void> {
    for (let i = 0; i < rounds; i++) await tick();
    this.eof();
  }

  // ------------------------------------------------------------ readers

  /** Read a whole body, honouring stalls of (side, channel). */
  private readBody(side: Side, channel: number, msg: IncomingMessage): Promise<Buffer> {
    const key = `${side}:${channel}`;
    return new Promise<Buffer>((resolve, reject) => {
      const r: Reader = { msg };
      let set = this.readers.get(key);
      if (!set) {
        set = new Set();
        this.readers.set(key, set);
      }
      set.add(r);
      const chunks: Buffer[] = [];
      let ended = false;
      const done = (): void => {
        this.readers.get(key)?.delete(r);
      };
      if (msg.destroyed && !msg.readableEnded) {
        // Failed before anyone listened (e.g. an ANS queued behind a stalled one): no events will come.
        done();
        reject(msg.failure ?? new Error('message destroyed before it was read'));
        return;
      }
      msg.on('data', (b: Buffer) => chunks.push(b));
      msg.on('end', () => {
        ended = true;
        done();
        resolve(Buffer.concat(chunks));
      });
      msg.on('error', (e) => {
        done();
        reject(e);
      });
      msg.on('close', () => {
        if (ended) return;
        done();
        reject(msg.failure ?? new Error('message closed before its end'));
      });
      if (this.model.stalled.has(key)) msg.pause();
    });
  }

  /** Stop (or resume) reading replies on (side, channel). */
  setStalled(side: Side, channel: number, stalled: boolean): void {
    const key = `${side}:${channel}`;
    if (stalled) this.model.stalled.add(key);
    else this.model.stalled.delete(key);
    for (const r of this.readers.get(key) ?? []) {
      if (stalled) r.msg.pause();
      else r.msg.resume();
    }
  }

  /** Resume every stalled reader. */
  resumeAll(): void {
    for (const key of [...this.model.stalled]) {
      const [side, ch] = key.split(':') as [Side, string];
      this.setStalled(side, Number(ch), false);
    }
  }

  // ------------------------------------------------------------ operations

  private responded(op: MsgOp): void {
    const key = `${op.side}:${op.channel}`;
    let list = this.responseOrder.get(key);
    if (!list) {
      list = [];
      this.responseOrder.set(key, list);
    }
    list.push(op.id);
  }

  private track<T>(op: Op, run: () => Promise<T>): void {
    this.ops.push(op);
    this.note(`op ${op.id} ${op.label} [${op.expect}]`);
    let p: Promise<T>;
    try {
      p = run();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (value) => this.onSettled(op, { ok: true, value, atReset: this.resetDone }),
      (error: unknown) => this.onSettled(op, { ok: false, error, atReset: this.resetDone }),
    );
  }

  private expectFor(base: Expect): Expect {
    if (this.model.phase === 'reset') return 'fail';
    if (this.model.phase === 'releasing' && base !== 'invalid-state') return 'racy';
    return base;
  }

  /** Start a channel from `side` with a profile. */
  start(side: Side, profile: ProfileKind): void {
    const predicted = this.model.predictable && this.model.phase === 'open' ? this.model.nextChannel[side] : undefined;
    if (predicted !== undefined) this.model.nextChannel[side] += 2;
    if (this.model.phase !== 'open') this.model.predictable = false;
    const op: StartOp = {
      kind: 'start', id: this.nextOp++, side, profile, predicted, settled: null, afterReset: this.resetDone,
      expect: this.expectFor(profile === 'refuse' ? 'refused' : 'reply'),
      label: `start ${side} ${profile}${predicted === undefined ? '' : ` #${predicted}`}`,
    };
    this.track(op, () => this.cores[side].startChannel(MODEL_URIS[profile]));
  }

  /** The Channel object of `side` for model channel `c` (undefined once gone). */
  channelOf(side: Side, c: ModelChannel): Channel | undefined {
    return c.starter === side ? (this.startedChannels.get(c.number) ?? undefined) : this.peerStarted[side].get(c.number);
  }
  private readonly startedChannels = new Map<number, Channel>();

  /** Send a MSG from `side` on model channel `c`. */
  msg(side: Side, c: ModelChannel, spec: { size: number; seed: number; chunks: number; early: boolean; nAns: number; ansSize: number }): void {
    const ch = this.channelOf(side, c);
    let base: Expect = 'reply';
    // Our close pending: refused at once — unless the peer's decline has been read (the channel
    // is open again) and only the close's promise has yet to settle: then either outcome is right.
    if (c.closing[side]) base = c.declinePending && ch?.state === 'open' ? 'racy' : 'invalid-state';
    else if (c.closing[otherSide(side)] && !c.declinePending) base = 'racy';
    const expect = this.expectFor(base);
    const answers = c.profile === 'answers' ? { n: spec.nAns, size: spec.ansSize } : undefined;
    const body = answers ? Buffer.from(`${answers.n}:${answers.size}`) : makeBody(spec.size, spec.seed);
    const op: MsgOp = {
      kind: 'msg', id: this.nextOp++, side, channel: c.number, profile: c.profile, msgno: undefined, body,
      early: spec.early, answers, answersRead: 0, stage: 'sent', settled: null, afterReset: this.resetDone, expect,
      label: `msg ${side} ch${c.number} ${c.profile} ${answers ? `${answers.n}x${answers.size}` : `${body.length}B`}${c.profile === 'err' ? (spec.early ? ' early' : ' late') : ''}`,
    };
    if (!ch) {
      this.violation(`msg: ${side} has no channel object for ${c.number}`);
      return;
    }
    // Streamed bodies take the pump path (backpressure) rather than one queued buffer.
    const bodyInit = (): Buffer | Buffer[] => {
      if (spec.chunks <= 1 || body.length === 0) return body;
      const parts: Buffer[] = [];
      const step = Math.ceil(body.length / spec.chunks);
      for (let i = 0; i < body.length; i += step) parts.push(body.subarray(i, i + step));
      return parts;
    };
    const before = ch.nextMsgno;
    const allocated = (): void => {
      if (ch.nextMsgno !== before) op.msgno = before;
    };
    if (c.profile === 'answers') {
      this.track(op, async () => {
        const it = ch.requestAnswers(body);
        let next = it.next();
        allocated();
        const ansnos: number[] = [];
        const sizes: number[] = [];
        let bad = 0;
        let first = true;
        for (;;) {
          op.stage = `awaiting answer ${ansnos.length}`;
          const r = await next;
          if (first) {
            first = false;
            this.responded(op);
          }
          if (r.done) break;
          const m = r.value;
          op.stage = `reading answer ansno ${m.ansno} (${m.received} octets in)`;
          const got = await this.readBody(side, c.number, m);
          op.answersRead++;
          ansnos.push(m.ansno ?? -1);
          sizes.push(got.length);
          if (got.some((x) => x !== 0x61)) bad++;
          next = it.next();
        }
        return { kind: 'answers', ansnos, sizes, bad } satisfies MsgResult;
      });
      return;
    }
    if (c.profile === 'err') {
      this.track(op, async () => {
        const p = ch.request(bodyInit(), spec.early ? { headers: { 'x-early': '1' } } : {});
        allocated();
        try {
          await p;
        } catch (err) {
          if (err instanceof BeepReplyError && err.code === ErrorCodes.REPLY_ERROR) {
            this.responded(op);
            return { kind: 'err', replyCode: err.replyCode, diagnostic: err.diagnostic } satisfies MsgResult;
          }
          throw err;
        }
        throw new Error('the ERR profile answered with RPY');
      });
      return;
    }
    this.track(op, async () => {
      const p = ch.request(bodyInit());
      allocated();
      const m = await p;
      this.responded(op);
      op.stage = 'reading the RPY';
      return { kind: 'echo', body: await this.readBody(side, c.number, m) } satisfies MsgResult;
    });
  }

  /** Close model channel `c` from `side`; the peer declines when `decline`. */
  close(side: Side, c: ModelChannel, decline: boolean): void {
    const ch = this.channelOf(side, c);
    const expect = this.expectFor(decline ? 'refused' : 'reply');
    const op: CloseOp = {
      kind: 'close', id: this.nextOp++, side, channel: c.number, decline, settled: null, afterReset: this.resetDone,
      expect: this.resetDone ? 'any' : expect,
      label: `close ${side} ch${c.number}${decline ? ' (declined)' : ''}`,
    };
    if (!ch) {
      this.violation(`close: ${side} has no channel object for ${c.number}`);
      return;
    }
    if (decline) {
      this.declineNext.add(`${otherSide(side)}:${c.number}`);
      c.declinePending = true;
    }
    c.closing[side] = true;
    this.track(op, () => ch.close(200));
  }

  /** Release the session from `side`. */
  release(side: Side): void {
    const expect: Expect = this.model.phase === 'reset' ? 'fail' : this.model.releasedBy.size > 0 ? 'racy' : 'reply';
    this.model.releasedBy.add(side);
    if (this.model.phase === 'open') this.model.phase = 'releasing';
    // The peer may agree to the release while its own <start> is unanswered
    // (RFC 3080 §2.4 does not make it wait, unlike a channel close): a race.
    for (const o of this.ops) if (o.kind === 'start' && o.side !== side && o.settled === null && o.expect !== 'fail') o.expect = 'racy';
    this.model.predictable = false;
    const op: ReleaseOp = { kind: 'release', id: this.nextOp++, side, settled: null, afterReset: this.resetDone, expect, label: `release ${side}` };
    this.track(op, () => this.cores[side].release());
  }

  /**
   * Reset: `terminate` one side (as on a fatal error) or lose the
   * `transport`; `portion` of the octets already written still arrives.
   */
  reset(kind: 'terminate' | 'transport', side: Side, portion: number): void {
    this.resetDone = true;
    this.model.phase = 'reset';
    this.model.predictable = false;
    const peer = otherSide(side);
    const part = (s: Side): number => Math.floor(this.wireBytes(s) * portion);
    if (kind === 'terminate') {
      this.cores[side].terminate(new BeepError(ErrorCodes.TRANSPORT, 'terminated by the model'));
      this.deliver(side, part(side));
      this.wire[side] = [];
      this.wire[peer] = [];
      this.eofSent[side] = true;
      this.cores[peer].transportClosed();
    } else {
      this.deliver('I', part('I'));
      this.deliver('L', part('L'));
      this.wire.I = [];
      this.wire.L = [];
      this.eofSent.I = this.eofSent.L = true;
      this.cores.I.transportClosed();
      this.cores.L.transportClosed();
    }
  }

  // ------------------------------------------------------------ settlement

  private onSettled(op: Op, s: NonNullable<OpBase['settled']>): void {
    op.settled = s;
    this.note(`op ${op.id} ${s.ok ? 'ok' : `failed ${(s.error as BeepError)?.code ?? ''} ${(s.error as Error)?.message ?? ''}`}`);
    const bad = (why: string): void => this.violation(`${op.label} (op ${op.id}, expected ${op.expect}): ${why}`);
    if (!s.ok && !(s.error instanceof BeepError)) {
      bad(`rejected with a non-BeepError: ${(s.error as Error)?.stack ?? String(s.error)}`);
      return;
    }
    const err = s.ok ? undefined : (s.error as BeepError);
    const errText = err ? `${err.code}${err.replyCode ? ` ${err.replyCode}` : ''} ${err.message}` : '';
    // Pending when the session was reset: nothing may complete unless its
    // last frame had arrived before; everything else rejects with a BeepError.
    const post = s.atReset && !op.afterReset;
    const m = this.model;
    switch (op.kind) {
      case 'start': {
        const ch = s.ok ? (s.value as Channel) : undefined;
        if (ch) {
          if (!parityOk(op.side, ch.number)) bad(`channel ${ch.number} has the wrong parity`);
          if (op.predicted !== undefined && ch.number !== op.predicted) bad(`got channel ${ch.number}, predicted ${op.predicted}`);
          if (ch.profile !== MODEL_URIS[op.profile]) bad(`channel runs ${ch.profile}`);
          if (post && !this.book.startDelivered[op.side].has(ch.number)) bad('succeeded after the reset although its reply had not arrived');
          if (m.channels.some((c) => c.number === ch.number)) bad(`channel ${ch.number} started twice`);
          this.startedChannels.set(ch.number, ch);
          if (!this.resetDone) {
            m.channels.push({ number: ch.number, starter: op.side, profile: op.profile, state: 'open', closing: { I: false, L: false }, declinePending: false });
          }
        }
        if (!post) this.judge(op, s.ok, err, errText, bad, () => err instanceof BeepReplyError && err.code === ErrorCodes.START_REFUSED && err.replyCode === REFUSE_CODE);
        return;
      }
      case 'close': {
        const c = m.channels.find((x) => x.number === op.channel);
        if (c) {
          c.closing[op.side] = false;
          if (op.decline) c.declinePending = false;
          if (s.ok) c.state = 'closed';
        }
        if (post && s.ok && !this.book.closeDelivered[op.side].has(op.channel)) bad('resolved after the reset although the peer never agreed (no <ok> arrived)');
        if (!post) this.judge(op, s.ok, err, errText, bad, () => err instanceof BeepReplyError && err.code === ErrorCodes.CLOSE_REFUSED && err.replyCode === REFUSE_CODE);
        return;
      }
      case 'release': {
        if (post && s.ok && !this.book.closeDelivered[op.side].has(0) && !this.cores[op.side].wasReleased) {
          bad('resolved after the reset although the session was never released');
        }
        if (!post) this.judge(op, s.ok, err, errText, bad, () => false);
        return;
      }
      case 'msg': {
        const delivered = op.msgno !== undefined && this.book.replyDelivered(op.side, op.channel, op.msgno);
        if (op.msgno !== undefined && op.answers) {
          const got = this.book.answersDelivered(op.side, op.channel, op.msgno);
          if (op.answersRead > got) bad(`read ${op.answersRead} answers, only ${got} were delivered complete`);
        }
        if (s.ok) {
          const why = this.checkReply(op, s.value as MsgResult);
          if (why) bad(why);
          // RFC 3080 §2.6.1: replies on a channel come in the order of the MSGs
          // (checked frame by frame by the WireBook; here at the API: request()
          // promises resolve in that order on an RPY. An ERR settles only once
          // its body is read, and an async generator takes more turns to yield
          // an ANS than to end on NUL, so those are not compared.)
          const order = this.responseOrder.get(`${op.side}:${op.channel}`) ?? [];
          for (const other of op.profile === 'echo' ? this.ops : []) {
            if (other.kind !== 'msg' || other === op || other.side !== op.side || other.channel !== op.channel || other.id > op.id) continue;
            if (other.msgno === undefined || other.settled?.ok === false) continue;
            const a = order.indexOf(other.id);
            if (a < 0 || a > order.indexOf(op.id)) bad(`its reply arrived before the reply to the earlier op ${other.id} on the same channel`);
          }
        }
        if (post) {
          if (s.ok && !delivered) bad('completed after the reset although its reply had not fully arrived');
          if (!s.ok && delivered) bad(`failed (${errText}) although its whole reply had arrived before the reset`);
        } else this.judge(op, s.ok, err, errText, bad, () => false);
        return;
      }
    }
  }

  private judge(op: Op, ok: boolean, err: BeepError | undefined, errText: string, bad: (why: string) => void, isRefusal: () => boolean): void {
    switch (op.expect) {
      case 'reply':
        if (!ok) bad(`rejected: ${errText}`);
        return;
      case 'refused':
        if (ok) bad('succeeded, but must be refused with 550');
        else if (!isRefusal()) bad(`rejected with ${errText}, expected a 550 refusal`);
        return;
      case 'invalid-state':
        if (ok) bad('succeeded, but must be rejected at once');
        else if (err?.code !== ErrorCodes.INVALID_STATE) bad(`rejected with ${errText}, expected ${ErrorCodes.INVALID_STATE}`);
        return;
      case 'fail':
        if (ok) bad('succeeded, but the session was gone');
        return;
      case 'racy':
      case 'any':
        return;
    }
  }

  private checkReply(op: MsgOp, r: MsgResult): string | null {
    switch (op.profile) {
      case 'echo':
        if (r.kind !== 'echo') return `echo answered with ${r.kind}`;
        if (!r.body.equals(op.body)) return `echo body differs: sent ${op.body.length} octets, got ${r.body.length}`;
        return null;
      case 'answers': {
        if (r.kind !== 'answers' || !op.answers) return `answers profile answered with ${r.kind}`;
        const { n, size } = op.answers;
        if (r.ansnos.length !== n) return `got ${r.ansnos.length} answers, expected ${n}`;
        if (new Set(r.ansnos).size !== n) return `answer numbers repeat: ${r.ansnos.join(',')}`;
        if (r.sizes.some((x) => x !== size) || r.bad > 0) return `answer bodies differ (sizes ${r.sizes.join(',')}, expected ${size})`;
        return null;
      }
      case 'err': {
        if (r.kind !== 'err') return `ERR profile answered with ${r.kind}`;
        if (r.replyCode !== ERR_CODE) return `ERR code ${r.replyCode}`;
        const want = op.early ? 'early' : `late ${op.body.length}`;
        if (r.diagnostic !== want) return `ERR diagnostic ${JSON.stringify(r.diagnostic)}, expected ${JSON.stringify(want)}`;
        return null;
      }
      default:
        return `reply on a ${op.profile} channel`;
    }
  }

  // ------------------------------------------------------------ invariants

  /** Safety invariants, after every command. Throws with every violation found. */
  checkInvariants(): void {
    for (const side of ['I', 'L'] as const) {
      const core = this.cores[side];
      if (core.isClosed) continue;
      for (const [n, ch] of core.channels) {
        // RFC 3081 §3.1: the receiver never holds more than the window it announced.
        const cap = this.book.capOf(side, n);
        if (ch.recv.buffered > cap) this.violation(`${side} channel ${n}: ${ch.recv.buffered} octets buffered, announced at most ${cap}`);
        if (n !== 0 && ch.state === 'starting' && !parityOk(side, n)) this.violation(`${side} starts channel ${n} of the wrong parity`);
      }
    }
    const all = [...this.violations, ...this.book.violations];
    if (all.length > 0) {
      throw new Error(`model violations:\n  ${all.join('\n  ')}\nops:\n  ${this.describeOps()}\ntrace (last events):\n  ${this.trace.slice(-60).join('\n  ')}`);
    }
  }

  private describeOps(): string {
    return this.ops
      .map((o) => `${o.id} ${o.label} [${o.expect}${o.afterReset ? ', after reset' : ''}] -> ${o.settled === null ? 'PENDING' : o.settled.ok ? 'ok' : `error ${(o.settled.error as BeepError)?.code ?? String(o.settled.error)}`}`)
      .join('\n  ');
  }

  /**
   * After the run: resume every reader, pump both ways until nothing moves,
   * then check that every operation settled and that the cores' channel maps
   * agree with the model. Without a reset or release, release the session
   * and check it ends cleanly on both sides.
   */
  async finish(deadline = Date.now() + 20_000): Promise<void> {
    this.resumeAll();
    await this.quiesce(deadline);
    const pending = this.ops.filter((o) => o.settled === null);
    if (pending.length > 0) this.violation(`never settled: ${pending.map((o) => `${o.id} ${o.label}${o.kind === 'msg' ? ` (${o.stage})` : ''}`).join('; ')}`);
    this.checkInvariants();
    const { I, L } = this.cores;
    if (this.model.phase === 'open') {
      const open = this.model.channels.filter((c) => c.state === 'open').map((c) => c.number).sort((a, b) => a - b);
      for (const side of ['I', 'L'] as const) {
        const core = this.cores[side];
        const have = [...core.channels.keys()].filter((n) => n !== 0).sort((a, b) => a - b);
        if (have.join(',') !== open.join(',')) this.violation(`${side} has channels [${have.join(',')}], the model [${open.join(',')}]`);
        for (const ch of core.channels.values()) {
          if (ch.state !== 'open') this.violation(`${side} channel ${ch.number} is ${ch.state} at quiescence`);
          if (!core.isQuiescent(ch)) this.violation(`${side} channel ${ch.number} still has work in flight at quiescence`);
        }
        for (const c of this.model.channels) {
          if (c.state === 'open' && c.starter !== side && !this.peerStarted[side].has(c.number)) this.violation(`${side} never saw channel ${c.number} start`);
        }
        if (core.hasOutput) this.violation(`${side} still has output at quiescence`);
      }
      // Without a reset or release, no profile handler ever failed.
      for (const side of ['I', 'L'] as const) {
        for (const e of this.handlerErrors[side]) this.violation(`${side}: profile handler failed: ${(e as Error)?.message ?? String(e)}`);
      }
      // Every MSG answered was handed to the peer's profile exactly once.
      for (const op of this.ops) {
        if (op.kind !== 'msg' || op.msgno === undefined || op.expect !== 'reply') continue;
        const n = this.handled[otherSide(op.side)].get(`${op.channel}:${op.msgno}`) ?? 0;
        if (n !== 1) this.violation(`${op.label}: handled ${n} times by the peer`);
      }
      this.checkInvariants();
      // Then a clean release (RFC 3080 §2.4).
      this.release('I');
      await this.quiesce(deadline);
      if (!I.wasReleased || !L.wasReleased) this.violation(`final release: released I=${I.wasReleased} L=${L.wasReleased}`);
    }
    if (this.model.phase === 'releasing' && (!I.isClosed || !L.isClosed)) this.violation(`after release: I ${I.state}, L ${L.state}`);
    if (this.model.phase === 'reset') {
      for (const side of ['I', 'L'] as const) {
        const core = this.cores[side];
        if (!core.isClosed) this.violation(`${side} still ${core.state} after the reset`);
        if (!(core.failure instanceof BeepError) && !core.wasReleased) this.violation(`${side} has no BeepError failure after the reset`);
        if (this.closeEvents[side].length !== 1) this.violation(`${side} emitted close ${this.closeEvents[side].length} times`);
        if (core.pull() !== null) this.violation(`${side} still produces output after the reset`);
      }
    } else {
      for (const side of ['I', 'L'] as const) {
        const core = this.cores[side];
        if (!core.isClosed) this.violation(`${side} still ${core.state} after the release`);
        if (this.closeEvents[side].length !== 1 || this.closeEvents[side][0] !== undefined) {
          this.violation(`${side} close events after a release: ${this.closeEvents[side].map((e) => e?.code ?? 'clean').join(',')}`);
        }
      }
    }
    const pending2 = this.ops.filter((o) => o.settled === null);
    if (pending2.length > 0) this.violation(`never settled: ${pending2.map((o) => `${o.id} ${o.label}`).join('; ')}`);
    this.checkInvariants();
  }

  /**
   * Pump both ways, whole batches, until nothing moves for a few rounds
   * (bounded by `maxRounds` and `deadline`). When `strict`, also wait for
   * every operation to settle, and report a violation if that never happens.
   */
  async quiesce(deadline: number, maxRounds = 20_000, strict = true): Promise<void> {
    let idle = 0;
    for (let i = 0; i < maxRounds; i++) {
      if (Date.now() > deadline) {
        if (strict) this.violation('the session did not quiesce in time');
        return;
      }
      let moved = false;
      for (const side of ['I', 'L'] as const) {
        this.pullFrom(side, 4, 1 << 20);
        const n = this.wireBytes(side);
        if (n > 0) {
          moved = true;
          this.deliver(side, n);
        }
      }
      await this.settle(1);
      const busy = this.cores.I.hasOutput || this.cores.L.hasOutput || (strict && this.ops.some((o) => o.settled === null));
      if (moved || this.cores.I.hasOutput || this.cores.L.hasOutput) idle = 0;
      else if (!busy ? ++idle >= 3 : ++idle >= 200) return;
    }
    if (strict) this.violation('the session did not quiesce within the round limit');
  }
}

// ------------------------------------------------------------------ commands

type Cmd = fc.AsyncCommand<PairModel, PairHarness>;

function openChannels(m: Readonly<PairModel>): ModelChannel[] {
  return m.channels.filter((c) => c.state === 'open');
}

/** Start a channel. */
class StartCmd implements Cmd {
  constructor(readonly side: Side, readonly profile: ProfileKind) {}
  check(m: Readonly<PairModel>): boolean {
    return m.channels.length < 24;
  }
  async run(_m: PairModel, h: PairHarness): Promise<void> {
    h.start(this.side, this.profile);
    await h.settle(1);
    h.checkInvariants();
  }
  toString(): string {
    return `start(${this.side},${this.profile})`;
  }
}

interface MsgSpec { size: number; seed: number; chunks: number; early: boolean; nAns: number; ansSize: number }

/** Send a MSG on an open channel. */
class MsgCmd implements Cmd {
  constructor(readonly side: Side, readonly pick: number, readonly spec: MsgSpec) {}
  check(m: Readonly<PairModel>): boolean {
    return this.candidates(m).length > 0;
  }
  /**
   * Echo channels carry MSGs from their starter only: echo streams each reply
   * as it reads the MSG, and RFC 3080 §2.2.1 forbids a peer to put reply
   * frames inside its own unfinished MSG on the channel, so two large MSGs
   * crossing on one echo channel wait for each other forever (by design, not
   * a bug of the session). ANS and ERR channels are used both ways.
   */
  private candidates(m: Readonly<PairModel>): ModelChannel[] {
    return openChannels(m).filter((c) => c.profile !== 'refuse' && (c.profile !== 'echo' || c.starter === this.side));
  }
  async run(m: PairModel, h: PairHarness): Promise<void> {
    const list = this.candidates(m);
    // fast-check awaits check() before run(): a settlement in that gap (a close's promise)
    // may have changed the model since check() saw a candidate. Nothing to do then.
    if (list.length === 0) return;
    const c = list[this.pick % list.length] as ModelChannel;
    h.msg(this.side, c, this.spec);
    await h.settle(1);
    h.checkInvariants();
  }
  toString(): string {
    const s = this.spec;
    return `msg(${this.side},#${this.pick},${s.size}B/${s.chunks}${s.early ? ',early' : ''},ans ${s.nAns}x${s.ansSize})`;
  }
}

/** Close an open channel (the peer accepts or declines). */
class CloseCmd implements Cmd {
  constructor(readonly side: Side, readonly pick: number, readonly decline: boolean) {}
  private candidates(m: Readonly<PairModel>): ModelChannel[] {
    return openChannels(m).filter((c) => !c.closing[this.side] && !c.declinePending && (!this.decline || (!c.closing.I && !c.closing.L)));
  }
  check(m: Readonly<PairModel>): boolean {
    return m.phase !== 'reset' && (!this.decline || m.phase === 'open') && this.candidates(m).length > 0;
  }
  async run(m: PairModel, h: PairHarness): Promise<void> {
    const list = this.candidates(m);
    if (list.length === 0) return; // the model changed since check() (see MsgCmd.run)
    h.close(this.side, list[this.pick % list.length] as ModelChannel, this.decline);
    await h.settle(1);
    h.checkInvariants();
  }
  toString(): string {
    return `close(${this.side},#${this.pick}${this.decline ? ',decline' : ''})`;
  }
}

/** Move octets: pull from one side, deliver a portion in pieces. */
class PumpCmd implements Cmd {
  constructor(readonly from: Side, readonly pulls: number, readonly budget: number, readonly portion: number, readonly cuts: number[], readonly ticks: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: PairModel, h: PairHarness): Promise<void> {
    h.pullFrom(this.from, this.pulls, this.budget);
    const n = h.wireBytes(this.from);
    h.deliver(this.from, this.portion >= 1 ? n : Math.floor(n * this.portion), this.cuts);
    await h.settle(this.ticks);
    h.checkInvariants();
  }
  toString(): string {
    return `pump(${this.from},${this.pulls}x${this.budget},${this.portion.toFixed(2)},cuts ${this.cuts.length},ticks ${this.ticks})`;
  }
}

/** Pump both ways until nothing moves (bounded): lets exchanges complete. */
class SyncCmd implements Cmd {
  constructor(readonly rounds: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: PairModel, h: PairHarness): Promise<void> {
    await h.quiesce(Date.now() + 5000, this.rounds, false);
    h.checkInvariants();
  }
  toString(): string {
    return `sync(${this.rounds})`;
  }
}

/** Stall or resume the reader of a channel. */
class StallCmd implements Cmd {
  constructor(readonly side: Side, readonly pick: number, readonly stall: boolean) {}
  check(m: Readonly<PairModel>): boolean {
    return openChannels(m).length > 0;
  }
  async run(m: PairModel, h: PairHarness): Promise<void> {
    const list = openChannels(m);
    if (list.length === 0) return; // the model changed since check() (see MsgCmd.run)
    const c = list[this.pick % list.length] as ModelChannel;
    h.setStalled(this.side, c.number, this.stall);
    await h.settle(1);
    h.checkInvariants();
  }
  toString(): string {
    return `${this.stall ? 'stall' : 'resume'}(${this.side},#${this.pick})`;
  }
}

/** Release the session. */
class ReleaseCmd implements Cmd {
  constructor(readonly side: Side) {}
  check(m: Readonly<PairModel>): boolean {
    return m.phase !== 'reset' && !m.releasedBy.has(this.side) && !m.channels.some((c) => c.declinePending);
  }
  async run(_m: PairModel, h: PairHarness): Promise<void> {
    h.release(this.side);
    await h.settle(1);
    h.checkInvariants();
  }
  toString(): string {
    return `release(${this.side})`;
  }
}

/** Terminate one side, or lose the transport. */
class ResetCmd implements Cmd {
  constructor(readonly kind: 'terminate' | 'transport', readonly side: Side, readonly portion: number) {}
  check(m: Readonly<PairModel>): boolean {
    return m.phase !== 'reset';
  }
  async run(_m: PairModel, h: PairHarness): Promise<void> {
    h.reset(this.kind, this.side, this.portion);
    await h.settle(2);
    h.checkInvariants();
  }
  toString(): string {
    return `reset(${this.kind},${this.side},${this.portion.toFixed(2)})`;
  }
}

/** Let callbacks run without moving octets. */
class TickCmd implements Cmd {
  constructor(readonly n: number) {}
  check(): boolean {
    return true;
  }
  async run(_m: PairModel, h: PairHarness): Promise<void> {
    await h.settle(this.n);
    h.checkInvariants();
  }
  toString(): string {
    return `tick(${this.n})`;
  }
}

const sideArb: fc.Arbitrary<Side> = fc.constantFrom('I', 'L');

/** Body sizes: mostly small, sometimes a few hundred KiB (windows and SEQs matter). */
const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 2048 }) },
  { weight: 3, arbitrary: fc.integer({ min: 2049, max: 40_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 40_001, max: 300_000 }) },
);

/**
 * The commands of the two-core model; `scale` (0..1) tunes message sizes
 * down for quick runs.
 */
export function pairCommands(): fc.Arbitrary<Cmd>[] {
  const start = fc.tuple(sideArb, fc.constantFrom<ProfileKind>('echo', 'echo', 'answers', 'err', 'refuse')).map(([s, p]): Cmd => new StartCmd(s, p));
  const msg = fc
    .tuple(
      sideArb,
      fc.nat(),
      fc.record({
        size: sizeArb,
        seed: fc.integer(),
        chunks: fc.constantFrom(1, 1, 3, 16),
        early: fc.boolean(),
        nAns: fc.integer({ min: 0, max: 4 }),
        ansSize: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 3001, max: 120_000 })),
      }),
    )
    .map(([s, p, spec]): Cmd => new MsgCmd(s, p, spec));
  const close = fc.tuple(sideArb, fc.nat(), fc.boolean()).map(([s, p, d]): Cmd => new CloseCmd(s, p, d));
  const pump = fc
    .tuple(
      sideArb,
      fc.integer({ min: 1, max: 3 }),
      fc.constantFrom(512, 4096, 65536, 1 << 20),
      fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 100 }).map((x) => x / 100)),
      fc.array(fc.integer({ min: 1, max: 999 }).map((x) => x / 1000), { maxLength: 6 }),
      fc.integer({ min: 0, max: 3 }),
    )
    .map(([s, p, b, portion, cuts, t]): Cmd => new PumpCmd(s, p, b, portion, cuts, t));
  const sync = fc.integer({ min: 1, max: 40 }).map((n): Cmd => new SyncCmd(n));
  const stall = fc.tuple(sideArb, fc.nat(), fc.boolean()).map(([s, p, st]): Cmd => new StallCmd(s, p, st));
  const release = sideArb.map((s): Cmd => new ReleaseCmd(s));
  const reset = fc
    .tuple(fc.constantFrom<'terminate' | 'transport'>('terminate', 'transport'), sideArb, fc.integer({ min: 0, max: 100 }).map((x) => x / 100))
    .map(([k, s, p]): Cmd => new ResetCmd(k, s, p));
  const tickc = fc.integer({ min: 1, max: 4 }).map((n): Cmd => new TickCmd(n));
  return [
    fc.oneof(
      { weight: 4, arbitrary: start },
      { weight: 8, arbitrary: msg },
      { weight: 2, arbitrary: close },
      { weight: 10, arbitrary: pump },
      { weight: 3, arbitrary: sync },
      { weight: 2, arbitrary: stall },
      { weight: 1, arbitrary: tickc },
      { weight: 1, arbitrary: fc.oneof(release, reset) },
    ),
  ];
}

/** Per-run limits: small windows and frames make SEQs and segmentation frequent. */
export const pairConfigArb: fc.Arbitrary<PairConfig> = fc
  .tuple(
    fc.constantFrom(4096, 8192, 16384, 65536),
    fc.constantFrom(1, 4),
    fc.constantFrom(1024, 4096, 16384, 65536),
    fc.constantFrom(4096, 8192, 65536),
    fc.constantFrom(1, 4),
    fc.constantFrom(1024, 4096, 16384, 65536),
    fc.boolean(),
  )
  .map(([rwI, gI, fI, rwL, gL, fL, greet]) => ({
    greet,
    limits: {
      I: { receiveWindow: rwI, maxReceiveWindow: rwI * gI, maxSendFrame: fI },
      L: { receiveWindow: rwL, maxReceiveWindow: rwL * gL, maxSendFrame: fL },
    },
  }));
