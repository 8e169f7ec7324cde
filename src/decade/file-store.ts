/**
 * The embedded DECADE store: content-addressed files on disk, metadata and
 * the token ledger in SQLite (better-sqlite3).
 *
 * ```
 * DIR/blobs/ab/ab12…ef   one file per distinct content, named by its SHA-256 (hex)
 * DIR/tmp/*.part          octets of PUTs under way; swept at open (a kill -9 leaks nothing)
 * DIR/meta.sqlite         objects (account, digest, size, type, times, counters), tokens
 * ```
 *
 * A write goes to `tmp/`, is fsynced, renamed into `blobs/` (the shard
 * directory fsynced too) and only then recorded in SQLite (synchronous
 * FULL): a crash before the record leaves an orphan blob, which
 * {@link FileStore.open} removes; a crash before the rename leaves a temporary
 * file, also removed. An object is never visible partially.
 *
 * @module
 */
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Database from 'better-sqlite3';
import { DecadeError } from './errors.js';
import { Pins, type BlobWriter, type DecadeStore, type NewObject, type ObjectRecord, type OpenReport, type TokenCharge, type TokenUse, type WriterOptions } from './store.js';
import { DirectBlobWriter, readWritten } from './direct-writer.js';
import { openFileReader, type PositionalReader } from './slabs.js';

const HEX = /^[0-9a-f]{64}$/;

function checkHex(hex: string): void {
  if (!HEX.test(hex)) throw new DecadeError('INVALID_NAME', 'a digest is 64 lower-case hex digits');
}

async function fsyncDir(path: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch {
    /* some file systems refuse fsync on a directory; the rename is still atomic */
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Octets a writer holds in memory before `write` waits for the disk (they go out in one `writev`). */
const WRITE_HIGH_WATER = 4 * 1024 * 1024;
/** Buffers per `writev` (below IOV_MAX). */
const IOV_MAX = 512;
/**
 * Octets written between background `fdatasync`s: the kernel writes a large
 * object back while it streams, so the fsync at commit finds little left to
 * do (an object is still durable only once committed).
 */
const SYNC_EVERY = 32 * 1024 * 1024;

/**
 * Writes to a temporary file. `write` queues the chunk and returns at once
 * while fewer than {@link WRITE_HIGH_WATER} octets wait; one loop writes what
 * has queued with `writev` (so the receiver keeps reading while the disk
 * writes) and starts an `fdatasync` every {@link SYNC_EVERY} octets.
 */
class FileBlobWriter implements BlobWriter {
  /** Octets in the file (readable back). */
  written = 0;
  onWritten: (() => void) | undefined;
  private done = false;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private flushing: Promise<void> | null = null;
  private syncing: Promise<void> | null = null;
  private synced = 0;
  private failure: unknown = null;
  private space: (() => void) | null = null;

  constructor(readonly path: string, readonly fh: FileHandle) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new DecadeError('NOT_AVAILABLE', 'the write was aborted');
    if (this.failure !== null) throw this.failure;
    if (chunk.byteLength === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.byteLength;
    this.flushing ??= this.flush();
    while (this.queued >= WRITE_HIGH_WATER && this.failure === null && !this.done) await new Promise<void>((r) => (this.space = r));
    if (this.failure !== null) throw this.failure;
  }

  private wake(): void {
    const w = this.space;
    this.space = null;
    w?.();
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.done) {
        const bufs = this.queue.splice(0, IOV_MAX);
        const n = bufs.reduce((a, b) => a + b.byteLength, 0);
        this.queued -= n;
        this.wake();
        await this.writeAll(bufs, n);
        this.written += n;
        this.onWritten?.();
        if (this.written - this.synced >= SYNC_EVERY && this.syncing === null) {
          const upTo = this.written;
          this.syncing = this.fh.datasync().then(
            () => {
              this.synced = upTo;
              this.syncing = null;
            },
            () => {
              this.syncing = null; // the fsync at commit reports it
            },
          );
        }
      }
    } catch (err) {
      this.failure = err;
    } finally {
      this.flushing = null;
      this.wake();
    }
  }

  private async writeAll(bufs: Uint8Array[], n: number): Promise<void> {
    let pos = this.written;
    let left = n;
    let rest = bufs;
    while (left > 0) {
      const { bytesWritten } = await this.fh.writev(rest, pos);
      pos += bytesWritten;
      left -= bytesWritten;
      if (left <= 0) break;
      // A short write: go on from where it stopped.
      let skip = bytesWritten;
      const next: Uint8Array[] = [];
      for (const b of rest) {
        if (skip >= b.byteLength) skip -= b.byteLength;
        else {
          next.push(skip > 0 ? b.subarray(skip) : b);
          skip = 0;
        }
      }
      rest = next;
    }
  }

  /** Until every queued octet is in the file (or writing failed). */
  private async drained(): Promise<void> {
    while (this.flushing !== null) await this.flushing;
    if (this.failure !== null) throw this.failure;
  }

  read(into: Uint8Array, position: number): Promise<number> {
    return readWritten(this.fh, this.written, into, position);
  }

  /** @internal write out what is queued, fsync and close; the file stays where it is. */
  async seal(): Promise<void> {
    if (this.done) throw new DecadeError('NOT_AVAILABLE', 'the write was aborted');
    await this.drained();
    this.done = true;
    await this.syncing;
    await this.fh.sync();
    await this.fh.close();
  }

  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      this.wake();
      await this.flushing;
      await this.syncing;
      await this.fh.close().catch(() => undefined);
    }
    await unlink(this.path).catch(() => undefined);
  }
}

/** Options of {@link FileStore}. */
export interface FileStoreOptions {
  /** The directory (created if missing). */
  dir: string;
  /**
   * Honour `createWriter`'s `bypassCache` hint with `O_DIRECT` writes
   * (`direct-writer.ts`) where the file system allows them (default true).
   */
  directWrites?: boolean;
}

/** Content-addressed files plus SQLite metadata; see the module documentation. */
export class FileStore implements DecadeStore {
  /** The store's directory. */
  readonly dir: string;
  private db: Database.Database | null = null;
  /** Digests being committed: their blob must not be removed meanwhile. */
  private readonly pinned = new Pins();

  private readonly directWrites: boolean;

  constructor(options: FileStoreOptions) {
    this.dir = options.dir;
    this.directWrites = options.directWrites ?? true;
  }

  private get blobs(): string {
    return join(this.dir, 'blobs');
  }

  private get tmp(): string {
    return join(this.dir, 'tmp');
  }

  /** Path of a stored blob. */
  blobPath(hex: string): string {
    checkHex(hex);
    return join(this.blobs, hex.slice(0, 2), hex);
  }

  private get sql(): Database.Database {
    if (this.db === null) throw new DecadeError('NOT_AVAILABLE', 'the store is not open');
    return this.db;
  }

  async open(now = Date.now()): Promise<OpenReport> {
    await mkdir(this.blobs, { recursive: true });
    await mkdir(this.tmp, { recursive: true });
    // Loaded here, not at import: the package's other commands never need the native module.
    const { default: Sqlite } = await import('better-sqlite3');
    const db = new Sqlite(join(this.dir, 'meta.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        account TEXT NOT NULL, hex TEXT NOT NULL, size INTEGER NOT NULL, type TEXT NOT NULL,
        created INTEGER NOT NULL, expires INTEGER, gets INTEGER NOT NULL DEFAULT 0, puts INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (account, hex));
      CREATE INDEX IF NOT EXISTS objects_hex ON objects (hex);
      CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, account TEXT NOT NULL, expires INTEGER NOT NULL,
        used INTEGER NOT NULL DEFAULT 0, uses INTEGER NOT NULL DEFAULT 0);`);
    this.db = db;
    const report: OpenReport = { tempFiles: 0, tempOctets: 0, orphans: 0 };
    // Interrupted writes (a crash, kill -9): their temporary files go.
    for (const f of await readdir(this.tmp)) {
      const p = join(this.tmp, f);
      const s = await stat(p).catch(() => null);
      await rm(p, { force: true, recursive: true });
      report.tempFiles++;
      report.tempOctets += s?.size ?? 0;
    }
    // Tokens past expiry are refused anyway: their ledger entries can go (a minute's slack for clock skew).
    db.prepare('DELETE FROM tokens WHERE expires < ?').run(Math.floor(now / 1000) - 60);
    db.prepare('DELETE FROM objects WHERE expires IS NOT NULL AND expires <= ?').run(now);
    // Blobs no reference holds (a crash between rename and record, or expired objects).
    const referenced = db.prepare('SELECT 1 FROM objects WHERE hex = ? LIMIT 1');
    for (const shard of await readdir(this.blobs)) {
      const sp = join(this.blobs, shard);
      for (const f of await readdir(sp).catch(() => [] as string[])) {
        if (!HEX.test(f) || referenced.get(f) === undefined) {
          await rm(join(sp, f), { force: true });
          report.orphans++;
        }
      }
    }
    return report;
  }

  /** A writer to a temporary file; with `bypassCache` (and `directWrites`), one writing around the page cache where it can. */
  async createWriter(_hex: string, options: WriterOptions = {}): Promise<BlobWriter> {
    this.sql;
    const path = join(this.tmp, `${randomBytes(12).toString('hex')}.part`);
    const fh = await open(path, 'wx+', 0o600);
    if (options.bypassCache === true && this.directWrites) {
      const direct = await DirectBlobWriter.open(path, fh);
      if (direct !== null) return direct;
    }
    return new FileBlobWriter(path, fh);
  }

  async commit(writer: BlobWriter, record: NewObject): Promise<{ fresh: boolean }> {
    if (!(writer instanceof FileBlobWriter) && !(writer instanceof DirectBlobWriter)) throw new TypeError('not a writer of this store');
    checkHex(record.hex);
    this.pinned.add(record.hex, 1);
    try {
      await writer.seal();
      const dest = this.blobPath(record.hex);
      const exists = await stat(dest).then(() => true, () => false);
      if (exists) {
        // Identical content is stored once: keep the copy already there.
        await unlink(writer.path).catch(() => undefined);
      } else {
        await mkdir(join(this.blobs, record.hex.slice(0, 2)), { recursive: true });
        await rename(writer.path, dest);
        await fsyncDir(join(this.blobs, record.hex.slice(0, 2)));
      }
      const db = this.sql;
      const fresh = db.transaction((): boolean => {
        const had = db.prepare('SELECT expires FROM objects WHERE account = ? AND hex = ?').get(record.account, record.hex) as { expires: number | null } | undefined;
        if (had !== undefined && (had.expires === null || had.expires > record.created)) {
          // Re-PUT: keep the longer life.
          const expires = had.expires === null || record.expires === null ? null : Math.max(had.expires, record.expires);
          db.prepare('UPDATE objects SET puts = puts + 1, expires = ? WHERE account = ? AND hex = ?').run(expires, record.account, record.hex);
          return false;
        }
        db.prepare('INSERT OR REPLACE INTO objects (account, hex, size, type, created, expires, gets, puts) VALUES (?, ?, ?, ?, ?, ?, 0, 1)')
          .run(record.account, record.hex, record.size, record.type, record.created, record.expires);
        return true;
      })();
      return { fresh };
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      this.pinned.add(record.hex, -1);
    }
  }

  async get(account: string, hex: string, now = Date.now()): Promise<ObjectRecord | undefined> {
    return this.sql.prepare('SELECT * FROM objects WHERE account = ? AND hex = ? AND (expires IS NULL OR expires > ?)').get(account, hex, now) as ObjectRecord | undefined;
  }

  async list(account: string, limit: number, now = Date.now()): Promise<ObjectRecord[]> {
    return this.sql.prepare('SELECT * FROM objects WHERE account = ? AND (expires IS NULL OR expires > ?) ORDER BY created, hex LIMIT ?').all(account, now, limit) as ObjectRecord[];
  }

  async usage(account: string, now = Date.now()): Promise<number> {
    const r = this.sql.prepare('SELECT COALESCE(SUM(size), 0) AS used FROM objects WHERE account = ? AND (expires IS NULL OR expires > ?)').get(account, now) as { used: number };
    return r.used;
  }

  read(hex: string, offset: number, length: number): Readable {
    if (length === 0) return Readable.from([]);
    return createReadStream(this.blobPath(hex), { start: offset, end: offset + length - 1, highWaterMark: 256 * 1024 });
  }

  /** The blob opened read-only, for GETs into recycled slabs ({@link DecadeStore.openReader}). */
  openReader(hex: string): Promise<PositionalReader> {
    checkHex(hex);
    return openFileReader(this.blobPath(hex));
  }

  async countGet(account: string, hex: string): Promise<void> {
    this.sql.prepare('UPDATE objects SET gets = gets + 1 WHERE account = ? AND hex = ?').run(account, hex);
  }

  async remove(account: string, hex: string): Promise<boolean> {
    checkHex(hex);
    const db = this.sql;
    const { changes } = db.prepare('DELETE FROM objects WHERE account = ? AND hex = ?').run(account, hex);
    if (changes === 0) return false;
    const still = db.prepare('SELECT 1 FROM objects WHERE hex = ? LIMIT 1').get(hex);
    if (still === undefined && !this.pinned.has(hex)) await rm(this.blobPath(hex), { force: true });
    return true;
  }

  async chargeToken(use: TokenUse, octets: number): Promise<TokenCharge> {
    const db = this.sql;
    return db.transaction((): TokenCharge => {
      const row = db.prepare('SELECT used, uses FROM tokens WHERE id = ?').get(use.id) as { used: number; uses: number } | undefined;
      if (use.once && row !== undefined && row.uses > 0) return 'replayed';
      const used = row?.used ?? 0;
      if (use.budget !== null && used + octets > use.budget) return 'budget';
      db.prepare('INSERT INTO tokens (id, account, expires, used, uses) VALUES (?, ?, ?, ?, 1) ON CONFLICT (id) DO UPDATE SET used = used + excluded.used, uses = uses + 1')
        .run(use.id, use.account, use.expires, octets);
      return 'ok';
    })();
  }

  async refundToken(id: string, octets: number): Promise<void> {
    if (octets > 0) this.sql.prepare('UPDATE tokens SET used = MAX(0, used - ?) WHERE id = ?').run(octets, id);
  }

  async tokenUsed(id: string): Promise<number> {
    const r = this.sql.prepare('SELECT used FROM tokens WHERE id = ?').get(id) as { used: number } | undefined;
    return r?.used ?? 0;
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = null;
  }
}
