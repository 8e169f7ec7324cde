/**
 * The DECADE store on NATS JetStream (spec/decade.md §7.2), for storage
 * beyond one machine: object octets in a JetStream object store bucket
 * (`@nats-io/obj` format, see `jetstream-blobs.ts`), per-account records and
 * the token ledger in a JetStream stream — all of it on the NATS servers (a
 * cluster keeps `replicas` copies), nothing on the DECADE server's disk.
 *
 * ```
 * OBJ_<bucket>             $O.<bucket>.C.<nuid>        chunks of one object
 *                          $O.<bucket>.M.<b64(hex)>    its meta: the object exists (named by its SHA-256, hex)
 * DECADE_<bucket>          decade.<bucket>.o.<b64u(account)>.<hex>   an account's record (JSON), one per subject
 *                          decade.<bucket>.t.<b64u(token id)>        a token's ledger entry (JSON), one per subject
 * ```
 *
 * Guarantees, as the file store's: an object exists only once its meta is
 * published, after every chunk was acknowledged (never a partial object); the
 * meta is published only if no live object holds the name (JetStream's
 * expected-last-subject-sequence check), so identical content is stored once
 * even when two servers commit it at the same moment — the loser purges its
 * chunks; an interrupted write leaves chunks under no meta, which
 * {@link JetStreamDecadeStore.open} purges. Records and ledger entries change by
 * compare-and-set on their subject's last sequence, so byte budgets and
 * single use hold across every server sharing the bucket.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ObjectStore } from '@nats-io/obj';
import { DecadeError } from './errors.js';
import { Bucket, isWrongLastSequence, JetStreamBlobWriter, readChunks, readMeta, unavailable, type ObjMeta } from './jetstream-blobs.js';
import { Pins, type BlobWriter, type DecadeStore, type NewObject, type ObjectRecord, type OpenReport, type TokenCharge, type TokenUse } from './store.js';

const HEX = /^[0-9a-f]{64}$/;
/** Compare-and-set attempts before a contended record or ledger entry gives up (NOT_AVAILABLE). */
const CAS_TRIES = 20;

/** Options of {@link JetStreamDecadeStore}. */
export interface JetStreamDecadeStoreOptions {
  /** NATS servers, e.g. `['127.0.0.1:4222']`. */
  servers: string | string[];
  /** Bucket name (letters, digits, `-`, `_`; default `decade`): the streams are `OBJ_<bucket>` and `DECADE_<bucket>`. */
  bucket?: string;
  /** Copies on a JetStream cluster (1, 3 or 5; default 1). */
  replicas?: number;
  /** Octets per chunk (default 256 KiB; at most the servers' max_payload). */
  chunkSize?: number;
  /** Milliseconds to wait for a JetStream reply (default 10000). */
  timeoutMs?: number;
  /**
   * Chunks under no meta, and objects no record references, are removed at
   * {@link JetStreamDecadeStore.open} only once this old (ms: since their last
   * chunk, or their meta; default 0: all). Servers sharing one bucket set it
   * above their longest upload, so that one server's open does not remove
   * another's upload or commit under way.
   */
  orphanGraceMs?: number;
  /** NATS user and password, if the servers require them (never logged). */
  user?: string;
  pass?: string;
  /**
   * The contents of a NATS credentials file (`.creds`: the user's JWT and
   * nkey seed, as `nsc` writes them), for servers in operator/JWT mode (never
   * logged). Takes the place of `user`/`pass`.
   */
  credentials?: Uint8Array;
}

interface Ledger { account: string; expires: number; used: number; uses: number }

type Mods = { nats: typeof import('@nats-io/transport-node'); js: typeof import('@nats-io/jetstream'); obj: typeof import('@nats-io/obj') };

function b64u(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}

/** See the module documentation. */
export class JetStreamDecadeStore implements DecadeStore {
  /** The bucket's name. */
  readonly bucketName: string;
  /** Its subjects and stream. */
  private readonly bucket: Bucket;
  /** The stream of records and ledger entries. */
  readonly metaStream: string;
  private readonly p: string;
  private readonly chunkSize: number;
  private readonly timeout: number;
  private nc: NatsConnection | null = null;
  private jsc: JetStreamClient | null = null;
  private jsmc: JetStreamManager | null = null;
  private os: ObjectStore | null = null;
  private mods: Mods | null = null;
  /** Digests being committed: their object must not be removed meanwhile. */
  private readonly pinned = new Pins();
  /** Chunk subjects of this store's writers under way (never swept). */
  private readonly writing = new Set<string>();

  constructor(private readonly options: JetStreamDecadeStoreOptions) {
    const name = options.bucket ?? 'decade';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new DecadeError('BAD_REQUEST', 'a bucket name is 1-64 letters, digits, "-" or "_"');
    const r = options.replicas ?? 1;
    if (![1, 3, 5].includes(r)) throw new DecadeError('BAD_REQUEST', 'replicas must be 1, 3 or 5');
    this.bucketName = name;
    this.bucket = new Bucket(name);
    this.metaStream = `DECADE_${name}`;
    this.p = `decade.${name}`;
    this.chunkSize = options.chunkSize ?? 256 * 1024;
    if (!(Number.isSafeInteger(this.chunkSize) && this.chunkSize >= 1024)) throw new DecadeError('BAD_REQUEST', 'chunkSize must be a whole number of octets, at least 1024');
    this.timeout = options.timeoutMs ?? 10_000;
  }

  private get js(): JetStreamClient {
    if (this.jsc === null) throw new DecadeError('NOT_AVAILABLE', 'the store is not open');
    return this.jsc;
  }

  private get jsm(): JetStreamManager {
    if (this.jsmc === null) throw new DecadeError('NOT_AVAILABLE', 'the store is not open');
    return this.jsmc;
  }

  private recordSubject(account: string, hex: string): string {
    return `${this.p}.o.${b64u(account)}.${hex}`;
  }

  private tokenSubject(id: string): string {
    return `${this.p}.t.${b64u(id)}`;
  }

  /** Connect, create the bucket and the record stream if missing, and sweep (see {@link DecadeStore.open}). */
  async open(now = Date.now()): Promise<OpenReport> {
    let mods: Mods;
    try {
      mods = { nats: await import('@nats-io/transport-node'), js: await import('@nats-io/jetstream'), obj: await import('@nats-io/obj') };
    } catch (cause) {
      throw new DecadeError('NOT_AVAILABLE', 'the JetStream store needs @nats-io/transport-node, @nats-io/jetstream and @nats-io/obj', { cause });
    }
    const o = this.options;
    let nc: NatsConnection;
    try {
      nc = await mods.nats.connect({
        servers: o.servers, name: 'beepstream-decade', maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: this.timeout,
        ...(o.credentials !== undefined
          ? { authenticator: mods.nats.credsAuthenticator(o.credentials) }
          : o.user !== undefined ? { user: o.user, pass: o.pass ?? '' } : {}),
      });
    } catch (cause) {
      throw new DecadeError('NOT_AVAILABLE', 'cannot connect to NATS', { cause });
    }
    try {
      const jsm = await mods.js.jetstreamManager(nc, { timeout: this.timeout });
      const js = mods.js.jetstream(nc, { timeout: this.timeout });
      const replicas = o.replicas ?? 1;
      const os = await new mods.obj.Objm(js).create(this.bucket.name, { storage: mods.obj.StorageType.File, replicas, description: 'beepstream DECADE objects' });
      const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
      if (this.chunkSize > maxPayload) throw new DecadeError('BAD_REQUEST', `chunkSize ${this.chunkSize} is above the servers' max_payload (${maxPayload})`);
      const config = {
        name: this.metaStream, subjects: [`${this.p}.>`], max_msgs_per_subject: 1, num_replicas: replicas,
        storage: mods.js.StorageType.File, allow_direct: true, description: 'beepstream DECADE records and token ledger',
      };
      try {
        await jsm.streams.info(this.metaStream);
      } catch {
        await jsm.streams.add(config);
      }
      this.nc = nc;
      this.jsc = js;
      this.jsmc = jsm;
      this.os = os;
      this.mods = mods;
    } catch (cause) {
      await nc.close().catch(() => undefined);
      throw cause instanceof DecadeError ? cause : unavailable('be set up (is JetStream enabled on the server?)', cause);
    }
    try {
      return await this.sweep(now);
    } catch (cause) {
      throw unavailable('be swept', cause);
    }
  }

  /** Expired records and tokens, chunks under no meta, objects no record references. */
  private async sweep(now: number): Promise<OpenReport> {
    const report: OpenReport = { tempFiles: 0, tempOctets: 0, orphans: 0 };
    const referenced = new Set<string>();
    for (const { subject, value } of await this.scan<ObjectRecord>(`${this.p}.o.>`)) {
      if (value.expires !== null && value.expires <= now) await this.jsm.streams.purge(this.metaStream, { filter: subject });
      else referenced.add(value.hex);
    }
    for (const { subject, value } of await this.scan<Ledger>(`${this.p}.t.>`)) {
      if (value.expires < Math.floor(now / 1000) - 60) await this.jsm.streams.purge(this.metaStream, { filter: subject });
    }
    const grace = this.options.orphanGraceMs ?? 0;
    const live = new Set<string>();
    for (const info of await (this.os as ObjectStore).list()) {
      if (info.deleted) continue;
      // Younger than the grace: another server may be between its meta and its record.
      const young = grace > 0 && now - Date.parse(info.mtime) < grace;
      if (!young && (!HEX.test(info.name) || (!referenced.has(info.name) && !this.pinned.has(info.name)))) {
        await (this.os as ObjectStore).delete(info.name);
        report.orphans++;
      } else live.add(info.nuid);
    }
    const before = (await this.jsm.streams.info(this.bucket.stream)).state.bytes;
    const si = await this.jsm.streams.info(this.bucket.stream, { subjects_filter: `$O.${this.bucket.name}.C.>` });
    for (const subject of Object.keys(si.state.subjects ?? {})) {
      const nuid = subject.slice(subject.lastIndexOf('.') + 1);
      if (live.has(nuid) || this.writing.has(subject)) continue;
      if (grace > 0) {
        const last = await this.jsm.streams.getMessage(this.bucket.stream, { last_by_subj: subject }).catch(() => null);
        if (last !== null && now - Date.parse(last.timestamp) < grace) continue;
      }
      await this.jsm.streams.purge(this.bucket.stream, { filter: subject });
      report.tempFiles++;
    }
    if (report.tempFiles > 0) report.tempOctets = Math.max(0, before - (await this.jsm.streams.info(this.bucket.stream)).state.bytes);
    return report;
  }

  /** Every message (the last of each subject) under `filter` in the record stream, decoded. */
  private async scan<T>(filter: string): Promise<{ subject: string; seq: number; value: T }[]> {
    const si = await this.jsm.streams.info(this.metaStream, { subjects_filter: filter });
    const n = Object.keys(si.state.subjects ?? {}).length;
    if (n === 0) return [];
    // One filter subject as a string: a list needs nats-server 2.10 (Debian has 2.9).
    const c = await this.js.consumers.get(this.metaStream, { filter_subjects: filter });
    const out: { subject: string; seq: number; value: T }[] = [];
    // Bounded: the messages counted (more may arrive meanwhile; those are not waited for).
    for (let round = 0; round < n + 1; round++) {
      const it = await c.fetch({ max_messages: Math.min(1000, n), expires: 2000 });
      let got = 0;
      let last = false;
      for await (const m of it) {
        got++;
        out.push({ subject: m.subject, seq: m.seq, value: m.json<T>() });
        if (m.info.pending === 0) {
          last = true;
          break;
        }
      }
      await it.close().catch(() => undefined);
      if (last || got === 0) break;
    }
    return out;
  }

  /** The last message on `subject` of the record stream: its value and sequence (0: none). */
  private async last<T>(subject: string): Promise<{ value: T | undefined; seq: number }> {
    const m = await this.jsm.streams.getMessage(this.metaStream, { last_by_subj: subject }).catch((err: unknown) => {
      if ((err as { api_error?: { err_code?: number } })?.api_error?.err_code === 10037) return null;
      throw unavailable('read a record', err);
    });
    return m === null ? { value: undefined, seq: 0 } : { value: m.json<T>(), seq: m.seq };
  }

  /**
   * Change the value on `subject` by compare-and-set: `next` sees the current
   * value (undefined: none) and returns the new one, or `null` to leave it.
   */
  private async update<T, R>(subject: string, next: (cur: T | undefined) => { value: T | null; result: R }): Promise<R> {
    for (let i = 0; i < CAS_TRIES; i++) {
      const cur = await this.last<T>(subject);
      const { value, result } = next(cur.value);
      if (value === null) return result;
      try {
        await this.js.publish(subject, JSON.stringify(value), { expect: { lastSubjectSequence: cur.seq }, timeout: this.timeout });
        return result;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw unavailable('write a record', err);
      }
    }
    throw new DecadeError('NOT_AVAILABLE', 'a record is contended; try again');
  }

  async createWriter(hex: string): Promise<BlobWriter> {
    if (!HEX.test(hex)) throw new DecadeError('INVALID_NAME', 'a digest is 64 lower-case hex digits');
    const w = new JetStreamBlobWriter(this.js, this.jsm, this.bucket, this.chunkSize, this.timeout);
    this.writing.add(w.subject);
    return w;
  }

  async commit(writer: BlobWriter, record: NewObject): Promise<{ fresh: boolean }> {
    if (!(writer instanceof JetStreamBlobWriter)) throw new TypeError('not a writer of this store');
    if (!HEX.test(record.hex)) throw new DecadeError('INVALID_NAME', 'a digest is 64 lower-case hex digits');
    this.pinned.add(record.hex, 1);
    try {
      const meta: ObjMeta = { ...(await writer.seal()), name: record.hex };
      if (meta.size !== record.size) throw new DecadeError('VALIDATION_FAILED', `stored ${meta.size} octets, not ${record.size}`);
      // Publish the meta only where no live object holds the name; else the copy there is kept.
      for (let i = 0; ; i++) {
        const { meta: had, revision } = await readMeta(this.jsm, this.bucket, record.hex);
        if (had !== null) {
          await writer.purge();
          writer.keep();
          break;
        }
        try {
          await this.js.publish(this.bucket.metaSubject(record.hex), JSON.stringify(meta), {
            headers: rollup(this.mods as Mods), expect: { lastSubjectSequence: revision }, timeout: this.timeout,
          });
          // The object exists: whatever fails from here on, its chunks stay (an unreferenced object is swept at open).
          writer.keep();
          break;
        } catch (err) {
          if (!isWrongLastSequence(err)) {
            // A lost acknowledgement: the meta may have landed all the same; then the object is ours.
            const now = await readMeta(this.jsm, this.bucket, record.hex).catch(() => null);
            if (now?.meta?.nuid === writer.nuid) {
              writer.keep();
              break;
            }
            throw unavailable('publish an object\'s meta', err);
          }
          if (i >= CAS_TRIES) throw unavailable('publish an object\'s meta', err);
        }
      }
      const fresh = await this.update<ObjectRecord, boolean>(this.recordSubject(record.account, record.hex), (had) => {
        if (had !== undefined && (had.expires === null || had.expires > record.created)) {
          // Re-PUT: keep the longer life.
          const expires = had.expires === null || record.expires === null ? null : Math.max(had.expires, record.expires);
          return { value: { ...had, puts: had.puts + 1, expires }, result: false };
        }
        return { value: { ...record, gets: 0, puts: 1 }, result: true };
      });
      return { fresh };
    } catch (err) {
      await writer.abort();
      throw err;
    } finally {
      this.writing.delete(writer.subject);
      this.pinned.add(record.hex, -1);
    }
  }

  async get(account: string, hex: string, now = Date.now()): Promise<ObjectRecord | undefined> {
    if (!HEX.test(hex)) return undefined;
    const { value } = await this.last<ObjectRecord>(this.recordSubject(account, hex));
    return value !== undefined && (value.expires === null || value.expires > now) ? value : undefined;
  }

  async list(account: string, limit: number, now = Date.now()): Promise<ObjectRecord[]> {
    const all = (await this.scan<ObjectRecord>(`${this.p}.o.${b64u(account)}.*`).catch((err: unknown) => {
      throw unavailable('list records', err);
    })).map((r) => r.value).filter((r) => r.expires === null || r.expires > now);
    all.sort((a, b) => a.created - b.created || (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0));
    return all.slice(0, limit);
  }

  async usage(account: string, now = Date.now()): Promise<number> {
    return (await this.list(account, Number.MAX_SAFE_INTEGER, now)).reduce((a, r) => a + r.size, 0);
  }

  read(hex: string, offset: number, length: number): Readable {
    if (length === 0) return Readable.from([]);
    const self = this;
    return Readable.from((async function* (): AsyncGenerator<Buffer> {
      const { meta } = await readMeta(self.jsm, self.bucket, hex);
      if (meta === null) throw new DecadeError('NOT_FOUND', 'the object is not stored');
      if (offset + length > meta.size) throw new DecadeError('INVALID_RANGE', 'the range ends beyond the object');
      try {
        yield* readChunks(self.js, self.bucket, meta, offset, length, (self.mods as Mods).js.DeliverPolicy.StartSequence);
      } catch (err) {
        throw unavailable('read the object', err);
      }
    })(), { objectMode: false });
  }

  async countGet(account: string, hex: string): Promise<void> {
    await this.update<ObjectRecord, void>(this.recordSubject(account, hex), (had) => ({ value: had === undefined ? null : { ...had, gets: had.gets + 1 }, result: undefined }));
  }

  async remove(account: string, hex: string): Promise<boolean> {
    if (!HEX.test(hex)) throw new DecadeError('INVALID_NAME', 'a digest is 64 lower-case hex digits');
    let purged: number;
    try {
      purged = (await this.jsm.streams.purge(this.metaStream, { filter: this.recordSubject(account, hex) })).purged;
      if (purged === 0) return false;
      // The object goes with its last reference (not while a commit of it is under way here).
      const still = await this.jsm.streams.info(this.metaStream, { subjects_filter: `${this.p}.o.*.${hex}` });
      if (Object.keys(still.state.subjects ?? {}).length === 0 && !this.pinned.has(hex)) await (this.os as ObjectStore).delete(hex);
    } catch (err) {
      throw unavailable('remove an object', err);
    }
    return true;
  }

  async chargeToken(use: TokenUse, octets: number): Promise<TokenCharge> {
    return this.update<Ledger, TokenCharge>(this.tokenSubject(use.id), (row) => {
      if (use.once && row !== undefined && row.uses > 0) return { value: null, result: 'replayed' };
      const used = row?.used ?? 0;
      if (use.budget !== null && used + octets > use.budget) return { value: null, result: 'budget' };
      return { value: { account: use.account, expires: use.expires, used: used + octets, uses: (row?.uses ?? 0) + 1 }, result: 'ok' };
    });
  }

  async refundToken(id: string, octets: number): Promise<void> {
    if (octets <= 0) return;
    await this.update<Ledger, void>(this.tokenSubject(id), (row) => ({ value: row === undefined ? null : { ...row, used: Math.max(0, row.used - octets) }, result: undefined }));
  }

  async tokenUsed(id: string): Promise<number> {
    return (await this.last<Ledger>(this.tokenSubject(id))).value?.used ?? 0;
  }

  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = null;
    this.jsc = null;
    this.jsmc = null;
    this.os = null;
    await nc?.drain().catch(() => nc.close());
  }
}

/** `Nats-Rollup: sub`: the meta message replaces the subject's earlier ones (a deletion marker). */
function rollup(mods: Mods): ReturnType<Mods['nats']['headers']> {
  const h = mods.nats.headers();
  h.set('Nats-Rollup', 'sub');
  return h;
}
