/**
 * The S2CS side of the control profile: a BEEP profile (`defineProfile`) that
 * parses each MSG, hands it to the {@link SessionRegistry} with the
 * session's authenticated identity, and answers RPY with the reply document
 * or ERR with an `<error>` (draft §8 code, BEEP reply code).
 *
 * The profile requires an authenticated session (530 before SASL) and, unless
 * `allowInsecure`, a TLS-tuned one (538 before TLS; draft §5.2.1: TLS for
 * every control connection). When the BEEP session ends, the registry is told
 * (sessions it requested are released, see `disconnectGraceMs` and `keep`).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BEEP_XML } from '../../framing/index.js';
import { ErrorCodes, isBeepError } from '../../errors.js';
import { defineProfile } from '../../profiles/index.js';
import type { Channel, SessionHandle, IncomingMessage, Responder, ChannelProfile } from '../../channels/index.js';
import { BAD_FORMAT_SYNTAX, SciStreamError } from './errors.js';
import { CONTROL_URI, buildErrorXml, buildMessage, parseRequest, type ControlReply, type ControlRequest } from './messages.js';
import type { ControlContext, RegistryOptions } from './options.js';
import { SessionRegistry } from './registry.js';
import { MAX_DOCUMENT } from './xml.js';

/** Options of {@link createControlServer}. */
export interface ControlServerOptions extends RegistryOptions {
  /** Serve the profile on sessions without TLS (development and tests only; default false). */
  allowInsecure?: boolean;
  /** Largest control message accepted, in octets (default 64 KiB); larger ones get BAD_FORMAT. */
  maxMessageBytes?: number;
}

/**
 * An S2CS: the control profile to serve (`profile`, give it to
 * `createServer({ profiles })` next to the TLS and SASL profiles) and the
 * sessions it holds (`registry`).
 */
export class ControlServer {
  /** The sessions this S2CS holds. */
  readonly registry: SessionRegistry;
  /** The control profile to serve. */
  readonly profile: ChannelProfile;
  private readonly watched = new WeakSet<SessionHandle>();
  private readonly maxBytes: number;
  private readonly onEvent: RegistryOptions['onEvent'];

  /** See {@link ControlServerOptions}. */
  constructor(options: ControlServerOptions) {
    this.registry = new SessionRegistry(options);
    this.maxBytes = options.maxMessageBytes ?? MAX_DOCUMENT;
    this.onEvent = options.onEvent;
    this.profile = defineProfile({
      uri: CONTROL_URI,
      control: true,
      requires: { tls: options.allowInsecure !== true, authentication: true },
      onOpen: (channel: Channel) => this.watch(channel.session),
      onMessage: (msg: IncomingMessage, res: Responder, channel: Channel) => this.handle(msg, res, channel),
    });
  }

  /** Release every session (closing their data paths) and refuse new work with UNAVAILABLE. */
  close(): Promise<void> {
    return this.registry.close();
  }

  private watch(session: SessionHandle): void {
    if (this.watched.has(session)) return;
    this.watched.add(session);
    session.onClose(() => this.registry.detach(session));
  }

  private async handle(msg: IncomingMessage, res: Responder, channel: Channel): Promise<void> {
    const session = channel.session;
    this.watch(session);
    let reply: string;
    try {
      const identity = session.identity;
      // The channel layer refuses the start before authentication (530); this is a second lock.
      if (!identity) throw new SciStreamError('AUTH_ERROR', 'authentication required', { replyCode: 530 });
      let body: Buffer;
      try {
        body = await msg.bytes(this.maxBytes);
      } catch (err) {
        if (isBeepError(err, ErrorCodes.MESSAGE_TOO_LARGE)) {
          throw new SciStreamError('BAD_FORMAT', `control message larger than ${this.maxBytes} octets`, { replyCode: BAD_FORMAT_SYNTAX });
        }
        throw err;
      }
      const m = parseRequest(body, { maxBytes: this.maxBytes });
      const result = await this.dispatch({ identity: identity.authzid, connection: session }, m);
      try {
        reply = buildMessage(result);
      } catch (cause) {
        // A reply we cannot build is our fault, never the client's format.
        throw new Error('invalid reply', { cause });
      }
    } catch (err) {
      await this.sendError(res, err);
      return;
    }
    try {
      await res.reply(reply, { contentType: BEEP_XML });
    } catch {
      /* the connection went away: nobody to answer */
    }
  }

  private dispatch(ctx: ControlContext, m: ControlRequest): Promise<ControlReply> | ControlReply {
    switch (m.type) {
      case 'request': return this.registry.request(ctx, m);
      case 'hello': return this.registry.hello(ctx, m);
      case 'updatetargets': return this.registry.update(ctx, m);
      case 'release': return this.registry.release(ctx, m.uid);
      case 'status': return this.registry.status(ctx, m.uid);
    }
  }

  private async sendError(res: Responder, err: unknown): Promise<void> {
    let e: SciStreamError;
    if (err instanceof SciStreamError) {
      e = err;
    } else {
      // Never send internal error text (draft §8); report it locally.
      e = new SciStreamError('SERVER_ERR', 'internal server error', { cause: err });
      try {
        this.onEvent?.({ type: 'failed', tag: '', error: e });
      } catch {
        /* ignore */
      }
    }
    try {
      await res.error(Buffer.from(buildErrorXml(e), 'utf8'), { contentType: BEEP_XML });
    } catch {
      /* the connection went away: nobody to answer */
    }
  }
}

/** Create an S2CS over a data server. */
export function createControlServer(options: ControlServerOptions): ControlServer {
  return new ControlServer(options);
}
