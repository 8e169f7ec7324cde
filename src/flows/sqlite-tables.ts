/**
 * The SQL side of the SQLite flow store (`sqlite-store.ts`, `spec/flows.md`
 * §7): the schema and its migrations, the in-memory state of a flow and how
 * it is rebuilt from the tables at open, reading a page of events, and
 * retention's deletes. The store keeps the group commit and everything
 * in memory; these functions only talk to the database.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import type BetterSqlite3 from 'better-sqlite3';
import type { ReadResult, StoredEvent } from './store.js';
import type { FlowAcl, FlowRetention, TypeFilter } from './wire.js';

/** @internal */
export type Db = BetterSqlite3.Database;
/** @internal */
export type Stmt = BetterSqlite3.Statement<unknown[], unknown>;

/** @internal The new events of one append, waiting for the next group commit (consecutive offsets and sequence numbers). */
export interface Pending {
  f: FlowState;
  events: StoredEvent[];
}

/** @internal What the store keeps in memory about a flow. */
export interface FlowState {
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
  /** Offset after the last event written (committed to the WAL). */
  committed: number;
  /** Offset after the last event on disk (synced). */
  durable: number;
  /** Last stored time (ms), never decreasing. */
  lastStored: number;
  /** Last sequence number per publisher+producer (committed or pending). */
  producers: Map<string, number>;
  /** Pending (uncommitted) events by publisher+producer: consecutive sequence numbers, oldest first. */
  pending: Map<string, StoredEvent[]>;
  /** The last events written, contiguous offsets, oldest first (bounded): fresh pages are read from here, not from the database. */
  recent: StoredEvent[];
  /** Payload octets in `recent`. */
  recentBytes: number;
  waiters: Set<() => void>;
  deleted: boolean;
}

/** @internal */
export const SCHEMA = `
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

/** @internal Key of a producer of a publisher. */
export const key = (publisher: string, producer: string): string => `${publisher}\u0000${producer}`;

/** @internal Create the tables (and add columns an older database lacks; drop what is no longer used). */
export function createSchema(db: Db): void {
  db.exec(SCHEMA);
  // Stored times never decrease along a flow's offsets: a time is found by binary search on the primary key (firstAtOrAfter), not through an index each insert must keep.
  db.exec('DROP INDEX IF EXISTS events_stored');
  for (const [table, column, ddl] of MIGRATIONS) {
    if (!(db.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === column)) db.exec(ddl);
  }
}

/**
 * @internal Rebuild every flow's state from the tables: next offsets (the
 * high-water mark once retention removed every event), producer sequence
 * numbers, consumer positions (into `consumers`, by flow id NUL name).
 */
export function loadFlows(db: Db, consumers: Map<string, number>): FlowState[] {
  const rows = db.prepare('SELECT id, name, description, created, acl, retention, hwm FROM flows').all() as { id: number; name: string; description: string; created: string; acl: string; retention: string; hwm: number }[];
  const maxOff = db.prepare('SELECT min(off) AS f, max(off) AS m, max(stored) AS s FROM events WHERE flow = ?');
  const sizes = db.prepare('SELECT coalesce(sum(length(data)), 0) AS b FROM events WHERE flow = ?');
  // Producer state: the producers table, and (a database from before it existed) the events.
  const seqs = db.prepare('SELECT publisher, producer, max(seq) AS s FROM (SELECT publisher, producer, seq FROM producers WHERE flow = @f UNION ALL SELECT publisher, producer, max(seq) FROM events WHERE flow = @f GROUP BY publisher, producer) GROUP BY publisher, producer');
  const cons = db.prepare('SELECT name, acked FROM consumers WHERE flow = ?');
  const out: FlowState[] = [];
  for (const r of rows) {
    const m = maxOff.get(r.id) as { f: number | null; m: number | null; s: number | null };
    const retention = JSON.parse(r.retention) as FlowRetention;
    const next = Math.max(m.m ?? 0, r.hwm) + 1;
    const st: FlowState = {
      id: r.id, name: r.name, description: r.description, created: r.created, acl: JSON.parse(r.acl) as FlowAcl, retention,
      first: m.f ?? next, bytes: retention.maxBytes === undefined ? 0 : (sizes.get(r.id) as { b: number }).b,
      next, committed: next, durable: next, lastStored: m.s ?? 0, producers: new Map(), pending: new Map(), recent: [], recentBytes: 0, waiters: new Set(), deleted: false,
    };
    for (const p of seqs.all({ f: r.id }) as { publisher: string; producer: string; s: number }[]) st.producers.set(key(p.publisher, p.producer), p.s);
    for (const c of cons.all(r.id) as { name: string; acked: number }[]) consumers.set(`${r.id}\u0000${c.name}`, c.acked);
    out.push(st);
  }
  return out;
}

type Row = { off: number; stored: number; publisher: string; producer: string; seq: number; id: string; ns: string; name: string; source: string; time: string; ctype: string; lang: string | null; text: number; data: Buffer; dest: string | null };

/** @internal Up to `max` events of flow `f` in [from, end) passing `filters`; statements cached in `stmts` by filter shape. */
export function readEvents(db: Db, stmts: Map<string, Stmt>, f: FlowState, from: number, max: number, filters: readonly TypeFilter[], end: number): ReadResult {
  const sig = filters.map((x) => (x.name === undefined ? 'n' : 'e')).join('');
  let stmt = stmts.get(sig);
  if (!stmt) {
    const where = filters.length === 0 ? '' : ` AND (${filters.map((x) => (x.name === undefined ? '(ns = ?)' : '(ns = ? AND name = ?)')).join(' OR ')})`;
    stmt = db.prepare(`SELECT off, stored, publisher, producer, seq, id, ns, name, source, time, ctype, lang, text, data, dest FROM events WHERE flow = ? AND off >= ? AND off < ?${where} ORDER BY off LIMIT ?`);
    stmts.set(sig, stmt);
  }
  const params: unknown[] = [f.id, from, end];
  for (const x of filters) {
    params.push(x.ns);
    if (x.name !== undefined) params.push(x.name);
  }
  params.push(max);
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

/**
 * @internal The first offset of flow `f` below `end` whose event was stored
 * at or after `ms` (ms since the epoch), or `end`: a binary search over the
 * primary key, as stored times never decrease along a flow's offsets (the
 * store stamps each event with max(now, the last stamp)).
 */
export function firstAtOrAfter(db: Db, f: FlowState, ms: number, end: number): number {
  const at = db.prepare('SELECT off, stored FROM events WHERE flow = ? AND off >= ? ORDER BY off LIMIT 1');
  let lo = f.first;
  let hi = end;
  // Invariant: every event below lo was stored before ms; the answer is at most hi.
  for (let guard = 0; lo < hi && guard < 64; guard++) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const row = at.get(f.id, mid) as { off: number; stored: number } | undefined;
    if (!row || row.off >= hi || row.stored >= ms) hi = mid;
    else lo = row.off + 1;
  }
  return lo;
}

/**
 * @internal Remove flow `f`'s written events that its retention no longer
 * keeps (oldest first), in one transaction, and move `f.first`; the flow's
 * high-water mark is kept so offsets are never reused. Throws what SQLite throws.
 */
export function pruneFlow(db: Db, f: FlowState): void {
  let below = f.first;
  const { maxAgeSeconds, maxBytes } = f.retention;
  if (maxAgeSeconds !== undefined) below = Math.max(below, firstAtOrAfter(db, f, Date.now() - maxAgeSeconds * 1000, f.committed));
  let freed = 0;
  if (maxBytes !== undefined && f.bytes > maxBytes) {
    const need = f.bytes - maxBytes;
    const it = db.prepare('SELECT off, length(data) AS n FROM events WHERE flow = ? AND off >= ? AND off < ? ORDER BY off').iterate(f.id, f.first, f.committed) as Iterable<{ off: number; n: number }>;
    for (const r of it) {
      if (freed >= need) break;
      freed += r.n;
      below = Math.max(below, r.off + 1);
    }
  }
  if (below <= f.first) return;
  const gone = (maxBytes !== undefined ? db.prepare('SELECT coalesce(sum(length(data)), 0) AS b FROM events WHERE flow = ? AND off < ?').get(f.id, below) as { b: number } : { b: 0 }).b;
  db.transaction(() => {
    db.prepare('DELETE FROM events WHERE flow = ? AND off < ?').run(f.id, below);
    db.prepare('UPDATE flows SET hwm = max(hwm, ?) WHERE id = ?').run(f.committed - 1, f.id);
  })();
  f.first = below;
  f.bytes -= gone;
}
