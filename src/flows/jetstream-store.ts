/**
 * The flow store on NATS JetStream (`spec/flows.md` §7.2), for flows that
 * outgrow one machine: every flow is a JetStream stream (file storage,
 * `replicas` copies on a cluster), its offsets are the stream's sequence
 * numbers, and a publish is acknowledged once JetStream acknowledged it
 * (stored on a quorum of the replicas).
 *
 * - Stream `FLOWS_<flow>` (`.` → `~`), subjects `flows.<flow>.e.<producer>`
 *   where `<producer>` is base64url(publisher NUL producer): the last event
 *   of a producer is one `last_by_subj` away, which gives its sequence state
 *   after a restart or a failover.
 * - Each event's message id is `<producer>:<seq>` (JetStream de-duplication,
 *   `duplicateWindowMs`): a publish whose acknowledgement was lost when a
 *   server died is stored once when retried, even if the lost one is
 *   committed later by the new leader.
 * - Flow metadata (description, ACL, retention, creation time) is the
 *   stream's description; retention is the stream's `max_age` / `max_bytes`.
 * - Consumer positions live in the stream `FLOWS__ACKS` (one message per
 *   flow and consumer, `max_msgs_per_subject: 1`).
 *
 * Calls for one producer are settled one after another (a chain per
 * producer); batches are published pipelined and awaited together.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { FlowsError } from './errors.js';
import { STREAM_NOT_FOUND, WRONG_LAST_SEQUENCE, apiCode, b64u, conflict, decodeEvent, encodeEvent, unavailable } from './jetstream-codec.js';
import type { AppendResult, FlowStore, NewEvent, PagesOptions, ReadResult, StoredEvent } from './store.js';
import { matchesFilters, type FlowAcl, type FlowInfo, type FlowRetention } from './wire.js';

/** Options of {@link openJetStreamStore}. */
export interface JetStreamStoreOptions {
  /** NATS servers, e.g. `['127.0.0.1:4222', '127.0.0.1:4223']`. */
  servers: string | string[];
  /** Copies of each flow on the cluster (1, 3 or 5; default 1). */
  replicas?: number;
  /** Milliseconds JetStream remembers a message id to drop a retried publish (default 10 minutes). */
  duplicateWindowMs?: number;
  /** Milliseconds to wait for a JetStream reply (default 10000). */
  timeoutMs?: number;
  /** NATS user and password, if the servers require them (never logged). */
  user?: string;
  pass?: string;
  /** Stream name prefix (default `FLOWS`; subjects use it lower-cased). */
  prefix?: string;
}

interface ProducerState {
  last: number;
  /** The stream sequence (offset) of that last event on the producer's subject; 0 when none. */
  lastOffset: number;
  /** Recent sequence numbers → offset and id (bounded), for answering retries without a lookup. */
  recent: Map<number, { offset: number; id: string }>;
}

const RECENT = 20_000;

/** Connect to NATS and open the JetStream flow store. */
export async function openJetStreamStore(options: JetStreamStoreOptions): Promise<FlowStore> {
  let nats: typeof import('@nats-io/transport-node');
  let jsmod: typeof import('@nats-io/jetstream');
  try {
    nats = await import('@nats-io/transport-node');
    jsmod = await import('@nats-io/jetstream');
  } catch (cause) {
    throw new FlowsError('UNAVAILABLE', 'the JetStream store needs @nats-io/transport-node and @nats-io/jetstream', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
  }
  let nc: NatsConnection;
  try {
    nc = await nats.connect({
      servers: options.servers, name: 'beepstream-flows', maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: options.timeoutMs ?? 10_000,
      ...(options.user !== undefined ? { user: options.user, pass: options.pass ?? '' } : {}),
    });
  } catch (cause) {
    throw unavailable('connect to NATS', cause);
  }
  try {
    const jsm = await jsmod.jetstreamManager(nc, { timeout: options.timeoutMs ?? 10_000 });
    const store = new JetStreamFlowStore(nc, jsm, jsmod.jetstream(nc, { timeout: options.timeoutMs ?? 10_000 }), jsmod, options);
    await store.init();
    return store;
  } catch (cause) {
    await nc.close().catch(() => undefined);
    throw cause instanceof FlowsError ? cause : unavailable('set up its streams (is JetStream enabled on the server?)', cause);
  }
}

/** The JetStream {@link FlowStore}; build it with {@link openJetStreamStore}. */
class JetStreamFlowStore implements FlowStore {
  readonly kind = 'jetstream';
  private readonly P: string;
  private readonly p: string;
  private readonly replicas: number;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly producers = new Map<string, ProducerState>();
  private readonly positions = new Map<string, number>();
  private readonly readers = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly mod: typeof import('@nats-io/jetstream'),
    private readonly o: JetStreamStoreOptions,
  ) {
    this.P = o.prefix ?? 'FLOWS';
    this.p = this.P.toLowerCase();
    this.replicas = o.replicas ?? 1;
  }

  private stream(flow: string): string {
    return `${this.P}_${flow.replaceAll('.', '~')}`;
  }
  private subjects(flow: string): string {
    return `${this.p}.${flow.replaceAll('.', '~')}.e`;
  }
  private ackStream(): string {
    return `${this.P}__ACKS`;
  }
  private ackSubject(flow: string, consumer: string): string {
    return `${this.p}-acks.${flow.replaceAll('.', '~')}.${b64u(consumer)}`;
  }

  async init(): Promise<void> {
    const name = this.ackStream();
    try {
      await this.jsm.streams.info(name);
    } catch (err) {
      if (apiCode(err) !== STREAM_NOT_FOUND) throw err;
      await this.jsm.streams.add({
        name, subjects: [`${this.p}-acks.>`], storage: this.mod.StorageType.File, num_replicas: this.replicas, max_msgs_per_subject: 1, allow_direct: true,
      });
    }
  }

  private check(): void {
    if (this.closed) throw new FlowsError('UNAVAILABLE', 'the flow store is closed', { beepCode: 'BEEP_ERR_INVALID_STATE' });
  }

  /** Run `fn` after every earlier call queued on `key` settled. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  private toInfo(name: string, si: { config: { description?: string }; state: { first_seq: number; last_seq: number; messages: number } }): FlowInfo {
    let meta: { description?: string; created?: string; acl?: FlowAcl; retention?: FlowRetention } = {};
    try {
      meta = JSON.parse(si.config.description ?? '{}') as typeof meta;
    } catch {
      /* a stream not made by us: empty metadata */
    }
    const next = si.state.last_seq + 1;
    return {
      name, description: meta.description ?? '', created: meta.created ?? '', firstOffset: si.state.messages === 0 ? next : si.state.first_seq, nextOffset: next,
      events: si.state.messages, acl: meta.acl ?? { publish: [], subscribe: [], admin: [] }, retention: meta.retention ?? {},
    };
  }

  async createFlow(name: string, description: string, acl: FlowAcl, retention: FlowRetention = {}): Promise<FlowInfo> {
    this.check();
    if (await this.describe(name)) throw new FlowsError('FLOW_EXISTS', `flow ${JSON.stringify(name)} exists already`, { details: { flow: name } });
    const meta = { description, created: new Date().toISOString(), acl, retention };
    try {
      const si = await this.jsm.streams.add({
        name: this.stream(name), subjects: [`${this.subjects(name)}.>`], description: JSON.stringify(meta), storage: this.mod.StorageType.File,
        num_replicas: this.replicas, retention: this.mod.RetentionPolicy.Limits, discard: this.mod.DiscardPolicy.Old, allow_direct: true,
        // JetStream refuses a duplicate window longer than max_age: it is then max_age.
        duplicate_window: Math.min(this.o.duplicateWindowMs ?? 600_000, retention.maxAgeSeconds !== undefined ? retention.maxAgeSeconds * 1000 : Infinity) * 1_000_000,
        ...(retention.maxAgeSeconds !== undefined ? { max_age: retention.maxAgeSeconds * 1e9 } : {}),
        ...(retention.maxBytes !== undefined ? { max_bytes: retention.maxBytes } : {}),
      });
      return this.toInfo(name, si);
    } catch (cause) {
      throw unavailable(`create flow ${JSON.stringify(name)}`, cause);
    }
  }

  async describe(name: string): Promise<FlowInfo | undefined> {
    this.check();
    try {
      return this.toInfo(name, await this.jsm.streams.info(this.stream(name)));
    } catch (err) {
      if (apiCode(err) === STREAM_NOT_FOUND) return undefined;
      throw unavailable(`describe flow ${JSON.stringify(name)}`, err);
    }
  }

  async list(): Promise<FlowInfo[]> {
    this.check();
    const out: FlowInfo[] = [];
    try {
      for await (const si of this.jsm.streams.list()) {
        const n = si.config.name;
        if (n.startsWith(`${this.P}_`) && n !== this.ackStream()) out.push(this.toInfo(n.slice(this.P.length + 1).replaceAll('~', '.'), si));
      }
    } catch (cause) {
      throw unavailable('list flows', cause);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async setAcl(name: string, acl: FlowAcl): Promise<FlowInfo> {
    this.check();
    const stream = this.stream(name);
    try {
      const si = await this.jsm.streams.info(stream);
      let meta: Record<string, unknown> = {};
      try {
        meta = JSON.parse(si.config.description ?? '{}') as Record<string, unknown>;
      } catch {
        /* a stream not made by us: its metadata starts afresh */
      }
      meta.acl = acl;
      return this.toInfo(name, await this.jsm.streams.update(stream, { ...si.config, description: JSON.stringify(meta) }));
    } catch (err) {
      if (apiCode(err) === STREAM_NOT_FOUND) throw new FlowsError('FLOW_NOT_FOUND', `no flow ${JSON.stringify(name)}`, { details: { flow: name } });
      throw unavailable(`change the ACL of flow ${JSON.stringify(name)}`, err);
    }
  }

  async deleteFlow(name: string): Promise<boolean> {
    this.check();
    let deleted: boolean;
    try {
      deleted = await this.jsm.streams.delete(this.stream(name));
    } catch (err) {
      if (apiCode(err) === STREAM_NOT_FOUND) return false;
      throw unavailable(`delete flow ${JSON.stringify(name)}`, err);
    }
    await this.jsm.streams.purge(this.ackStream(), { filter: `${this.p}-acks.${name.replaceAll('.', '~')}.>` }).catch(() => undefined);
    for (const k of [...this.producers.keys()]) if (k.startsWith(`${name}\u0000`)) this.producers.delete(k);
    for (const k of [...this.positions.keys()]) if (k.startsWith(`${name}\u0000`)) this.positions.delete(k);
    for (const stop of this.readers.get(name) ?? []) stop();
    return deleted;
  }

  /** The producer's state: cached, or its last event (`last_by_subj`, from the stream leader). */
  private async producer(flow: string, subject: string, key: string): Promise<ProducerState> {
    const cached = this.producers.get(key);
    if (cached) return cached;
    let last: StoredMsg | null;
    try {
      last = await this.jsm.streams.getMessage(this.stream(flow), { last_by_subj: subject });
    } catch (err) {
      if (apiCode(err) === STREAM_NOT_FOUND) throw new FlowsError('FLOW_NOT_FOUND', `no flow ${JSON.stringify(flow)}`, { details: { flow } });
      if (apiCode(err) === 10037) last = null; // no message on that subject
      else throw unavailable('read the producer state', err);
    }
    const st: ProducerState = { last: 0, lastOffset: 0, recent: new Map() };
    if (last) {
      const e = decodeEvent(last.data, last.seq, last.time.getTime());
      st.last = e.seq;
      st.lastOffset = last.seq;
      st.recent.set(e.seq, { offset: last.seq, id: e.id });
    }
    this.producers.set(key, st);
    return st;
  }

  /** The stored event of a producer with sequence number `seq`: binary search over the stream (a producer's numbers grow with the offsets). */
  private async find(flow: string, subject: string, st: ProducerState, seq: number): Promise<{ offset: number; id: string } | undefined> {
    const hit = st.recent.get(seq);
    if (hit) return hit;
    const si = await this.jsm.streams.info(this.stream(flow));
    let lo = si.state.first_seq;
    let hi = si.state.last_seq;
    for (let i = 0; i < 64 && lo <= hi; i++) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.jsm.direct.getMessage(this.stream(flow), { seq: mid, next_by_subj: subject }).catch(() => null);
      if (!m) {
        hi = mid - 1;
        continue;
      }
      const e = decodeEvent(m.data, m.seq, 0);
      if (e.seq === seq) return { offset: m.seq, id: e.id };
      if (e.seq > seq) hi = mid - 1;
      else lo = m.seq + 1;
    }
    return undefined;
  }

  /**
   * Check the batch against the producer's state, then publish its new
   * events: the first alone, with `Nats-Expected-Last-Subject-Sequence` = the
   * offset of the producer's last event as this store knows it (so a state
   * made stale by another FNAA on the same streams is noticed before
   * anything is stored: the state is read again and the batch checked again,
   * exactly as the embedded store checks it), the rest pipelined. Every
   * event carries `Nats-Msg-Id: <producer>:<seq>`: a copy JetStream already
   * holds within the duplicate window (a publish whose acknowledgement was
   * lost in a failover) is not stored again, and its stored id must be the
   * event's (SEQUENCE_CONFLICT otherwise).
   */
  async append(flow: string, publisher: string, producer: string, events: readonly NewEvent[]): Promise<AppendResult> {
    this.check();
    const pt = b64u(`${publisher}\u0000${producer}`);
    const subject = `${this.subjects(flow)}.${pt}`;
    const key = `${flow}\u0000${pt}`;
    return this.serial(key, async () => {
      for (let attempt = 0; ; attempt++) {
        const cached = this.producers.has(key);
        const st = await this.producer(flow, subject, key);
        try {
          const r = await this.appendChecked(flow, subject, key, pt, publisher, producer, st, events, attempt < 3);
          if (r) return r;
        } catch (err) {
          // A refusal decided on a cached state is decided again on the stream's (another FNAA may have stored events).
          const refusal = err instanceof FlowsError && (err.flowsCode === 'SEQUENCE_GAP' || err.flowsCode === 'SEQUENCE_CONFLICT');
          if (!(refusal && cached && attempt < 3)) throw err;
          this.producers.delete(key);
        }
      }
    });
  }

  /** One attempt of {@link append}; undefined when the producer's state was stale (read it again and retry). */
  private async appendChecked(
    flow: string, subject: string, key: string, pt: string, publisher: string, producer: string, st: ProducerState, events: readonly NewEvent[], mayRetry: boolean,
  ): Promise<AppendResult | undefined> {
    const offsets: number[] = [];
    const fresh: { index: number; e: NewEvent }[] = [];
    /** Events repeated within the batch: index → index in `fresh` of the first copy. */
    const repeats = new Map<number, number>();
    let duplicates = 0;
    let last = st.last;
    for (const [i, e] of events.entries()) {
      if (e.seq <= last && e.seq > st.last) {
        const k = fresh.findIndex((f) => f.e.seq === e.seq);
        if (k < 0 || (fresh[k] as { e: NewEvent }).e.id !== e.id) throw conflict(i, e.seq, producer);
        offsets.push(0);
        repeats.set(i, k);
        duplicates++;
      } else if (e.seq <= last) {
        const prior = await this.find(flow, subject, st, e.seq);
        if (prior === undefined || prior.id !== e.id) throw conflict(i, e.seq, producer);
        offsets.push(prior.offset);
        duplicates++;
      } else if (e.seq === last + 1) {
        offsets.push(0);
        fresh.push({ index: i, e });
        last = e.seq;
      } else {
        throw new FlowsError('SEQUENCE_GAP', `events[${i}]: producer ${JSON.stringify(producer)} sent sequence number ${e.seq}, expected ${last + 1}: events were lost`, { details: { index: i, seq: e.seq, expected: last + 1 } });
      }
    }
    if (fresh.length === 0) return { offsets, duplicates };
    const publish = (e: NewEvent, expect: boolean): Promise<{ seq: number; duplicate: boolean }> =>
      this.js.publish(subject, encodeEvent(e, publisher, producer), { msgID: `${pt}:${e.seq}`, ...(expect ? { expect: { lastSubjectSequence: st.lastOffset } } : {}) });
    const [head, ...rest] = fresh as [{ index: number; e: NewEvent }, ...{ index: number; e: NewEvent }[]];
    let first: { seq: number; duplicate: boolean };
    try {
      first = await publish(head.e, true);
    } catch (err) {
      this.producers.delete(key);
      if (apiCode(err) === WRONG_LAST_SEQUENCE && mayRetry) return undefined; // another FNAA stored events of this producer
      throw unavailable('store the events (a NATS server may have failed; retry the same batch)', err);
    }
    // Pipelined: JetStream keeps the order of one connection's publishes.
    const acks = [{ status: 'fulfilled', value: first } as PromiseSettledResult<{ seq: number; duplicate: boolean }>, ...(await Promise.allSettled(rest.map(({ e }) => publish(e, false))))];
    const failed = acks.find((a) => a.status === 'rejected');
    if (failed) {
      // Some may be stored: forget the state, the next call reads it again (and the retry is de-duplicated).
      this.producers.delete(key);
      throw unavailable('store the events (a NATS server may have failed; retry the same batch)', failed.reason);
    }
    for (const [k, a] of acks.entries()) {
      const ack = (a as PromiseFulfilledResult<{ seq: number; duplicate: boolean }>).value;
      const { index, e } = fresh[k] as { index: number; e: NewEvent };
      if (ack.duplicate) {
        // Stored by an earlier attempt whose reply was lost: the same event, or a modified one.
        const stored = await this.jsm.direct.getMessage(this.stream(flow), { seq: ack.seq }).catch(() => null);
        if (!stored || decodeEvent(stored.data, ack.seq, 0).id !== e.id) {
          this.producers.delete(key);
          throw conflict(index, e.seq, producer);
        }
        duplicates++;
      }
      offsets[index] = ack.seq;
      st.recent.set(e.seq, { offset: ack.seq, id: e.id });
      if (st.recent.size > RECENT) st.recent.delete(st.recent.keys().next().value as number);
      st.lastOffset = Math.max(st.lastOffset, ack.seq);
    }
    for (const [i, k] of repeats) offsets[i] = offsets[(fresh[k] as { index: number }).index] as number;
    st.last = last;
    return { offsets, duplicates };
  }

  async lastSeq(flow: string, publisher: string, producer: string): Promise<number> {
    this.check();
    const pt = b64u(`${publisher}\u0000${producer}`);
    const key = `${flow}\u0000${pt}`;
    // Read from the stream, not the cache: another FNAA may have stored events of this producer.
    return this.serial(key, async () => {
      this.producers.delete(key);
      return (await this.producer(flow, `${this.subjects(flow)}.${pt}`, key)).last;
    });
  }

  async *pages(flow: string, from: number, o: PagesOptions): AsyncIterable<ReadResult> {
    const first = await this.describe(flow);
    if (!first || o.signal.aborted) return;
    /** With `follow: false`: the end of the flow when the reading began. */
    const end = first.nextOffset;
    let pos = Math.max(from, first.firstOffset);
    if (!o.follow && pos >= end) return;
    // An ordered consumer from `pos`; if it ends without reason (a server failed under it), another from where it stopped.
    for (let attempt = 0; !o.signal.aborted && !this.closed; attempt++) {
      if (attempt > 0) {
        if (attempt > 120) throw unavailable('read the flow (the consumer kept failing)', undefined);
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
        const info = await this.describe(flow).catch(() => null);
        if (info === undefined) return; // deleted
        if (info === null) continue;
      }
      let messages: Awaited<ReturnType<Awaited<ReturnType<JetStreamClient['consumers']['get']>>['consume']>>;
      try {
        const consumer = await this.js.consumers.get(this.stream(flow), { deliver_policy: this.mod.DeliverPolicy.StartSequence, opt_start_seq: Math.max(pos, 1) });
        // Short heartbeats: after a server failure the ordered consumer notices within seconds.
        messages = await consumer.consume({ max_messages: Math.max(o.max, 256), expires: 5000, idle_heartbeat: 1000 });
      } catch {
        continue;
      }
      const stop = (): void => void messages.stop();
      o.signal.addEventListener('abort', stop, { once: true });
      let stops = this.readers.get(flow);
      if (!stops) this.readers.set(flow, (stops = new Set()));
      stops.add(stop);
      try {
        let page: StoredEvent[] = [];
        for await (const m of messages) {
          attempt = 0;
          if (m.seq < pos) continue; // already handed out before a restart of the consumer
          const e = decodeEvent(m.data, m.seq, Math.floor(m.info.timestampNanos / 1e6));
          pos = m.seq + 1;
          if (matchesFilters(o.filters, e.ns, e.name)) page.push(e);
          const caughtUp = m.info.pending === 0 || (!o.follow && pos >= end);
          if (page.length >= o.max || caughtUp) {
            if (page.length > 0) yield { events: page, next: pos };
            page = [];
            if (!o.follow && pos >= end) return;
          }
          if (o.signal.aborted || this.closed) return;
        }
        if (page.length > 0) yield { events: page, next: pos };
      } finally {
        o.signal.removeEventListener('abort', stop);
        stops.delete(stop);
        stop();
      }
    }
  }

  async committedNext(flow: string): Promise<number> {
    const info = await this.describe(flow);
    if (!info) throw new FlowsError('FLOW_NOT_FOUND', `no flow ${JSON.stringify(flow)}`, { details: { flow } });
    return info.nextOffset;
  }

  async offsetAtTime(flow: string, ms: number): Promise<number> {
    const next = await this.committedNext(flow);
    try {
      const c = await this.js.consumers.get(this.stream(flow), { deliver_policy: this.mod.DeliverPolicy.StartTime, opt_start_time: new Date(ms).toISOString() });
      const m = await c.next({ expires: 1000 });
      return m ? m.seq : next;
    } catch (cause) {
      throw unavailable('find an offset by time', cause);
    }
  }

  async ack(flow: string, consumer: string, offset: number): Promise<number> {
    this.check();
    const subject = this.ackSubject(flow, consumer);
    return this.serial(subject, async () => {
      const kept = Math.max(offset, await this.ackedNow(flow, consumer));
      try {
        await this.js.publish(subject, Buffer.from(String(kept)));
      } catch (cause) {
        throw unavailable('store the consumer position', cause);
      }
      this.positions.set(`${flow}\u0000${consumer}`, kept);
      return kept;
    });
  }

  async acked(flow: string, consumer: string): Promise<number> {
    this.check();
    return this.serial(this.ackSubject(flow, consumer), () => this.ackedNow(flow, consumer));
  }

  private async ackedNow(flow: string, consumer: string): Promise<number> {
    const cached = this.positions.get(`${flow}\u0000${consumer}`);
    if (cached !== undefined) return cached;
    let m: StoredMsg | null;
    try {
      m = await this.jsm.streams.getMessage(this.ackStream(), { last_by_subj: this.ackSubject(flow, consumer) });
    } catch (err) {
      if (apiCode(err) !== 10037) throw unavailable('read the consumer position', err);
      m = null;
    }
    const v = m ? Number(Buffer.from(m.data).toString('utf8')) || 0 : 0;
    this.positions.set(`${flow}\u0000${consumer}`, v);
    return v;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const set of this.readers.values()) for (const stop of set) stop();
    await this.nc.drain().catch(() => this.nc.close());
  }
}
