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
  /** Recent sequence numbers → offset and id (bounded), for answering retries without a lookup. */
  recent: Map<number, { offset: number; id: string }>;
}

const RECENT = 20_000;
const b64u = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
const unavailable = (what: string, cause: unknown): FlowsError =>
  new FlowsError('UNAVAILABLE', `the JetStream flow store could not ${what}`, { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
const apiCode = (err: unknown): number | undefined => {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
};
const STREAM_NOT_FOUND = 10059;

/** Encode an event's fields and payload as one message body: u32 length, JSON fields, payload. */
function encodeEvent(e: NewEvent, publisher: string, producer: string): Buffer {
  const meta: Record<string, unknown> = { s: e.seq, i: e.id, n: e.ns, m: e.name, o: e.source, t: e.time, c: e.contentType, x: e.text ? 1 : 0, u: publisher, p: producer };
  if (e.lang !== undefined) meta.l = e.lang;
  if (e.to !== undefined) meta.r = e.to;
  const m = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.allocUnsafe(4 + m.length + e.payload.length);
  out.writeUInt32BE(m.length, 0);
  m.copy(out, 4);
  e.payload.copy(out, 4 + m.length);
  return out;
}

function decodeEvent(data: Uint8Array, offset: number, storedMs: number): StoredEvent {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const n = b.readUInt32BE(0);
  const m = JSON.parse(b.toString('utf8', 4, 4 + n)) as Record<string, string | number>;
  const e: StoredEvent = {
    offset, stored: storedMs, seq: m.s as number, id: m.i as string, ns: m.n as string, name: m.m as string, source: m.o as string, time: m.t as string,
    contentType: m.c as string, text: m.x === 1, payload: Buffer.from(b.subarray(4 + n)), publisher: m.u as string, producer: m.p as string,
  };
  if (m.l !== undefined) e.lang = m.l as string;
  if (m.r !== undefined) e.to = m.r as string;
  return e;
}

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
        duplicate_window: (this.o.duplicateWindowMs ?? 600_000) * 1_000_000,
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
    const st: ProducerState = { last: 0, recent: new Map() };
    if (last) {
      const e = decodeEvent(last.data, last.seq, last.time.getTime());
      st.last = e.seq;
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

  async append(flow: string, publisher: string, producer: string, events: readonly NewEvent[]): Promise<AppendResult> {
    this.check();
    const pt = b64u(`${publisher}\u0000${producer}`);
    const subject = `${this.subjects(flow)}.${pt}`;
    const key = `${flow}\u0000${pt}`;
    return this.serial(key, async () => {
      const st = await this.producer(flow, subject, key);
      const offsets: number[] = [];
      const fresh: { index: number; e: NewEvent }[] = [];
      let duplicates = 0;
      let last = st.last;
      for (const [i, e] of events.entries()) {
        if (e.seq <= last) {
          const prior = e.seq <= st.last ? await this.find(flow, subject, st, e.seq) : undefined;
          if (prior === undefined || prior.id !== e.id) {
            throw new FlowsError('SEQUENCE_CONFLICT', `events[${i}]: sequence number ${e.seq} of producer ${JSON.stringify(producer)} was stored with another event id`, { details: { index: i, seq: e.seq } });
          }
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
      // Pipelined: JetStream keeps the order of one connection's publishes.
      const acks = await Promise.allSettled(fresh.map(({ e }) => this.js.publish(subject, encodeEvent(e, publisher, producer), { msgID: `${pt}:${e.seq}` })));
      const failed = acks.find((a) => a.status === 'rejected');
      if (failed) {
        // Some may be stored: forget the state, the next call reads it again (and the retry is de-duplicated).
        this.producers.delete(key);
        throw unavailable('store the events (a NATS server may have failed; retry the same batch)', failed.reason);
      }
      for (const [k, a] of acks.entries()) {
        const ack = (a as PromiseFulfilledResult<{ seq: number; duplicate: boolean }>).value;
        const { index, e } = fresh[k] as { index: number; e: NewEvent };
        offsets[index] = ack.seq;
        if (ack.duplicate) {
          duplicates++;
          // Stored by an earlier attempt whose reply was lost: the offset is the first one.
        }
        st.recent.set(e.seq, { offset: ack.seq, id: e.id });
        if (st.recent.size > RECENT) st.recent.delete(st.recent.keys().next().value as number);
      }
      st.last = last;
      return { offsets, duplicates };
    });
  }

  async lastSeq(flow: string, publisher: string, producer: string): Promise<number> {
    this.check();
    const pt = b64u(`${publisher}\u0000${producer}`);
    const key = `${flow}\u0000${pt}`;
    return this.serial(key, async () => (await this.producer(flow, `${this.subjects(flow)}.${pt}`, key)).last);
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
