/**
 * PUTs under way, so that a GET of an object still being uploaded is served
 * as its octets arrive (draft-ietf-decade-arch-03: a server MUST be able to
 * serve an object while it is still being written).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { BlobWriter, DecadeStore } from './store.js';
import { NameVerifier, type ContentName } from './names.js';
import { DecadeError, isDecadeError } from './errors.js';
import { chunksOf } from './streams.js';
import { Stager } from './staging.js';

/** Life of an upload: streaming, then committing (sealing and renaming), then done or failed. */
export type UploadState = 'streaming' | 'committing' | 'done' | 'failed';

/** Octets of the latest chunks an upload keeps in memory for readers that keep up. */
export const RECENT_OCTETS = 8 * 1024 * 1024;

/** One PUT under way. */
export class Upload {
  state: UploadState = 'streaming';
  error: DecadeError | undefined;
  /** Octets received so far (in memory or in the file). */
  received = 0;
  /** Readers ({@link readUpload}) under way: chunks are kept in memory only for them. */
  readers = 0;
  /** The latest chunks (at most about {@link RECENT_OCTETS}), oldest first, with their offsets. */
  private readonly recent: { at: number; chunk: Buffer }[] = [];
  private recentOctets = 0;
  /**
   * Called when a first reader joins: octets a writer holds back (staged, not
   * yet in `writer.written`) must be handed on now, as a reader that joins
   * late reads what it missed from the file.
   */
  onReader: (() => void) | undefined;
  private wake: (() => void) | null = null;
  private next: Promise<void> | null = null;

  constructor(
    readonly account: string,
    readonly hex: string,
    readonly size: number,
    readonly type: string,
    readonly writer: BlobWriter,
  ) {
    writer.onWritten = () => this.notify();
  }

  /** Resolves on the next change (octets written, state changed). */
  changed(): Promise<void> {
    this.next ??= new Promise<void>((r) => (this.wake = r));
    return this.next;
  }

  /** Tell waiting readers something changed. */
  notify(): void {
    const w = this.wake;
    this.wake = null;
    this.next = null;
    w?.();
  }

  /**
   * A chunk arrived (verified as part of the running hash, on its way to the file): readers that
   * keep up take it from memory, with no file read. The chunk must not change afterwards.
   */
  push(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    if (this.readers === 0) {
      // Nobody reads along: hold nothing (a reader that comes later starts from the file).
      this.received += chunk.byteLength;
      if (this.recent.length > 0) {
        this.recent.length = 0;
        this.recentOctets = 0;
      }
      return;
    }
    this.recent.push({ at: this.received, chunk });
    this.received += chunk.byteLength;
    this.recentOctets += chunk.byteLength;
    while (this.recent.length > 1 && this.recentOctets - (this.recent[0] as { chunk: Buffer }).chunk.byteLength >= RECENT_OCTETS) {
      this.recentOctets -= (this.recent.shift() as { chunk: Buffer }).chunk.byteLength;
    }
    this.notify();
  }

  /** The octets from `pos` (up to `end`) still held in memory, or null. */
  fromMemory(pos: number, end: number): Buffer | null {
    const r = this.recent;
    if (r.length === 0 || pos < (r[0] as { at: number }).at || pos >= this.received) return null;
    // Readers are mostly at the tail: search from the newest chunk.
    for (let i = r.length - 1; i >= 0; i--) {
      const { at, chunk } = r[i] as { at: number; chunk: Buffer };
      if (pos >= at) return chunk.subarray(pos - at, Math.min(chunk.byteLength, end - at));
    }
    return null;
  }

  /** Move to a new state and tell readers. */
  set(state: UploadState, error?: DecadeError): void {
    this.state = state;
    if (error) this.error = error;
    if (state === 'done' || state === 'failed') {
      this.recent.length = 0;
      this.recentOctets = 0;
    }
    this.notify();
  }
}

/** Octets a reader of an upload gathers into one batch (one frame of DECADE_LIMITS) before it writes them on. */
export const BATCH_OCTETS = 256 * 1024;
/** Most octets of one batch (several frames, queued in one turn). */
const MAX_BATCH = 1024 * 1024;
/** How long a reader that has fewer than {@link BATCH_OCTETS} waits for more before it passes on what it has (ms). */
const LINGER_MS = 2;

/**
 * Read `length` octets from `offset` of an upload as they arrive, in batches:
 * from memory (views of the received chunks, no copy) while the reader keeps
 * up, else from its temporary file, and from the store once committed. The
 * first batch goes at once (time to first octet); later ones gather at least
 * {@link BATCH_OCTETS} (or wait at most a couple of milliseconds), so the
 * octets of many small received chunks leave as one frame instead of one
 * frame each. Throws the upload's error if it fails (the octets so far were
 * not the object); ends only once the upload is verified, so a range served
 * early is still vouched for.
 */
export async function* readUpload(u: Upload, store: DecadeStore, offset: number, length: number, chunkSize = 256 * 1024): AsyncGenerator<Buffer[]> {
  if (u.readers++ === 0) u.onReader?.();
  try {
    yield* readAlong(u, store, offset, length, chunkSize);
  } finally {
    u.readers--;
  }
}

async function* readAlong(u: Upload, store: DecadeStore, offset: number, length: number, chunkSize: number): AsyncGenerator<Buffer[]> {
  let pos = offset;
  const end = offset + length;
  let first = true;
  let timer: NodeJS.Timeout | null = null;
  let expired = false;
  const disarm = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    expired = false;
  };
  try {
    while (pos < end) {
      if (u.state === 'failed') throw u.error ?? new DecadeError('NOT_AVAILABLE', 'the upload failed');
      if (u.state === 'done') {
        disarm();
        const file = store.read(u.hex, pos, end - pos);
        try {
          for await (const c of chunksOf(file)) yield [c];
        } finally {
          file.destroy();
        }
        return;
      }
      // Octets in memory: pass them on once there are enough for a frame (or the rest of the
      // range, or the upload stopped streaming, or they have waited long enough).
      const held = Math.min(u.received, end) - pos;
      if (held > 0 && u.fromMemory(pos, end) !== null) {
        if (first || expired || held >= BATCH_OCTETS || u.received >= end || u.state !== 'streaming') {
          disarm();
          first = false;
          const batch: Buffer[] = [];
          let n = 0;
          for (let mem = u.fromMemory(pos, end); mem !== null && n < MAX_BATCH; mem = u.fromMemory(pos, end)) {
            batch.push(mem);
            pos += mem.byteLength;
            n += mem.byteLength;
          }
          yield batch;
          continue;
        }
        timer ??= setTimeout(() => {
          expired = true;
          u.notify();
        }, LINGER_MS);
        await u.changed();
        continue;
      }
      if (u.state === 'streaming' && u.writer.written > pos) {
        // Behind the octets held in memory: read them back from the temporary file.
        disarm();
        const buf = Buffer.allocUnsafe(Math.min(chunkSize, end - pos, u.writer.written - pos));
        let n: number;
        try {
          n = await u.writer.read(buf, pos);
        } catch {
          // The writer was sealed or aborted under us: wait for the state to say so.
          if (u.state === 'streaming') await u.changed();
          continue;
        }
        if (n > 0) {
          pos += n;
          first = false;
          yield [n === buf.length ? buf : buf.subarray(0, n)];
          continue;
        }
      }
      await u.changed();
    }
  } finally {
    disarm();
  }
  // Every octet asked for was passed on, but they are the object only if the upload verifies:
  // the reader ends once it has (committing: every octet arrived and matched the name; the fsync
  // and rename that follow cannot change them), and fails with it.
  while (u.state === 'streaming') await u.changed();
  if (u.state === 'failed') throw u.error ?? new DecadeError('NOT_AVAILABLE', 'the upload failed');
}

/**
 * Fill an upload from `source`, verified against its name as the octets pass
 * (the hash in the same pass as the write, no second reading), then `commit`
 * the writer. Resolves with what `commit` says (fresh or not); on any
 * failure the upload fails (its readers see why), its octets are dropped,
 * nothing is stored, and the error is rethrown.
 *
 * `transient`: each chunk is valid only until the next step of the iteration
 * (`IncomingMessage.views()`): chunks are copied once into recycled staging
 * buffers ({@link Stager}), hashed and written a buffer at a time. Otherwise
 * the chunks are kept as they are (by the writer until written, by readers
 * of the upload while they are recent).
 */
export async function fillUpload(upload: Upload, name: ContentName, source: AsyncIterable<Buffer>, onOctets: (n: number) => void, commit: (writer: BlobWriter) => Promise<boolean>, transient = false): Promise<boolean> {
  const { size, writer } = upload;
  const verifier = new NameVerifier(name);
  let received = 0;
  const stager = transient
    ? new Stager(writer, (piece) => {
        const kept = upload.readers > 0;
        upload.push(piece);
        return kept;
      }, (octets) => verifier.update(octets))
    : null;
  if (stager !== null) upload.onReader = () => void stager.flush().catch(() => undefined);
  try {
    for await (const chunk of source) {
      if (received + chunk.byteLength > size) throw new DecadeError('VALIDATION_FAILED', `the content is longer than the ${size} octets declared`);
      received += chunk.byteLength;
      if (stager !== null) {
        await stager.add(chunk);
        // Someone reads along (a GET of this upload): hand on what arrived now, not once a
        // staging buffer fills. A reader behind the octets in memory (it joined after octets
        // arrived unread) reads what the writer made readable, and a writer may make octets
        // readable only in units of its own (JetStream: a published chunk): left staged, they
        // would keep that reader (and a PUT waiting for it) waiting.
        // test/decade/early-reader.test.ts fails without this.
        if (upload.readers > 0) await stager.flush();
      } else {
        verifier.update(chunk);
        upload.push(chunk);
        await writer.write(chunk);
      }
      onOctets(received);
    }
    await stager?.flush();
    if (received !== size) throw new DecadeError('VALIDATION_FAILED', `the content ended after ${received} of the ${size} octets declared`);
    if (!verifier.matches()) throw new DecadeError('VALIDATION_FAILED', 'the content does not match its name');
    upload.set('committing');
    const fresh = await commit(writer);
    upload.set('done');
    return fresh;
  } catch (err) {
    const e = isDecadeError(err) ? err : new DecadeError('NOT_AVAILABLE', 'the upload was interrupted', { cause: err });
    upload.set('failed', e);
    await writer.abort();
    throw err;
  }
}
