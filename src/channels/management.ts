/**
 * The channel management profile (channel 0, RFC 3080 §2.3): answering the
 * peer's `<start>` and `<close>`, and sending ours.
 *
 * @module
 */
import { publishLimit } from './diagnostics.js';
import type { Buffer } from 'node:buffer';
import { BeepError, BeepFramingError, BeepReplyError, ErrorCodes } from '../errors.js';
import { BEEP_XML, mediaType } from '../framing/index.js';
import type { Channel, ReplySink } from './channel.js';
import type { SessionCore, StartChannelOptions } from './core.js';
import type { IncomingMessage } from './message.js';
import { buildClose, buildError, buildOk, buildProfileReply, buildStart, MgmtSyntaxError, parseMgmt, type MgmtElement, type StartElement, type CloseElement } from './mgmt.js';
import type { Responder } from './responder.js';
import type { CloseDecision, StartDecision } from './types.js';
import { handleOf, tuningFor } from './handle.js';

const XML = { contentType: BEEP_XML };

/** Re-read a channel's state after an await (defeats stale narrowing). */
function isClosed(ch: Channel): boolean {
  return ch.state === 'closed';
}

/**
 * A close or release found its channel gone: fine if the peer closed it or the
 * session was released; if the session was terminated, that is the outcome.
 */
function closedMeanwhile(core: SessionCore): void {
  if (core.isClosed && core.failure && !core.wasReleased) throw core.failure;
}

function negative(core: SessionCore, res: Responder, code: number, diagnostic: string): void {
  // Issue 17 (CVE-2019-9513/9514/9515): a refused channel-0 request changes
  // nothing; refusals in a loop are charged to `maxNoProgressRate`.
  if (core.state !== 'closed') core.checkProgress(`refused channel-0 request (${code})`, 'request');
  void res.error(buildError(code, diagnostic), XML).catch(() => undefined);
}

/** @internal Answer one MSG received on channel 0. */
export function handleMgmtMessage(core: SessionCore, msg: IncomingMessage, res: Responder): void {
  msg.bytes(core.limits.maxMgmtMessage).then(
    async (body) => {
      // The peer's greeting came first on the wire, but its body is read
      // asynchronously: when it spans reads and this MSG came whole, this runs
      // first. Handle it once the greeting is processed (state 'open').
      if (core.state === 'greeting') await core.whenGreeted().catch(() => undefined);
      let el: MgmtElement;
      try {
        // RFC 3080 §2.3.1.5: a poorly-formed or unexpected element gets an "error".
        if (mediaType(msg.contentType) !== BEEP_XML && body.length > 0 && msg.headers['content-type'] !== undefined) {
          throw new MgmtSyntaxError(500, `channel 0 messages are ${BEEP_XML}, not ${msg.contentType}`);
        }
        el = parseMgmt(body, { maxBytes: core.limits.maxMgmtMessage, maxDepth: core.limits.maxMgmtDepth });
      } catch (err) {
        const code = err instanceof MgmtSyntaxError ? err.replyCode : 500;
        negative(core, res, code, err instanceof Error ? err.message : 'poorly-formed message');
        return;
      }
      if (el.kind === 'start') await onStart(core, el, res);
      else if (el.kind === 'close') await onClose(core, el, res);
      else negative(core, res, 500, `unexpected <${el.kind}> in a MSG on channel 0`);
    },
    (err: unknown) => {
      if (core.state === 'closed') return;
      const tooBig = err instanceof BeepError && err.code === ErrorCodes.MESSAGE_TOO_LARGE;
      negative(core, res, 500, tooBig ? 'channel 0 message too large' : 'could not read message');
    },
  ).catch(() => undefined);
}

async function onStart(core: SessionCore, el: StartElement, res: Responder): Promise<void> {
  const n = el.number;
  // RFC 3080 §2.3.1.2: initiators use odd channel numbers, listeners even.
  const peerOdd = core.role === 'listener';
  if ((n % 2 === 1) !== peerOdd) {
    negative(core, res, 501, `number attribute in <start> element must be ${peerOdd ? 'odd' : 'even'}-valued`);
    return;
  }
  if (core.state !== 'open') {
    negative(core, res, 550, 'session is being released');
    return;
  }
  if (core.draining) {
    negative(core, res, 421, 'server shutting down');
    return;
  }
  if (core.progressExhausted()) {
    // Issue 17: the peer's requests carry no progress faster than `maxNoProgressRate`:
    // RFC 3080 §2.3.1.2 lets us refuse the start (554, transaction failed).
    const detail = `too many requests without progress (limit ${core.limits.maxNoProgressRate} per second)`;
    publishLimit({ sessionId: core.id, limit: 'maxNoProgressRate', action: 'refused', code: 554, detail });
    negative(core, res, 554, detail);
    return;
  }
  if (core.channels.has(n)) {
    negative(core, res, 550, `channel ${n} is already in use`);
    return;
  }
  if (core.channels.size - 1 >= core.limits.maxChannels) {
    const detail = `too many channels (limit ${core.limits.maxChannels})`;
    publishLimit({ sessionId: core.id, limit: 'maxChannels', action: 'refused', code: 550, detail });
    negative(core, res, 550, detail);
    return;
  }
  if (!core.lifecycle.takeStartToken()) {
    const detail = `channel start rate exceeded (limit ${core.limits.maxStartRate} per second)`;
    publishLimit({ sessionId: core.id, limit: 'maxStartRate', action: 'refused', code: 554, detail });
    negative(core, res, 554, detail);
    return;
  }
  const serverName = core.serverName ?? el.serverName;
  let refusal: { code: number; diagnostic: string } | null = null;
  for (const p of el.profiles) {
    const profile = core.profiles.get(p.uri);
    if (!profile) continue;
    const denied = core.profileAllowed(profile);
    if (denied) {
      refusal = denied;
      continue;
    }
    let d: StartDecision;
    try {
      d = await profile.onStart?.({ number: n, serverName, content: p.content, session: handleOf(core), ...(profile.tuning ? { tuning: tuningFor(core) } : {}) });
    } catch (err) {
      core.emit('handlerError', err);
      refusal = { code: 451, diagnostic: 'local error starting the profile' };
      continue;
    }
    if (d && typeof d === 'object' && d.accept === false) {
      refusal = { code: d.code, diagnostic: d.diagnostic ?? '' };
      continue;
    }
    if (core.state !== 'open' || core.channels.has(n)) {
      negative(core, res, 550, `channel ${n} is no longer available`);
      return;
    }
    const content = d && typeof d === 'object' && d.accept ? d.content : undefined;
    let xml: string;
    try {
      xml = buildProfileReply(p.uri, content);
    } catch (err) {
      core.emit('handlerError', err);
      negative(core, res, 451, 'local error starting the profile');
      return;
    }
    core.adoptServerName(el.serverName);
    // The channel exists before its positive reply leaves, so the peer's first
    // frames on it are valid the moment it reads the reply.
    const ch = core.lifecycle.createChannel(n, 'open');
    const sent = res.reply(xml, XML);
    const afterReply = d && typeof d === 'object' && d.accept ? d.afterReply : undefined;
    if (afterReply) {
      // RFC 3080 §3.1: after the positive reply to a tuning start nothing more
      // is sent; the profile takes over the transport once the reply is out.
      const ch0 = core.channels.get(0) as Channel;
      const out = ch0.outQueue[ch0.outQueue.length - 1];
      if (out) out.holdAfter = true;
      sent.then(() => afterReply(ch), () => undefined);
    } else {
      // The SEQ must follow the reply that creates the channel at the peer:
      // it is made due as the reply's last frame is taken, so it goes in the
      // same write right after it (a peer that reads the reply alone would
      // start sending into the 4096-octet default window, RFC 3081 §3.1.1).
      const ch0 = core.channels.get(0) as Channel;
      const out = ch0.outQueue[ch0.outQueue.length - 1];
      if (out && out.onDone === undefined) out.onDone = () => core.lifecycle.announceWindow(ch);
      else sent.then(() => core.lifecycle.announceWindow(ch), () => undefined);
    }
    core.lifecycle.openChannel(ch, p.uri, p.content, true);
    return;
  }
  if (refusal) negative(core, res, refusal.code, refusal.diagnostic);
  else negative(core, res, 550, 'all requested profiles are unsupported');
}

async function onClose(core: SessionCore, el: CloseElement, res: Responder): Promise<void> {
  if (el.number === 0) {
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
    await Promise.all([...core.channels.values()].filter((c) => c.number !== 0).map((c) => core.waitFor(c, (x) => core.isQuiescent(x))));
    res.reply(buildOk(), XML).then(() => core.finishRelease(), () => undefined);
    return;
  }
  let ch = core.channels.get(el.number);
  // Its start reply has fully arrived and is being read: the channel exists
  // for both peers (RFC 3080 §2.3.1.2); close it once it is open.
  if (ch && ch.state === 'starting' && ch.startReplied) {
    await core.waitFor(ch, (x) => x.state !== 'starting');
    ch = core.channels.get(el.number);
  }
  if (!ch || ch.state === 'starting' || ch.state === 'closed') {
    // Crossed closes (RFC 3080 §2.3.1.3): ours completed first; the channel is closed, as asked.
    if (!ch && core.lifecycle.wasRecentlyClosed(el.number)) void res.reply(buildOk(), XML).catch(() => undefined);
    else negative(core, res, 550, `channel ${el.number} is not open`);
    return;
  }
  let d: CloseDecision;
  try {
    d = await ch.handler?.onCloseRequest?.(ch, { code: el.code, diagnostic: el.diagnostic });
  } catch (err) {
    core.emit('handlerError', err);
    d = { accept: false, code: 451, diagnostic: 'local error' };
  }
  if (d && typeof d === 'object' && d.accept === false) {
    negative(core, res, d.code, d.diagnostic ?? 'close declined');
    return;
  }
  // Issue 17 (CVE-2023-44487, rapid reset): a channel closed without carrying
  // a single octet either way is start/close churn, charged to `maxNoProgressRate`.
  if (ch.recv.expected === 0 && ch.send.nextSeq === 0) core.checkProgress('channel closed without carrying an octet', 'request');
  if (core.isClosed) return;
  core.lifecycle.closeAgreed(ch);
  // RFC 3080 §2.3.1.3: before "ok", finish our queued MSGs, await replies to
  // them, and send complete replies to the MSGs received on the channel.
  await core.waitFor(ch, (x) => core.isQuiescent(x));
  if (isClosed(ch)) {
    // Gone meanwhile (simultaneous close, or session ended).
    if (core.state !== 'closed') void res.reply(buildOk(), XML).catch(() => undefined);
    return;
  }
  void res.reply(buildOk(), XML).catch(() => undefined);
  core.lifecycle.removeChannel(ch, undefined);
}

// ------------------------------------------------------------------ our requests

/** Send a channel-0 MSG and resolve with the parsed positive reply; ERR rejects. */
function mgmtRequest(core: SessionCore, xml: string, refusedCode: (typeof ErrorCodes)[keyof typeof ErrorCodes], hold = false, onComplete?: (type: 'RPY' | 'ERR') => void): Promise<MgmtElement> {
  const ch0 = core.channels.get(0) as Channel;
  return new Promise<MgmtElement>((resolve, reject) => {
    const poorly = (why: string): void => {
      // RFC 3080 §2.2.2.1: a poorly-formed reply on channel 0 ends the session.
      const e = new BeepFramingError(ErrorCodes.BAD_REPLY, `poorly-formed reply on channel 0: ${why}`);
      core.terminate(e);
      reject(e);
    };
    const sink: ReplySink = {
      rpy: (m) => {
        m.bytes(core.limits.maxMgmtMessage).then((body: Buffer) => {
          let el: MgmtElement;
          try {
            el = parseMgmt(body, { maxBytes: core.limits.maxMgmtMessage, maxDepth: core.limits.maxMgmtDepth });
          } catch (err) {
            poorly((err as Error).message);
            return;
          }
          if (el.kind === 'error') {
            // Liberal: some peers answer with a positive reply carrying <error>.
            reject(errorFromElement(refusedCode, el.code, el.diagnostic, el.lang));
            return;
          }
          resolve(el);
        }, (err: unknown) => poorly((err as Error).message));
      },
      err: (m) => {
        core.mgmtReplyError(m, refusedCode).then(reject, reject);
      },
      ans: (m) => {
        m.dump().catch(() => undefined);
        poorly('ANS on channel 0');
      },
      nul: () => poorly('NUL on channel 0'),
      fail: reject,
    };
    const pr = core.sendRequest(ch0, xml, { contentType: BEEP_XML }, sink);
    if (hold && pr?.out) pr.out.holdAfter = true;
    if (pr && onComplete) pr.onComplete = onComplete;
  });
}

function errorFromElement(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], replyCode: number, diagnostic: string, lang?: string): BeepReplyError {
  return new BeepReplyError(code, replyCode, diagnostic, lang === undefined ? {} : { lang });
}

type StartProfiles = string | readonly (string | { uri: string; content?: string | Uint8Array })[];

/** @internal Our side of channel management. */
export const requestMgmt = {
  async start(core: SessionCore, profiles: StartProfiles, options: StartChannelOptions): Promise<Channel> {
    const list = (typeof profiles === 'string' ? [profiles] : profiles).map((p) =>
      typeof p === 'string' ? (options.content === undefined ? { uri: p } : { uri: p, content: options.content }) : p,
    );
    if (list.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'startChannel needs at least one profile URI');
    if (core.state !== 'open') throw new BeepError(ErrorCodes.INVALID_STATE, `session is ${core.state}`);
    options.signal?.throwIfAborted();
    const n = core.lifecycle.allocChannel();
    const xml = buildStart(n, list, options.serverName);
    const ch = core.lifecycle.createChannel(n, 'starting');
    let el: MgmtElement;
    // A start and its reply are one round trip: a sample for the flow policy.
    const sentAt = core.flow.now();
    try {
      // The channel exists for the peer once its positive reply is out: accept
      // its frames from the moment that reply has fully arrived.
      el = await mgmtRequest(core, xml, ErrorCodes.START_REFUSED, options.hold === true, (type) => {
        if (type === 'RPY') ch.startReplied = true;
      });
    } catch (err) {
      core.lifecycle.abortStart(ch);
      if (options.hold) core.releaseOutput();
      throw err;
    }
    if (el.kind !== 'profile' || !list.some((p) => p.uri === el.uri)) {
      const e = new BeepFramingError(ErrorCodes.BAD_REPLY, `start of channel ${n} answered with <${el.kind}>${el.kind === 'profile' ? ` for a profile not asked for (${el.uri})` : ''}`);
      core.terminate(e);
      throw e;
    }
    if (core.isClosed) throw core.failure ?? new BeepError(ErrorCodes.SESSION_CLOSED, 'session closed');
    core.flow.rtt.sample(core.flow.now() - sentAt);
    ch.startContent = el.content;
    core.adoptServerName(options.serverName);
    core.lifecycle.openChannel(ch, el.uri, el.content, false);
    if (!options.hold) core.lifecycle.announceWindow(ch);
    if (options.signal?.aborted) {
      // The caller gave up while the start was in flight: close what was opened.
      void ch.close(200).catch(() => undefined);
      options.signal.throwIfAborted();
    }
    return ch;
  },

  close(core: SessionCore, ch: Channel, code: number, diagnostic?: string): Promise<void> {
    if (ch.state === 'closed') return Promise.resolve();
    if (ch.closePromise) return ch.closePromise;
    const p = (async () => {
      // A close asked for while the start is in flight waits for its outcome.
      await core.waitFor(ch, (x) => x.state !== 'starting');
      if (isClosed(ch)) return closedMeanwhile(core);
      // RFC 3080 §2.3.1.3: "A BEEP peer may send a "close" message for a channel
      // whenever all "MSG" messages it has sent on that channel have been acknowledged."
      await core.waitFor(ch, (x) => core.lifecycle.allAcknowledged(x));
      if (isClosed(ch)) return closedMeanwhile(core);
      try {
        const el = await mgmtRequest(core, buildClose(ch.number, code, diagnostic), ErrorCodes.CLOSE_REFUSED);
        if (el.kind !== 'ok') {
          const e = new BeepFramingError(ErrorCodes.BAD_REPLY, `close answered with <${el.kind}>`);
          core.terminate(e);
          throw e;
        }
        // The peer has sent everything it will send on the channel.
        core.lifecycle.removeChannel(ch, undefined);
      } finally {
        ch.closePromise = null;
      }
    })();
    ch.closePromise = p;
    return p;
  },

  async release(core: SessionCore, code: number, diagnostic?: string): Promise<void> {
    if (core.state === 'closed') return closedMeanwhile(core);
    let el: MgmtElement;
    try {
      el = await mgmtRequest(core, buildClose(0, code, diagnostic), ErrorCodes.CLOSE_REFUSED, false, (type) => {
        if (type === 'RPY') core.releaseReplyArrived();
      });
    } catch (err) {
      // Both peers asked at once and we agreed to the peer's release first:
      // the session ended cleanly, which is what was asked for.
      if (core.wasReleased) return;
      throw err;
    }
    if (el.kind !== 'ok') {
      const e = new BeepFramingError(ErrorCodes.BAD_REPLY, `release answered with <${el.kind}>`);
      core.terminate(e);
      throw e;
    }
    core.finishRelease();
  },
};
