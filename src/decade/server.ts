/**
 * The DECADE server: the DRP and SDT profiles (give `server.profiles` to
 * `createServer({ profiles })`), accounts with their public keys and quotas,
 * and a {@link DecadeStore}. Every operation carries a token, verified here
 * for signature and scope; an anonymous holder of a valid token is served
 * unless `requireAuthentication` adds that policy on top.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import dc from 'node:diagnostics_channel';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import type { Channel, ChannelProfile, IncomingMessage, Responder } from '../channels/index.js';
import { defineProfile } from '../profiles/index.js';
import { BEEP_XML } from '../framing/index.js';
import { DecadeError, isDecadeError, type DecadeCode } from './errors.js';
import { parseName, type ContentName } from './names.js';
import { checkScope, importPublicKey, isAccountId, redactTokens, verifyToken, VerifiedTokens, type ClientInfo, type Operation, type TokenScope } from './tokens.js';
import type { BlobWriter, DecadeStore, ObjectRecord } from './store.js';
import { fillUpload, readUpload, Upload } from './uploads.js';
import { singles, writeBatches } from './streams.js';
import { readSlabs, SlabLoan, SlabPool } from './slabs.js';
import { SessionShares } from './shares.js';
import { Quotas } from './quota.js';
import { clientOf, header, intHeader, MIME, toInfo } from './requests.js';
import type { DecadeClient } from './client.js';
import { OriginPool, parseOrigin, type RelayOptions } from './relay.js';
import {
  buildCreated, buildErrorXml, buildRange, buildStatus, DRP_URI, HEADERS, OCTETS, OK_XML, parseDrpRequest, SDT_URI, xmlBody,
  type AccountStatus, type ObjectInfo,
} from './wire.js';
import { MAX_XML } from './xml.js';

/** One storage account: who may sign its tokens, and how much it may store. */
export interface AccountConfig {
  /** Account id (the tokens' `iss`). */
  id: string;
  /** Its owner's Ed25519 public key (JWK, PEM or KeyObject). */
  publicKey: JsonWebKey | string | KeyObject;
  /** Octets its objects may take; null or omitted: unlimited. */
  quota?: number | null;
}

/** What the server reports for each operation (for logs and metrics; never a token). */
export interface DecadeEvent {
  op: Operation;
  account: string | undefined;
  /** Content name, where the operation has one. */
  name: string | undefined;
  /** Object octets moved. */
  octets: number;
  /** `CREATED` / `OK`, or the error code. */
  outcome: 'CREATED' | 'OK' | DecadeCode;
  /** The token's id (`jti`), when it verified. */
  tokenId: string | undefined;
  /** The client's address. */
  client: string | undefined;
  /** For SERVER_ERROR: what failed here (redacted of tokens); never sent to the peer. */
  detail?: string;
  /** Server to server: the origin (`host:port`) a GET fetched from, or a fetch (`put`) came from. */
  source?: string;
}

/**
 * The `node:diagnostics_channel` on which every {@link DecadeEvent} is
 * published (when someone subscribes): `src/ops` counts operations and
 * octets from it. The events never carry a token.
 */
export const DECADE_DIAGNOSTICS_CHANNEL = 'beepstream:decade:operation';
const diagnostics = dc.channel(DECADE_DIAGNOSTICS_CHANNEL);

/** Options of {@link DecadeServer}. */
export interface DecadeServerOptions {
  store: DecadeStore;
  accounts: readonly AccountConfig[];
  /** Serve only authenticated (SASL) sessions, besides the token (530 before). */
  requireAuthentication?: boolean;
  /** Largest object accepted (octets, default 1 TiB). */
  maxObjectSize?: number;
  /** Most objects a status listing carries (default 10000). */
  maxListing?: number;
  /** Most transfers (PUT and GET) at once per account (default 64); beyond it, NOT_AVAILABLE. */
  maxTransfersPerAccount?: number;
  /** The clock (ms since the epoch). */
  now?: () => number;
  /** Called once per operation. */
  onEvent?: (e: DecadeEvent) => void;
  /** Fetch objects from these other DECADE servers for clients (spec §8); omitted: never. */
  relay?: RelayOptions;
  /**
   * Tokens whose signature verified kept in memory (least recently used
   * dropped first), so a token seen again skips its EdDSA verification
   * ({@link VerifiedTokens}: expiry is checked every time, budget, single use
   * and scope per operation). Default 1024; 0: verify every time.
   */
  verifiedTokens?: number;
}

interface Context {
  op: Operation;
  client: ClientInfo;
  scope?: TokenScope;
  name?: ContentName;
  octets: number;
  source?: string;
}

/** A DECADE server over one store; see the module documentation. */
export class DecadeServer {
  /** The DRP and SDT profiles, to serve with `createServer({ profiles })`. */
  readonly profiles: readonly ChannelProfile[];
  /** The store. */
  readonly store: DecadeStore;
  private readonly keys = new Map<string, KeyObject>();
  private readonly uploads = new Map<string, Upload>();
  private readonly quota: Quotas;
  private readonly transfers = new Map<string, number>();
  /** Weighted shares of each session's GETs. */
  private readonly shares = new SessionShares();
  private readonly now: () => number;
  private readonly maxObject: number;
  private readonly maxListing: number;
  private readonly maxTransfers: number;
  private readonly onEvent: DecadeServerOptions['onEvent'];
  private readonly relay: OriginPool | null;
  /** Recycled read memory of GETs of stored objects (slabs.ts). */
  private readonly slabs = new SlabPool();
  /** Tokens verified before (see {@link DecadeServerOptions.verifiedTokens}). */
  private readonly verified: VerifiedTokens;
  private closed = false;

  /** See {@link DecadeServerOptions}. Throws `BAD_REQUEST` for an invalid account. */
  constructor(options: DecadeServerOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.maxObject = options.maxObjectSize ?? 2 ** 40;
    this.maxListing = options.maxListing ?? 10_000;
    this.maxTransfers = options.maxTransfersPerAccount ?? 64;
    this.onEvent = options.onEvent;
    this.relay = options.relay ? new OriginPool(options.relay) : null;
    this.verified = new VerifiedTokens(options.verifiedTokens);
    const quotas = new Map<string, number | null>();
    for (const a of options.accounts) {
      if (!isAccountId(a.id)) throw new DecadeError('BAD_REQUEST', `invalid account id ${JSON.stringify(String(a.id).slice(0, 40))}`);
      if (this.keys.has(a.id)) throw new DecadeError('BAD_REQUEST', `account ${a.id} is configured twice`);
      const q = a.quota ?? null;
      if (q !== null && !(Number.isSafeInteger(q) && q >= 0)) throw new DecadeError('BAD_REQUEST', `account ${a.id}: quota must be a whole number of octets`);
      this.keys.set(a.id, importPublicKey(a.publicKey));
      quotas.set(a.id, q);
    }
    this.quota = new Quotas(quotas, this.store, this.now);
    const requires = options.requireAuthentication ? { authentication: true } : undefined;
    this.profiles = [
      defineProfile({
        uri: DRP_URI,
        control: true,
        ...(requires ? { requires } : {}),
        onMessage: (msg: IncomingMessage, res: Responder, channel: Channel) => this.onDrp(msg, res, channel),
      }),
      defineProfile({
        uri: SDT_URI,
        ...(requires ? { requires } : {}),
        onMessage: (msg: IncomingMessage, res: Responder, channel: Channel) => this.onSdt(msg, res, channel),
      }),
    ];
  }

  /** Refuse new operations (NOT_AVAILABLE); the store is the caller's to close. */
  close(): void {
    this.closed = true;
    this.verified.clear();
    void this.relay?.close();
  }

  // ---- authorisation -------------------------------------------------------------------------

  private async authorize(ctx: Context, token: string | undefined): Promise<TokenScope> {
    if (this.closed) throw new DecadeError('NOT_AVAILABLE', 'the server is shutting down');
    if (token === undefined || token === '') throw new DecadeError('PERMISSION_DENIED', 'a token is required');
    const scope = await verifyToken(token, { keyOf: (a) => this.keys.get(a), now: this.now(), cache: this.verified });
    ctx.scope = scope;
    checkScope(scope, ctx.op, ctx.name?.name, ctx.client);
    return scope;
  }

  private async charge(scope: TokenScope, octets: number): Promise<void> {
    // A reusable token without a byte budget has nothing to count: no ledger write (and no
    // fsync of it) on the way to the first octet.
    if (!scope.once && scope.budget === null) return;
    const r = await this.store.chargeToken({ id: scope.id, account: scope.account, expires: scope.expires, once: scope.once, budget: scope.budget }, octets, this.now());
    if (r === 'replayed') throw new DecadeError('TOKEN_REPLAYED', 'the token was for a single use and has been used');
    if (r === 'budget') throw new DecadeError('TOKEN_BUDGET', `the token's byte budget does not cover ${octets} more octets`);
  }

  private beginTransfer(account: string): () => void {
    const n = this.transfers.get(account) ?? 0;
    if (n >= this.maxTransfers) throw new DecadeError('NOT_AVAILABLE', `too many transfers at once for this account (limit ${this.maxTransfers})`);
    this.transfers.set(account, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const m = (this.transfers.get(account) ?? 1) - 1;
      if (m <= 0) this.transfers.delete(account);
      else this.transfers.set(account, m);
    };
  }

  private report(ctx: Context, outcome: DecadeEvent['outcome'], detail?: string): void {
    const e: DecadeEvent = {
      op: ctx.op, account: ctx.scope?.account, name: ctx.name?.name, octets: ctx.octets, outcome,
      tokenId: ctx.scope?.id, client: ctx.client.address, ...(detail === undefined ? {} : { detail }), ...(ctx.source === undefined ? {} : { source: ctx.source }),
    };
    try {
      if (diagnostics.hasSubscribers) diagnostics.publish(e);
      this.onEvent?.(e);
    } catch {
      /* a failing observer never fails an operation */
    }
  }

  /** Any failure as what the peer may see, reported once: DECADE errors as they are, anything else SERVER_ERROR (its text stays here). */
  private fail(ctx: Context, err: unknown): DecadeError {
    if (isDecadeError(err)) {
      this.report(ctx, err.decadeCode);
      return err;
    }
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.report(ctx, 'SERVER_ERROR', redactTokens(detail).slice(0, 300));
    return new DecadeError('SERVER_ERROR', 'internal server error', { cause: err });
  }

  private static async sendError(res: Responder, e: DecadeError): Promise<void> {
    try {
      await res.error(Buffer.from(buildErrorXml(e), 'utf8'), { contentType: BEEP_XML });
    } catch {
      /* the connection went away: nobody to answer */
    }
  }

  // ---- DRP -------------------------------------------------------------------------------------

  private async onDrp(msg: IncomingMessage, res: Responder, channel: Channel): Promise<void> {
    const ctx: Context = { op: 'stat', client: clientOf(channel), octets: 0 };
    let reply: string;
    try {
      const req = parseDrpRequest(await xmlBody(msg, MAX_XML));
      if (req.kind === 'delete') ctx.op = 'rm';
      if (req.name !== undefined) ctx.name = parseName(req.name);
      const scope = await this.authorize(ctx, req.token);
      await this.charge(scope, 0);
      if (req.kind === 'delete') {
        const removed = await this.store.remove(scope.account, (ctx.name as ContentName).hex);
        if (!removed) throw new DecadeError('NOT_FOUND', 'no such object in this account');
        reply = OK_XML;
      } else {
        reply = buildStatus(await this.status(scope.account, ctx.name));
      }
    } catch (err) {
      await DecadeServer.sendError(res, this.fail(ctx, err));
      return;
    }
    this.report(ctx, 'OK');
    try {
      await res.reply(reply, { contentType: BEEP_XML });
    } catch {
      /* gone */
    }
  }

  /** An account's resources and objects (or one object), as DRP reports them. */
  async status(account: string, name?: ContentName): Promise<AccountStatus> {
    const now = this.now();
    const quota = this.quota.quota(account);
    const used = await this.store.usage(account, now);
    const reserved = this.quota.reserved(account);
    let objects: ObjectInfo[];
    if (name !== undefined) {
      const u = this.uploads.get(`${account}\0${name.hex}`); // before the store is asked (see get)
      const r = await this.store.get(account, name.hex, now);
      if (r !== undefined) objects = [toInfo(r)];
      else if (u !== undefined) objects = [{ name: name.name, size: u.size, type: u.type, created: now, expires: null, gets: 0, puts: 0, state: 'uploading' }];
      else throw new DecadeError('NOT_FOUND', 'no such object in this account');
    } else {
      objects = (await this.store.list(account, this.maxListing, now)).map((r) => toInfo(r));
    }
    return { account, used, quota, available: quota === null ? null : Math.max(0, quota - used - reserved), objects };
  }

  // ---- SDT -------------------------------------------------------------------------------------

  private async onSdt(msg: IncomingMessage, res: Responder, channel: Channel): Promise<void> {
    const op = (header(msg, HEADERS.op) ?? '').trim().toUpperCase();
    if (op === 'PUT') return this.put(msg, res, channel);
    if (op === 'GET') return this.get(msg, res, channel);
    const ctx: Context = { op: 'get', client: clientOf(channel), octets: 0 };
    await Promise.all([msg.dump().catch(() => undefined), DecadeServer.sendError(res, this.fail(ctx, new DecadeError('BAD_REQUEST', `${HEADERS.op} must be PUT or GET`)))]);
  }

  /** Temporary space for a new object, visible to GETs (of the same account) while it fills. */
  private async beginUpload(account: string, name: ContentName, size: number, type: string, opened?: Promise<BlobWriter>): Promise<{ upload: Upload; done: () => void }> {
    const key = `${account}\0${name.hex}`;
    const writer = await (opened ?? this.store.createWriter(name.hex));
    const upload = new Upload(account, name.hex, size, type, writer);
    const live = !this.uploads.has(key);
    if (live) this.uploads.set(key, upload);
    return { upload, done: () => live && this.uploads.delete(key) };
  }

  /** {@link fillUpload} into this store, recording the object with `ttl` (seconds) from the commit. */
  private fill(ctx: Context, upload: Upload, name: ContentName, ttl: number | undefined, source: AsyncIterable<Buffer>, transient: boolean): Promise<boolean> {
    return fillUpload(upload, name, source, (n) => (ctx.octets = n), async (writer) => {
      const now = this.now();
      return (await this.store.commit(writer, { account: upload.account, hex: name.hex, size: upload.size, type: upload.type, created: now, expires: ttl === undefined ? null : now + ttl * 1000 })).fresh;
    }, transient);
  }

  private async put(msg: IncomingMessage, res: Responder, channel: Channel): Promise<void> {
    const ctx: Context = { op: 'put', client: clientOf(channel), octets: 0 };
    let scope: TokenScope;
    let size: number;
    let type: string;
    let ttl: number | undefined;
    let fresh: boolean;
    let release: (() => void) | undefined;
    let unreserve: (() => void) | undefined;
    try {
      ctx.name = parseName((header(msg, HEADERS.name) ?? '').trim());
      const s = intHeader(msg, HEADERS.size, this.maxObject);
      if (s === undefined) throw new DecadeError('BAD_REQUEST', `${HEADERS.size} is required`);
      size = s;
      type = (header(msg, HEADERS.type) ?? OCTETS).trim();
      if (!MIME.test(type)) throw new DecadeError('BAD_REQUEST', `${HEADERS.type} must be a MIME type such as text/plain`);
      ttl = intHeader(msg, HEADERS.ttl, 100 * 365 * 86400);
      scope = await this.authorize(ctx, header(msg, HEADERS.token)?.trim());
      unreserve = await this.quota.reserve(scope.account, ctx.name.hex, size);
      release = this.beginTransfer(scope.account);
      await this.charge(scope, size);
    } catch (err) {
      unreserve?.();
      release?.();
      await Promise.all([msg.dump().catch(() => undefined), DecadeServer.sendError(res, this.fail(ctx, err))]);
      return;
    }
    const name = ctx.name;
    const account = scope.account;
    const unreserved = unreserve;
    try {
      const { upload, done } = await this.beginUpload(account, name, size, type);
      try {
        // Views into the session's receive memory, copied once into staging buffers (uploads.ts).
        fresh = await this.fill(ctx, upload, name, ttl, msg.views(), true);
      } finally {
        done();
      }
    } catch (err) {
      // Nothing stored: the octets not received go back to the token, the reservation to the quota.
      if (scope.budget !== null) await this.store.refundToken(scope.id, size - ctx.octets).catch(() => undefined);
      msg.dump().catch(() => undefined);
      unreserved();
      release();
      await DecadeServer.sendError(res, this.fail(ctx, err));
      return;
    }
    unreserved();
    release();
    this.report(ctx, 'CREATED');
    try {
      await res.reply(buildCreated({ name: name.name, size, fresh }), { contentType: BEEP_XML });
    } catch {
      /* gone */
    }
  }

  /**
   * Server to server (spec §8): ask the origin for the object with the client's source token.
   * Resolves once the origin has answered its range; `start` then stores the octets as they
   * arrive (an upload GETs read while it fills), `abandon` drops the origin's answer.
   */
  private async openOrigin(ctx: Context, scope: TokenScope, origin: string, sourceToken: string | undefined): Promise<{ size: number; type: string; start: () => Promise<Upload>; abandon: () => void }> {
    if (this.relay === null) throw new DecadeError('PERMISSION_DENIED', 'this server does not fetch from other servers');
    if (sourceToken === undefined || sourceToken === '') throw new DecadeError('PERMISSION_DENIED', `${HEADERS.sourceToken} is required with ${HEADERS.source}`);
    parseOrigin(origin);
    const name = ctx.name as ContentName;
    // The object is stored in the account: the token must permit a PUT of it too.
    checkScope(scope, 'put', name.name, ctx.client);
    const client = await this.relay.client(origin);
    // Temporary space is opened while the origin answers (not after: it is on the way to the
    // client's first octet), and dropped if the origin refuses or the object does not fit.
    // A copy for later clients, not read back meanwhile (the client reads along from memory):
    // written around the page cache where the store can (direct-writer.ts).
    const opened = this.store.createWriter(name.hex, { bypassCache: true });
    opened.catch(() => undefined);
    const drop = (): void => void opened.then((w) => w.abort(), () => undefined);
    let remote: Awaited<ReturnType<DecadeClient['getChunks']>>;
    try {
      // Chunks the relay may keep (not views): they go to the file writer and to the readers of
      // the upload as they are, no copy.
      remote = await client.getChunks(sourceToken, name.name);
    } catch (err) {
      drop();
      // The origin's refusal (its DECADE code) is the client's answer; anything else: not available.
      if (isDecadeError(err)) throw new DecadeError(err.decadeCode, `origin: ${err.message}`, { origin: 'local' });
      throw new DecadeError('NOT_AVAILABLE', 'the origin server failed', { cause: err });
    }
    const { size, type } = remote.range;
    let started = false;
    let unreserve: (() => void) | undefined;
    const abandon = (): void => {
      remote.cancel();
      if (!started) {
        drop();
        unreserve?.();
      }
    };
    try {
      if (size > this.maxObject) throw new DecadeError('BAD_REQUEST', `the object is larger than this server stores (${this.maxObject} octets)`);
      unreserve = await this.quota.reserve(scope.account, name.hex, size);
    } catch (err) {
      abandon();
      throw err;
    }
    const unreserved = unreserve;
    const start = async (): Promise<Upload> => {
      const account = scope.account;
      const fctx: Context = { op: 'put', client: ctx.client, scope, name, octets: 0, source: origin };
      let begun: { upload: Upload; done: () => void };
      started = true;
      try {
        begun = await this.beginUpload(account, name, size, type, opened);
      } catch (err) {
        abandon();
        unreserved();
        throw err;
      }
      this.fill(fctx, begun.upload, name, undefined, remote.chunks, false).then(
        () => this.report(fctx, 'CREATED'),
        (err: unknown) => {
          abandon();
          this.fail(fctx, err);
        },
      ).finally(() => {
        begun.done();
        unreserved();
      });
      return begun.upload;
    };
    return { size, type, start, abandon };
  }

  private async get(msg: IncomingMessage, res: Responder, channel: Channel): Promise<void> {
    const ctx: Context = { op: 'get', client: clientOf(channel), octets: 0 };
    let scope: TokenScope;
    let offset: number;
    let length: number;
    let record: ObjectRecord | undefined;
    let upload: Upload | undefined;
    let remote: Awaited<ReturnType<DecadeServer['openOrigin']>> | undefined;
    let release: (() => void) | undefined;
    try {
      await msg.dump();
      ctx.name = parseName((header(msg, HEADERS.name) ?? '').trim());
      const off = intHeader(msg, HEADERS.offset, Number.MAX_SAFE_INTEGER);
      const len = intHeader(msg, HEADERS.length, Number.MAX_SAFE_INTEGER);
      const source = header(msg, HEADERS.source)?.trim();
      scope = await this.authorize(ctx, header(msg, HEADERS.token)?.trim());
      // The upload is looked up before the store is asked: one that completes meanwhile is found in one or the other.
      const arriving = this.uploads.get(`${scope.account}\0${ctx.name.hex}`);
      record = await this.store.get(scope.account, ctx.name.hex, this.now());
      upload = record === undefined ? arriving : undefined;
      // Held here (or arriving): served from here. Otherwise, with a source, fetched from it.
      if (record === undefined && upload === undefined && source !== undefined) {
        ctx.source = source;
        remote = await this.openOrigin(ctx, scope, source, header(msg, HEADERS.sourceToken)?.trim());
      }
      if (record === undefined && upload === undefined && remote === undefined) throw new DecadeError('NOT_FOUND', 'no such object in this account');
      if (upload !== undefined && upload.state === 'failed') throw new DecadeError('NOT_AVAILABLE', 'the object is not available');
      const size = record?.size ?? upload?.size ?? (remote as { size: number }).size;
      offset = off ?? 0;
      if (offset > size) throw new DecadeError('INVALID_RANGE', `offset ${offset} is beyond the object's ${size} octets`);
      length = len ?? size - offset;
      if (offset + length > size) throw new DecadeError('INVALID_RANGE', `the range ends beyond the object's ${size} octets`);
      release = this.beginTransfer(scope.account);
      await this.charge(scope, length);
      if (remote !== undefined) upload = await remote.start();
    } catch (err) {
      remote?.abandon();
      release?.();
      await DecadeServer.sendError(res, this.fail(ctx, err));
      return;
    }
    const name = ctx.name;
    // Token weights share the session's bandwidth (draft §6.1.2: bandwidth): the channel's
    // scheduling weight, and the server's own pacing among the session's GETs (shares.ts).
    channel.weight = scope.weight;
    const gate = this.shares.join(channel.session ?? channel, scope.weight);
    const size = record?.size ?? (upload as Upload).size;
    const type = record?.type ?? (upload as Upload).type;
    let failure: DecadeError | undefined;
    try {
      await res.answer(buildRange({ name: name.name, size, offset, length, type, state: record ? 'complete' : 'uploading' }), { contentType: BEEP_XML });
      // A stored object: its file read into recycled slabs, each given back once the session has
      // written it (onReleased), where the store reads by position; else the store's stream.
      // An upload: batches of what has arrived, as it arrives.
      const store = this.store;
      const openReader = record !== undefined ? store.openReader?.bind(store) : undefined;
      const loan = openReader !== undefined ? new SlabLoan(this.slabs) : null;
      const out = res.answerStream({ contentType: OCTETS, ...(loan !== null ? { onReleased: loan.released } : {}) });
      const source = openReader !== undefined && loan !== null
        ? readSlabs(() => openReader(name.hex), offset, length, this.slabs, loan)
        : record !== undefined ? singles(store.read(name.hex, offset, length)) : readUpload(upload as Upload, store, offset, length);
      try {
        // Octets moved, for the token's refund if the transfer ends short (counted as they are written).
        await writeBatches(source, out, (n) => (ctx.octets += n), gate);
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      } catch (err) {
        // The source failed (an upload that did not validate): end the octets short, then say why.
        failure = isDecadeError(err) ? err : new DecadeError('NOT_AVAILABLE', 'the object could not be read', { cause: err });
        if (!out.writableEnded && !out.destroyed) out.end();
      }
      if (failure !== undefined) await res.answer(buildErrorXml(failure), { contentType: BEEP_XML });
      await res.end();
    } catch (err) {
      // The client went away (or the session failed) while answering.
      failure ??= isDecadeError(err) ? err : new DecadeError('NOT_AVAILABLE', 'the transfer was interrupted', { cause: err });
    } finally {
      gate.leave();
      release();
      if (ctx.octets < length && scope.budget !== null) await this.store.refundToken(scope.id, length - ctx.octets).catch(() => undefined);
    }
    if (failure === undefined) {
      await this.store.countGet(scope.account, name.hex).catch(() => undefined);
      this.report(ctx, 'OK');
    } else this.report(ctx, failure.decadeCode);
  }
}

