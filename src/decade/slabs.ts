/**
 * Serving a stored object from recycled memory: a GET reads the file into
 * slabs of {@link SLAB_OCTETS} taken from a {@link SlabPool}, writes them to
 * the reply, and gives each slab back once the session reports (the reply's
 * `onReleased`, src/channels/release.ts) that the transport write carrying
 * its last octet has completed — so a 1 GiB GET touches a few MiB of memory
 * again and again instead of 4096 fresh 256 KiB buffers (fresh memory cost
 * 0.2–0.3 CPU s/GiB on the benchmark's VM: page faults, zeroing, GC of
 * external memory).
 *
 * A slab is given back only on the session's word; one whose release never
 * comes (the session ended before its reply was queued) is left to the
 * garbage collector, never reused.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { close, open, read } from 'node:fs';

/** Octets of one slab: one file read, one frame of DECADE_LIMITS. */
export const SLAB_OCTETS = 256 * 1024;
/** Free slabs a pool keeps by default (8 MiB of 256 KiB slabs). */
export const SLAB_POOL_FREE = 32;

/** Free slabs of one size, reused; beyond `maxFree` a returned slab is dropped. */
export class SlabPool {
  private readonly free: Buffer[] = [];
  /** Slabs allocated (for tests and diagnostics). */
  allocated = 0;

  constructor(
    readonly size = SLAB_OCTETS,
    readonly maxFree = SLAB_POOL_FREE,
  ) {}

  /** A slab: a free one, or a new one. Its content is whatever it held. */
  take(): Buffer {
    const b = this.free.pop();
    if (b !== undefined) return b;
    this.allocated++;
    return Buffer.allocUnsafeSlow(this.size);
  }

  /** Give a slab back (nothing may refer to it any more). */
  give(b: Buffer): void {
    if (b.length === this.size && this.free.length < this.maxFree) this.free.push(b);
  }

  /** Free slabs held. */
  get held(): number {
    return this.free.length;
  }
}

/** Reads octets at a position (a file). */
export interface PositionalReader {
  /** Read up to `length` octets at `position` into `into` from `offset`; 0 at the end. */
  read(into: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** A file opened read-only as a {@link PositionalReader}. */
export function openFileReader(path: string): Promise<PositionalReader> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      let closed = false;
      resolve({
        read: (into, offset, length, position) =>
          new Promise((res, rej) => read(fd, into, offset, length, position, (e, n) => (e ? rej(e) : res(n)))),
        close: () =>
          new Promise<void>((res) => {
            if (closed) return res();
            closed = true;
            close(fd, () => res());
          }),
      });
    });
  });
}

/**
 * Slabs lent to a reply, given back to their pool as the session releases
 * their octets: {@link lend} in the order they are written, {@link released}
 * from the reply's `onReleased` (cumulative octets).
 */
export class SlabLoan {
  private readonly out: { buf: Buffer; end: number }[] = [];
  private lent = 0;

  constructor(private readonly pool: SlabPool) {}

  /** `buf` carries the next `octets` octets of the reply. */
  lend(buf: Buffer, octets: number): void {
    this.lent += octets;
    this.out.push({ buf, end: this.lent });
  }

  /** The session released the reply's octets up to `octets`: the slabs wholly before are free. */
  readonly released = (octets: number): void => {
    const out = this.out;
    let i = 0;
    while (i < out.length && (out[i] as { end: number }).end <= octets) this.pool.give((out[i++] as { buf: Buffer }).buf);
    if (i > 0) out.splice(0, i);
  };

  /** Slabs lent and not yet released. */
  get outstanding(): number {
    return this.out.length;
  }
}

/**
 * `length` octets from `offset` of `reader`, one slab per batch, each slab
 * lent to `loan` as it is handed out (the consumer writes it to the reply
 * whose `onReleased` feeds the loan). One read ahead: the next slab is read
 * while the consumer writes the current one. The reader is closed however the
 * iteration ends. Throws if the file ends before `length` octets.
 */
export async function* readSlabs(open: () => Promise<PositionalReader>, offset: number, length: number, pool: SlabPool, loan: SlabLoan): AsyncGenerator<Buffer[]> {
  if (length === 0) return;
  const reader = await open();
  const end = offset + length;
  let pos = offset;
  const fill = async (at: number): Promise<{ buf: Buffer; n: number }> => {
    const buf = pool.take();
    const want = Math.min(buf.length, end - at);
    let n = 0;
    try {
      while (n < want) {
        const got = await reader.read(buf, n, want - n, at + n);
        if (got === 0) throw new Error(`the stored object ended ${end - at - n} octets early`);
        n += got;
      }
    } catch (err) {
      pool.give(buf);
      throw err;
    }
    return { buf, n };
  };
  let next: Promise<{ buf: Buffer; n: number }> | null = fill(pos);
  try {
    while (next !== null) {
      const { buf, n } = await next;
      pos += n;
      // Read ahead while this one is written.
      next = pos < end ? fill(pos) : null;
      next?.catch(() => undefined);
      loan.lend(buf, n);
      yield [n === buf.length ? buf : buf.subarray(0, n)];
    }
  } finally {
    // A read still under way: its slab is the pool's again once it settles (never handed out).
    if (next !== null) void next.then(({ buf }) => pool.give(buf), () => undefined);
    // After that read, not during it.
    void (next ?? Promise.resolve()).catch(() => undefined).finally(() => void reader.close());
  }
}
