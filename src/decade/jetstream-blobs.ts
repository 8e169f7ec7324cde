/**
 * Object octets in a NATS JetStream object store bucket (`@nats-io/obj`
 * format, so `nats object get` and `ObjectStore.get` read what is written
 * here): chunks on `$O.<bucket>.C.<nuid>`, then one meta message on
 * `$O.<bucket>.M.<base64url(name)>` that makes the object exist.
 *
 * The writing side is done here rather than by `ObjectStore.put` for three
 * reasons (spec/decade.md §7.2): a GET of an object still being uploaded
 * reads back the chunks already stored, which needs the chunk subject that
 * `put` keeps to itself; identical content is stored once, which needs the
 * meta message published only if nothing live holds the name *at commit*
 * (`put` fixes the expected revision when it starts); and chunks are
 * published with several acknowledgements outstanding instead of one at a
 * time. Reads of a range start at the chunk holding its first octet.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import type { DeliverPolicy, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { DecadeError } from './errors.js';
import type { BlobWriter } from './store.js';

/** Chunks whose acknowledgement a writer may await at once. */
const IN_FLIGHT = 8;
/** Messages an ordered consumer of a range pulls at once. */
const READ_BATCH = 16;

/** Padded base64url, as `@nats-io/obj` names meta subjects and digests (only types of the NATS packages are imported here: they load when a JetStream store opens). */
export function b64urlPadded(data: string | Uint8Array): string {
  const s = Buffer.from(data).toString('base64url');
  return s + '='.repeat((4 - (s.length % 4)) % 4);
}

/** Subjects and stream of one bucket. */
export class Bucket {
  /** The bucket's stream (`OBJ_<bucket>`). */
  readonly stream: string;

  constructor(readonly name: string) {
    this.stream = `OBJ_${name}`;
  }

  chunkSubject(nuid: string): string {
    return `$O.${this.name}.C.${nuid}`;
  }

  metaSubject(objectName: string): string {
    return `$O.${this.name}.M.${b64urlPadded(objectName)}`;
  }
}

/** An object's meta message, as `@nats-io/obj` reads it. */
export interface ObjMeta {
  name: string;
  description: string;
  options: { max_chunk_size: number };
  bucket: string;
  nuid: string;
  size: number;
  chunks: number;
  mtime: string;
  /** `SHA-256=` and the digest in padded base64url. */
  digest: string;
  deleted: boolean;
}

/** A NATS failure as DECADE says it: the store cannot be reached (NOT_AVAILABLE); DECADE errors pass. */
export function unavailable(what: string, cause: unknown): DecadeError {
  if (cause instanceof DecadeError) return cause;
  return new DecadeError('NOT_AVAILABLE', `the object store could not ${what}`, { cause });
}

/** True for JetStream's "wrong last sequence" (an expected-last-subject-sequence check failed: someone wrote first). */
export function isWrongLastSequence(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; api_error?: { err_code?: number } } | null;
  return e?.api_error?.err_code === 10071 || (typeof e?.message === 'string' && /wrong last sequence/i.test(e.message));
}

/** The live meta of `name` and its revision (stream sequence), or the revision of a deletion marker, or nothing. */
export async function readMeta(jsm: JetStreamManager, bucket: Bucket, name: string): Promise<{ meta: ObjMeta | null; revision: number }> {
  let m;
  try {
    m = await jsm.streams.getMessage(bucket.stream, { last_by_subj: bucket.metaSubject(name) });
  } catch (err) {
    if ((err as { api_error?: { err_code?: number } })?.api_error?.err_code === 10037) return { meta: null, revision: 0 }; // no message
    throw unavailable('read an object\'s meta', err);
  }
  if (m === null) return { meta: null, revision: 0 };
  const meta = m.json<ObjMeta>();
  return { meta: meta.deleted ? null : meta, revision: m.seq };
}

interface Chunk {
  /** Its stream sequence. */
  seq: number;
  /** Offset of its first octet in the object. */
  at: number;
  size: number;
}

/**
 * Writes an object's octets as chunks of `chunkSize` on a fresh chunk
 * subject, up to {@link IN_FLIGHT} acknowledgements outstanding; `written`
 * counts the octets of the acknowledged prefix (readable back). Nothing is
 * visible under the object's name until {@link JetStreamDecadeStore.commit}
 * publishes the meta message; an aborted writer purges its chunks.
 */
export class JetStreamBlobWriter implements BlobWriter {
  written = 0;
  onWritten: (() => void) | undefined;
  /** The chunk subject's token. */
  readonly nuid = randomBytes(12).toString('hex');
  readonly subject: string;
  private readonly sha: Hash = createHash('sha256');
  private pending: Buffer[] = [];
  private pendingOctets = 0;
  /** Octets handed to JetStream so far (acknowledged or not). */
  private sent = 0;
  private readonly chunks: Chunk[] = [];
  /** Acknowledged chunks by index; `nextAck`: the first not yet counted in `written`. */
  private readonly acked: (Chunk | undefined)[] = [];
  private nextAck = 0;
  private inFlight = new Set<Promise<void>>();
  private failure: unknown = null;
  private done = false;
  /** The chunks are an object's now (its meta was published), or were purged: `abort` leaves them. */
  private kept = false;
  private cached: { seq: number; data: Uint8Array } | null = null;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly bucket: Bucket,
    readonly chunkSize: number,
    private readonly timeout: number,
  ) {
    this.subject = bucket.chunkSubject(this.nuid);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new DecadeError('NOT_AVAILABLE', 'the write was aborted');
    if (this.failure !== null) throw unavailable('store a chunk', this.failure);
    if (chunk.byteLength === 0) return;
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingOctets += chunk.byteLength;
    while (this.pendingOctets >= this.chunkSize) {
      await this.room();
      this.publish(this.take(this.chunkSize));
    }
  }

  /** The first `n` pending octets as one buffer. */
  private take(n: number): Buffer {
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingOctets);
    const out = Buffer.from(all.subarray(0, n)); // a copy: the caller's chunks may be views of frames
    const rest = all.subarray(n);
    this.pending = rest.byteLength > 0 ? [rest] : [];
    this.pendingOctets = rest.byteLength;
    return out;
  }

  private async room(): Promise<void> {
    while (this.inFlight.size >= IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure !== null) throw unavailable('store a chunk', this.failure);
    if (this.done) throw new DecadeError('NOT_AVAILABLE', 'the write was aborted');
  }

  private publish(payload: Buffer): void {
    const index = this.chunks.length;
    const at = this.sent;
    this.sent += payload.byteLength;
    this.sha.update(payload);
    const c: Chunk = { seq: 0, at, size: payload.byteLength };
    this.chunks.push(c);
    const p: Promise<void> = this.js.publish(this.subject, payload, { timeout: this.timeout }).then(
      (ack) => {
        c.seq = ack.seq;
        this.acked[index] = c;
        // Advance over the acknowledged prefix (acknowledgements may be handled out of order).
        let moved = false;
        for (let a = this.acked[this.nextAck]; a !== undefined; a = this.acked[this.nextAck]) {
          this.written += a.size;
          this.nextAck++;
          moved = true;
        }
        if (moved) this.onWritten?.();
      },
      (err: unknown) => {
        this.failure ??= err;
      },
    ).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Index of the chunk starting at `offset` (or holding it). */
  private indexAt(offset: number): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.chunks[mid] as Chunk).at <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async read(into: Uint8Array, position: number): Promise<number> {
    const n = Math.min(into.byteLength, this.written - position);
    if (n <= 0) return 0;
    const c = this.chunks[this.indexAt(position)] as Chunk;
    let data: Uint8Array;
    if (this.cached?.seq === c.seq) data = this.cached.data;
    else {
      let m;
      try {
        m = await this.jsm.streams.getMessage(this.bucket.stream, { seq: c.seq });
      } catch (err) {
        throw unavailable('read a chunk back', err);
      }
      if (m === null) throw new DecadeError('NOT_AVAILABLE', 'a chunk of the upload is gone');
      data = m.data;
      this.cached = { seq: c.seq, data };
    }
    const from = position - c.at;
    const k = Math.min(n, data.byteLength - from);
    into.set(data.subarray(from, from + k), 0);
    return k;
  }

  /** @internal Publish what is pending as the last chunk, await every acknowledgement; the object's meta (not published). */
  async seal(): Promise<ObjMeta> {
    if (this.done) throw new DecadeError('NOT_AVAILABLE', 'the write was aborted');
    if (this.pendingOctets > 0) {
      await this.room();
      this.publish(this.take(this.pendingOctets));
    }
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    if (this.failure !== null) throw unavailable('store a chunk', this.failure);
    this.done = true;
    this.cached = null;
    return {
      name: '', description: '', options: { max_chunk_size: this.chunkSize }, bucket: this.bucket.name, nuid: this.nuid,
      size: this.sent, chunks: this.chunks.length, mtime: new Date().toISOString(),
      digest: `SHA-256=${b64urlPadded(this.sha.digest())}`, deleted: false,
    };
  }

  /** @internal Drop the chunks (after a seal too: the object was stored already). */
  async purge(): Promise<void> {
    this.done = true;
    this.cached = null;
    while (this.inFlight.size > 0) await Promise.allSettled(this.inFlight);
    await this.jsm.streams.purge(this.bucket.stream, { filter: this.subject });
  }

  /** @internal The chunks now belong to a published object (or were purged): never purge them again. */
  keep(): void {
    this.kept = true;
  }

  async abort(): Promise<void> {
    this.done = true;
    if (this.kept) return;
    this.kept = true;
    await this.purge().catch(() => undefined); // a crash or lost connection leaves them to the sweep at open
  }
}

/**
 * The octets `[offset, offset + length)` of the object `meta`: an ordered
 * consumer on its chunk subject from the chunk holding `offset` (found with a
 * headers-only pass when it is not the first: only the chunks' headers cross
 * the network for the part skipped).
 */
export async function* readChunks(js: JetStreamClient, bucket: Bucket, meta: ObjMeta, offset: number, length: number, startSequence: DeliverPolicy): AsyncGenerator<Buffer> {
  if (length <= 0) return;
  const subject = bucket.chunkSubject(meta.nuid);
  const size = meta.options.max_chunk_size;
  const first = Math.floor(offset / size);
  let startSeq = 0;
  if (first > 0) {
    const c = await js.consumers.get(bucket.stream, { filter_subjects: subject, headers_only: true });
    const it = await c.fetch({ max_messages: first + 1, expires: 30_000 });
    let i = 0;
    for await (const m of it) {
      if (i === first) {
        startSeq = m.seq;
        break;
      }
      i++;
    }
    await it.close().catch(() => undefined);
    if (startSeq === 0) throw new DecadeError('NOT_AVAILABLE', 'a chunk of the object is missing');
  }
  const c = await js.consumers.get(bucket.stream, startSeq > 0
    ? { filter_subjects: subject, deliver_policy: startSequence, opt_start_seq: startSeq }
    : { filter_subjects: subject });
  let pos = first * size;
  const end = offset + length;
  while (pos < end) {
    const it = await c.fetch({ max_messages: READ_BATCH, expires: 30_000 });
    let got = 0;
    try {
      for await (const m of it) {
        got++;
        const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
        const from = Math.max(0, offset - pos);
        const to = Math.min(data.byteLength, end - pos);
        pos += data.byteLength;
        if (to > from) yield data.subarray(from, to);
        if (pos >= end) break;
      }
    } finally {
      await it.close().catch(() => undefined);
    }
    if (got === 0) throw new DecadeError('NOT_AVAILABLE', `the object's chunks ended at octet ${pos} of ${meta.size}`);
  }
}
