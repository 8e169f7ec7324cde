/**
 * The FNUA side of the flows profile: {@link FlowsClient} (create, describe,
 * list, delete, publish, acknowledge) over one BEEP session, with one
 * control channel for requests and one channel per {@link Subscription}
 * (RFC 3080 §2.6.1 answers a channel's MSGs in order, so a subscription —
 * a one-to-many reply that lasts — gets a channel of its own).
 *
 * Every failure is a {@link FlowsError}: an ERR as the server sent it; a
 * refused channel start by its reply code (530 before authentication, 538
 * before TLS → NOT_AUTHORIZED); a lost connection as UNAVAILABLE.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { BeepReplyError } from '../errors.js';
import { connect, type Channel, type IncomingMessage, type Session, type SessionLimits } from '../channels/index.js';
import { authenticate, startTls, type SaslClientMechanismFactory, type TlsClientOptions } from '../profiles/index.js';
import { FlowsError } from './errors.js';
import { parseReply, toFlowsError } from './replies.js';
import { AnswerDecoder, Subscription } from './subscription.js';
import {
  FLOWS_CONTENT_TYPE, FLOWS_URI, MAX_FLOWS_MESSAGE, encodeJson,
  type AclChange, type EventInit, type FlowAcl, type FlowRetention, type FlowInfo, type SubscribeFrom,
} from './wire.js';

export { toFlowsError } from './replies.js';
export { Subscription } from './subscription.js';

/** Options of {@link connectFlows}. */
export interface FlowsConnectOptions {
  host?: string;
  port: number;
  /** TLS options (default `{}`: TLS with the system's CAs); `false` only against a server that allows insecure sessions (tests, development). */
  tls?: TlsClientOptions | false;
  /** The SASL mechanism to authenticate with (e.g. `scramSha256Client({ username, password })`). */
  sasl: SaslClientMechanismFactory;
  /** Session limits. */
  limits?: SessionLimits;
  /** Milliseconds to connect and be greeted (default 30000). */
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * Connect to an FNAA: TCP, TLS (unless `tls: false`), SASL, and a
 * {@link FlowsClient} over the session.
 */
export async function connectFlows(options: FlowsConnectOptions): Promise<FlowsClient> {
  let session: Session;
  try {
    session = await connect({
      host: options.host ?? '127.0.0.1', port: options.port,
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    throw toFlowsError(err);
  }
  try {
    if (options.tls !== false) await startTls(session, options.tls ?? {});
    await authenticate(session, options.sasl);
  } catch (err) {
    session.destroy();
    if (err instanceof BeepReplyError) throw new FlowsError('NOT_AUTHORIZED', `authentication failed: ${err.diagnostic || err.message}`, { origin: 'remote', replyCode: err.replyCode ?? 535, cause: err });
    throw toFlowsError(err);
  }
  return new FlowsClient(session);
}

/** The reply to a publish. */
export interface PublishResult {
  /** Offset of each event, in order (a retried event gets the offset it was first stored at). */
  offsets: number[];
  /** How many events of the batch were already stored. */
  duplicates: number;
}

/** Options of {@link FlowsClient.subscribe}. */
export interface SubscribeOptions {
  /** Where to start (default `end`: only new events). `acked` needs `consumer`. */
  from?: SubscribeFrom;
  /** Durable consumer name: its acknowledged position is kept by the server. */
  consumer?: string;
  /** Only these types: `{ns}name`, or `{ns}*` for a whole namespace. */
  types?: string[];
  /** Events per ANS at most (default: the server's, 256). */
  batch?: number;
  /** Keep waiting for new events at the end (default true); false ends at the end of the flow. */
  follow?: boolean;
  signal?: AbortSignal;
}

/** An FNUA over one authenticated BEEP session. */
export class FlowsClient {
  /** The BEEP session. */
  readonly session: Session;
  private control: Promise<Channel> | null = null;
  /** @internal Subscriptions not closed yet: {@link close} ends them first. */
  readonly open = new Set<Subscription>();
  /** @internal Decodes the subscriptions' ANS (identical ones once per session). */
  readonly decoder = new AnswerDecoder();

  /** Use `session` (TLS-tuned unless the server allows otherwise, and authenticated). */
  constructor(session: Session) {
    this.session = session;
  }

  private channel(): Promise<Channel> {
    if (!this.control) {
      this.control = this.session.startChannel(FLOWS_URI);
      this.control.catch(() => (this.control = null));
    }
    return this.control;
  }

  /** Send one request on the control channel; resolves with the parsed reply. */
  async call(request: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>> {
    try {
      const ch = await this.channel();
      const reply = await ch.request(encodeJson(request), { contentType: FLOWS_CONTENT_TYPE, ...(signal ? { signal } : {}) });
      return parseReply(await reply.bytes(MAX_FLOWS_MESSAGE));
    } catch (err) {
      throw toFlowsError(err);
    }
  }

  /** Create a flow; the ACL lists default to the caller (who is always an admin). */
  async create(flow: string, options: { description?: string; acl?: Partial<FlowAcl>; retention?: FlowRetention } = {}): Promise<FlowInfo> {
    return (await this.call({ op: 'create', flow, ...options })).flow as FlowInfo;
  }

  /** Describe a flow. */
  async describe(flow: string): Promise<FlowInfo> {
    return (await this.call({ op: 'describe', flow })).flow as FlowInfo;
  }

  /** The flows the caller holds any permission on. */
  async list(): Promise<FlowInfo[]> {
    return (await this.call({ op: 'list' })).flows as FlowInfo[];
  }

  /**
   * Change a flow's ACL (admin; `spec/flows.md` §5.1): `set` replaces the
   * lists it names, then `grant` adds and `revoke` removes identities.
   * Resolves with the flow as it is then; the server's live subscriptions
   * already follow the new ACL (one that may no longer subscribe ends with
   * NOT_AUTHORIZED).
   */
  async acl(flow: string, change: AclChange): Promise<FlowInfo> {
    return (await this.call({ op: 'acl', flow, ...change })).flow as FlowInfo;
  }

  /** Delete a flow and its events (admin). */
  async delete(flow: string): Promise<void> {
    await this.call({ op: 'delete', flow });
  }

  /** The last sequence number stored for one of the caller's producers (0 if none). */
  async lastSeq(flow: string, producer: string): Promise<number> {
    return (await this.call({ op: 'producer', flow, producer })).lastSeq as number;
  }

  /**
   * Publish a batch as `producer`. Every event needs its `seq` (1, 2, 3… per
   * producer: use a {@link Producer} to number them). Resolves once the
   * server has them on disk; a retry of the same batch is stored once.
   */
  async publish(flow: string, producer: string, events: readonly (EventInit & { seq: number })[], signal?: AbortSignal): Promise<PublishResult> {
    const now = new Date().toISOString(); // one clock reading per batch
    const r = await this.call({ op: 'publish', flow, producer, events: events.map((e) => eventToWire(e, now)) }, signal);
    return { offsets: r.offsets as number[], duplicates: r.duplicates as number };
  }

  /**
   * A producer that numbers its events: it asks the server for the last
   * sequence number stored (so a restarted producer carries on), unless
   * `lastSeq` is given.
   */
  async producer(flow: string, id: string, options: { lastSeq?: number } = {}): Promise<Producer> {
    const last = options.lastSeq ?? (await this.lastSeq(flow, id));
    return new Producer(this, flow, id, last);
  }

  /** Acknowledge that `consumer` processed every event of `flow` up to `offset`; resolves with the position kept. */
  async ack(flow: string, consumer: string, offset: number): Promise<number> {
    return (await this.call({ op: 'ack', flow, consumer, offset })).acked as number;
  }

  /**
   * Subscribe on a channel of its own. Resolves once the server has the
   * subscription in place (events published after that are delivered).
   */
  async subscribe(flow: string, options: SubscribeOptions = {}): Promise<Subscription> {
    let ch: Channel;
    try {
      ch = await this.session.startChannel(FLOWS_URI);
    } catch (err) {
      throw toFlowsError(err);
    }
    const req: Record<string, unknown> = { op: 'subscribe', flow, from: options.from ?? 'end' };
    for (const k of ['consumer', 'types', 'batch', 'follow'] as const) if (options[k] !== undefined) req[k] = options[k];
    const answers = ch.requestAnswers(encodeJson(req), { contentType: FLOWS_CONTENT_TYPE, ...(options.signal ? { signal: options.signal } : {}) });
    let first: IteratorResult<IncomingMessage>;
    try {
      first = await answers.next();
      if (first.done) throw new FlowsError('SERVER_ERROR', 'the server ended the subscription at once', { origin: 'remote' });
      const doc = parseReply(await first.value.bytes(MAX_FLOWS_MESSAGE));
      const sub = doc.subscribed as { from: number; next: number } | undefined;
      if (!sub || typeof sub.from !== 'number') throw new FlowsError('SERVER_ERROR', 'invalid first answer to subscribe', { origin: 'remote' });
      const s = new Subscription(this, ch, flow, options.consumer, sub.from, answers);
      this.open.add(s);
      return s;
    } catch (err) {
      await answers.return(undefined).catch(() => undefined);
      if (ch.state === 'open') await ch.close().catch(() => undefined);
      throw toFlowsError(err);
    }
  }

  /** End the subscriptions still open, then release the session. */
  async close(): Promise<void> {
    await Promise.all([...this.open].map((s) => s.close()));
    try {
      await this.session.close();
    } catch {
      this.session.destroy();
    }
  }
}

/** A producer numbering its events; see {@link FlowsClient.producer}. */
export class Producer {
  /** The last sequence number given to an event. */
  seq: number;

  /** @internal */
  constructor(
    readonly client: FlowsClient,
    readonly flow: string,
    readonly id: string,
    lastSeq: number,
  ) {
    this.seq = lastSeq;
  }

  /**
   * Number the events (`seq` continues from the last) and publish them. If
   * it fails, the events keep their numbers: `retry` the same array (or call
   * `client.publish` with it) and what was stored is not stored again.
   */
  async publish(events: readonly EventInit[], signal?: AbortSignal): Promise<PublishResult & { batch: (EventInit & { seq: number })[] }> {
    const batch = events.map((e) => ({ ...e, seq: e.seq ?? ++this.seq, id: e.id ?? randomUUID() }));
    const last = batch[batch.length - 1];
    if (last && last.seq > this.seq) this.seq = last.seq;
    return { ...(await this.client.publish(this.flow, this.id, batch, signal)), batch };
  }
}

/** An {@link EventInit} as sent in a publish batch. */
export function eventToWire(e: EventInit & { seq: number }, now?: string): Record<string, unknown> {
  const text = typeof e.data === 'string';
  const o: Record<string, unknown> = {
    seq: e.seq,
    id: e.id ?? randomUUID(),
    type: e.type,
    source: e.source,
    time: e.time ?? now ?? new Date().toISOString(),
    contentType: e.contentType ?? (text ? 'text/plain; charset=utf-8' : 'application/octet-stream'),
  };
  if (e.lang !== undefined) o.lang = e.lang;
  if (e.to !== undefined) o.to = e.to;
  if (text) o.data = e.data;
  else o.data64 = Buffer.from(e.data as Uint8Array).toString('base64');
  return o;
}
