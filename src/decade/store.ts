/**
 * The storage interface of a DECADE server: immutable objects by content
 * digest, their per-account metadata, and the token ledger (byte budgets,
 * single use). The embedded default is {@link FileStore} (`file-store.ts`):
 * content-addressed files and SQLite. Another backend (e.g. an object store
 * beyond one machine) implements the same interface.
 *
 * Invariants every backend keeps: an object becomes visible only once all of
 * its octets are durably stored under its digest (never a partial object);
 * identical content is stored once however many accounts hold it; a crash at
 * any point leaves no visible partial object, and {@link DecadeStore.open}
 * reclaims whatever space an interrupted write held. Every method that may
 * reach a server (or a disk) is asynchronous: a backend beyond one machine
 * (`jetstream-store.ts`, NATS JetStream) answers over the network.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import type { PositionalReader } from './slabs.js';

/** One account's reference to an object. */
export interface ObjectRecord {
  account: string;
  /** SHA-256 digest, lower-case hex. */
  hex: string;
  size: number;
  /** MIME type given at PUT. */
  type: string;
  /** ms since the epoch. */
  created: number;
  /** ms since the epoch; null: never expires. */
  expires: number | null;
  gets: number;
  puts: number;
}

/** What a new object reference carries. */
export type NewObject = Omit<ObjectRecord, 'gets' | 'puts'>;

/** Octets being written to temporary space, not yet an object. */
export interface BlobWriter {
  /** Octets written so far. */
  readonly written: number;
  /**
   * Append octets. It may resolve before they reach the file (a writer may
   * batch them; `written` counts what is readable back); it rejects once
   * writing failed. Durability comes at commit. The caller does not modify
   * the chunk until `written` has passed its last octet (then the writer
   * holds no reference to it: staging buffers are reused on that rule).
   */
  write(chunk: Uint8Array): Promise<void>;
  /** Called (if set) whenever `written` grows: readers of the upload wake up. */
  onWritten?: (() => void) | undefined;
  /** Read back octets already written (a GET served while the PUT streams). */
  read(into: Uint8Array, position: number): Promise<number>;
  /** Drop the octets; nothing becomes visible. Idempotent. */
  abort(): Promise<void>;
}

/** Hints for {@link DecadeStore.createWriter}; a store may ignore them. */
export interface WriterOptions {
  /**
   * The octets will not be read again soon (a relay's copy of an object it
   * fetched): a store may write them around its cache. `FileStore` writes
   * them with `O_DIRECT` where the file system allows it.
   */
  bypassCache?: boolean;
}

/** What {@link DecadeStore.open} found and reclaimed. */
export interface OpenReport {
  /** Temporary files of interrupted writes removed. */
  tempFiles: number;
  /** Octets they held. */
  tempOctets: number;
  /** Stored blobs no account referenced any more (e.g. a crash between store and record), removed. */
  orphans: number;
}

/** Outcome of charging a token. */
export type TokenCharge = 'ok' | 'replayed' | 'budget';

/** A token's ledger entry, as the store keeps it. */
export interface TokenUse {
  /** Token id (`jti`). */
  id: string;
  account: string;
  /** Expiry, seconds since the epoch (the entry may be dropped after it). */
  expires: number;
  /** Single use. */
  once: boolean;
  /** Its byte budget; null: unlimited. */
  budget: number | null;
}

/** The storage behind a DECADE server. */
export interface DecadeStore {
  /** Prepare the store: create what is missing, sweep temporary space, drop expired objects and orphan blobs. */
  open(now?: number): Promise<OpenReport>;
  /**
   * Start writing the octets of the object whose digest is `hex` (lower-case
   * SHA-256 hex; not yet verified) to temporary space.
   */
  createWriter(hex: string, options?: WriterOptions): Promise<BlobWriter>;
  /**
   * Make the written octets the object `record.hex` of `record.account`:
   * durably stored (fsynced, renamed into place; if the content is stored
   * already the new copy is dropped) and then recorded. `fresh` is false when
   * the account already held it (its PUT count goes up).
   */
  commit(writer: BlobWriter, record: NewObject): Promise<{ fresh: boolean }>;
  /** One account's reference to an object, unless absent or expired. */
  get(account: string, hex: string, now?: number): Promise<ObjectRecord | undefined>;
  /** An account's objects (unexpired), oldest first, at most `limit`. */
  list(account: string, limit: number, now?: number): Promise<ObjectRecord[]>;
  /** Octets an account's unexpired objects take. */
  usage(account: string, now?: number): Promise<number>;
  /**
   * Read `length` octets from `offset` of a stored object. The stream is
   * returned at once and fetches lazily; a failure (the blob is gone, the
   * server is unreachable) is the stream's error.
   */
  read(hex: string, offset: number, length: number): Readable;
  /**
   * Optional: the stored object `hex` opened for positional reads. With it,
   * a GET reads the object into recycled slabs (src/decade/slabs.ts) instead
   * of through {@link read}'s stream of fresh buffers. Rejects if the blob is
   * gone.
   */
  openReader?(hex: string): Promise<PositionalReader>;
  /** Count a successful GET. */
  countGet(account: string, hex: string): Promise<void>;
  /** Drop an account's reference; the blob goes with its last reference. False if it held none. */
  remove(account: string, hex: string): Promise<boolean>;
  /**
   * Charge a token for one operation moving `octets`, atomically: refuse a
   * single-use token seen before (`replayed`), or a charge beyond its budget
   * (`budget`, nothing charged); else record the use.
   */
  chargeToken(use: TokenUse, octets: number, now?: number): Promise<TokenCharge>;
  /** Give back octets charged for an operation that moved fewer. */
  refundToken(id: string, octets: number): Promise<void>;
  /** Octets charged to a token so far (0 if never seen). */
  tokenUsed(id: string): Promise<number>;
  /** Release the store. */
  close(): Promise<void>;
}

/**
 * @internal Digests of objects being written: a delete that finds the last
 * reference gone leaves the blob alone while a write of the same content is
 * under way. Counted, for writes of one content at once.
 */
export class Pins {
  private readonly n = new Map<string, number>();

  /** A write of `hex` begins (+1) or ends (-1). */
  add(hex: string, d: 1 | -1): void {
    const n = (this.n.get(hex) ?? 0) + d;
    if (n <= 0) this.n.delete(hex);
    else this.n.set(hex, n);
  }

  has(hex: string): boolean {
    return this.n.has(hex);
  }
}
