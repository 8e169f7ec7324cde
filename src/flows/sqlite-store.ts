/**
 * The embedded flow store: SQLite through better-sqlite3, one database file
 * holding every flow's append-only log (`spec/flows.md` §7).
 *
 * Group commit: `append` and `ack` check and assign synchronously and queue
 * rows; once per event-loop turn (`setImmediate`) everything queued is
 * written in ONE transaction (WAL, `synchronous=NORMAL`: the commit is in
 * the WAL file, where it survives `kill -9` of the process). Subscribers
 * wake then (`deliver: 'written'`, the default) or once the commit is on
 * disk (`deliver: 'durable'`). The commit is made durable by `WalSync`
 * (`sqlite-sync.ts`): `fdatasync` of the WAL on the thread pool, pipelined,
 * one sync for every commit written while the previous one ran. An event
 * is acknowledged to its producer, and a consumer position kept, only once
 * on disk, so an acknowledged event survives a power loss; an
 * unacknowledged one may or may not be there, and the producer's retry with
 * the same sequence numbers is stored once either way.
 *
 * If a commit fails the store stops (every later call is UNAVAILABLE): its
 * in-memory offsets would no longer match the disk.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { FlowsError } from './errors.js';
import { WalSync, type Durable, type SyncFn } from './sqlite-sync.js';
import { readRecent, trimRecent } from './sqlite-recent.js';
import { createSchema, firstAtOrAfter, key, loadFlows, pruneFlow, readEvents, type Db, type FlowState, type Pending, type Stmt } from './sqlite-tables.js';
import type { AppendResult, FlowStore, NewEvent, PagesOptions, ReadResult, StoredEvent } from './store.js';
import { type FlowAcl, type FlowInfo, type FlowRetention, type TypeFilter } from './wire.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file (created with its directory), or `:memory:` (not durable: tests only). */
  path: string;
  /**
   * When subscribers get an event: once it is written to the WAL
   * (`'written'`, the default: it survives a crash of the process, and its
   * publisher is acknowledged once it is on disk), or only once it is on
   * disk (`'durable'`: no power loss can take back an event a subscriber
   * saw; delivery waits for the sync). `spec/flows.md` §7.
   */
  deliver?: 'written' | 'durable';
  /** @internal How the WAL file is synced (tests wrap the default `fs.fdatasync`). */
  sync?: SyncFn;
}

/**
 * Open (creating if needed) the SQLite flow store at `options.path`.
 * better-sqlite3 is loaded here, so importing `beepstream/flows` never needs
 * the native module until a store is opened.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<FlowStore> {
  let Database: typeof BetterSqlite3;
  try {
    Database = (await import('better-sqlite3')).default;
  } catch (cause) {
    throw new FlowsError('UNAVAILABLE', 'the SQLite store needs the better-sqlite3 module (npm install better-sqlite3@12, with its install script allowed)', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
  }
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  let db: Db;
  try {
    db = new Database(options.path);
  } catch (cause) {
    throw new FlowsError('UNAVAILABLE', `cannot open the flow store ${JSON.stringify(options.path)}: ${(cause as Error).message}`, { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
  }
  return new SqliteFlowStore(db, options);
}

/** The SQLite {@link FlowStore}; build it with {@link openSqliteStore}. */
class SqliteFlowStore implements FlowStore {
  readonly kind = 'sqlite';
  private readonly db: Db;
  private readonly flows = new Map<string, FlowState>();
  private readonly byId = new Map<number, FlowState>();
  private queue: Pending[] = [];
  private acks = new Map<string, { flowId: number; name: string; offset: number }>();
  private waiting: Durable[] = [];
  private readonly durability: WalSync;
  private readonly afterWrite: boolean;
  private scheduled = false;
  private failed: FlowsError | null = null;
  private closed = false;
  private readonly consumers = new Map<string, number>();
  private readonly insert: Stmt;
  private readonly upsertAck: Stmt;
  private readonly upsertProducer: Stmt;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly readCache = new Map<string, Stmt>();

  constructor(db: Db, options: SqliteStoreOptions) {
    this.db = db;
    this.afterWrite = options.deliver !== 'durable';
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    createSchema(db);
    // From here on commits only write; WalSync syncs the WAL off the event loop and a worker checkpoints.
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    this.durability = new WalSync(options.path, options.sync, (cause) => {
      this.failed ??= new FlowsError('UNAVAILABLE', 'the flow store failed to make its log durable; the server must be restarted', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
      for (const f of this.flows.values()) this.wake(f);
    });
    this.insert = db.prepare('INSERT INTO events (flow, off, stored, publisher, producer, seq, id, ns, name, source, time, ctype, lang, text, data, dest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
    this.upsertProducer = db.prepare('INSERT INTO producers (flow, publisher, producer, seq) VALUES (?,?,?,?) ON CONFLICT (flow, publisher, producer) DO UPDATE SET seq = max(seq, excluded.seq)');
    this.upsertAck = db.prepare('INSERT INTO consumers (flow, name, acked) VALUES (?,?,?) ON CONFLICT (flow, name) DO UPDATE SET acked = max(acked, excluded.acked)');
    for (const st of loadFlows(db, this.consumers)) {
      this.flows.set(st.name, st);
      this.byId.set(st.id, st);
    }
    this.pruneTimer = setInterval(() => this.pruneAll(), 1000);
    this.pruneTimer.unref();
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new FlowsError('UNAVAILABLE', 'the flow store is closed', { beepCode: 'BEEP_ERR_INVALID_STATE' });
  }

  private flow(name: string): FlowState {
    const f = this.flows.get(name);
    if (!f) throw new FlowsError('FLOW_NOT_FOUND', `no flow ${JSON.stringify(name)}`, { details: { flow: name } });
    return f;
  }

  /** Offset after the last event subscribers may see (written, or durable: `deliver`). */
  private visible(f: FlowState): number {
    return this.afterWrite ? f.committed : f.durable;
  }

  private info(f: FlowState): FlowInfo {
    const end = this.visible(f);
    const first = Math.min(f.first, end);
    return { name: f.name, description: f.description, created: f.created, firstOffset: first, nextOffset: end, events: end - first, acl: f.acl, retention: { ...f.retention } };
  }

  async createFlow(name: string, description: string, acl: FlowAcl, retention: FlowRetention = {}): Promise<FlowInfo> {
    this.check();
    if (this.flows.has(name)) throw new FlowsError('FLOW_EXISTS', `flow ${JSON.stringify(name)} exists already`, { details: { flow: name } });
    const created = new Date().toISOString();
    const r = this.db.prepare('INSERT INTO flows (name, description, created, acl, retention) VALUES (?,?,?,?,?)').run(name, description, created, JSON.stringify(acl), JSON.stringify(retention));
    const f: FlowState = {
      id: Number(r.lastInsertRowid), name, description, created, acl, retention: { ...retention }, first: 1, bytes: 0, next: 1, committed: 1, durable: 1, lastStored: 0,
      producers: new Map(), pending: new Map(), recent: [], recentBytes: 0, waiters: new Set(), deleted: false,
    };
    this.flows.set(name, f);
    this.byId.set(f.id, f);
    await this.durable();
    return this.info(f);
  }

  async describe(name: string): Promise<FlowInfo | undefined> {
    const f = this.flows.get(name);
    return f ? this.info(f) : undefined;
  }

  async list(): Promise<FlowInfo[]> {
    return [...this.flows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((f) => this.info(f));
  }

  async setAcl(name: string, acl: FlowAcl): Promise<FlowInfo> {
    this.check();
    const f = this.flow(name);
    const copy: FlowAcl = { publish: [...acl.publish], subscribe: [...acl.subscribe], admin: [...acl.admin] };
    this.db.prepare('UPDATE flows SET acl = ? WHERE id = ?').run(JSON.stringify(copy), f.id);
    f.acl = copy;
    await this.durable();
    return this.info(f);
  }

  async deleteFlow(name: string): Promise<boolean> {
    this.check();
    const f = this.flows.get(name);
    if (!f) return false;
    this.flush();
    this.check();
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM events WHERE flow = ?').run(f.id);
      this.db.prepare('DELETE FROM consumers WHERE flow = ?').run(f.id);
      this.db.prepare('DELETE FROM producers WHERE flow = ?').run(f.id);
      this.db.prepare('DELETE FROM flows WHERE id = ?').run(f.id);
    })();
    this.flows.delete(name);
    this.byId.delete(f.id);
    f.deleted = true;
    for (const k of [...this.consumers.keys()]) if (k.startsWith(`${f.id}\u0000`)) this.consumers.delete(k);
    this.wake(f);
    await this.durable();
    return true;
  }

  async lastSeq(flow: string, publisher: string, producer: string): Promise<number> {
    return this.flow(flow).producers.get(key(publisher, producer)) ?? 0;
  }

  async append(flow: string, publisher: string, producer: string, events: readonly NewEvent[]): Promise<AppendResult> {
    // Everything up to the await runs synchronously, in call order.
    const r = this.appendNow(flow, publisher, producer, events);
    await this.commitPromise();
    return r;
  }

  private appendNow(flow: string, publisher: string, producer: string, events: readonly NewEvent[]): AppendResult {
    this.check();
    const f = this.flow(flow);
    const pk = key(publisher, producer);
    let last = f.producers.get(pk) ?? 0;
    // Check the whole batch first: nothing is stored when any of it is refused.
    const plan: (number | NewEvent)[] = [];
    let duplicates = 0;
    // The batch's new events get consecutive numbers and consecutive offsets from f.next: a repeat within the batch is one of them.
    const before = last;
    const freshIds: string[] = [];
    for (const [i, e] of events.entries()) {
      if (e.seq <= last) {
        const prior = e.seq > before ? { offset: f.next + (e.seq - before - 1), id: freshIds[e.seq - before - 1] } : this.lookup(f, publisher, producer, e.seq);
        if (prior === undefined || prior.id !== e.id) {
          throw new FlowsError('SEQUENCE_CONFLICT', `events[${i}]: sequence number ${e.seq} of producer ${JSON.stringify(producer)} was stored with another event id`, { details: { index: i, seq: e.seq } });
        }
        plan.push(prior.offset);
        duplicates++;
      } else if (e.seq === last + 1) {
        plan.push(e);
        freshIds.push(e.id);
        last = e.seq;
      } else {
        throw new FlowsError('SEQUENCE_GAP', `events[${i}]: producer ${JSON.stringify(producer)} sent sequence number ${e.seq}, expected ${last + 1}: events were lost`, { details: { index: i, seq: e.seq, expected: last + 1 } });
      }
    }
    const now = Math.max(Date.now(), f.lastStored);
    f.lastStored = now;
    const offsets: number[] = [];
    const fresh: StoredEvent[] = [];
    for (const p of plan) {
      if (typeof p === 'number') {
        offsets.push(p);
        continue;
      }
      const offset = f.next++;
      const s: StoredEvent = { seq: p.seq, id: p.id, ns: p.ns, name: p.name, source: p.source, time: p.time, contentType: p.contentType, text: p.text, payload: p.payload, offset, stored: now, publisher, producer };
      if (p.lang !== undefined) s.lang = p.lang;
      if (p.to !== undefined) s.to = p.to;
      fresh.push(s);
      offsets.push(offset);
    }
    if (fresh.length > 0) {
      this.queue.push({ f, events: fresh });
      const pend = f.pending.get(pk);
      if (pend) for (const s of fresh) pend.push(s);
      else f.pending.set(pk, fresh.slice());
    }
    f.producers.set(pk, last);
    return { offsets, duplicates };
  }

  private lookup(f: FlowState, publisher: string, producer: string, seq: number): { offset: number; id: string } | undefined {
    const pend = f.pending.get(key(publisher, producer));
    const head = pend?.[0];
    if (pend && head && seq >= head.seq && seq - head.seq < pend.length) return pend[seq - head.seq];
    const row = this.db.prepare('SELECT off, id FROM events WHERE flow = ? AND publisher = ? AND producer = ? AND seq = ?').get(f.id, publisher, producer, seq) as { off: number; id: string } | undefined;
    return row ? { offset: row.off, id: row.id } : undefined;
  }

  /** Resolves once what is queued now is written and durable (the next group commit, then its sync). */
  private commitPromise(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return p.catch((cause) => {
      throw this.failed ?? cause;
    });
  }

  /** Resolves once everything written so far is durable; UNAVAILABLE if it cannot be. */
  private durable(): Promise<void> {
    return this.durability.sync().catch((cause) => {
      throw this.failed ?? cause;
    });
  }

  /**
   * Write everything queued in one transaction and wake the subscribers
   * (`deliver: 'written'`); the waiting promises settle once it is durable
   * (then `deliver: 'durable'` subscribers wake).
   */
  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    const acks = this.acks;
    const waiting = this.waiting;
    this.queue = [];
    this.acks = new Map();
    this.waiting = [];
    if (queue.length === 0 && acks.size === 0) {
      // Only duplicates (their first copy may still be syncing): settle after what is written is durable.
      this.durability.after(waiting);
      return;
    }
    try {
      if (this.failed) throw this.failed;
      this.db.transaction(() => {
        const insert = this.insert;
        for (const { f, events } of queue) {
          const id = f.id;
          for (const e of events) insert.run(id, e.offset, e.stored, e.publisher, e.producer, e.seq, e.id, e.ns, e.name, e.source, e.time, e.contentType, e.lang ?? null, e.text ? 1 : 0, e.payload, e.to ?? null);
        }
        // The producers' high-water marks, once per producer of the commit (they outlive retention).
        const marks = new Map<string, StoredEvent & { flowId: number }>();
        for (const { f, events } of queue) {
          const last = events[events.length - 1] as StoredEvent;
          marks.set(`${f.id}\u0000${key(last.publisher, last.producer)}`, { ...last, flowId: f.id });
        }
        for (const m of marks.values()) this.upsertProducer.run(m.flowId, m.publisher, m.producer, m.seq);
        for (const a of acks.values()) this.upsertAck.run(a.flowId, a.name, a.offset);
      })();
    } catch (cause) {
      this.failed ??= new FlowsError('UNAVAILABLE', 'the flow store failed to commit; the server must be restarted', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
      for (const w of waiting) w.reject(this.failed);
      return;
    }
    let rows = acks.size;
    const touched = new Set<FlowState>();
    for (const { f, events } of queue) {
      rows += events.length;
      if (f.deleted) continue;
      const last = events[events.length - 1] as StoredEvent;
      f.committed = Math.max(f.committed, last.offset + 1);
      for (const e of events) {
        f.bytes += e.payload.length;
        f.recentBytes += e.payload.length;
        f.recent.push(e);
      }
      touched.add(f);
    }
    for (const f of touched) {
      // Everything pending is written now (a commit writes the whole queue).
      f.pending.clear();
      trimRecent(f);
    }
    for (const f of touched) if (f.retention.maxBytes !== undefined && f.bytes > f.retention.maxBytes) this.prune(f);
    for (const a of acks.values()) this.consumers.set(`${a.flowId}\u0000${a.name}`, Math.max(this.consumers.get(`${a.flowId}\u0000${a.name}`) ?? 0, a.offset));
    if (this.afterWrite) for (const f of touched) this.wake(f);
    const marks = [...touched].map((f) => [f, f.committed] as const);
    waiting.push({
      resolve: () => {
        for (const [f, end] of marks) {
          if (end <= f.durable) continue;
          f.durable = end;
          if (!this.afterWrite) this.wake(f);
        }
      },
      reject: () => undefined,
    });
    this.durability.written(waiting, rows);
  }

  private wake(f: FlowState): void {
    const ws = [...f.waiters];
    f.waiters.clear();
    for (const w of ws) w();
  }

  /**
   * Pages read since the flow's last commit, by (from, max, filters): subscribers woken by one
   * commit at the same position share one query (bounded; emptied by every commit).
   */
  private readonly pageCache = new Map<string, { committed: number; first: number; pages: Map<string, ReadResult> }>();

  private read(flow: string, from: number, max: number, filters: readonly TypeFilter[]): ReadResult {
    this.check();
    const f = this.flow(flow);
    const end = this.visible(f);
    if (from >= end) return { events: [], next: Math.max(from, 1) };
    let cache = this.pageCache.get(flow);
    if (!cache || cache.committed !== end || cache.first !== f.first) this.pageCache.set(flow, (cache = { committed: end, first: f.first, pages: new Map() }));
    const ck = `${from}\u0000${max}\u0000${filters.map((x) => `${x.ns}\u0000${x.name ?? '*'}`).join('\u0001')}`;
    const hit = cache.pages.get(ck);
    if (hit) return hit;
    const r = readRecent(f, from, max, filters, end) ?? readEvents(this.db, this.readCache, f, from, max, filters, end);
    if (cache.pages.size < 64) cache.pages.set(ck, r);
    return r;
  }

  async *pages(flow: string, from: number, o: PagesOptions): AsyncIterable<ReadResult> {
    let pos = from;
    // One abort listener for the whole reading, not one per wait.
    let waiting: { f: FlowState; resolve: () => void } | null = null;
    const onAbort = (): void => {
      if (!waiting) return;
      waiting.f.waiters.delete(waiting.resolve);
      waiting.resolve();
    };
    o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!o.signal.aborted) {
        let page: ReadResult;
        try {
          page = this.read(flow, pos, o.max, o.filters);
        } catch (err) {
          if (err instanceof FlowsError && (err.flowsCode === 'FLOW_NOT_FOUND' || err.flowsCode === 'UNAVAILABLE')) return; // deleted, or the store closed
          throw err;
        }
        pos = page.next;
        if (page.events.length > 0) {
          yield page;
          continue;
        }
        if (!o.follow) return;
        const f = this.flows.get(flow);
        if (!f || f.deleted || this.closed || this.failed) return;
        if (this.visible(f) <= pos && !o.signal.aborted) {
          await new Promise<void>((resolve) => {
            waiting = { f, resolve };
            f.waiters.add(resolve);
          });
          waiting = null;
        }
        if (!this.flows.has(flow) || this.closed) return;
      }
    } finally {
      o.signal.removeEventListener('abort', onAbort);
    }
  }

  async committedNext(flow: string): Promise<number> {
    return this.visible(this.flow(flow));
  }

  async offsetAtTime(flow: string, ms: number): Promise<number> {
    const f = this.flow(flow);
    const end = this.visible(f);
    return firstAtOrAfter(this.db, f, ms, end);
  }

  async acked(flow: string, consumer: string): Promise<number> {
    return this.ackedNow(flow, consumer);
  }

  private ackedNow(flow: string, consumer: string): number {
    const f = this.flow(flow);
    const k = `${f.id}\u0000${consumer}`;
    return Math.max(this.consumers.get(k) ?? 0, this.acks.get(k)?.offset ?? 0);
  }

  async ack(flow: string, consumer: string, offset: number): Promise<number> {
    this.check();
    const f = this.flow(flow);
    const k = `${f.id}\u0000${consumer}`;
    const kept = Math.max(offset, this.ackedNow(flow, consumer));
    this.acks.set(k, { flowId: f.id, name: consumer, offset: kept });
    await this.commitPromise();
    return Math.max(kept, this.consumers.get(k) ?? 0);
  }

  /** Apply every flow's retention (a timer calls it each second). */
  private pruneAll(): void {
    if (this.closed || this.failed) return;
    for (const f of this.flows.values()) if (f.retention.maxAgeSeconds !== undefined || f.retention.maxBytes !== undefined) this.prune(f);
  }

  /** Remove a flow's written events that its retention no longer keeps (oldest first); offsets are never reused. */
  private prune(f: FlowState): void {
    try {
      pruneFlow(this.db, f);
    } catch (cause) {
      this.failed ??= new FlowsError('UNAVAILABLE', 'the flow store failed to apply retention; the server must be restarted', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
    }
  }

  stats(): Record<string, number> {
    return { ...this.durability.stats };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    clearInterval(this.pruneTimer);
    this.closed = true;
    for (const f of this.flows.values()) this.wake(f);
    await this.durability.close();
    this.db.close();
  }
}
