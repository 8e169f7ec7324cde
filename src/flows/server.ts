/**
 * The FNAA side of the flows profile (`spec/flows.md`): a BEEP profile
 * (`defineProfile`) that parses each MSG, authorizes it against the
 * session's SASL identity (`core.identity.authzid`) and the flow's ACL, and
 * answers RPY with a JSON document, ERR with a JSON `{"error": …}` (stable
 * code, BEEP reply code), or — for `subscribe` — a one-to-many reply: one
 * ANS saying the subscription is live, then ANS batches of events paced by
 * the subscriber's BEEP window, ending with NUL.
 *
 * The profile requires an authenticated session (530 before SASL) and,
 * unless `allowInsecure`, a TLS-tuned one (538 before TLS).
 *
 * Authorization is checked at every request and, for a subscription, again
 * whenever the flow's ACL changes (`acl`; `spec/flows.md` §5.1): a
 * subscription whose identity lost `subscribe` ends with an
 * `{"error": NOT_AUTHORIZED}` ANS and NUL; one that lost or gained `admin`
 * stops or starts seeing events routed to others from its next ANS on.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { ErrorCodes, isBeepError } from '../errors.js';
import { defineProfile, type Responder } from '../profiles/index.js';
import type { Channel, ChannelProfile, IncomingMessage, SessionCore } from '../channels/index.js';
import { FlowsError } from './errors.js';
import type { FlowStore, NewEvent, StoredEvent } from './store.js';
import { deliverChannel, publishChannel } from './diagnostics.js';
import {
  FLOWS_CONTENT_TYPE, FLOWS_URI, MAX_EVENT_PAYLOAD, MAX_FLOWS_MESSAGE, applyAclChange, checkWireEvent, encodeJson, parseRequest, parseTypeFilters,
  type FlowAcl, type FlowInfo, type FlowPermission, type FlowsRequest,
} from './wire.js';

/** Options of {@link createFlowsServer}. */
export interface FlowsServerOptions {
  /** Where flows are kept (e.g. `await openSqliteStore({ path })`). The server does not close it. */
  store: FlowStore;
  /** Serve the profile on sessions without TLS (development and tests only; default false). */
  allowInsecure?: boolean;
  /** Identities that may create flows; `*` for every authenticated identity (the default). */
  creators?: readonly string[];
  /**
   * Source hosts each identity may put in its events' `source` (`*`: any).
   * An identity not listed may only use its own name (its authzid, lower-cased).
   */
  sources?: Readonly<Record<string, readonly string[]>>;
  /**
   * Users each identity may route events to (an event's `to`; `*`: anyone).
   * Every identity may route to itself; anything else is ROUTE_NOT_AUTHORIZED.
   */
  routes?: Readonly<Record<string, readonly string[]>>;
  /** Largest request accepted, in octets (default 16 MiB). */
  maxMessageBytes?: number;
  /** Largest event payload accepted, in octets (default 1 MiB). */
  maxEventBytes?: number;
  /** Events per ANS at most (default 256; a subscriber may ask for fewer). */
  maxBatch?: number;
  /**
   * Milliseconds between checks of the ACLs of flows with live subscriptions
   * against the store (default 2000; 0: never), so that a change made through
   * another FNAA sharing the store (JetStream) reaches this one's
   * subscriptions too. A change made through this FNAA applies at once.
   */
  aclRecheckMs?: number;
  /** Called with failures that are the server's fault (never with secrets), e.g. for logging. */
  onError?: (err: unknown) => void;
}

/** The server-wide authorization settings {@link FlowsServer.setPolicy} replaces while it runs. */
export type FlowsPolicy = Pick<FlowsServerOptions, 'creators' | 'sources' | 'routes'>;

/** A live subscription as the server tracks it. */
interface Live {
  stat: SubscriptionStats;
  ac: AbortController;
  /** The identity may see events routed to others (it administers the flow). */
  admin: boolean;
  /** Why the server ended it (the ACL no longer lets its identity subscribe). */
  revoked: FlowsError | undefined;
}

/** Largest sum of payloads put in one ANS (octets); a single larger event still goes alone. */
export const MAX_ANSWER_PAYLOAD = 1024 * 1024;

/** One live subscription, as {@link FlowsServer.subscriptions} reports it (no secrets). */
export interface SubscriptionStats {
  flow: string;
  /** The authorization identity that subscribed. */
  identity: string;
  /** The durable consumer name, if any. */
  consumer: string | undefined;
  /** The subscription's channel number in its session. */
  channel: number;
  /** Events handed to the transport so far. */
  delivered: number;
  /** The offset the subscription continues at. */
  position: number;
}

/** Per-flow lag of the live subscriptions, as {@link FlowsServer.lag} reports it. */
export interface FlowLag {
  flow: string;
  subscriptions: number;
  /** Committed events not yet delivered to the furthest-behind subscription of the flow. */
  maxLag: number;
}

/**
 * An FNAA: the flows profile to serve (`profile`: give it to
 * `createServer({ profiles })` next to the TLS and SASL profiles).
 */
export class FlowsServer {
  /** The flows profile to serve. */
  readonly profile: ChannelProfile;
  /** The store the flows live in. */
  readonly store: FlowStore;
  private readonly o: FlowsServerOptions;
  private readonly byChannel = new WeakMap<SessionCore, Map<number, AbortController>>();
  private readonly all = new Set<AbortController>();
  private readonly live = new Set<Live>();
  /** ACL changes per flow, one after another. */
  private readonly aclChains = new Map<string, Promise<unknown>>();
  private policy: FlowsPolicy;
  private readonly recheck: NodeJS.Timeout | undefined;
  private closing = false;

  /** See {@link FlowsServerOptions}. */
  constructor(options: FlowsServerOptions) {
    this.o = options;
    this.store = options.store;
    this.policy = { ...(options.creators ? { creators: options.creators } : {}), ...(options.sources ? { sources: options.sources } : {}), ...(options.routes ? { routes: options.routes } : {}) };
    const every = options.aclRecheckMs ?? 2000;
    if (every > 0) {
      this.recheck = setInterval(() => void this.recheckAcls(), every);
      this.recheck.unref();
    }
    this.profile = defineProfile({
      uri: FLOWS_URI,
      requires: { tls: options.allowInsecure !== true, authentication: true },
      onMessage: (msg: IncomingMessage, res: Responder, channel: Channel) => this.handle(msg, res, channel),
    });
  }

  /** The live subscriptions (for operators and tests: how far each got). */
  subscriptions(): SubscriptionStats[] {
    return [...this.live].map((x) => ({ ...x.stat }));
  }

  /**
   * Replace the server-wide authorization settings (`creators`, `sources`,
   * `routes`; an absent one reverts to its default) while the server runs —
   * e.g. when `flows serve` reloads its files. Every request from now on is
   * checked against them (events stored earlier keep their routing).
   */
  setPolicy(policy: FlowsPolicy): void {
    this.policy = { ...policy };
  }

  /** Apply a flow's ACL, as it is now, to the live subscriptions of that flow. */
  private reauthorize(info: FlowInfo): void {
    for (const l of this.live) {
      if (l.stat.flow !== info.name || l.revoked) continue;
      if (!this.may(info, l.stat.identity, 'subscribe')) {
        l.revoked = new FlowsError('NOT_AUTHORIZED', `${JSON.stringify(l.stat.identity)} may no longer subscribe to flow ${JSON.stringify(info.name)}`, { details: { permission: 'subscribe', flow: info.name } });
        l.ac.abort();
      } else {
        l.admin = this.may(info, l.stat.identity, 'admin');
      }
    }
  }

  /** Check the ACLs of the flows with live subscriptions against the store (changes made through other FNAAs). */
  private async recheckAcls(): Promise<void> {
    const flows = new Set([...this.live].map((l) => l.stat.flow));
    for (const name of flows) {
      const info = await this.store.describe(name).catch(() => undefined);
      if (info) this.reauthorize(info);
    }
  }

  private readonly answers = new WeakMap<object, Map<string, Buffer>>();

  /** The encoded ANS for a chunk of a page as seen by `view` (an identity, or '' for everyone). */
  private encoded(page: object, view: string, start: number, end: number, next: number, make: () => Buffer): Buffer {
    let m = this.answers.get(page);
    if (!m) this.answers.set(page, (m = new Map()));
    const k = `${view}\u0000${start}\u0000${end}\u0000${next}`;
    let b = m.get(k);
    if (!b) m.set(k, (b = make()));
    return b;
  }

  /** Per flow with live subscriptions: how far behind the slowest one is (committed events it has not been handed yet). */
  async lag(): Promise<FlowLag[]> {
    const by = new Map<string, SubscriptionStats[]>();
    for (const { stat: s } of this.live) by.set(s.flow, [...(by.get(s.flow) ?? []), s]);
    const out: FlowLag[] = [];
    for (const [flow, subs] of by) {
      const next = await this.store.committedNext(flow).catch(() => undefined);
      if (next === undefined) continue;
      out.push({ flow, subscriptions: subs.length, maxLag: Math.max(0, ...subs.map((x) => next - x.position)) });
    }
    return out.sort((a, b) => (a.flow < b.flow ? -1 : 1));
  }

  /** End every subscription (NUL) and refuse new requests with UNAVAILABLE. The store stays open. */
  close(): void {
    this.closing = true;
    clearInterval(this.recheck);
    for (const ac of this.all) ac.abort();
  }

  private async handle(msg: IncomingMessage, res: Responder, channel: Channel): Promise<void> {
    let request: FlowsRequest;
    let identity: string;
    try {
      if (this.closing) throw new FlowsError('UNAVAILABLE', 'the server is shutting down', { origin: 'local' });
      const id = channel.core.identity;
      if (!id) throw new FlowsError('NOT_AUTHORIZED', 'authentication required', { replyCode: 530 });
      identity = id.authzid;
      let body: Buffer;
      try {
        body = await msg.bytes(this.o.maxMessageBytes ?? MAX_FLOWS_MESSAGE);
      } catch (err) {
        if (isBeepError(err, ErrorCodes.MESSAGE_TOO_LARGE)) throw new FlowsError('BAD_REQUEST', `request larger than ${this.o.maxMessageBytes ?? MAX_FLOWS_MESSAGE} octets`, { replyCode: 500 });
        throw err;
      }
      request = parseRequest(body);
      if (request.op === 'subscribe') {
        await this.subscribe(request, identity, res, channel);
        return;
      }
      const reply = await this.dispatch(request, identity, channel.core);
      await res.reply(encodeJson(reply), { contentType: FLOWS_CONTENT_TYPE });
    } catch (err) {
      await this.sendError(res, err);
    }
  }

  private async sendError(res: Responder, err: unknown): Promise<void> {
    if (res.replied || res.answering) return;
    let e: FlowsError;
    if (err instanceof FlowsError) e = err;
    else if (isBeepError(err, ErrorCodes.SESSION_CLOSED) || isBeepError(err, ErrorCodes.CHANNEL_CLOSED)) return;
    else {
      // Internal error text is never sent; it goes to onError.
      e = new FlowsError('SERVER_ERROR', 'internal server error', { cause: err });
      try {
        this.o.onError?.(err);
      } catch {
        /* ignore */
      }
    }
    try {
      await res.error(encodeJson(e.toJSON()), { contentType: FLOWS_CONTENT_TYPE });
    } catch {
      /* the connection went away: nobody to answer */
    }
  }

  /** May `identity` do `perm` on `flow`? A flow's admins may always describe it. */
  private may(flow: FlowInfo, identity: string, perm: FlowPermission): boolean {
    const list = flow.acl[perm];
    return list.includes(identity) || list.includes('*');
  }

  private async flow(name: string, identity: string, perm: FlowPermission | 'any'): Promise<FlowInfo> {
    const f = await this.store.describe(name);
    if (!f) throw new FlowsError('FLOW_NOT_FOUND', `no flow ${JSON.stringify(name)}`, { details: { flow: name } });
    const ok = perm === 'any' ? (['publish', 'subscribe', 'admin'] as const).some((p) => this.may(f, identity, p)) : this.may(f, identity, perm);
    if (!ok) {
      const p = perm === 'any' ? 'subscribe' : perm;
      throw new FlowsError('NOT_AUTHORIZED', `${JSON.stringify(identity)} may not ${p === 'admin' ? 'administer' : p} flow ${JSON.stringify(name)}`, { details: { permission: p, flow: name } });
    }
    return f;
  }

  private async dispatch(r: Exclude<FlowsRequest, { op: 'subscribe' }>, identity: string, core: SessionCore): Promise<unknown> {
    switch (r.op) {
      case 'create': {
        const creators = this.policy.creators ?? ['*'];
        if (!creators.includes('*') && !creators.includes(identity)) {
          throw new FlowsError('NOT_AUTHORIZED', `${JSON.stringify(identity)} may not create flows`, { details: { permission: 'create' } });
        }
        const acl: FlowAcl = {
          publish: r.acl?.publish ?? [identity],
          subscribe: r.acl?.subscribe ?? [identity],
          admin: [...new Set([identity, ...(r.acl?.admin ?? [])])],
        };
        return { flow: await this.store.createFlow(r.flow, r.description ?? '', acl, r.retention ?? {}) };
      }
      case 'describe':
        return { flow: await this.flow(r.flow, identity, 'any') };
      case 'list':
        return { flows: (await this.store.list()).filter((f) => (['publish', 'subscribe', 'admin'] as const).some((p) => this.may(f, identity, p))) };
      case 'delete':
        await this.flow(r.flow, identity, 'admin');
        await this.store.deleteFlow(r.flow);
        return { deleted: r.flow };
      case 'producer':
        await this.flow(r.flow, identity, 'publish');
        return { flow: r.flow, producer: r.producer, lastSeq: await this.store.lastSeq(r.flow, identity, r.producer) };
      case 'publish':
        return this.publish(r, identity);
      case 'ack': {
        await this.flow(r.flow, identity, 'subscribe');
        if (r.offset >= (await this.store.committedNext(r.flow))) {
          throw new FlowsError('BAD_REQUEST', `offset ${r.offset} is beyond the last event of the flow`, { details: { field: 'offset' } });
        }
        return { flow: r.flow, consumer: r.consumer, acked: await this.store.ack(r.flow, consumerKey(identity, r.consumer), r.offset) };
      }
      case 'acl':
        return { flow: await this.changeAcl(r, identity) };
      case 'unsubscribe': {
        const ac = this.byChannel.get(core)?.get(r.channel);
        if (!ac) throw new FlowsError('BAD_REQUEST', `no subscription on channel ${r.channel} of this session`, { details: { field: 'channel' } });
        ac.abort();
        return { unsubscribed: r.channel };
      }
    }
  }

  /**
   * Change a flow's ACL (admin): one change at a time per flow on this FNAA,
   * each read, applied and stored whole; the live subscriptions follow
   * before the reply goes.
   */
  private changeAcl(r: Extract<FlowsRequest, { op: 'acl' }>, identity: string): Promise<FlowInfo> {
    const prev = this.aclChains.get(r.flow) ?? Promise.resolve();
    const run = async (): Promise<FlowInfo> => {
      const current = await this.flow(r.flow, identity, 'admin');
      const info = await this.store.setAcl(r.flow, applyAclChange(current.acl, r));
      this.reauthorize(info);
      return info;
    };
    const next = prev.then(run, run);
    const tail = next.catch(() => undefined);
    this.aclChains.set(r.flow, tail);
    void tail.then(() => {
      if (this.aclChains.get(r.flow) === tail) this.aclChains.delete(r.flow);
    });
    return next;
  }

  private async publish(r: Extract<FlowsRequest, { op: 'publish' }>, identity: string): Promise<unknown> {
    await this.flow(r.flow, identity, 'publish');
    const allowed = this.policy.sources?.[identity] ?? [identity.toLowerCase()];
    const routes = this.policy.routes?.[identity] ?? [];
    const events: NewEvent[] = r.events.map((raw, i) => {
      const e = checkWireEvent(raw, i, this.o.maxEventBytes ?? MAX_EVENT_PAYLOAD);
      if (!allowed.includes('*') && !allowed.some((s) => s.toLowerCase() === e.source)) {
        throw new FlowsError('FORGED_SOURCE', `events[${i}].source: ${JSON.stringify(identity)} may not publish events from ${JSON.stringify(e.source)}`, { details: { index: i, field: 'source' } });
      }
      if (e.to !== undefined && e.to !== identity && !routes.includes('*') && !routes.includes(e.to)) {
        throw new FlowsError('ROUTE_NOT_AUTHORIZED', `events[${i}].to: ${JSON.stringify(identity)} may not route events to ${JSON.stringify(e.to)}`, { details: { index: i, field: 'to', to: e.to } });
      }
      // The checked event is a NewEvent already (its extra `type` is not stored: the store copies the fields it keeps).
      return e;
    });
    const result = await this.store.append(r.flow, identity, r.producer, events);
    if (publishChannel.hasSubscribers) publishChannel.publish({ flow: r.flow, events: events.length - result.duplicates, duplicates: result.duplicates });
    return { flow: r.flow, offsets: result.offsets, duplicates: result.duplicates };
  }

  private async subscribe(r: Extract<FlowsRequest, { op: 'subscribe' }>, identity: string, res: Responder, channel: Channel): Promise<void> {
    const info = await this.flow(r.flow, identity, 'subscribe');
    const filters = parseTypeFilters(r.types ?? []);
    const batch = Math.min(r.batch ?? 256, this.o.maxBatch ?? 256);
    const follow = r.follow !== false;
    const s = this.store;
    let pos: number;
    if (r.from === 'start') pos = info.firstOffset;
    else if (r.from === 'end') pos = await s.committedNext(r.flow);
    else if (r.from === 'acked') pos = (await s.acked(r.flow, consumerKey(identity, r.consumer as string))) + 1;
    else if ('offset' in r.from) pos = r.from.offset;
    else pos = await s.offsetAtTime(r.flow, Date.parse(r.from.time));
    pos = Math.max(pos, info.firstOffset); // what retention removed is gone

    const ac = new AbortController();
    let map = this.byChannel.get(channel.core);
    if (!map) {
      // One close listener per session ends all of its subscriptions (not one per subscription).
      const subs = (map = new Map());
      this.byChannel.set(channel.core, subs);
      channel.core.once('close', () => {
        for (const c of subs.values()) c.abort();
      });
    }
    map.set(channel.number, ac);
    this.all.add(ac);
    const stat: SubscriptionStats = { flow: r.flow, identity, consumer: r.consumer, channel: channel.number, delivered: 0, position: pos };
    const live: Live = { stat, ac, admin: this.may(info, identity, 'admin'), revoked: undefined };
    this.live.add(live);
    const onClose = (): void => ac.abort();
    channel.once('close', onClose);
    try {
      // An ACL change applied while this subscription was being set up: apply it now.
      const now = await s.describe(r.flow);
      if (now) this.reauthorize(now);
      if (!live.revoked) await res.answer(encodeJson({ subscribed: { flow: r.flow, from: pos, next: await s.committedNext(r.flow) } }), { contentType: FLOWS_CONTENT_TYPE });
      for await (const page of s.pages(r.flow, pos, { max: batch, filters, follow, signal: ac.signal })) {
        if (ac.signal.aborted) break;
        await this.deliver(page, live, res);
        if (live.revoked) break;
        stat.position = page.next;
      }
      // Told once, before NUL, why the server ended it.
      if (live.revoked && channel.state === 'open') await res.answer(encodeJson({ error: live.revoked.toJSON().error }), { contentType: FLOWS_CONTENT_TYPE });
    } catch (err) {
      if (!(isBeepError(err, ErrorCodes.SESSION_CLOSED) || isBeepError(err, ErrorCodes.CHANNEL_CLOSED))) {
        try {
          this.o.onError?.(err);
        } catch {
          /* ignore */
        }
      }
    } finally {
      map.delete(channel.number);
      this.all.delete(ac);
      this.live.delete(live);
      channel.off('close', onClose);
      if (channel.state === 'open') await res.end().catch(() => undefined);
    }
  }

  /**
   * Hand one page to a subscription as ANS messages, each cut before its
   * payloads pass MAX_ANSWER_PAYLOAD (one event at least). Events routed to a
   * user go to that user's subscriptions and the flow's admins only; who is
   * an admin, and whether the subscription may go on, is read before each
   * ANS (the ACL may change meanwhile). Each `answer` resolves once the ANS
   * is out within the subscriber's window: BEEP flow control paces this.
   */
  private async deliver(page: { events: StoredEvent[]; next: number }, live: Live, res: Responder): Promise<void> {
    const all = page.events;
    const { stat } = live;
    let i = 0;
    while (i < all.length) {
      if (live.revoked || live.ac.signal.aborted) return;
      const admin = live.admin;
      const chunk: StoredEvent[] = [];
      let routed = false;
      let bytes = 0;
      let j = i;
      for (; j < all.length; j++) {
        const e = all[j] as StoredEvent;
        if (!admin && e.to !== undefined && e.to !== stat.identity) {
          routed = true;
          continue;
        }
        if (chunk.length > 0 && bytes + e.payload.length > MAX_ANSWER_PAYLOAD) break;
        if (e.to !== undefined) routed = true;
        bytes += e.payload.length;
        chunk.push(e);
      }
      if (chunk.length === 0) return; // nothing more this identity may see in the page
      const next = j < all.length ? (all[j] as StoredEvent).offset : page.next;
      // Subscribers at the same place with the same view share one encoded ANS (the store's page cache shares the page object).
      const view = admin || !routed ? '' : stat.identity;
      const body = this.encoded(page, view, i, j, next, () => encodeJson({ events: chunk.map(toWire), next }));
      await res.answer(body, { contentType: FLOWS_CONTENT_TYPE });
      stat.delivered += chunk.length;
      stat.position = next;
      if (deliverChannel.hasSubscribers) deliverChannel.publish({ flow: stat.flow, events: chunk.length });
      i = j;
    }
  }
}

/** Consumer positions are kept per identity: another identity's consumer of the same name is another consumer. */
function consumerKey(identity: string, consumer: string): string {
  return `${identity}\u0000${consumer}`;
}

/** A stored event as delivered (`spec/flows.md` §3.3). */
function toWire(e: StoredEvent): Record<string, unknown> {
  const o: Record<string, unknown> = {
    offset: e.offset, id: e.id, type: `{${e.ns}}${e.name}`, source: e.source, time: e.time, stored: new Date(e.stored).toISOString(),
    contentType: e.contentType, producer: e.producer, seq: e.seq, publisher: e.publisher,
  };
  if (e.lang !== undefined) o.lang = e.lang;
  if (e.to !== undefined) o.to = e.to;
  if (e.text) o.data = e.payload.toString('utf8');
  else o.data64 = e.payload.toString('base64');
  return o;
}

/** Create an FNAA over a store. */
export function createFlowsServer(options: FlowsServerOptions): FlowsServer {
  return new FlowsServer(options);
}
