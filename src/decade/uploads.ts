/**
 * PUTs under way, so that a GET of an object still being uploaded is served
 * as its octets arrive (draft-ietf-decade-arch-03: a server MUST be able to
 * serve an object while it is still being written).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { BlobWriter, DecadeStore } from './store.js';
import { DecadeError } from './errors.js';

/** Life of an upload: streaming, then committing (sealing and renaming), then done or failed. */
export type UploadState = 'streaming' | 'committing' | 'done' | 'failed';

/** One PUT under way. */
export class Upload {
  state: UploadState = 'streaming';
  error: DecadeError | undefined;
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

  /** Move to a new state and tell readers. */
  set(state: UploadState, error?: DecadeError): void {
    this.state = state;
    if (error) this.error = error;
    this.notify();
  }
}

/**
 * Read `length` octets from `offset` of an upload as they arrive: from its
 * temporary file while it streams, from the store once committed. Throws the
 * upload's error if it fails (the octets so far were not the object); ends
 * only once the upload is committed, so a range served early is still vouched for.
 */
export async function* readUpload(u: Upload, store: DecadeStore, offset: number, length: number, chunkSize = 256 * 1024): AsyncGenerator<Buffer> {
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    if (u.state === 'failed') throw u.error ?? new DecadeError('NOT_AVAILABLE', 'the upload failed');
    if (u.state === 'done') {
      for await (const c of store.read(u.hex, pos, end - pos)) yield c as Buffer;
      return;
    }
    if (u.state === 'streaming' && u.writer.written > pos) {
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
        yield n === buf.length ? buf : buf.subarray(0, n);
        continue;
      }
    }
    await u.changed();
  }
  // Every octet asked for was passed on, but they are the object only if the upload verifies:
  // the reader ends once it has (committing: every octet arrived and matched the name; the fsync
  // and rename that follow cannot change them), and fails with it.
  while (u.state === 'streaming') await u.changed();
  if (u.state === 'failed') throw u.error ?? new DecadeError('NOT_AVAILABLE', 'the upload failed');
}
