/**
 * The FNUA's side of a subscription (`spec/flows.md` §4.2): the
 * {@link Subscription} a `FlowsClient.subscribe` resolves with, and the
 * decoding of its ANS messages.
 *
 * Decoding is shared by the subscriptions of one session: an ANS body equal,
 * octet for octet, to the last one decoded on the session (several
 * subscriptions to the same flow at the same position get the same events;
 * the server sends them the same encoded ANS) is not parsed again — each
 * subscription gets its own copies of the events decoded the first time.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { ErrorCodes } from '../errors.js';
import type { Channel, IncomingMessage } from '../channels/index.js';
import { FlowsError } from './errors.js';
import { errorFromJson, parseReply, toFlowsError } from './replies.js';
import { MAX_FLOWS_MESSAGE, eventFromWire, type FlowEvent } from './wire.js';

/** What one ANS of a subscription says. */
interface Answer {
  /** Its events, decoded. */
  events: FlowEvent[];
  /** Where the subscription continues (`next`), if given. */
  next: number | undefined;
  /** The server ended the subscription with this error (e.g. NOT_AUTHORIZED once the ACL changed). */
  error: FlowsError | undefined;
}

/** Bodies larger than this are not kept for sharing. */
const SHARE_MAX = 64 * 1024;

/** @internal Decodes the ANS bodies of one session's subscriptions; see the module documentation. */
export class AnswerDecoder {
  private last: { body: Buffer; answer: Answer } | undefined;

  /** Decode one ANS body; the events returned belong to the caller alone. */
  decode(body: Buffer): Answer {
    const l = this.last;
    const answer = l && l.body.length === body.length && l.body.equals(body) ? l.answer : this.parse(body);
    return { events: answer.events.map(copyEvent), next: answer.next, error: answer.error };
  }

  private parse(body: Buffer): Answer {
    const doc = parseReply(body);
    let error: FlowsError | undefined;
    if (doc.error !== undefined) error = errorFromJson(doc.error) ?? new FlowsError('SERVER_ERROR', 'the server ended the subscription with an error it did not describe', { origin: 'remote' });
    const events = Array.isArray(doc.events) ? (doc.events as Record<string, unknown>[]).map(eventFromWire) : [];
    const answer: Answer = { events, next: typeof doc.next === 'number' ? doc.next : undefined, error };
    this.last = body.length <= SHARE_MAX && events.length > 0 ? { body: Buffer.from(body), answer } : undefined;
    return answer;
  }
}

function copyEvent(e: FlowEvent): FlowEvent {
  return { ...e, data: typeof e.data === 'string' ? e.data : new Uint8Array(e.data) };
}

/** @internal What a {@link Subscription} needs of its client. */
export interface SubscriptionHost {
  readonly open: Set<Subscription>;
  readonly decoder: AnswerDecoder;
  ack(flow: string, consumer: string, offset: number): Promise<number>;
  call(request: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/**
 * A live subscription: iterate it for events (`for await (const e of sub)`),
 * acknowledge what was processed with {@link ack}, end it with {@link close}.
 * Reading paces the server: unread events hold the channel's BEEP window.
 *
 * If the flow's ACL changes so that the identity may no longer subscribe,
 * the server ends the subscription and the iteration throws
 * NOT_AUTHORIZED (`spec/flows.md` §5.1).
 */
export class Subscription implements AsyncIterable<FlowEvent> {
  /** The offset the subscription started at. */
  readonly from: number;
  /** The offset after the last event handed out (what a resumed subscription would start at). */
  position: number;
  /** The server ended the subscription (NUL arrived). */
  private done = false;
  /** A loop is iterating it now. */
  private active = false;

  /** @internal */
  constructor(
    private readonly client: SubscriptionHost,
    /** The subscription's channel. */
    readonly channel: Channel,
    /** The flow. */
    readonly flow: string,
    /** The durable consumer name, if any. */
    readonly consumer: string | undefined,
    from: number,
    private readonly answers: AsyncGenerator<IncomingMessage, void, undefined>,
  ) {
    this.from = from;
    this.position = from;
  }

  /** Events in offset order, until the server ends the subscription (NUL) or {@link close}. */
  async *[Symbol.asyncIterator](): AsyncGenerator<FlowEvent, void, undefined> {
    if (this.active) throw new FlowsError('BAD_REQUEST', 'a subscription is iterated by one loop at a time', { beepCode: ErrorCodes.INVALID_STATE });
    this.active = true;
    try {
      for (;;) {
        let r: IteratorResult<IncomingMessage>;
        try {
          r = await this.answers.next();
        } catch (err) {
          throw toFlowsError(err);
        }
        if (r.done) {
          this.done = true;
          break;
        }
        const answer = this.client.decoder.decode(await r.value.bytes(MAX_FLOWS_MESSAGE));
        for (const e of answer.events) {
          this.position = e.offset + 1;
          yield e;
        }
        if (answer.next !== undefined) this.position = Math.max(this.position, answer.next);
        if (answer.error) {
          await this.drain();
          throw answer.error;
        }
      }
    } finally {
      this.active = false;
    }
  }

  /**
   * Acknowledge every event up to `offset` (default: everything handed out
   * so far, filtered-out events included) for the durable consumer. Resolves
   * with the position the server keeps.
   */
  ack(offset = this.position - 1): Promise<number> {
    if (this.consumer === undefined) return Promise.reject(new FlowsError('BAD_REQUEST', 'ack needs a subscription with a consumer name', { details: { field: 'consumer' } }));
    return this.client.ack(this.flow, this.consumer, offset);
  }

  /** Read what is left until NUL, discarding it. */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        const r = await this.answers.next();
        if (r.done) break;
        await r.value.dump();
      }
    } catch {
      /* the session went away */
    }
    this.done = true;
  }

  /** End the subscription (the server sends NUL), discard what is still in flight, and close its channel. */
  async close(): Promise<void> {
    this.client.open.delete(this);
    if (this.channel.state !== 'open') return;
    if (!this.done) {
      await this.client.call({ op: 'unsubscribe', channel: this.channel.number }).catch(() => undefined);
      // Nobody reads the rest: drain it (the window must open for the NUL to arrive).
      if (!this.active) await this.drain();
    }
    await this.channel.close().catch(() => undefined);
  }
}
