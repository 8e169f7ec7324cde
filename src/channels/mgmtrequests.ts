/**
 * Our side of channel management (RFC 3080 §2.3.1): sending `<start>` and
 * `<close>` on channel 0 and acting on the peer's answer. The peer's requests
 * are answered in `management.ts`.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { BeepError, BeepFramingError, BeepReplyError, ErrorCodes } from '../errors.js';
import { BEEP_XML } from '../framing/index.js';
import type { Channel, ReplySink } from './channel.js';
import type { SessionCore, StartChannelOptions } from './core.js';
import type { IncomingMessage } from './message.js';
import { buildClose, buildStart, parseMgmt, type MgmtElement } from './mgmt.js';

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

function noop(): undefined {
  return undefined;
}


/**
 * One channel-0 MSG of ours awaiting its reply: the reply sink and the
 * promise's ends in one object (no closure per reply kind).
 */
class MgmtRequest implements ReplySink {
  resolve!: (el: MgmtElement) => void;
  reject!: (err: unknown) => void;
  private readonly core: SessionCore;
  private readonly refusedCode: (typeof ErrorCodes)[keyof typeof ErrorCodes];

  constructor(core: SessionCore, refusedCode: (typeof ErrorCodes)[keyof typeof ErrorCodes]) {
    this.core = core;
    this.refusedCode = refusedCode;
  }

  /** RFC 3080 §2.2.2.1: a poorly-formed reply on channel 0 ends the session. */
  private poorly(why: string): void {
    const e = new BeepFramingError(ErrorCodes.BAD_REPLY, `poorly-formed reply on channel 0: ${why}`);
    this.core.terminate(e);
    this.reject(e);
  }

  rpy(m: IncomingMessage): void {
    const limits = this.core.limits;
    m.bytes(limits.maxMgmtMessage).then(
      (body: Buffer) => {
        let el: MgmtElement;
        try {
          el = parseMgmt(body, { maxBytes: limits.maxMgmtMessage, maxDepth: limits.maxMgmtDepth });
        } catch (err) {
          this.poorly((err as Error).message);
          return;
        }
        if (el.kind === 'error') {
          // Liberal: some peers answer with a positive reply carrying <error>.
          this.reject(errorFromElement(this.refusedCode, el.code, el.diagnostic, el.lang));
          return;
        }
        this.resolve(el);
      },
      (err: unknown) => this.poorly((err as Error).message),
    );
  }

  err(m: IncomingMessage): void {
    this.core.mgmtReplyError(m, this.refusedCode).then(this.reject, this.reject);
  }

  ans(m: IncomingMessage): void {
    m.dump().catch(noop);
    this.poorly('ANS on channel 0');
  }

  nul(): void {
    this.poorly('NUL on channel 0');
  }

  fail(err: Error): void {
    this.reject(err);
  }
}

/** Send a channel-0 MSG and resolve with the parsed positive reply; ERR rejects. */
function mgmtRequest(core: SessionCore, xml: string, refusedCode: (typeof ErrorCodes)[keyof typeof ErrorCodes], hold = false, onComplete?: (type: 'RPY' | 'ERR') => void): Promise<MgmtElement> {
  const ch0 = core.channels.get(0) as Channel;
  const sink = new MgmtRequest(core, refusedCode);
  const p = new Promise<MgmtElement>((resolve, reject) => {
    sink.resolve = resolve;
    sink.reject = reject;
  });
  try {
    const pr = core.sendRequest(ch0, xml, XML, sink);
    if (hold && pr?.out) pr.out.holdAfter = true;
    if (pr && onComplete) pr.onComplete = onComplete;
  } catch (err) {
    sink.reject(err);
  }
  return p;
}

function errorFromElement(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], replyCode: number, diagnostic: string, lang?: string): BeepReplyError {
  return new BeepReplyError(code, replyCode, diagnostic, lang === undefined ? {} : { lang });
}

/** Send our `<close>` for `ch` and remove it once the peer agrees. */
function sendClose(core: SessionCore, ch: Channel, code: number, diagnostic: string | undefined): Promise<void> {
  return mgmtRequest(core, buildClose(ch.number, code, diagnostic), ErrorCodes.CLOSE_REFUSED).then(
    (el) => {
      if (el.kind !== 'ok') {
        ch.closePromise = null;
        const e = new BeepFramingError(ErrorCodes.BAD_REPLY, `close answered with <${el.kind}>`);
        core.terminate(e);
        throw e;
      }
      // The peer has sent everything it will send on the channel.
      core.lifecycle.removeChannel(ch, undefined);
      ch.closePromise = null;
    },
    (err: unknown) => {
      ch.closePromise = null;
      throw err;
    },
  );
}

/** A close asked for while the start is in flight, or while MSGs of ours await replies: wait, then close. */
async function closeWhenAcknowledged(core: SessionCore, ch: Channel, code: number, diagnostic: string | undefined): Promise<void> {
  // A close asked for while the start is in flight waits for its outcome.
  await core.waitFor(ch, (x) => x.state !== 'starting');
  if (isClosed(ch)) return closedMeanwhile(core);
  await core.waitFor(ch, (x) => core.lifecycle.allAcknowledged(x));
  if (isClosed(ch)) return closedMeanwhile(core);
  return sendClose(core, ch, code, diagnostic);
}

/** One profile of our start: `uri` with the start's `content`, if any. */
function profileOf(uri: string, options: StartChannelOptions): { uri: string; content?: string | Uint8Array } {
  return options.content === undefined ? { uri } : { uri, content: options.content };
}

/** Was `uri` among the profiles of our start? */
function asked(list: readonly { uri: string }[], uri: string): boolean {
  for (const p of list) if (p.uri === uri) return true;
  return false;
}

type StartProfiles = string | readonly (string | { uri: string; content?: string | Uint8Array })[];

/** @internal Our side of channel management. */
export const requestMgmt = {
  async start(core: SessionCore, profiles: StartProfiles, options: StartChannelOptions): Promise<Channel> {
    const list = typeof profiles === 'string' ? [profileOf(profiles, options)] : profiles.map((p) => (typeof p === 'string' ? profileOf(p, options) : p));
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
    if (el.kind !== 'profile' || !asked(list, el.uri)) {
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
    // RFC 3080 §2.3.1.3: "A BEEP peer may send a "close" message for a channel
    // whenever all "MSG" messages it has sent on that channel have been
    // acknowledged." When they have (and the start is answered), at once.
    const p = ch.state !== 'starting' && core.lifecycle.allAcknowledged(ch) ? sendClose(core, ch, code, diagnostic) : closeWhenAcknowledged(core, ch, code, diagnostic);
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
