/**
 * The DECADE client: one BEEP session to a DECADE server, a DRP channel for
 * status and deletes, and one SDT channel per transfer (so each transfer has
 * its own window and its own scheduling weight).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { type ConnectOptions, type IncomingMessage, type Session, type Channel, connect } from '../channels/index.js';
import { BeepReplyError } from '../errors.js';
import { startTls, type TlsClientOptions } from '../profiles/index.js';
import { BEEP_XML, mediaType } from '../framing/index.js';
import { DecadeError } from './errors.js';
import { NameVerifier, nameFromDigest, nameOf, parseName, type ContentName } from './names.js';
import {
  buildDrpRequest, DECADE_LIMITS, DRP_URI, errorFromXml, HEADERS, OCTETS, parseCreated, parseRange, parseStatus, SDT_URI, xmlBody,
  type AccountStatus, type Created, type ObjectInfo, type RangeHeader,
} from './wire.js';
import { MAX_STATUS_XML, MAX_XML } from './xml.js';
import { tokenWeight } from './tokens.js';
import { chunksOf } from './streams.js';
import { Stager } from './staging.js';

/** Options of {@link DecadeClient.connect}: those of `connect` (host, port, limits…), and TLS. */
export interface DecadeConnectOptions extends ConnectOptions {
  /** Tune the session with TLS (RFC 3080 §3.1) before anything else: tokens are secrets. */
  tls?: TlsClientOptions;
}

/** Options of a PUT. */
export interface PutOptions {
  /** The object's MIME type (default application/octet-stream). */
  type?: string;
  /** Seconds the server keeps it (default: until deleted). */
  ttl?: number;
  /** Called as octets are handed to the session: octets so far, octets in all. */
  onProgress?: (octets: number, total: number) => void;
  signal?: AbortSignal;
}

/** Options of a GET. */
export interface GetOptions {
  /** First octet wanted (default 0): resume a cut transfer from here. */
  offset?: number;
  /** Octets wanted (default: to the end). */
  length?: number;
  /**
   * Server to server (spec §8): the server fetches the object from this
   * origin DECADE server (`host:port`, one it is configured to reach),
   * showing it `token`, stores it in the account, and streams it here while
   * the fetch runs. Unused when the server holds the object already.
   */
  source?: { origin: string; token: string };
  signal?: AbortSignal;
}

/** Options of {@link DecadeClient.getChunks}. */
export interface GetChunksOptions extends GetOptions {
  /**
   * Yield views into the session's receive memory (`IncomingMessage.views()`):
   * no copy, but each chunk is valid only until the next step of the
   * iteration — hash it, write it, or copy it before asking for the next.
   * Default false: chunks the caller may keep.
   */
  views?: boolean;
}

/** A GET under way: what the server said it sends, and the octets. */
export interface GetStream {
  range: RangeHeader;
  /** The octets of the range; errors with a {@link DecadeError} if the transfer fails or ends short. */
  body: Readable;
}

/** Turn an ERR (or a failed session) into a DecadeError where it carries one. */
function fromReply(err: unknown): unknown {
  if (err instanceof BeepReplyError && err.body !== undefined) {
    const e = errorFromXml(err.body, err.replyCode ?? 451);
    return e.decadeCode === 'SERVER_ERROR' && e.message === 'the server sent an unreadable error' ? err : e;
  }
  return err;
}

/** Hash a file's first `length` octets (all by default). */
export async function hashFile(path: string, length?: number): Promise<{ name: ContentName; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  const s = createReadStream(path, length === undefined ? {} : length === 0 ? { start: 0, end: -1 } : { start: 0, end: length - 1 });
  if (length !== 0) {
    for await (const c of s as AsyncIterable<Buffer>) {
      h.update(c);
      size += c.byteLength;
    }
  } else s.destroy();
  return { name: nameFromDigest(h.digest()), size };
}

/** A client session to a DECADE server. */
export class DecadeClient {
  /** The BEEP session. */
  readonly session: Session;
  private drp: Promise<Channel> | null = null;
  /** A spare SDT channel started ahead of need (see {@link keepSpare}). */
  private spare: Promise<Channel> | null = null;
  private keepingSpare = false;

  private constructor(session: Session) {
    this.session = session;
  }

  /** Connect to a DECADE server (checks that it offers both profiles). */
  static async connect(options: DecadeConnectOptions): Promise<DecadeClient> {
    const { tls, ...rest } = options;
    const session = await connect({ ...rest, limits: { ...DECADE_LIMITS, ...(rest.limits ?? {}) } });
    if (tls !== undefined) {
      try {
        await startTls(session, { ...(options.host !== undefined && tls.serverName === undefined ? { serverName: options.host } : {}), ...tls });
      } catch (err) {
        session.destroy();
        throw err;
      }
    }
    const offered = session.peerProfiles ?? [];
    if (!offered.includes(DRP_URI) || !offered.includes(SDT_URI)) {
      session.destroy();
      throw new DecadeError('NOT_AVAILABLE', 'the peer does not offer the DECADE profiles');
    }
    return new DecadeClient(session);
  }

  /** Use a session already set up (e.g. TLS-tuned and authenticated). */
  static over(session: Session): DecadeClient {
    return new DecadeClient(session);
  }

  /**
   * Keep one SDT channel started ahead of the next transfer, so a transfer
   * does not wait for a channel start (one round trip and the server's
   * profile check) before its request: what a relaying server does towards
   * an origin, where that round trip is on the way to its client's first
   * octet. The spare is replaced as soon as it is taken — by a GET only once
   * its first octets have arrived (or it failed or was cancelled): the
   * replacement's channel start would otherwise reach the server just ahead
   * of the GET's request (channel 0 goes first) and be handled first.
   */
  keepSpare(): void {
    this.keepingSpare = true;
    this.startSpare();
  }

  private startSpare(): void {
    if (!this.keepingSpare || this.spare !== null || this.session.handle.isClosed) return;
    const p = this.session.startChannel(SDT_URI);
    this.spare = p;
    p.catch(() => {
      if (this.spare === p) this.spare = null;
    });
  }

  /**
   * A channel for one transfer: the spare if there is one (a failed spare is passed over), else a
   * new one. The spare is replaced at once, or — `replaceLater` — by the caller once its request
   * is under way ({@link startSpare}), so the replacement's start does not reach the server ahead
   * of the request (channel 0 goes first on the wire, and the server handles the start first).
   */
  private async transferChannel(replaceLater = false): Promise<Channel> {
    const spare = this.spare;
    this.spare = null;
    if (!replaceLater) this.startSpare();
    if (spare !== null) {
      const ch = await spare.catch(() => null);
      if (ch !== null && ch.state === 'open') return ch;
    }
    return this.session.startChannel(SDT_URI);
  }

  private control(): Promise<Channel> {
    this.drp ??= this.session.startChannel(DRP_URI);
    this.drp.catch(() => (this.drp = null));
    return this.drp;
  }

  private async drpRequest(body: string, max: number): Promise<Buffer> {
    const ch = await this.control();
    let reply: IncomingMessage;
    try {
      reply = await ch.request(body, { contentType: BEEP_XML });
    } catch (err) {
      throw fromReply(err);
    }
    return xmlBody(reply, max);
  }

  /** The account's resources and objects (or one object's attributes, with `name`). */
  async status(token: string, name?: string): Promise<AccountStatus> {
    const n = name === undefined ? undefined : parseName(name).name;
    return parseStatus(await this.drpRequest(buildDrpRequest(n === undefined ? { kind: 'status', token } : { kind: 'status', token, name: n }), MAX_STATUS_XML));
  }

  /** One object's attributes. */
  async attributes(token: string, name: string): Promise<ObjectInfo> {
    const s = await this.status(token, name);
    const o = s.objects[0];
    if (o === undefined) throw new DecadeError('NOT_FOUND', 'no such object', { origin: 'remote' });
    return o;
  }

  /** Delete the account's reference to an object. */
  async remove(token: string, name: string): Promise<void> {
    await this.drpRequest(buildDrpRequest({ kind: 'delete', token, name: parseName(name).name }), MAX_XML);
  }

  /**
   * PUT an object whose name and size are known, its octets from `source`.
   * If the server refuses before the octets are all sent, sending stops.
   */
  async putStream(token: string, name: string, size: number, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<Created> {
    const n = parseName(name);
    const headers: Record<string, string> = { [HEADERS.op]: 'PUT', [HEADERS.name]: n.name, [HEADERS.size]: String(size), [HEADERS.token]: token };
    if (options.type !== undefined) headers[HEADERS.type] = options.type;
    if (options.ttl !== undefined) headers[HEADERS.ttl] = String(options.ttl);
    const ch = await this.transferChannel();
    // Our sending is scheduled by the token's weight, as the server schedules a GET's.
    ch.weight = tokenWeight(token);
    let stop = false;
    const progress = options.onProgress;
    // A Readable (a file) is taken chunk by chunk as it reads them, not through read()'s
    // concatenation of whatever it buffered (a copy of every octet, and garbage).
    const chunks = source instanceof Readable ? chunksOf(source) : source;
    async function* body(): AsyncGenerator<Uint8Array> {
      let sent = 0;
      for await (const c of chunks) {
        if (stop) return;
        yield c;
        sent += c.byteLength;
        progress?.(sent, size);
      }
    }
    try {
      const reply = await ch.request(body(), { contentType: OCTETS, headers, ...(options.signal ? { signal: options.signal } : {}) }).catch((err: unknown) => {
        stop = true;
        throw fromReply(err);
      });
      return parseCreated(await xmlBody(reply, MAX_XML));
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** PUT octets held in memory; their name is computed here. */
  put(token: string, data: Uint8Array | string, options: PutOptions = {}): Promise<Created> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    return this.putStream(token, nameOf(buf).name, buf.byteLength, chunks(buf), options);
  }

  /** PUT a file: hashed first (to name it), then streamed. */
  async putFile(token: string, path: string, options: PutOptions = {}): Promise<Created> {
    const { name, size } = await hashFile(path);
    return this.putStream(token, name.name, size, createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>, options);
  }

  /** GET a range of an object as a stream. */
  async getStream(token: string, name: string, options: GetOptions = {}): Promise<GetStream> {
    const { range, chunks, cancel } = await this.getChunks(token, name, options);
    const body = Readable.from(chunks, { objectMode: false });
    body.once('close', cancel);
    return { range, body };
  }

  /**
   * GET a range of an object as the chunks the session delivers (views of
   * the received frames, no copy): what {@link getStream} wraps in a
   * Readable, for a consumer that iterates anyway (a relaying server).
   * With `views`, the chunks are only valid until the next step (see
   * {@link GetChunksOptions.views}). `cancel` discards the rest of the range and closes the channel; reading
   * to the end, or leaving the iteration early, does the same.
   */
  async getChunks(token: string, name: string, options: GetChunksOptions = {}): Promise<{
    /** What the server said it sends. */
    range: RangeHeader;
    /** The octets of the range. */
    chunks: AsyncGenerator<Buffer>;
    /** Discard the rest of the range and close the channel. */
    cancel: () => void;
  }> {
    const n = parseName(name);
    const headers: Record<string, string> = { [HEADERS.op]: 'GET', [HEADERS.name]: n.name, [HEADERS.token]: token };
    if (options.offset !== undefined) headers[HEADERS.offset] = String(options.offset);
    if (options.length !== undefined) headers[HEADERS.length] = String(options.length);
    if (options.source !== undefined) {
      headers[HEADERS.source] = options.source.origin;
      headers[HEADERS.sourceToken] = options.source.token;
    }
    // The spare is replaced once the first octets have arrived (or the GET failed): a relay's
    // fetch is on the way to its client's first octet, and the origin would handle the
    // replacement's channel start before this request.
    const ch = await this.transferChannel(true);
    const answers = ch.requestAnswers('', { headers, ...(options.signal ? { signal: options.signal } : {}) });
    let range: RangeHeader;
    try {
      const first = await answers.next();
      if (first.done) throw new DecadeError('SERVER_ERROR', 'the server sent no answer', { origin: 'remote' });
      range = parseRange(await xmlBody(first.value, MAX_XML));
      if (range.length !== (options.length ?? range.size - (options.offset ?? 0))) throw new DecadeError('SERVER_ERROR', 'the server answered another range', { origin: 'remote' });
    } catch (err) {
      this.startSpare();
      await answers.return();
      await ch.close().catch(() => undefined);
      throw fromReply(err);
    }
    // One cleanup however the body ends (read to the end, failed, or abandoned before or while it
    // was read): the rest of the reply is discarded (BEEP cannot cancel a reply under way, so an
    // abandoned range still arrives, unread), and the channel closes once it is quiet.
    let cleaned = false;
    const cancel = (): void => {
      if (cleaned) return;
      cleaned = true;
      // Ended or abandoned before its first octets: the spare is replaced now (see above);
      // after them it was replaced already and this does nothing.
      this.startSpare();
      answers.return().catch(() => undefined).finally(() => ch.close().catch(() => undefined));
    };
    const length = range.length;
    const views = options.views === true;
    const replace = (): void => this.startSpare();
    async function* octets(): AsyncGenerator<Buffer> {
      let got = 0;
      let replaced = false;
      try {
        for (;;) {
          let next: IteratorResult<IncomingMessage>;
          try {
            next = await answers.next();
          } catch (err) {
            throw fromReply(err);
          }
          if (next.done) break;
          const m = next.value;
          if (mediaType(m.contentType) === BEEP_XML) throw errorFromXml(await m.bytes(MAX_XML));
          for await (const c of views ? m.views() : chunksOf(m.stream())) {
            got += c.byteLength;
            if (got > length) throw new DecadeError('SERVER_ERROR', 'the server sent more octets than the range', { origin: 'remote' });
            yield c;
            // The first octets are on their way on: now the spare (if kept) is replaced.
            if (!replaced) {
              replaced = true;
              replace();
            }
          }
        }
        if (got !== length) throw new DecadeError('NOT_AVAILABLE', `the transfer ended after ${got} of ${length} octets`, { origin: 'remote' });
      } finally {
        cancel();
      }
    }
    return { range, chunks: octets(), cancel };
  }

  /** GET a whole object into memory, verified against its name. */
  async get(token: string, name: string, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const { body } = await this.getStream(token, name, options);
    const parts: Buffer[] = [];
    const v = new NameVerifier(name);
    for await (const c of body as AsyncIterable<Buffer>) {
      v.update(c);
      parts.push(c);
    }
    if (!v.matches()) throw new DecadeError('VALIDATION_FAILED', 'the octets received do not match the name');
    return Buffer.concat(parts);
  }

  /**
   * GET an object into a file, verified against its name. With `resume`, the
   * octets already in the file are kept and the rest is asked for from there
   * (a transfer cut earlier continues); the whole file is verified: the octets
   * kept are hashed from the file first, the rest as they arrive (one pass,
   * views of the received frames copied once into the buffers written).
   */
  async getFile(token: string, name: string, path: string, options: { resume?: boolean; signal?: AbortSignal; onProgress?: (octets: number, total: number) => void; source?: GetOptions['source'] } = {}): Promise<{ size: number; resumedFrom: number }> {
    const have = options.resume ? await stat(path).then((s) => s.size, () => 0) : 0;
    const verifier = new NameVerifier(name);
    if (have > 0) {
      for await (const c of createReadStream(path, { start: 0, end: have - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) verifier.update(c);
    }
    const { range, chunks } = await this.getChunks(token, name, { offset: have, views: true, ...(options.signal ? { signal: options.signal } : {}), ...(options.source ? { source: options.source } : {}) });
    let fh: FileHandle;
    try {
      fh = await open(path, have > 0 ? 'r+' : 'w', 0o644);
    } catch (err) {
      await chunks.return(undefined);
      throw err;
    }
    try {
      if (have === 0) await fh.truncate(0);
      const file = {
        written: 0,
        async write(b: Uint8Array): Promise<void> {
          for (let off = 0; off < b.byteLength; ) {
            const { bytesWritten } = await fh.write(b, off, b.byteLength - off, have + file.written + off);
            off += bytesWritten;
          }
          file.written += b.byteLength;
        },
      };
      const stager = new Stager(file, () => false, (octets) => verifier.update(octets));
      let pos = have;
      try {
        for await (const c of chunks) {
          await stager.add(c);
          pos += c.byteLength;
          options.onProgress?.(pos, range.size);
        }
      } finally {
        // Cut short too: what arrived is kept, so a resumed GET starts after it.
        await stager.flush();
      }
      await fh.truncate(pos);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (!verifier.matches()) throw new DecadeError('VALIDATION_FAILED', 'the file received does not match the name');
    return { size: range.size, resumedFrom: have };
  }

  /** Release the session. */
  async close(): Promise<void> {
    try {
      await this.session.close();
    } catch {
      this.session.destroy();
    }
  }
}

function* chunks(buf: Uint8Array, size = 256 * 1024): Generator<Uint8Array> {
  for (let i = 0; i < buf.byteLength; i += size) yield buf.subarray(i, Math.min(buf.byteLength, i + size));
}
