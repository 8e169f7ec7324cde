/**
 * The client side of the control profile: {@link S2ucClient} (the SciStream
 * user client's calls to one S2CS) and {@link appctrlHello} (an application
 * controller's HELLO). Both run over a BEEP `Session` the caller has
 * TLS-tuned and authenticated.
 *
 * BEEP answers the MSGs of one channel in order (RFC 3080 §2.6.1) and a
 * REQUEST is answered only once its data path is open, so each call takes a
 * control channel of its own from a small pool for the time of the exchange:
 * calls on different uids never wait for one another.
 *
 * Every failure is a {@link SciStreamError}: an ERR's `<error>` as sent; a
 * refused channel start as its reply code says (530 before authentication →
 * AUTH_ERROR); a lost connection as UNAVAILABLE. An aborted call rejects with
 * the `BEEP_ERR_ABORTED` BeepError.
 *
 * @module
 */
import { BEEP_XML } from '../../framing/index.js';
import { BeepError, BeepReplyError, ErrorCodes } from '../../errors.js';
import type { Channel, Session } from '../../channels/index.js';
import { SciStreamError, codeForReplyCode } from './errors.js';
import {
  CONTROL_URI, buildMessage, parseErrorXml, parseMessage,
  type AppResponseMessage, type ControlPlaneMessage, type ControlReply, type ControlRequest, type ResponseMessage, type SciStreamRole, type StatusResponseMessage,
} from './messages.js';
import { MAX_DOCUMENT } from './xml.js';

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * The S2UC's view of one of its sessions on this S2CS (Appendix A.1 as
 * implemented; see the spec §6).
 */
export type S2ucState = 'request-pending' | 'tunnel-establishment' | 'active-streaming' | 'request-error' | 'released';

/** Options of an {@link S2ucClient}. */
export interface S2ucClientOptions {
  /** Most control channels open at once (default 64); further calls wait for one. */
  maxChannels?: number;
}

/** Turn anything a control exchange can fail with into a {@link SciStreamError} (aborts excepted). */
export function toSciStreamError(err: unknown): unknown {
  if (err instanceof SciStreamError) return err;
  if (err instanceof BeepReplyError) {
    const parsed = err.replyCode === 0 ? parseErrorXml(err.diagnostic, codeForReplyCode) : null;
    if (parsed) return parsed;
    const reply = err.replyCode ?? 0;
    const message = err.diagnostic || (reply === 530 ? 'authentication required' : `refused with ${reply}`);
    return new SciStreamError(codeForReplyCode(reply), message, { ...(reply >= 400 && reply <= 599 ? { replyCode: reply } : {}), origin: 'remote', cause: err });
  }
  if (err instanceof BeepError && err.code === ErrorCodes.ABORTED) return err;
  if (err instanceof BeepError) {
    return new SciStreamError('UNAVAILABLE', `control connection failed: ${err.message}`, { cause: err });
  }
  return err;
}

function badReply(message: string): SciStreamError {
  return new SciStreamError('BAD_FORMAT', `invalid reply from the server: ${message}`, { origin: 'remote' });
}

/** Send one control message on `channel` and parse the reply, which must be of type `expect` for the same uid. */
async function exchange<T extends ControlReply>(channel: Channel, m: ControlRequest, expect: T['type'], signal: AbortSignal | undefined): Promise<T> {
  const body = buildMessage(m);
  const reply = await channel.request(body, { contentType: BEEP_XML, ...(signal ? { signal } : {}) });
  let parsed: ControlPlaneMessage;
  try {
    parsed = parseMessage(await reply.bytes(MAX_DOCUMENT));
  } catch (err) {
    if (err instanceof BeepError && err.code === ErrorCodes.MESSAGE_TOO_LARGE) throw badReply(`larger than ${MAX_DOCUMENT} octets`);
    throw err instanceof SciStreamError ? badReply(err.message) : err;
  }
  if (parsed.type !== expect) throw badReply(`expected <${expect}>, got <${parsed.type}>`);
  if (parsed.uid !== m.uid) throw badReply('the reply is for another uid');
  return parsed as T;
}

interface Waiting {
  resolve(ch: Channel): void;
  reject(err: unknown): void;
}

/**
 * The SciStream user client's control connection to one S2CS. Create it over
 * a TLS-tuned, authenticated BEEP session; it starts control channels as
 * calls need them.
 *
 * @example
 * ```ts
 * const s2uc = new S2ucClient(session);
 * const uid = newUid();
 * const prod = await s2uc.request({ uid, role: 'PROD', numConn: 4 });  // resolves once HELLO came and the path is open
 * console.log(prod.listeners);
 * await s2uc.release(uid);
 * ```
 */
export class S2ucClient {
  /** The BEEP session the control channels run on. */
  readonly session: Session;
  private readonly max: number;
  private readonly idle: Channel[] = [];
  private readonly queue: Waiting[] = [];
  private open = 0;
  private readonly states = new Map<string, S2ucState>();

  /** Use `session` (TLS-tuned and authenticated) for control calls. */
  constructor(session: Session, options: S2ucClientOptions = {}) {
    this.session = session;
    this.max = Math.max(1, options.maxChannels ?? 64);
  }

  /** REQUEST (`connections`: CONS only, stripe the data path over K TCP connections): resolves with the RESPONSE once the data path is open (PROD: after the HELLO; CONS: after UPDATETARGETS). */
  request(p: { uid: string; role: SciStreamRole; numConn: number; rate?: number; keep?: boolean; connections?: number }, options: CallOptions = {}): Promise<ResponseMessage> {
    const m: ControlRequest = {
      type: 'request', uid: p.uid, role: p.role, numConn: p.numConn,
      ...(p.rate === undefined ? {} : { rate: p.rate }), ...(p.keep ? { keep: true } : {}), ...(p.connections === undefined ? {} : { connections: p.connections }),
    };
    return this.tracked(p.uid, 'request-pending', this.call<ResponseMessage>(m, 'response', options));
  }

  /** UPDATETARGETS: CONS — resolves with the RESPONSE once the data path is open; PROD — recorded. */
  update(p: { uid: string; role: SciStreamRole; remoteListeners: readonly string[] }, options: CallOptions = {}): Promise<ResponseMessage> {
    const m: ControlRequest = { type: 'updatetargets', uid: p.uid, role: p.role, remoteListeners: [...p.remoteListeners] };
    return this.tracked(p.uid, 'tunnel-establishment', this.call<ResponseMessage>(m, 'response', options));
  }

  /** HELLO over this client's connection (an application controller may use {@link appctrlHello} instead). */
  hello(p: { uid: string; role: SciStreamRole; prodListeners: readonly string[] }, options: CallOptions = {}): Promise<AppResponseMessage> {
    return this.call<AppResponseMessage>({ type: 'hello', uid: p.uid, role: p.role, prodListeners: [...p.prodListeners] }, 'appresponse', options);
  }

  /** RELEASE: resolves once the S2CS closed the data path and freed the session. */
  async release(uid: string, options: CallOptions = {}): Promise<ResponseMessage> {
    const r = await this.call<ResponseMessage>({ type: 'release', uid }, 'response', options);
    this.setState(uid, 'released');
    return r;
  }

  /** STATUS: the session's state, endpoints and data-path statistics. */
  status(uid: string, options: CallOptions = {}): Promise<StatusResponseMessage> {
    return this.call<StatusResponseMessage>({ type: 'status', uid }, 'statusresponse', options);
  }

  /** This client's view of a session it requested, or undefined. */
  stateOf(uid: string): S2ucState | undefined {
    return this.states.get(uid);
  }

  /** Close the control channels (the BEEP session stays open; the sessions stay unless it closes). */
  async close(): Promise<void> {
    const chans = this.idle.splice(0);
    this.open -= chans.length;
    await Promise.all(chans.map((c) => c.close().catch(() => undefined)));
  }

  private async tracked<T extends ResponseMessage>(uid: string, during: S2ucState, p: Promise<T>): Promise<T> {
    if (this.states.get(uid) !== 'active-streaming') this.setState(uid, during);
    try {
      const r = await p;
      if (r.state === 'active') this.setState(uid, 'active-streaming');
      return r;
    } catch (err) {
      const now = this.states.get(uid);
      if (now !== 'active-streaming' && now !== 'released') this.setState(uid, 'request-error');
      throw err;
    }
  }

  private setState(uid: string, s: S2ucState): void {
    this.states.delete(uid);
    this.states.set(uid, s);
    if (this.states.size > 4096) {
      for (const [k, v] of this.states) {
        if (v === 'released' || v === 'request-error') {
          this.states.delete(k);
          break;
        }
      }
    }
  }

  private async call<T extends ControlReply>(m: ControlRequest, expect: T['type'], options: CallOptions): Promise<T> {
    let ch: Channel;
    try {
      buildMessage(m); // refuse a bad field before taking a channel
      ch = await this.acquire(options.signal);
    } catch (err) {
      throw toSciStreamError(err);
    }
    let reusable = false;
    try {
      const r = await exchange<T>(ch, m, expect, options.signal);
      reusable = true;
      return r;
    } catch (err) {
      // An ERR (or a bad reply) completed the exchange; an abort or a failure did not.
      reusable = err instanceof BeepReplyError || (err instanceof SciStreamError && err.origin === 'remote');
      throw toSciStreamError(err);
    } finally {
      this.giveBack(ch, reusable);
    }
  }

  private acquire(signal: AbortSignal | undefined): Promise<Channel> {
    if (signal?.aborted) return Promise.reject(new BeepError(ErrorCodes.ABORTED, 'aborted', { cause: signal.reason }));
    for (let ch = this.idle.pop(); ch; ch = this.idle.pop()) {
      if (ch.state === 'open') return Promise.resolve(ch);
      this.open--;
    }
    if (this.open < this.max) return this.startOne(signal);
    return new Promise<Channel>((resolve, reject) => {
      const w: Waiting = { resolve, reject };
      this.queue.push(w);
      signal?.addEventListener('abort', () => {
        const i = this.queue.indexOf(w);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(new BeepError(ErrorCodes.ABORTED, 'aborted', { cause: signal.reason }));
        }
      }, { once: true });
    });
  }

  private async startOne(signal: AbortSignal | undefined): Promise<Channel> {
    this.open++;
    try {
      return await this.session.startChannel(CONTROL_URI, signal ? { signal } : {});
    } catch (err) {
      this.open--;
      this.wake();
      throw err;
    }
  }

  private giveBack(ch: Channel, reusable: boolean): void {
    if (reusable && ch.state === 'open') {
      const w = this.queue.shift();
      if (w) w.resolve(ch);
      else this.idle.push(ch);
      return;
    }
    this.open--;
    // A reply may still be due on it: let the close wait for it, in the background.
    if (ch.state === 'open') void ch.close().catch(() => undefined);
    this.wake();
  }

  private wake(): void {
    const w = this.queue.shift();
    if (w) this.startOne(undefined).then(w.resolve, w.reject);
  }
}

/**
 * An application controller's HELLO (draft §3.2.2): registers the producer
 * application's endpoints (PROD) — or just announces the consumer (CONS) —
 * for a session uid, on a channel of its own that is closed afterwards.
 * Resolves with the APPRESPONSE once the session's data path is open; its
 * `listeners` are where the data arrives from (PROD) or where the consumer
 * application connects (CONS).
 */
export async function appctrlHello(
  session: Session,
  p: { uid: string; role: SciStreamRole; prodListeners?: readonly string[] },
  options: CallOptions = {},
): Promise<AppResponseMessage> {
  const m: ControlRequest = { type: 'hello', uid: p.uid, role: p.role, prodListeners: [...(p.prodListeners ?? [])] };
  let ch: Channel;
  try {
    buildMessage(m);
    ch = await session.startChannel(CONTROL_URI, options.signal ? { signal: options.signal } : {});
  } catch (err) {
    throw toSciStreamError(err);
  }
  try {
    return await exchange<AppResponseMessage>(ch, m, 'appresponse', options.signal);
  } catch (err) {
    throw toSciStreamError(err);
  } finally {
    if (ch.state === 'open') void ch.close().catch(() => undefined);
  }
}
