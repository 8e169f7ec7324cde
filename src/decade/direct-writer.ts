/**
 * Writing a blob around the page cache (`O_DIRECT`), for copies that will
 * not be read again soon: a relay's copy of an object it fetched from an
 * origin (spec/decade.md §7.1, §8).
 *
 * On this kind of VM, writing through the page cache costs 0.3–3 CPU seconds
 * per GiB (the guest faults in page-cache pages the balloon gave back),
 * against about 0.2 with `O_DIRECT` (bench/README.md, "DECADE storage"). A
 * relay pays it on the path its client's GET streams through; a later GET of
 * the copy reads it from the disk instead of the page cache, as a cache's
 * reads mostly do anyway.
 *
 * `O_DIRECT` wants the memory, the length and the file offset aligned to the
 * device's block size. The octets are copied once into 1 MiB buffers that
 * are each a WebAssembly memory (whose base is page-aligned) and written at
 * offsets that are multiples of 1 MiB; the last, partial buffer goes through
 * an ordinary (buffered) descriptor, which also serves reads and the fsync.
 * Where the file system refuses `O_DIRECT` (tmpfs), {@link DirectBlobWriter.open}
 * returns null and the store writes as usual; a write it refuses later
 * (`EINVAL`) is redone through the buffered descriptor, and so are the rest.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { DecadeError } from './errors.js';
import type { BlobWriter } from './store.js';

/** Octets of one aligned buffer: one `O_DIRECT` write each. */
export const DIRECT_BUFFER = 1024 * 1024;
/** Buffers filled and not yet written, per writer, before `write` waits for the disk (4 MiB). */
const QUEUED = 4;
/** Free aligned buffers kept for the next writers. */
const POOL = 16;
/** Alignment `O_DIRECT` may ask for (at most one page). */
const ALIGN = 4096;

const pool: Buffer[] = [];

/** `WebAssembly.Memory` (the compiler's lib has no WebAssembly types). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory;

/** A page-aligned buffer of {@link DIRECT_BUFFER} octets (a WebAssembly memory: never detached, it never grows). */
function takeAligned(): Buffer {
  const pages = DIRECT_BUFFER / 65536;
  return pool.pop() ?? Buffer.from(new WasmMemory({ initial: pages, maximum: pages }).buffer);
}

function giveBack(b: Buffer): void {
  if (pool.length < POOL) pool.push(b);
}

/** A {@link BlobWriter} that writes whole aligned buffers with `O_DIRECT`; see the module documentation. */
export class DirectBlobWriter implements BlobWriter {
  /** Octets in the file (readable back through the buffered descriptor). */
  written = 0;
  onWritten: (() => void) | undefined;
  /** False once `O_DIRECT` was refused: everything goes through the buffered descriptor. */
  direct = true;
  private buf: Buffer | null = null;
  private pos = 0;
  /** File offset of the current buffer's first octet. */
  private base = 0;
  /** Buffers handed to the write chain and not yet written. */
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private done = false;
  private space: (() => void) | null = null;

  private constructor(
    readonly path: string,
    /** Buffered, read-write: reads, the last partial buffer, fsync. */
    readonly fh: FileHandle,
    private readonly dfh: FileHandle,
  ) {}

  /**
   * A writer of the file at `path`, already created and open as `fh`
   * (read-write); null if the file system refuses `O_DIRECT` (the caller
   * then writes through `fh` as usual).
   */
  static async open(path: string, fh: FileHandle): Promise<DirectBlobWriter | null> {
    const flag = (constants as Record<string, number>).O_DIRECT;
    if (flag === undefined) return null;
    try {
      // An aligned buffer can be had (address space is not capped below what one takes)…
      giveBack(takeAligned());
      // …and the file system takes O_DIRECT.
      return new DirectBlobWriter(path, fh, await open(path, constants.O_WRONLY | flag));
    } catch {
      return null;
    }
  }

  /** Copy `chunk` in (it may change as soon as this resolves); waits while {@link QUEUED} buffers wait for the disk. */
  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.byteLength) {
      if (this.buf === null) {
        while (this.queued >= QUEUED && this.failure === null && !this.done) await new Promise<void>((r) => (this.space = r));
        this.check();
        this.buf = takeAligned();
      }
      const n = Math.min(chunk.byteLength - off, DIRECT_BUFFER - this.pos);
      this.buf.set(off === 0 && n === chunk.byteLength ? chunk : chunk.subarray(off, off + n), this.pos);
      this.pos += n;
      off += n;
      if (this.pos === DIRECT_BUFFER) this.submit();
    }
    this.check();
  }

  private check(): void {
    if (this.done) throw new DecadeError('NOT_AVAILABLE', 'the write was aborted');
    if (this.failure !== null) throw this.failure;
  }

  private wake(): void {
    const w = this.space;
    this.space = null;
    w?.();
  }

  /** Hand the current buffer to the write chain (writes go one after another, in order). */
  private submit(): void {
    const buf = this.buf as Buffer;
    const len = this.pos;
    const at = this.base;
    this.buf = null;
    this.pos = 0;
    this.base += len;
    this.queued++;
    this.chain = this.chain.then(async () => {
      try {
        if (this.failure !== null || this.done) return;
        await this.writeAt(buf, len, at);
        this.written += len;
        this.onWritten?.();
      } catch (err) {
        this.failure ??= err;
      } finally {
        this.queued--;
        giveBack(buf);
        this.wake();
      }
    });
  }

  private async writeAt(buf: Buffer, len: number, at: number): Promise<void> {
    let off = 0;
    while (off < len) {
      const aligned = off % ALIGN === 0 && (len - off) % ALIGN === 0 && (at + off) % ALIGN === 0;
      let n: number;
      if (this.direct && aligned) {
        try {
          n = (await this.dfh.write(buf, off, len - off, at + off)).bytesWritten;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
          this.direct = false;
          continue;
        }
      } else n = (await this.fh.write(buf, off, len - off, at + off)).bytesWritten;
      if (n <= 0) throw new DecadeError('NOT_AVAILABLE', 'the disk accepted no octets');
      off += n;
    }
  }

  read(into: Uint8Array, position: number): Promise<number> {
    return readWritten(this.fh, this.written, into, position);
  }

  /** @internal write out what is left, fsync and close; the file stays where it is. */
  async seal(): Promise<void> {
    this.check();
    if (this.buf !== null && this.pos > 0) this.submit();
    else if (this.buf !== null) {
      giveBack(this.buf);
      this.buf = null;
    }
    await this.chain;
    this.check();
    this.done = true;
    // One fsync of the file covers both descriptors' writes (and the O_DIRECT writes' metadata).
    await this.fh.sync();
    await this.dfh.close();
    await this.fh.close();
  }

  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      this.wake();
      await this.chain;
      if (this.buf !== null) giveBack(this.buf);
      this.buf = null;
      await this.dfh.close().catch(() => undefined);
      await this.fh.close().catch(() => undefined);
    }
    await unlink(this.path).catch(() => undefined);
  }
}

/**
 * @internal `BlobWriter.read` of a writer whose first `written` octets are in
 * the file behind `fh` (the file store's writers, buffered and `O_DIRECT`).
 */
export async function readWritten(fh: FileHandle, written: number, into: Uint8Array, position: number): Promise<number> {
  const n = Math.min(into.byteLength, written - position);
  if (n <= 0) return 0;
  return (await fh.read(into, 0, n, position)).bytesRead;
}
