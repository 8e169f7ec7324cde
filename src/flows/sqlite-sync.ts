/**
 * Durability of the SQLite flow store (`spec/flows.md` §7): pipelined group
 * commit over a WAL database.
 *
 * The store's connection runs with `synchronous=NORMAL` and no automatic
 * checkpoints: a commit is a few `write()`s into the WAL file (in the
 * operating system's page cache, where it survives `kill -9` of the process)
 * and never waits for the disk. Durability against a power loss comes from
 * here: after each commit, `fdatasync` of the WAL file runs on libuv's
 * thread pool (the event loop keeps going), at most one at a time; when it
 * completes, every commit written before it began is on disk and its
 * waiters are settled. Commits made while a sync is in flight wait for the
 * next one, which starts as soon as the previous ends — one sync per commit
 * when the store is idle, one sync for many commits under load (adaptive
 * group commit). This is what `synchronous=FULL` does (sync the WAL before a
 * commit counts), without holding the event loop during the sync.
 *
 * Checkpoints (copying the WAL back into the database file, and syncing
 * it) run on a worker thread with its own connection (`PASSIVE`: writers
 * are never blocked), so they do not stall the event loop either.
 *
 * @module
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';

/** How a sync of the WAL file is done; the default is `fdatasync` on the thread pool. */
export type SyncFn = (fd: number, done: (err: Error | null) => void) => void;

/** What to do once a commit is durable. */
export interface Durable {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Commits of at least this many rows (the store is busy: large batches) are
 * synced at once on the event loop when no sync is in flight, so their
 * replies go this turn rather than after the next turn's work.
 */
const INLINE_ROWS = 100;
/** Rows written since the last checkpoint after which one is asked for without waiting for the timer. */
const CHECKPOINT_ROWS = 20_000;
/** Milliseconds between checkpoints of a store that was written to. */
const CHECKPOINT_MS = 1000;

/**
 * Sync pipeline of one WAL database. `path` `':memory:'`: nothing to sync,
 * every commit is settled at once (tests only).
 */
export class WalSync {
  private fd = -1;
  private readonly wal: string;
  /** Waiting for a sync that has not started yet. */
  private next: Durable[] = [];
  private syncing = false;
  private failed: Error | null = null;
  private closed = false;
  private worker: Worker | null = null;
  private checkpointing = false;
  private rowsSinceCheckpoint = 0;
  private dirty = false;
  private readonly timer: NodeJS.Timeout | undefined;
  /** Syncs done (on the event loop: `inline`), commits written, rows written, checkpoints done. */
  readonly stats = { syncs: 0, inline: 0, commits: 0, rows: 0, checkpoints: 0 };
  /** The synchronous sync for large commits: only with the default `fdatasync`. */
  private readonly inlineSync: ((fd: number) => void) | undefined;

  constructor(
    path: string,
    private readonly syncFn: SyncFn = fdatasync,
    private readonly onFailure: (err: Error) => void = () => undefined,
  ) {
    this.wal = `${path}-wal`;
    this.inlineSync = syncFn === fdatasync ? fdatasyncSync : undefined;
    if (path === ':memory:') return;
    this.fd = openSync(this.wal, 'r+');
    // The WAL file's directory entry must be durable too (a fresh database created it just now).
    try {
      const d = openSync(dirname(path), 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    } catch {
      /* a directory cannot be synced on every platform: the file's data still is */
    }
    this.worker = new Worker(new URL('./sqlite-checkpointer.js', import.meta.url), { workerData: { path } });
    this.worker.unref();
    this.worker.on('message', (m: { ok: boolean; message?: string }) => {
      this.checkpointing = false;
      if (m.ok) this.stats.checkpoints++;
      else this.fail(new Error(`checkpoint failed: ${m.message ?? 'unknown error'}`));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.timer = setInterval(() => this.checkpoint(), CHECKPOINT_MS);
    this.timer.unref();
  }

  /** The first failure (a sync or a checkpoint failed): the store must stop. */
  get error(): Error | null {
    return this.failed;
  }

  /**
   * A commit of `rows` rows was just written: settle `waiters` once it is
   * durable (after a sync that begins from now on).
   */
  written(waiters: Durable[], rows: number): void {
    this.stats.commits++;
    this.stats.rows += rows;
    this.rowsSinceCheckpoint += rows;
    this.dirty = true;
    if (this.rowsSinceCheckpoint >= CHECKPOINT_ROWS) this.checkpoint();
    if (rows >= INLINE_ROWS && this.inlineSync && !this.syncing && this.fd >= 0 && !this.failed) {
      try {
        this.inlineSync(this.fd);
        if (fstatSync(this.fd).nlink === 0) {
          const old = this.fd;
          this.fd = openSync(this.wal, 'r+');
          closeSync(old);
          this.inlineSync(this.fd);
        }
      } catch (err) {
        this.fail(err as Error);
        for (const w of waiters) w.reject(this.failed);
        return;
      }
      this.stats.syncs++;
      this.stats.inline++;
      const all = [...this.next, ...waiters];
      this.next = [];
      for (const w of all) w.resolve();
      return;
    }
    this.after(waiters);
  }

  /** Settle `waiters` once everything written so far is durable. */
  after(waiters: Durable[]): void {
    if (this.failed) {
      for (const w of waiters) w.reject(this.failed);
      return;
    }
    if (this.fd < 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    for (const w of waiters) this.next.push(w);
    if (!this.syncing && this.next.length > 0) this.start();
  }

  /** Resolves once everything written so far is durable. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => this.after([{ resolve, reject }]));
  }

  private start(): void {
    const batch = this.next;
    this.next = [];
    this.syncing = true;
    this.syncOnce((err) => {
      this.syncing = false;
      if (err) {
        this.fail(err);
        for (const w of batch) w.reject(this.failed);
        return;
      }
      this.stats.syncs++;
      for (const w of batch) w.resolve();
      if (this.next.length > 0) this.start();
    });
  }

  /** fdatasync the WAL; if SQLite replaced the file meanwhile (its old one unlinked), sync the new one too. */
  private syncOnce(done: (err: Error | null) => void): void {
    const fd = this.fd;
    this.syncFn(fd, (err) => {
      if (err) return done(err);
      // fstat of an open descriptor is a few µs: done here, not as another trip through the thread pool (a turn of latency under load).
      try {
        if (fstatSync(fd).nlink > 0) return done(null);
        this.fd = openSync(this.wal, 'r+');
        closeSync(fd);
      } catch (e3) {
        return done(e3 as Error);
      }
      this.syncOnce(done);
    });
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    const pending = this.next;
    this.next = [];
    for (const w of pending) w.reject(err);
    this.onFailure(err);
  }

  /** Ask the worker for a PASSIVE checkpoint if anything was written since the last one. */
  private checkpoint(): void {
    if (!this.worker || this.checkpointing || !this.dirty || this.closed || this.failed) return;
    this.checkpointing = true;
    this.dirty = false;
    this.rowsSinceCheckpoint = 0;
    this.worker.postMessage('checkpoint');
  }

  /** Wait for the syncs in flight (a last one for what is written), stop the worker, close the WAL descriptor. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failed && this.fd >= 0) await this.sync().catch(() => undefined);
    this.closed = true;
    clearInterval(this.timer);
    if (this.worker) await this.worker.terminate().catch(() => undefined);
    this.worker = null;
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
