/**
 * The embedded flow store: SQLite through better-sqlite3, one database file
 * holding every flow's append-only log (`spec/flows.md` §7).
 *
 * Group commit: `append` and `ack` check and assign synchronously and queue
 * rows; once per event-loop turn (`setImmediate`) everything queued is
 * written in ONE transaction (WAL, `synchronous=FULL`: the commit is on disk
 * when it returns), then the batch's `committed` promises resolve and
 * waiting subscribers wake. An event is acknowledged to its producer only
 * after that, so an acknowledged event survives `kill -9` (and a power
 * loss); an unacknowledged one may or may not be there, and the producer's
 * retry with the same sequence numbers is stored once either way.
 *
 * If a commit fails the store stops (every later call is UNAVAILABLE): its
 * in-memory offsets would no longer match the disk.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Buffer } from 'node:buffer';
import type BetterSqlite3 from 'better-sqlite3';
import { FlowsError } from './errors.js';
import type { AppendResult, FlowStore, NewEvent, PagesOptions, ReadResult, StoredEvent } from './store.js';
import type { FlowAcl, FlowInfo, FlowRetention, TypeFilter } from './wire.js';

type Db = BetterSqlite3.Database;
type Stmt = BetterSqlite3.Statement<unknown[], unknown>;

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file (created with its directory), or `:memory:` (not durable: tests only). */
  path: string;
}

interface Pending {
  flowId: number;
  offset: number;
  stored: number;
  publisher: string;
  producer: string;
  e: NewEvent;
}

interface FlowState {
  id: number;
  name: string;
  description: string;
  created: string;
  acl: FlowAcl;
  retention: FlowRetention;
  /** Offset of the first event kept (retention moves it up). */
  first: number;
  /** Payload octets kept (tracked when `retention.maxBytes` is set). */
  bytes: number;
  /** Offset the next appended event gets. */
  next: number;
  /** Offset after the last committed event. */
  committed: number;
  /** Last stored time (ms), never decreasing. */
  lastStored: number;
  /** Last sequence number per publisher+producer (committed or pending). */
  producers: Map<string, number>;
  /** Pending (uncommitted) rows by publisher+producer+seq: their offset and id. */
  pending: Map<string, { offset: number; id: string }>;
  waiters: Set<() => void>;
  deleted: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS flows (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
  created TEXT NOT NULL, acl TEXT NOT NULL, retention TEXT NOT NULL DEFAULT '{}', hwm INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (
  flow INTEGER NOT NULL, off INTEGER NOT NULL, stored INTEGER NOT NULL,
  publisher TEXT NOT NULL, producer TEXT NOT NULL, seq INTEGER NOT NULL,
  id TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
  time TEXT NOT NULL, ctype TEXT NOT NULL, lang TEXT, text INTEGER NOT NULL, data BLOB NOT NULL, dest TEXT,
  PRIMARY KEY (flow, off)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_producer ON events (flow, publisher, producer, seq);
CREATE INDEX IF NOT EXISTS events_stored ON events (flow, stored);
CREATE TABLE IF NOT EXISTS consumers (
  flow INTEGER NOT NULL, name TEXT NOT NULL, acked INTEGER NOT NULL,
  PRIMARY KEY (flow, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producers (
  flow INTEGER NOT NULL, publisher TEXT NOT NULL, producer TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (flow, publisher, producer)) WITHOUT ROWID;
`;

/** Columns added after the first release: added to an older database at open. */
const MIGRATIONS: readonly [table: string, column: string, ddl: string][] = [
  ['flows', 'retention', "ALTER TABLE flows ADD COLUMN retention TEXT NOT NULL DEFAULT '{}'"],
  ['events', 'dest', 'ALTER TABLE events ADD COLUMN dest TEXT'],
  ['flows', 'hwm', 'ALTER TABLE flows ADD COLUMN hwm INTEGER NOT NULL DEFAULT 0'],
];

const key = (publisher: string, producer: string): string => `${publisher}\u0000${producer}`;

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
  return new SqliteFlowStore(db);
}

/** The SQLite {@link FlowStore}; build it with {@link openSqliteStore}. */
class SqliteFlowStore implements FlowStore {
  readonly kind = 'sqlite';
  private readonly db: Db;
  private readonly flows = new Map<string, FlowState>();
  private readonly byId = new Map<number, FlowState>();
  private queue: Pending[] = [];
  private acks = new Map<string, { flowId: number; name: string; offset: number }>();
  private waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private failed: FlowsError | null = null;
  private closed = false;
  private readonly consumers = new Map<string, number>();
  private readonly insert: Stmt;
  private readonly upsertAck: Stmt;
  private readonly upsertProducer: Stmt;
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly readCache = new Map<string, Stmt>();

  constructor(db: Db) {
    this.db = db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
    for (const [table, column, ddl] of MIGRATIONS) {
      if (!(db.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === column)) db.exec(ddl);
    }
    this.insert = db.prepare('INSERT INTO events (flow, off, stored, publisher, producer, seq, id, ns, name, source, time, ctype, lang, text, data, dest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)');
    this.upsertProducer = db.prepare('INSERT INTO producers (flow, publisher, producer, seq) VALUES (?,?,?,?) ON CONFLICT (flow, publisher, producer) DO UPDATE SET seq = max(seq, excluded.seq)');
    this.upsertAck = db.prepare('INSERT INTO consumers (flow, name, acked) VALUES (?,?,?) ON CONFLICT (flow, name) DO UPDATE SET acked = max(acked, excluded.acked)');
    const rows = db.prepare('SELECT id, name, description, created, acl, retention, hwm FROM flows').all() as { id: number; name: string; description: string; created: string; acl: string; retention: string; hwm: number }[];
    const maxOff = db.prepare('SELECT min(off) AS f, max(off) AS m, max(stored) AS s FROM events WHERE flow = ?');
    const sizes = db.prepare('SELECT coalesce(sum(length(data)), 0) AS b FROM events WHERE flow = ?');
    // Producer state: the producers table, and (a database from before it existed) the events.
    const seqs = db.prepare('SELECT publisher, producer, max(seq) AS s FROM (SELECT publisher, producer, seq FROM producers WHERE flow = @f UNION ALL SELECT publisher, producer, max(seq) FROM events WHERE flow = @f GROUP BY publisher, producer) GROUP BY publisher, producer');
    const cons = db.prepare('SELECT name, acked FROM consumers WHERE flow = ?');
    for (const r of rows) {
      const m = maxOff.get(r.id) as { f: number | null; m: number | null; s: number | null };
      const retention = JSON.parse(r.retention) as FlowRetention;
      const st: FlowState = {
        id: r.id, name: r.name, description: r.description, created: r.created, acl: JSON.parse(r.acl) as FlowAcl, retention,
        first: 1, bytes: retention.maxBytes === undefined ? 0 : (sizes.get(r.id) as { b: number }).b,
        next: 1, committed: 1, lastStored: m.s ?? 0, producers: new Map(), pending: new Map(), waiters: new Set(), deleted: false,
      };
      // After retention removed every event, the next offset is the flow's high-water mark (hwm).
      st.next = st.committed = Math.max(m.m ?? 0, r.hwm) + 1;
      st.first = m.f ?? st.next;
      for (const p of seqs.all({ f: r.id }) as { publisher: string; producer: string; s: number }[]) st.producers.set(key(p.publisher, p.producer), p.s);
      for (const c of cons.all(r.id) as { name: string; acked: number }[]) this.consumers.set(`${r.id}\u0000${c.name}`, c.acked);
      this.flows.set(r.name, st);
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

  private info(f: FlowState): FlowInfo {
    const first = Math.min(f.first, f.committed);
    return { name: f.name, description: f.description, created: f.created, firstOffset: first, nextOffset: f.committed, events: f.committed - first, acl: f.acl, retention: { ...f.retention } };
  }

  async createFlow(name: string, description: string, acl: FlowAcl, retention: FlowRetention = {}): Promise<FlowInfo> {
    this.check();
    if (this.flows.has(name)) throw new FlowsError('FLOW_EXISTS', `flow ${JSON.stringify(name)} exists already`, { details: { flow: name } });
    const created = new Date().toISOString();
    const r = this.db.prepare('INSERT INTO flows (name, description, created, acl, retention) VALUES (?,?,?,?,?)').run(name, description, created, JSON.stringify(acl), JSON.stringify(retention));
    const f: FlowState = {
      id: Number(r.lastInsertRowid), name, description, created, acl, retention: { ...retention }, first: 1, bytes: 0, next: 1, committed: 1, lastStored: 0,
      producers: new Map(), pending: new Map(), waiters: new Set(), deleted: false,
    };
    this.flows.set(name, f);
    this.byId.set(f.id, f);
    return this.info(f);
  }

  async describe(name: string): Promise<FlowInfo | undefined> {
    const f = this.flows.get(name);
    return f ? this.info(f) : undefined;
  }

  async list(): Promise<FlowInfo[]> {
    return [...this.flows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((f) => this.info(f));
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
    for (const [i, e] of events.entries()) {
      if (e.seq <= last) {
        const prior = this.lookup(f, publisher, producer, e.seq);
        if (prior === undefined || prior.id !== e.id) {
          throw new FlowsError('SEQUENCE_CONFLICT', `events[${i}]: sequence number ${e.seq} of producer ${JSON.stringify(producer)} was stored with another event id`, { details: { index: i, seq: e.seq } });
        }
        plan.push(prior.offset);
        duplicates++;
      } else if (e.seq === last + 1) {
        plan.push(e);
        last = e.seq;
      } else {
        throw new FlowsError('SEQUENCE_GAP', `events[${i}]: producer ${JSON.stringify(producer)} sent sequence number ${e.seq}, expected ${last + 1}: events were lost`, { details: { index: i, seq: e.seq, expected: last + 1 } });
      }
    }
    const now = Math.max(Date.now(), f.lastStored);
    f.lastStored = now;
    const offsets: number[] = [];
    for (const p of plan) {
      if (typeof p === 'number') {
        offsets.push(p);
        continue;
      }
      const offset = f.next++;
      this.queue.push({ flowId: f.id, offset, stored: now, publisher, producer, e: p });
      f.pending.set(`${pk}\u0000${p.seq}`, { offset, id: p.id });
      offsets.push(offset);
    }
    f.producers.set(pk, last);
    return { offsets, duplicates };
  }

  private lookup(f: FlowState, publisher: string, producer: string, seq: number): { offset: number; id: string } | undefined {
    const p = f.pending.get(`${key(publisher, producer)}\u0000${seq}`);
    if (p) return p;
    const row = this.db.prepare('SELECT off, id FROM events WHERE flow = ? AND publisher = ? AND producer = ? AND seq = ?').get(f.id, publisher, producer, seq) as { off: number; id: string } | undefined;
    return row ? { offset: row.off, id: row.id } : undefined;
  }

  private commitPromise(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return p;
  }

  /** Write everything queued in one transaction, then settle the waiting promises and wake subscribers. */
  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    const acks = this.acks;
    const waiting = this.waiting;
    this.queue = [];
    this.acks = new Map();
    this.waiting = [];
    if (queue.length === 0 && acks.size === 0) {
      for (const w of waiting) this.failed ? w.reject(this.failed) : w.resolve();
      return;
    }
    try {
      if (this.failed) throw this.failed;
      this.db.transaction(() => {
        for (const q of queue) {
          const e = q.e;
          this.insert.run(q.flowId, q.offset, q.stored, q.publisher, q.producer, e.seq, e.id, e.ns, e.name, e.source, e.time, e.contentType, e.lang ?? null, e.text ? 1 : 0, e.payload, e.to ?? null);
        }
        // The producers' high-water marks, once per producer of the batch (they outlive retention).
        const marks = new Map<string, Pending>();
        for (const q of queue) marks.set(`${q.flowId}\u0000${key(q.publisher, q.producer)}`, q);
        for (const q of marks.values()) this.upsertProducer.run(q.flowId, q.publisher, q.producer, q.e.seq);
        for (const a of acks.values()) this.upsertAck.run(a.flowId, a.name, a.offset);
      })();
    } catch (cause) {
      this.failed ??= new FlowsError('UNAVAILABLE', 'the flow store failed to commit; the server must be restarted', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
      for (const w of waiting) w.reject(this.failed);
      return;
    }
    const touched = new Set<FlowState>();
    for (const q of queue) {
      const f = this.byId.get(q.flowId);
      if (!f) continue;
      f.committed = Math.max(f.committed, q.offset + 1);
      f.pending.delete(`${key(q.publisher, q.producer)}\u0000${q.e.seq}`);
      f.bytes += q.e.payload.length;
      touched.add(f);
    }
    for (const f of touched) if (f.retention.maxBytes !== undefined && f.bytes > f.retention.maxBytes) this.prune(f);
    for (const a of acks.values()) this.consumers.set(`${a.flowId}\u0000${a.name}`, Math.max(this.consumers.get(`${a.flowId}\u0000${a.name}`) ?? 0, a.offset));
    for (const w of waiting) w.resolve();
    for (const f of touched) this.wake(f);
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
    const end = f.committed;
    if (from >= end) return { events: [], next: Math.max(from, 1) };
    let cache = this.pageCache.get(flow);
    if (!cache || cache.committed !== end || cache.first !== f.first) this.pageCache.set(flow, (cache = { committed: end, first: f.first, pages: new Map() }));
    const ck = `${from}\u0000${max}\u0000${filters.map((x) => `${x.ns}\u0000${x.name ?? '*'}`).join('\u0001')}`;
    const hit = cache.pages.get(ck);
    if (hit) return hit;
    const r = this.readUncached(f, from, max, filters, end);
    if (cache.pages.size < 64) cache.pages.set(ck, r);
    return r;
  }

  private readUncached(f: FlowState, from: number, max: number, filters: readonly TypeFilter[], end: number): ReadResult {
    const sig = filters.map((x) => (x.name === undefined ? 'n' : 'e')).join('');
    let stmt = this.readCache.get(sig);
    if (!stmt) {
      const where = filters.length === 0 ? '' : ` AND (${filters.map((x) => (x.name === undefined ? '(ns = ?)' : '(ns = ? AND name = ?)')).join(' OR ')})`;
      stmt = this.db.prepare(`SELECT off, stored, publisher, producer, seq, id, ns, name, source, time, ctype, lang, text, data, dest FROM events WHERE flow = ? AND off >= ? AND off < ?${where} ORDER BY off LIMIT ?`);
      this.readCache.set(sig, stmt);
    }
    const params: unknown[] = [f.id, from, end];
    for (const x of filters) {
      params.push(x.ns);
      if (x.name !== undefined) params.push(x.name);
    }
    params.push(max);
    type Row = { off: number; stored: number; publisher: string; producer: string; seq: number; id: string; ns: string; name: string; source: string; time: string; ctype: string; lang: string | null; text: number; data: Buffer; dest: string | null };
    const rows = stmt.all(...params) as Row[];
    const events = rows.map((r): StoredEvent => {
      const e: StoredEvent = {
        offset: r.off, stored: r.stored, publisher: r.publisher, producer: r.producer, seq: r.seq, id: r.id, ns: r.ns, name: r.name,
        source: r.source, time: r.time, contentType: r.ctype, text: r.text === 1, payload: r.data,
      };
      if (r.lang !== null) e.lang = r.lang;
      if (r.dest !== null) e.to = r.dest;
      return e;
    });
    const last = events[events.length - 1];
    return { events, next: events.length === max && last ? last.offset + 1 : end };
  }

  async *pages(flow: string, from: number, o: PagesOptions): AsyncIterable<ReadResult> {
    let pos = from;
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
      await this.waitFor(flow, pos, o.signal);
      if (!this.flows.has(flow) || this.closed) return;
    }
  }

  async committedNext(flow: string): Promise<number> {
    return this.flow(flow).committed;
  }

  async offsetAtTime(flow: string, ms: number): Promise<number> {
    const f = this.flow(flow);
    const row = this.db.prepare('SELECT min(off) AS o FROM events WHERE flow = ? AND stored >= ? AND off < ?').get(f.id, ms, f.committed) as { o: number | null };
    return row.o ?? f.committed;
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

  private waitFor(flow: string, offset: number, signal: AbortSignal): Promise<void> {
    const f = this.flows.get(flow);
    if (!f || f.deleted || this.closed || this.failed || f.committed > offset || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        f.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      f.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Apply every flow's retention (a timer calls it each second). */
  private pruneAll(): void {
    if (this.closed || this.failed) return;
    for (const f of this.flows.values()) if (f.retention.maxAgeSeconds !== undefined || f.retention.maxBytes !== undefined) this.prune(f);
  }

  /** Remove a flow's committed events that its retention no longer keeps (oldest first); offsets are never reused. */
  private prune(f: FlowState): void {
    let below = f.first;
    const { maxAgeSeconds, maxBytes } = f.retention;
    try {
      if (maxAgeSeconds !== undefined) {
        const row = this.db.prepare('SELECT min(off) AS o FROM events WHERE flow = ? AND off >= ? AND off < ? AND stored >= ?').get(f.id, f.first, f.committed, Date.now() - maxAgeSeconds * 1000) as { o: number | null };
        below = Math.max(below, row.o ?? f.committed);
      }
      let freed = 0;
      if (maxBytes !== undefined && f.bytes > maxBytes) {
        const need = f.bytes - maxBytes;
        const it = this.db.prepare('SELECT off, length(data) AS n FROM events WHERE flow = ? AND off >= ? AND off < ? ORDER BY off').iterate(f.id, f.first, f.committed) as Iterable<{ off: number; n: number }>;
        for (const r of it) {
          if (freed >= need) break;
          freed += r.n;
          below = Math.max(below, r.off + 1);
        }
      }
      if (below <= f.first) return;
      const gone = (maxBytes !== undefined ? this.db.prepare('SELECT coalesce(sum(length(data)), 0) AS b FROM events WHERE flow = ? AND off < ?').get(f.id, below) as { b: number } : { b: 0 }).b;
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM events WHERE flow = ? AND off < ?').run(f.id, below);
        this.db.prepare('UPDATE flows SET hwm = max(hwm, ?) WHERE id = ?').run(f.committed - 1, f.id);
      })();
      f.first = below;
      f.bytes -= gone;
    } catch (cause) {
      this.failed ??= new FlowsError('UNAVAILABLE', 'the flow store failed to apply retention; the server must be restarted', { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    clearInterval(this.pruneTimer);
    this.closed = true;
    for (const f of this.flows.values()) this.wake(f);
    this.db.close();
  }
}
