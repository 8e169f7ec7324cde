/**
 * @internal
 * Outbound messages of a session: queueing whole bodies, pumping streamed ones
 * with backpressure, replies for the Responder, and our MSGs with their
 * pending-reply bookkeeping. Functions over a {@link SessionCore}; the frames
 * themselves are cut by `SessionCore.pull`.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { Writable } from 'node:stream';
import { BeepError, ErrorCodes } from '../errors.js';
import { encodeEntityHeaders, type EntityHeaders } from '../framing/index.js';
import type { Channel, InboundRequest, PendingRequest, ReplySink, RequestOptions } from './channel.js';
import { OutboundMessage, bodyChunks, isImmediateBody, toBytes, type BodyInit } from './message.js';
import type { SessionCore } from './core.js';
import type { ReplyOptions } from './responder.js';


/** Entity headers, or their encoding (checked already: see {@link encodeHead}). */
type Head = EntityHeaders | Uint8Array | undefined;

/**
 * Encode entity headers; a value with CR, LF or NUL, or a name that is not a token (header
 * injection), is bad input from the caller: `BEEP_ERR_INVALID_ARGUMENT`, not a raw TypeError.
 */
export function encodeHead(headers: Head): Uint8Array {
  if (headers instanceof Uint8Array) return headers;
  try {
    return encodeEntityHeaders(headers);
  } catch (err) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, (err as Error).message, { cause: err });
  }
}

/** Queue a whole message on `ch`. */
export function queueMessage(core: SessionCore, ch: Channel, type: OutboundMessage['type'], msgno: number, ansno: number | undefined, body: string | Uint8Array | undefined, headers: Head): OutboundMessage {
  const head = type === 'NUL' ? undefined : encodeHead(headers);
  const out = OutboundMessage.make(type, msgno, ansno);
  if (head !== undefined) {
    out.write(head);
    if (body !== undefined) out.write(toBytes(body));
    out.end();
  }
  ch.outQueue.push(out);
  core.scheduler.markReady(ch);
  return out;
}

/**
 * Queue a message with any body: immediate bodies at once, others pumped with
 * backpressure. With `onReleased`, the body's release is tracked (release.ts).
 */
function queueOut(core: SessionCore, ch: Channel, type: 'MSG' | 'RPY' | 'ERR' | 'ANS', msgno: number, ansno: number | undefined, body: BodyInit | undefined, headers: Head, onReleased?: (octets: number) => void): OutboundMessage {
  let out: OutboundMessage;
  if (isImmediateBody(body)) {
    if (onReleased === undefined) return queueMessage(core, ch, type, msgno, ansno, body, headers);
    const head = encodeHead(headers);
    out = OutboundMessage.make(type, msgno, ansno);
    // Tracked before anything is queued: nothing is taken before the next pull.
    out.trackRelease(core.releases, onReleased, head.byteLength);
    out.write(head);
    if (body !== undefined) out.write(toBytes(body));
    out.end();
    ch.outQueue.push(out);
    core.scheduler.markReady(ch);
  } else {
    const head = encodeHead(headers); // may throw: before anything is queued
    out = OutboundMessage.make(type, msgno, ansno);
    if (onReleased !== undefined) out.trackRelease(core.releases, onReleased, head.byteLength);
    out.writeHead(head);
    ch.outQueue.push(out);
    core.scheduler.markReady(ch);
    void pump(core, ch, out, body);
  }
  return out;
}

/** A promise settled when `out`'s final frame goes out, or when it fails (session or channel gone). */
export function whenDone(out: OutboundMessage): Promise<void> {
  const p = new Promise<void>((resolve, reject) => {
    out.resolveDone = resolve;
    out.onFail = reject;
  });
  p.catch(() => undefined);
  return p;
}

export async function pump(core: SessionCore, ch: Channel, out: OutboundMessage, body: Exclude<BodyInit, string | Uint8Array>): Promise<void> {
  const hwm = core.limits.sendHighWaterMark;
  try {
    for await (const chunk of bodyChunks(body) as AsyncIterable<Uint8Array | string>) {
      if (out.done || out.truncated || core.state === 'closed') {
        // Taken from the body but never to be sent: released behind what is in flight.
        if (out.ledger !== null) out.dropChunk(toBytes(chunk).byteLength);
        break;
      }
      out.write(toBytes(chunk));
      core.scheduler.markReady(ch);
      const wait = out.waitDrain(hwm);
      if (wait) await wait;
    }
    if (!out.ended) out.end();
    core.scheduler.markReady(ch);
  } catch (err) {
    // BEEP has no in-band abort: end the message where it is. The peer sees a
    // shorter message; profiles needing integrity carry their own lengths.
    if (!out.ended) out.truncate();
    core.scheduler.markReady(ch);
    core.emit('handlerError', err);
  }
}

export function replyWritable(core: SessionCore, ch: Channel, im: InboundRequest, type: 'RPY' | 'ANS', ansno: number | undefined, headers: EntityHeaders | undefined): Writable {
  const head = encodeHead(headers); // may throw: before anything is queued
  const out = new OutboundMessage(type, im.msg.msgno, ansno);
  const onReleased = (headers as ReplyOptions | undefined)?.onReleased;
  if (onReleased !== undefined) out.trackRelease(core.releases, onReleased, head.byteLength);
  out.writeHead(head);
  if (type === 'RPY') out.completes = im;
  ch.outQueue.push(out);
  core.scheduler.markReady(ch);
  return writableFor(core, ch, out);
}

/** A Writable feeding `out`, paced by the window. */
export function writableFor(core: SessionCore, ch: Channel, out: OutboundMessage): Writable {
  const hwm = core.limits.sendHighWaterMark;
  const done = whenDone(out);
  const w = new Writable({
    highWaterMark: hwm,
    write: (chunk: Buffer, _enc, cb) => {
      if (core.state === 'closed') return cb(core.closedError());
      if (out.ended) return cb(new BeepError(ErrorCodes.INVALID_STATE, 'message was cut short by the peer'));
      out.write(chunk);
      core.scheduler.markReady(ch);
      const wait = out.waitDrain(hwm);
      if (wait) wait.then(() => cb(), cb);
      else cb();
    },
    final: (cb) => {
      if (!out.ended) out.end();
      core.scheduler.markReady(ch);
      done.then(() => cb(), cb);
    },
    destroy: (err, cb) => {
      if (!out.ended) out.truncate();
      core.scheduler.markReady(ch);
      cb(err);
    },
  });
  // Like http.ServerResponse: failures surface through write/end callbacks
  // and 'close'; an 'error' nobody listens for must not crash the process.
  w.on('error', () => undefined);
  return w;
}

/**
 * Queue a reply to `im`. With `wait`, returns a promise settled when its final
 * frame is out (or it fails); without, returns null and makes no promise: a
 * whole reply's message then goes back to the spares once it is out.
 */
export function sendReply(core: SessionCore, ch: Channel, im: InboundRequest, type: 'RPY' | 'ERR' | 'ANS' | 'NUL', ansno: number | undefined, body: BodyInit | undefined, headers: EntityHeaders | undefined, wait = true): Promise<void> | null {
  if (type === 'NUL') {
    const out = queueMessage(core, ch, 'NUL', im.msg.msgno, undefined, undefined, undefined);
    out.completes = im;
    if (!wait) {
      out.reusable = true;
      return null;
    }
    return whenDone(out);
  }
  if (type === 'ERR' && !im.received) {
    // A negative reply before the whole MSG arrived (RFC 3080 §2.6.3): "obliged
    // to ignore any subsequent "MSG" frames for that message".
    im.preempted = true;
    im.msg.discard();
  }
  // Only a tuning reply has `hold`: the common reply makes no copy of its options.
  const hold = (headers as ReplyOptions | undefined)?.hold === true;
  let entity: EntityHeaders | undefined = headers;
  if (hold) {
    const { hold: _hold, ...rest } = headers as ReplyOptions;
    entity = rest;
  }
  if (core.state === 'closed') {
    if (!wait) return null; // the session's close says why
    const failed = Promise.reject(core.closedError());
    failed.catch(() => undefined);
    return failed;
  }
  const onReleased = (headers as ReplyOptions | undefined)?.onReleased;
  const out = queueOut(core, ch, type, im.msg.msgno, ansno, body, entity, onReleased);
  // A tuning reply (e.g. <proceed/>): nothing more is sent once it is out.
  if (hold) out.holdAfter = true;
  if (type !== 'ANS') out.completes = im;
  if (!wait) {
    // Nobody waits for it: reused once it is out, unless a pump still feeds it.
    if (isImmediateBody(body) && out.ledger === null) out.reusable = true;
    return null;
  }
  return whenDone(out);
}

/**
 * Send a MSG on `ch` with `sink` receiving the reply. Returns the pending
 * request: `record` when the caller made one (a `Channel.exchange()` is its own
 * record and sink: one object per request), its message number set here.
 */
export function sendRequest(core: SessionCore, ch: Channel, body: BodyInit | undefined, options: RequestOptions, sink: ReplySink, record?: PendingRequest): PendingRequest | null {
  if (core.state === 'closed') return failLater(sink, core.closedError());
  if (ch.state !== 'open' || (ch.closePromise !== null && ch.number !== 0)) {
    return failLater(sink, new BeepError(ErrorCodes.INVALID_STATE, `channel ${ch.number} is ${ch.state === 'open' ? 'closing' : ch.state}`));
  }
  if (ch.outstanding.size >= core.limits.maxOutstanding) {
    return failLater(sink, new BeepError(ErrorCodes.LIMIT, `more than ${core.limits.maxOutstanding} MSGs outstanding on channel ${ch.number}`));
  }
  const { signal, hold } = options;
  if (signal?.aborted) return failLater(sink, abortError(signal));
  // Checked before the request is registered: a bad header must not leave an outstanding
  // MSG behind (one that never goes out would keep close() waiting for ever).
  // (The encoder reads only the entity-header fields of the options.)
  let head: Uint8Array;
  try {
    head = encodeHead(options);
  } catch (err) {
    return failLater(sink, err as BeepError);
  }
  const msgno = allocMsgno(core, ch);
  let pr: PendingRequest;
  if (record === undefined) pr = { msgno, out: null, sink, replyKind: undefined, reply: null, answers: null, abandoned: false };
  else {
    pr = record;
    pr.msgno = msgno;
  }
  ch.outstanding.set(msgno, pr);
  const out = queueOut(core, ch, 'MSG', msgno, undefined, body, head, options.onReleased);
  // A tuning request (e.g. <ready/>): "the sender ... sends nothing more until the reply" (RFC 3080 §3.1.3.1).
  if (hold) out.holdAfter = true;
  pr.out = out;
  if (isImmediateBody(body) && out.ledger === null) {
    // Reused once its final frame is out; `pr.out` is cleared then (null reads as "sent": see abandon and the inbound checks).
    out.reusable = true;
    out.request = pr;
  }
  if (signal) watchAbort(core, ch, pr, sink, signal);
  return pr;
}

/**
 * Abandon `pr` when `signal` aborts. A function of its own: the closures it
 * makes would otherwise have {@link sendRequest} allocate their context on
 * every call, signal or not.
 */
function watchAbort(core: SessionCore, ch: Channel, pr: PendingRequest, sink: ReplySink, signal: AbortSignal): void {
  const msgno = pr.msgno;
  const onAbort = (): void => {
    if (ch.outstanding.get(msgno) !== pr) return;
    core.abandon(ch, pr);
    sink.fail(abortError(signal));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  const clear = (): void => signal.removeEventListener('abort', onAbort);
  pr.sink = {
    rpy: (m) => { clear(); sink.rpy(m); },
    err: (m) => { clear(); sink.err(m); },
    ans: (m) => sink.ans(m),
    nul: () => { clear(); sink.nul(); },
    fail: (e) => { clear(); sink.fail(e); },
  };
}

/** A request refused before it was registered: its sink hears so after the caller returns. */
function failLater(sink: ReplySink, e: Error): null {
  queueMicrotask(() => sink.fail(e));
  return null;
}

/** Give up on a request: unsent MSGs are withdrawn, replies discarded. */
export function abandon(core: SessionCore, ch: Channel, pr: PendingRequest): void {
  pr.abandoned = true;
  const out = pr.out;
  if (out && !out.started) {
    const i = ch.outQueue.indexOf(out);
    if (i >= 0) ch.outQueue.splice(i, 1);
    // Withdrawn: a pump feeding it stops, and a tracked body is released (at the next flush).
    out.truncate();
    if (out.ledger !== null) core.scheduler.requestOutput();
    ch.outstanding.delete(pr.msgno);
    core.lifecycle.checkQuiescent(ch);
  } else if (out && !out.done) {
    out.truncate();
    core.scheduler.markReady(ch);
  }
  pr.reply?.discard();
  if (pr.answers) for (const a of pr.answers.values()) a.discard();
}

export function allocMsgno(core: SessionCore, ch: Channel): number {
  // Message numbers wrap at 2^31 and skip any still awaiting a reply.
  for (;;) {
    const n = ch.nextMsgno;
    ch.nextMsgno = n >= 2147483647 ? (ch.number === 0 ? 1 : 0) : n + 1;
    if (!ch.outstanding.has(n)) return n;
  }
}

function abortError(signal: AbortSignal): BeepError {
  return new BeepError(ErrorCodes.ABORTED, 'operation aborted', { cause: signal.reason });
}
