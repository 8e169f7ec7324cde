/**
 * @internal
 * Session establishment (RFC 3080 §2.3.1.1, §2.4): our greeting, queued at
 * once, and the peer's, read as the reply to a MSG 0 nobody sent. It owns the
 * promise the session's users await and the peer's greeting once parsed.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { BeepError, BeepFramingError, BeepReplyError, ErrorCodes } from '../errors.js';
import { BEEP_XML } from '../framing/index.js';
import type { Channel, ReplySink } from './channel.js';
import type { IncomingMessage } from './message.js';
import * as outbound from './outbound.js';
import { buildGreeting, buildError, parseMgmt, type Greeting } from './mgmt.js';
import type { SessionCore } from './core.js';

/** @internal The greeting exchange of a {@link SessionCore}. */
export class GreetingExchange {
  /** The peer's greeting, once received. */
  peer: Greeting | null = null;
  /** Resolves with the peer's greeting; rejects if the session ends first or is refused. */
  readonly promise: Promise<Greeting>;
  private resolve!: (g: Greeting) => void;
  private reject!: (e: Error) => void;
  private readonly core: SessionCore;

  constructor(core: SessionCore) {
    this.core = core;
    this.promise = new Promise<Greeting>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.promise.catch(() => undefined);
  }

  /** The session ended before (or after) the greeting: whoever awaits it hears why. */
  fail(e: Error): void {
    this.reject(e);
  }

  /** Queue our greeting on channel 0 (or, for a refusing listener, the ERR that refuses the session). */
  send(ch0: Channel): void {
    const core = this.core;
    const refuse = core.options.refuse;
    if (refuse && core.role === 'listener') {
      // RFC 3080 §2.4: an unavailable listener sends a negative reply instead.
      const out = outbound.queueMessage(core, ch0, 'ERR', 0, undefined, buildError(refuse.code, refuse.diagnostic), { contentType: BEEP_XML });
      out.onDone = () =>
        queueMicrotask(() => {
          // "both BEEP peers terminate the session": close once the ERR is out.
          core.gracefulEnd = true;
          this.core.terminate(new BeepReplyError(ErrorCodes.SESSION_REFUSED, refuse.code, refuse.diagnostic ?? '', {}));
        });
      return;
    }
    const xml = buildGreeting({
      profiles: core.advertisedProfiles(),
      features: [...(core.options.features ?? [])],
      localize: [...(core.options.localize ?? [])],
    });
    // RFC 3080 §2.3.1.1: each peer sends its greeting immediately, never waiting for the other's.
    outbound.queueMessage(core, ch0, 'RPY', 0, undefined, xml, { contentType: BEEP_XML });
  }

  /** The sink of the reply to the MSG 0 nobody sent: the peer's greeting. */
  sink(): ReplySink {
    const onBody = (msg: IncomingMessage, positive: boolean): void => {
      msg.bytes(this.core.limits.maxMgmtMessage).then(
        (body) => this.onGreeting(body, positive, msg.contentType),
        (err: unknown) =>
          this.core.terminate(err instanceof BeepError ? err : new BeepError(ErrorCodes.BAD_REPLY, err instanceof Error ? err.message : String(err), { cause: err })),
      );
    };
    return {
      rpy: (m) => onBody(m, true),
      err: (m) => onBody(m, false),
      ans: () => this.core.terminate(new BeepFramingError(ErrorCodes.PROTOCOL, 'greeting must be RPY or ERR')),
      nul: () => this.core.terminate(new BeepFramingError(ErrorCodes.PROTOCOL, 'greeting must be RPY or ERR')),
      fail: (e) => this.reject(e),
    };
  }

  private onGreeting(body: Buffer, positive: boolean, _contentType: string): void {
    if (this.core.state === 'closed') return;
    let el;
    try {
      el = parseMgmt(body, { maxBytes: this.core.limits.maxMgmtMessage, maxDepth: this.core.limits.maxMgmtDepth });
    } catch (err) {
      // RFC 3080 §2.2.2.1: a poorly-formed reply on channel 0 ends the session.
      this.core.terminate(new BeepFramingError(ErrorCodes.BAD_REPLY, `poorly-formed greeting: ${(err as Error).message}`));
      return;
    }
    if (!positive || el.kind === 'error') {
      const code = el.kind === 'error' ? el.code : 0;
      const diag = el.kind === 'error' ? el.diagnostic : '';
      const e = new BeepReplyError(ErrorCodes.SESSION_REFUSED, code, diag);
      this.core.terminate(e);
      return;
    }
    if (el.kind !== 'greeting') {
      this.core.terminate(new BeepFramingError(ErrorCodes.BAD_REPLY, `expected <greeting>, got <${el.kind}>`));
      return;
    }
    const g: Greeting = { profiles: el.profiles, features: el.features, localize: el.localize };
    this.peer = g;
    this.core.greeted(g);
    this.resolve(g);
  }
}
