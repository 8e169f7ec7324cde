/**
 * The channel management profile (channel 0, RFC 3080 §2.3): answering the
 * peer's `<start>` and `<close>`. Ours are sent by `mgmtrequests.ts`.
 *
 * @module
 */
import { publishLimit } from './diagnostics.js';
import type { Buffer } from 'node:buffer';
import { BeepError, ErrorCodes } from '../errors.js';
import { BEEP_XML, mediaType } from '../framing/index.js';
import type { Channel } from './channel.js';
import type { SessionCore } from './core.js';
import type { IncomingMessage } from './message.js';
import { buildError, buildOk, buildProfileReply, MgmtSyntaxError, parseMgmt, type MgmtElement, type StartElement, type CloseElement, type ProfileElement } from './mgmt.js';
import type { Responder } from './responder.js';
import type { CloseDecision, StartDecision } from './types.js';
import { handleOf, tuningFor } from './handle.js';

const XML = { contentType: BEEP_XML };

/** Re-read a channel's state after an await (defeats stale narrowing). */
function isClosed(ch: Channel): boolean {
  return ch.state === 'closed';
}

function noop(): undefined {
  return undefined;
}

/** Whether `v` is a promise (or any thenable): then the decision of a hook is awaited. */
function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Is nothing in flight on `ch` (the wait before a close is agreed)? */
const quiescent = (ch: Channel): boolean => ch.core.isQuiescent(ch);

function negative(core: SessionCore, res: Responder, code: number, diagnostic: string): void {
  // Issue 17 (CVE-2019-9513/9514/9515): a refused channel-0 request changes
  // nothing; refusals in a loop are charged to `maxNoProgressRate`.
  if (core.state !== 'closed') core.checkProgress(`refused channel-0 request (${code})`, 'request');
  res.error(buildError(code, diagnostic), XML).catch(noop);
}

/**
 * @internal Answer one MSG received on channel 0. Synchronous from the moment
 * its body is read until a profile's hook returns a promise or the channel to
 * close has exchanges in flight: the common start and close allocate no
 * promise of their own.
 */
export function handleMgmtMessage(core: SessionCore, msg: IncomingMessage, res: Responder): void {
  msg.bytes(core.limits.maxMgmtMessage).then(
    (body) => {
      // The peer's greeting came first on the wire, but its body is read
      // asynchronously: when it spans reads and this MSG came whole, this runs
      // first. Handle it once the greeting is processed (state 'open').
      if (core.state === 'greeting') {
        return core.whenGreeted().catch(noop).then(() => answerMgmt(core, msg, res, body));
      }
      return answerMgmt(core, msg, res, body);
    },
    (err: unknown) => {
      if (core.state === 'closed') return;
      const tooBig = err instanceof BeepError && err.code === ErrorCodes.MESSAGE_TOO_LARGE;
      negative(core, res, 500, tooBig ? 'channel 0 message too large' : 'could not read message');
    },
  ).catch(noop);
}

function answerMgmt(core: SessionCore, msg: IncomingMessage, res: Responder, body: Buffer): Promise<void> | undefined {
  let el: MgmtElement;
  try {
    // RFC 3080 §2.3.1.5: a poorly-formed or unexpected element gets an "error".
    if (body.length > 0 && mediaType(msg.contentType) !== BEEP_XML && msg.headers['content-type'] !== undefined) {
      throw new MgmtSyntaxError(500, `channel 0 messages are ${BEEP_XML}, not ${msg.contentType}`);
    }
    el = parseMgmt(body, { maxBytes: core.limits.maxMgmtMessage, maxDepth: core.limits.maxMgmtDepth });
  } catch (err) {
    const code = err instanceof MgmtSyntaxError ? err.replyCode : 500;
    negative(core, res, code, err instanceof Error ? err.message : 'poorly-formed message');
    return undefined;
  }
  if (el.kind === 'start') return onStart(core, el, res);
  if (el.kind === 'close') return el.number === 0 ? onRelease(core, res) : onClose(core, el, res);
  negative(core, res, 500, `unexpected <${el.kind}> in a MSG on channel 0`);
  return undefined;
}

function onStart(core: SessionCore, el: StartElement, res: Responder): Promise<void> | undefined {
  const n = el.number;
  // RFC 3080 §2.3.1.2: initiators use odd channel numbers, listeners even.
  const peerOdd = core.role === 'listener';
  if ((n % 2 === 1) !== peerOdd) {
    negative(core, res, 501, `number attribute in <start> element must be ${peerOdd ? 'odd' : 'even'}-valued`);
    return undefined;
  }
  if (core.state !== 'open') {
    negative(core, res, 550, 'session is being released');
    return undefined;
  }
  if (core.draining) {
    negative(core, res, 421, 'server shutting down');
    return undefined;
  }
  if (core.progressExhausted()) {
    // Issue 17: the peer's requests carry no progress faster than `maxNoProgressRate`:
    // RFC 3080 §2.3.1.2 lets us refuse the start (554, transaction failed).
    const detail = `too many requests without progress (limit ${core.limits.maxNoProgressRate} per second)`;
    publishLimit({ sessionId: core.id, limit: 'maxNoProgressRate', action: 'refused', code: 554, detail });
    negative(core, res, 554, detail);
    return undefined;
  }
  if (core.channels.has(n)) {
    negative(core, res, 550, `channel ${n} is already in use`);
    return undefined;
  }
  if (core.channels.size - 1 >= core.limits.maxChannels) {
    const detail = `too many channels (limit ${core.limits.maxChannels})`;
    publishLimit({ sessionId: core.id, limit: 'maxChannels', action: 'refused', code: 550, detail });
    negative(core, res, 550, detail);
    return undefined;
  }
  if (!core.lifecycle.takeStartToken()) {
    const detail = `channel start rate exceeded (limit ${core.limits.maxStartRate} per second)`;
    publishLimit({ sessionId: core.id, limit: 'maxStartRate', action: 'refused', code: 554, detail });
    negative(core, res, 554, detail);
    return undefined;
  }
  return startFrom(core, el, res, 0, null);
}

type Refusal = { code: number; diagnostic: string };

const LOCAL_START_ERROR: Refusal = { code: 451, diagnostic: 'local error starting the profile' };

/**
 * Offer the start's profiles from the `i`-th on, in order (RFC 3080 §2.3.1.2:
 * the first one we accept is the channel's). Synchronous unless a profile's
 * `onStart` returns a promise; then that decision is awaited and the rest
 * follows from there.
 */
function startFrom(core: SessionCore, el: StartElement, res: Responder, i: number, refusal: Refusal | null): Promise<void> | undefined {
  const serverName = core.serverName ?? el.serverName;
  for (; i < el.profiles.length; i++) {
    const p = el.profiles[i] as ProfileElement;
    const profile = core.profiles.get(p.uri);
    if (!profile) continue;
    const denied = core.profileAllowed(profile);
    if (denied) {
      refusal = denied;
      continue;
    }
    let d: StartDecision | PromiseLike<StartDecision> = undefined;
    if (profile.onStart) {
      try {
        d = profile.onStart({ number: el.number, serverName, content: p.content, session: handleOf(core), ...(profile.tuning ? { tuning: tuningFor(core) } : {}) });
      } catch (err) {
        core.emit('handlerError', err);
        refusal = LOCAL_START_ERROR;
        continue;
      }
      if (isThenable(d)) return startDecided(core, el, res, i, d);
    }
    const r = accept(core, el, res, p, d);
    if (r === null) return undefined;
    refusal = r;
  }
  if (refusal) negative(core, res, refusal.code, refusal.diagnostic);
  else negative(core, res, 550, 'all requested profiles are unsupported');
  return undefined;
}

/** A profile's `onStart` returned a promise: await it, then go on as {@link startFrom}. */
async function startDecided(core: SessionCore, el: StartElement, res: Responder, i: number, pending: PromiseLike<StartDecision>): Promise<void> {
  let d: StartDecision;
  try {
    d = await pending;
  } catch (err) {
    core.emit('handlerError', err);
    return startFrom(core, el, res, i + 1, LOCAL_START_ERROR);
  }
  const r = accept(core, el, res, el.profiles[i] as ProfileElement, d);
  if (r !== null) return startFrom(core, el, res, i + 1, r);
}

/**
 * The profile `p` decided `d` on the start: its refusal (the next profile is
 * tried), or `null` once the start is answered (accepted, or refused because
 * the channel is no longer available).
 */
function accept(core: SessionCore, el: StartElement, res: Responder, p: ProfileElement, d: StartDecision): Refusal | null {
  if (d && typeof d === 'object' && d.accept === false) return { code: d.code, diagnostic: d.diagnostic ?? '' };
  const n = el.number;
  if (core.state !== 'open' || core.channels.has(n)) {
    negative(core, res, 550, `channel ${n} is no longer available`);
    return null;
  }
  const content = d && typeof d === 'object' && d.accept ? d.content : undefined;
  let xml: string;
  try {
    xml = buildProfileReply(p.uri, content);
  } catch (err) {
    core.emit('handlerError', err);
    negative(core, res, 451, 'local error starting the profile');
    return null;
  }
  core.adoptServerName(el.serverName);
  // The channel exists before its positive reply leaves, so the peer's first
  // frames on it are valid the moment it reads the reply.
  const ch = core.lifecycle.createChannel(n, 'open');
  const sent = res.reply(xml, XML);
  // The reply just queued (channel 0's replies go out in order, so it is the last).
  const ch0 = core.channels.get(0) as Channel;
  const out = ch0.outQueue[ch0.outQueue.length - 1];
  const afterReply = d && typeof d === 'object' && d.accept ? d.afterReply : undefined;
  if (afterReply) {
    // RFC 3080 §3.1: after the positive reply to a tuning start nothing more
    // is sent; the profile takes over the transport once the reply is out.
    if (out) out.holdAfter = true;
    sent.then(() => afterReply(ch), noop);
  } else if (out && out.onDone === undefined) {
    // The SEQ must follow the reply that creates the channel at the peer:
    // it is made due as the reply's last frame is taken, so it goes in the
    // same write right after it (a peer that reads the reply alone would
    // start sending into the 4096-octet default window, RFC 3081 §3.1.1).
    out.onDone = () => core.lifecycle.announceWindow(ch);
  } else {
    sent.then(() => core.lifecycle.announceWindow(ch), noop);
  }
  core.lifecycle.openChannel(ch, p.uri, p.content, true);
  return null;
}

/** The peer asks to release the session (`<close number='0'>`). */
async function onRelease(core: SessionCore, res: Responder): Promise<void> {
  let d: CloseDecision;
  try {
    d = await core.options.onReleaseRequest?.(core);
  } catch {
    d = { accept: false, code: 451, diagnostic: 'local error' };
  }
  if (d && typeof d === 'object' && d.accept === false) {
    negative(core, res, d.code, d.diagnostic ?? 'release declined');
    return;
  }
  // The session may have ended meanwhile (e.g. a second release request
  // after the first was agreed to): never bring a closed session back.
  if (core.isClosed) return;
  core.releaseAgreed();
  // Let every exchange in flight finish before agreeing (RFC 3080 §2.3.1.3, applied to all channels).
  await Promise.all([...core.channels.values()].filter((c) => c.number !== 0).map((c) => core.waitFor(c, quiescent)));
  res.reply(buildOk(), XML).then(() => core.finishRelease(), noop);
}

const LOCAL_CLOSE_ERROR: CloseDecision = { accept: false, code: 451, diagnostic: 'local error' };

/**
 * The peer asks to close channel `el.number`. Synchronous unless the
 * profile's `onCloseRequest` returns a promise, the start is still being
 * read, or exchanges are in flight on the channel.
 */
function onClose(core: SessionCore, el: CloseElement, res: Responder): Promise<void> | undefined {
  const ch = core.channels.get(el.number);
  // Its start reply has fully arrived and is being read: the channel exists
  // for both peers (RFC 3080 §2.3.1.2); close it once it is open.
  if (ch && ch.state === 'starting' && ch.startReplied) {
    return core.waitFor(ch, (x) => x.state !== 'starting').then(() => closeChannel(core, el, res, core.channels.get(el.number)));
  }
  return closeChannel(core, el, res, ch);
}

function closeChannel(core: SessionCore, el: CloseElement, res: Responder, ch: Channel | undefined): Promise<void> | undefined {
  if (!ch || ch.state === 'starting' || ch.state === 'closed') {
    // Crossed closes (RFC 3080 §2.3.1.3): ours completed first; the channel is closed, as asked.
    if (!ch && core.lifecycle.wasRecentlyClosed(el.number)) res.reply(buildOk(), XML).catch(noop);
    else negative(core, res, 550, `channel ${el.number} is not open`);
    return undefined;
  }
  let d: CloseDecision | PromiseLike<CloseDecision> = undefined;
  if (ch.handler?.onCloseRequest) {
    try {
      d = ch.handler.onCloseRequest(ch, { code: el.code, diagnostic: el.diagnostic });
    } catch (err) {
      core.emit('handlerError', err);
      d = LOCAL_CLOSE_ERROR;
    }
    if (isThenable(d)) {
      return Promise.resolve(d).then(
        (v) => closeDecided(core, res, ch, v),
        (err: unknown) => {
          core.emit('handlerError', err);
          return closeDecided(core, res, ch, LOCAL_CLOSE_ERROR);
        },
      );
    }
  }
  return closeDecided(core, res, ch, d);
}

function closeDecided(core: SessionCore, res: Responder, ch: Channel, d: CloseDecision): Promise<void> | undefined {
  if (d && typeof d === 'object' && d.accept === false) {
    negative(core, res, d.code, d.diagnostic ?? 'close declined');
    return undefined;
  }
  // Issue 17 (CVE-2023-44487, rapid reset): a channel closed without carrying
  // a single octet either way is start/close churn, charged to `maxNoProgressRate`.
  if (ch.recv.expected === 0 && ch.send.nextSeq === 0) core.checkProgress('channel closed without carrying an octet', 'request');
  if (core.isClosed) return undefined;
  core.lifecycle.closeAgreed(ch);
  // RFC 3080 §2.3.1.3: before "ok", finish our queued MSGs, await replies to
  // them, and send complete replies to the MSGs received on the channel.
  if (!quiescent(ch) && !isClosed(ch)) return core.waitFor(ch, quiescent).then(() => agreeClose(core, res, ch));
  agreeClose(core, res, ch);
  return undefined;
}

function agreeClose(core: SessionCore, res: Responder, ch: Channel): void {
  if (isClosed(ch)) {
    // Gone meanwhile (simultaneous close, or session ended).
    if (core.state !== 'closed') res.reply(buildOk(), XML).catch(noop);
    return;
  }
  res.reply(buildOk(), XML).catch(noop);
  core.lifecycle.removeChannel(ch, undefined);
}

/** @internal Our side of channel management (mgmtrequests.ts). */
export { requestMgmt } from './mgmtrequests.js';
