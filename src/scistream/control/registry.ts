/**
 * The S2CS session registry: SciStream sessions keyed by uid, the rendezvous
 * of REQUEST with HELLO (PROD) or UPDATETARGETS (CONS) in either order,
 * per-uid authorisation, quotas, timeouts and release — independent of BEEP
 * (a caller passes the authenticated identity and an opaque connection key).
 *
 * Waiting holds no thread and no slot: a waiting message is a pending promise
 * in its session's entry, and each entry has one deadline timer. Rules and
 * state machine: `spec/scistream-control.md` §4 and §6.
 *
 * @module
 */
import { sciStreamLimitsOf, type SciStreamLimits } from '../data/index.js';
import type { DataPath, DataPathStats } from '../dataplane.js';
import { SciStreamError, classifyDataError } from './errors.js';
import { isEndpoint, sessionTag } from './ids.js';
import type { ControlContext, ControlEvent, RegistryOptions, SessionSnapshot } from './options.js';
import { MAX_LISTENERS } from './messages.js';
import type {
  AppResponseMessage, ControlReply, DataErrorSummary, HelloMessage, RequestMessage, ResponseMessage, SciStreamRole, ControlSessionState, StatusResponseMessage, UpdateTargetsMessage,
} from './messages.js';


type WaiterKind = 'request' | 'hello' | 'update';

interface Waiter {
  readonly kind: WaiterKind;
  readonly connection: object;
  resolve(reply: ControlReply): void;
  reject(err: SciStreamError): void;
}

interface Entry {
  readonly uid: string;
  /** `sessionTag(uid)`, computed once. */
  readonly tag: string;
  state: ControlSessionState;
  /** The REQUEST, once it came; its sender's identity owns the session. */
  req?: RequestMessage;
  owner?: string;
  /** The owner's connection; undefined once it closed (kept or in grace). */
  ownerConn?: object | undefined;
  /** Charged to this identity while no REQUEST has come (an early HELLO / UPDATETARGETS). */
  earlyBy?: string | undefined;
  hello?: { identity: string; role: SciStreamRole; listeners: string[] } | undefined;
  remotes?: { identity: string; role: SciStreamRole; listeners: string[] } | undefined;
  waiters: Waiter[];
  deadline?: NodeJS.Timeout | undefined;
  deadlineAt: number;
  grace?: NodeJS.Timeout | undefined;
  path?: DataPath;
  /** Data-connection failures attributed to this session (see {@link SessionRegistry.noteDataError}). */
  dataErrors?: DataErrorSummary;
  opening?: Promise<void>;
  ending?: Promise<void>;
}

const err = (code: SciStreamError['code'], message: string, extra: ConstructorParameters<typeof SciStreamError>[2] = {}): SciStreamError =>
  new SciStreamError(code, message, extra);

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** The S2CS's sessions. */
export class SessionRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly used = new Set<string>();
  /** Who owned each remembered uid, so its owner may RELEASE it again harmlessly. */
  private readonly endedOwner = new Map<string, string>();
  private readonly owned = new Map<string, number>();
  private readonly early = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private requested = 0;
  private earlyCount = 0;
  private closing = false;
  private readonly o: Required<Omit<RegistryOptions, 'maxRate' | 'maxSessions' | 'maxSessionsPerIdentity' | 'maxConnPerSession' | 'limits' | 'authorizeRequest' | 'authorizeHello' | 'onEvent'>> & RegistryOptions;
  /** The limits this registry enforces, validated once ({@link resolveSciStreamLimits}); what clients see in a refusal. */
  readonly limits: Readonly<SciStreamLimits>;

  /** See {@link RegistryOptions}. */
  constructor(options: RegistryOptions) {
    this.o = {
      rendezvousTimeoutMs: 60_000, maxEarly: 1024, maxEarlyPerIdentity: 64,
      requestRate: { burst: 64, perSecond: 8 }, retryAfter: 30, disconnectGraceMs: 0, allowKeep: true,
      rememberUids: 4096, now: Date.now, ...options,
    };
    // The shorthand options, then `limits`, over the defaults: one validation.
    this.limits = sciStreamLimitsOf(options);
  }

  /** Entries (sessions and early registrations) held now. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * A data-connection failure the data server reported (e.g. the producer
   * application refused a connection): counted against every session whose
   * producer application endpoints (PROD) or remote listeners (CONS) include
   * `endpoint`, and shown in their STATUS. Returns the tags of those sessions.
   */
  noteDataError(report: { endpoint?: string | undefined; errno?: string | undefined }): string[] {
    const tags: string[] = [];
    if (report.endpoint === undefined) return tags;
    for (const e of this.entries.values()) {
      if (e.state !== 'active' && e.state !== 'setup') continue;
      const targets = e.req?.role === 'PROD' ? e.hello?.listeners : e.remotes?.listeners;
      if (!targets?.includes(report.endpoint)) continue;
      const d: DataErrorSummary = { count: (e.dataErrors?.count ?? 0) + 1, endpoint: report.endpoint };
      if (report.errno !== undefined) d.errno = report.errno;
      e.dataErrors = d;
      tags.push(e.tag);
    }
    return tags;
  }

  /** A view of one session (or early registration). */
  get(uid: string): SessionSnapshot | undefined {
    const e = this.entries.get(uid);
    return e ? this.snapshot(e) : undefined;
  }

  /** Views of every session and early registration held now (for metrics and status pages; show their `tag`, never the uid). */
  list(): SessionSnapshot[] {
    return [...this.entries.values()].map((e) => this.snapshot(e));
  }

  private snapshot(e: Entry): SessionSnapshot {
    const out: SessionSnapshot = {
      uid: e.uid, tag: e.tag, state: e.state, owner: e.owner, role: e.req?.role ?? e.hello?.role ?? e.remotes?.role,
      listeners: e.path?.listeners ?? [], attached: e.ownerConn !== undefined,
    };
    if (e.req) out.numConn = e.req.numConn;
    try {
      const stats = e.path?.stats();
      if (stats) out.stats = stats;
    } catch {
      /* a closing path may refuse: no stats then */
    }
    return out;
  }

  // ------------------------------------------------------------ operations

  /** REQUEST: resolves with the RESPONSE once the data path is open. */
  async request(ctx: ControlContext, m: RequestMessage): Promise<ResponseMessage> {
    this.checkOpen();
    const id = ctx.identity;
    let e = this.entries.get(m.uid);
    if (e?.req) throw e.owner === id ? err('INVALID_UID', 'this uid is already in use; generate a new one') : this.foreign();
    if (!e && this.used.has(m.uid)) throw err('INVALID_UID', 'this uid was already used; generate a new one');
    if (this.o.authorizeRequest && !this.o.authorizeRequest(id, m)) throw err('AUTH_ERROR', 'not authorised to request sessions');
    if (m.numConn > this.limits.maxNumConn) {
      throw err('NO_RESOURCE', 'too many connections requested', { details: `at most ${this.limits.maxNumConn} connections per session` });
    }
    if (m.rate !== undefined && this.limits.maxRate !== undefined && m.rate > this.limits.maxRate) {
      throw err('NO_RESOURCE', 'requested rate unavailable', { details: `at most ${this.limits.maxRate} octets per second` });
    }
    if (m.keep && !this.o.allowKeep) throw err('NOT_IMPLEMENTED', 'keep is not enabled on this server');
    // Striping: the same bound the data plane enforces (MAX_CONNECTIONS), checked here so
    // the client gets NO_RESOURCE with the limit rather than a SERVER_ERR from the S2DS.
    const maxStripes = this.limits.maxConnections;
    if (m.connections !== undefined && m.connections > maxStripes) {
      throw err('NO_RESOURCE', 'too many data connections requested', { details: `at most ${maxStripes} TCP connections per data path` });
    }
    if ((this.owned.get(id) ?? 0) >= this.limits.maxSessionsPerIdentity) {
      throw err('RATE_LIMIT', 'session quota exceeded', { details: `at most ${this.limits.maxSessionsPerIdentity} sessions per identity`, retryAfter: this.o.retryAfter });
    }
    if (this.requested >= this.limits.maxSessions) {
      throw err('NO_RESOURCE', 'the server has no capacity for another session', { retryAfter: this.o.retryAfter });
    }
    const wait = this.take(id);
    if (wait > 0) throw err('RATE_LIMIT', 'too many requests', { retryAfter: Math.ceil(wait) });
    if (e) {
      this.uncharge(e);
      const hello = e.hello;
      if (hello && hello.role !== m.role) {
        this.drop(e, 'hello', err('BAD_FORMAT', 'HELLO role does not match the REQUEST'));
        e.hello = undefined;
      }
      const remotes = e.remotes;
      if (remotes && (remotes.identity !== id || m.role !== 'CONS')) {
        this.drop(e, 'update', remotes.identity !== id ? this.foreign() : err('BAD_FORMAT', 'UPDATETARGETS role does not match the REQUEST'));
        e.remotes = undefined;
      }
    } else {
      e = this.create(m.uid);
    }
    e.req = m;
    e.owner = id;
    e.ownerConn = ctx.connection;
    this.owned.set(id, (this.owned.get(id) ?? 0) + 1);
    this.requested++;
    this.arm(e);
    this.emit('requested', e, { identity: id, role: m.role });
    const p = this.wait(e, 'request', ctx);
    this.advance(e);
    return p as Promise<ResponseMessage>;
  }

  /** HELLO: resolves with the APPRESPONSE once the data path is open. */
  async hello(ctx: ControlContext, m: HelloMessage): Promise<AppResponseMessage> {
    this.checkOpen();
    const id = ctx.identity;
    if (this.o.authorizeHello && !this.o.authorizeHello(id, m)) throw err('AUTH_ERROR', 'not authorised to register applications');
    if (m.role === 'PROD' && m.prodListeners.length === 0) throw err('BAD_FORMAT', 'a producer HELLO needs at least one prod_listener');
    let e = this.entries.get(m.uid);
    if (!e) {
      if (this.used.has(m.uid)) throw err('INVALID_UID', 'this uid was already used');
      e = this.createEarly(id, m.uid);
    }
    this.checkLive(e);
    this.checkRole(e, m.role);
    if (e.hello) {
      if (e.hello.identity !== id) throw err('AUTH_ERROR', 'another application controller registered for this session');
      if (m.role === 'PROD' && !sameList(e.hello.listeners, m.prodListeners) && e.state !== 'pending') {
        throw err('NOT_IMPLEMENTED', 'the producer listeners of a session cannot change once it is set up', { details: 'RELEASE it and REQUEST again' });
      }
    }
    e.hello = { identity: id, role: m.role, listeners: [...m.prodListeners] };
    this.emit('hello', e, { identity: id, role: m.role });
    if (e.state === 'active') return this.replyFor(e, 'hello') as AppResponseMessage;
    const p = this.wait(e, 'hello', ctx);
    this.advance(e);
    return p as Promise<AppResponseMessage>;
  }

  /** UPDATETARGETS: CONS — resolves with the RESPONSE once the data path is open; PROD — recorded, answered at once. */
  async update(ctx: ControlContext, m: UpdateTargetsMessage): Promise<ResponseMessage> {
    this.checkOpen();
    const id = ctx.identity;
    if (m.role === 'CONS' && m.remoteListeners.length === 0) throw err('BAD_FORMAT', 'a consumer UPDATETARGETS needs at least one remote_listener');
    let e = this.entries.get(m.uid);
    if (!e || (!e.req && m.role === 'PROD')) {
      if (!e && m.role === 'CONS' && !this.used.has(m.uid)) {
        e = this.createEarly(id, m.uid);
        e.remotes = { identity: id, role: m.role, listeners: [...m.remoteListeners] };
        this.emit('targets', e, { identity: id, role: m.role });
        return this.wait(e, 'update', ctx) as Promise<ResponseMessage>;
      }
      throw err('INVALID_UID', 'unknown uid');
    }
    if (e.req ? e.owner !== id : e.remotes !== undefined && e.remotes.identity !== id) throw this.foreign();
    this.checkLive(e);
    this.checkRole(e, m.role);
    this.reattach(e, ctx);
    if (e.remotes && !sameList(e.remotes.listeners, m.remoteListeners) && e.state !== 'pending' && m.role === 'CONS') {
      throw err('NOT_IMPLEMENTED', 'the targets of a session cannot change once it is set up', { details: 'RELEASE it and REQUEST again' });
    }
    e.remotes = { identity: id, role: m.role, listeners: [...m.remoteListeners] };
    this.emit('targets', e, { identity: id, role: m.role });
    if (m.role === 'PROD' || e.state === 'active') return this.replyFor(e, 'update') as ResponseMessage;
    const p = this.wait(e, 'update', ctx);
    this.advance(e);
    return p as Promise<ResponseMessage>;
  }

  /** RELEASE: closes the data path and frees everything; resolves once done. */
  async release(ctx: ControlContext, uid: string): Promise<ResponseMessage> {
    if (!this.entries.has(uid) && this.endedOwner.get(uid) === ctx.identity) {
      // Already over (e.g. the other facility's RELEASE closed the data path
      // first): releasing it again is a no-op for its owner, in either order.
      return { type: 'response', uid, state: 'closed', listeners: [], prodListeners: [] };
    }
    const e = this.ownedEntry(ctx, uid);
    this.reattach(e, ctx);
    await this.end(e, err('INVALID_UID', 'the session was released'), 'released');
    return { type: 'response', uid, state: 'closed', listeners: [], prodListeners: [] };
  }

  /** STATUS of a session its caller owns. */
  status(ctx: ControlContext, uid: string): StatusResponseMessage {
    const e = this.ownedEntry(ctx, uid);
    this.reattach(e, ctx);
    const req = e.req as RequestMessage;
    const out: StatusResponseMessage = {
      type: 'statusresponse', uid, role: req.role, state: e.state, numConn: req.numConn, keep: req.keep === true,
      listeners: [...(e.path?.listeners ?? [])], prodListeners: [...(e.hello?.listeners ?? [])], remoteListeners: [...(e.remotes?.listeners ?? [])],
    };
    if (req.rate !== undefined) out.rate = req.rate;
    if (e.state === 'pending' || e.state === 'setup') out.expiresIn = Math.max(0, Math.round(e.deadlineAt - this.o.now()));
    let stats: DataPathStats | undefined;
    try {
      stats = e.path?.stats();
    } catch {
      stats = undefined;
    }
    if (stats) out.stats = stats;
    if (e.dataErrors) out.dataErrors = { ...e.dataErrors };
    return out;
  }

  /**
   * A connection closed: its waiting messages are dropped (their early
   * registrations withdrawn) and the sessions it requested are released —
   * at once, after `disconnectGraceMs`, or never for `keep` sessions.
   */
  detach(connection: object): void {
    for (const e of [...this.entries.values()]) {
      const gone = e.waiters.filter((w) => w.connection === connection);
      if (gone.length > 0) {
        e.waiters = e.waiters.filter((w) => w.connection !== connection);
        for (const w of gone) w.reject(err('UNAVAILABLE', 'the control connection closed'));
        if (e.state === 'pending' && !e.req) {
          if (gone.some((w) => w.kind === 'hello')) e.hello = undefined;
          if (gone.some((w) => w.kind === 'update')) e.remotes = undefined;
          if (e.waiters.length === 0) void this.end(e, err('INVALID_UID', 'withdrawn'), 'closed');
        }
      }
      if (e.req && e.ownerConn === connection) {
        e.ownerConn = undefined;
        this.emit('orphaned', e, { identity: e.owner as string, keep: e.req.keep === true });
        if (e.req.keep) continue;
        const reason = err('INVALID_UID', 'the session was released: its requesting connection closed');
        if (this.o.disconnectGraceMs > 0) {
          e.grace = setTimeout(() => void this.end(e, reason, 'released'), this.o.disconnectGraceMs);
          e.grace.unref();
        } else {
          void this.end(e, reason, 'released');
        }
      }
    }
  }

  /** Release everything and refuse new work with UNAVAILABLE. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.entries.values()].map((e) => this.end(e, err('UNAVAILABLE', 'the control server is shutting down'), 'closed')));
  }

  // ------------------------------------------------------------ internals

  private checkOpen(): void {
    if (this.closing) throw err('UNAVAILABLE', 'the control server is shutting down', { retryAfter: this.o.retryAfter });
  }

  private checkLive(e: Entry): void {
    if (e.state === 'releasing' || e.state === 'closed') throw err('INVALID_UID', 'the session is being released');
  }

  private checkRole(e: Entry, role: SciStreamRole): void {
    const have = e.req?.role ?? e.hello?.role ?? e.remotes?.role;
    if (have !== undefined && have !== role) throw err('BAD_FORMAT', 'role does not match the session');
  }

  private foreign(): SciStreamError {
    return err('AUTH_ERROR', 'this session belongs to another identity');
  }

  private ownedEntry(ctx: ControlContext, uid: string): Entry {
    const e = this.entries.get(uid);
    if (!e || !e.req) throw err('INVALID_UID', 'unknown uid');
    if (e.owner !== ctx.identity) throw this.foreign();
    return e;
  }

  private reattach(e: Entry, ctx: ControlContext): void {
    if (e.req && e.ownerConn === undefined && e.owner === ctx.identity && e.state !== 'releasing' && e.state !== 'closed') {
      e.ownerConn = ctx.connection;
      clearTimeout(e.grace);
      e.grace = undefined;
    }
  }

  private create(uid: string): Entry {
    const e: Entry = { uid, tag: sessionTag(uid), state: 'pending', waiters: [], deadlineAt: 0 };
    this.entries.set(uid, e);
    return e;
  }

  private createEarly(identity: string, uid: string): Entry {
    if ((this.early.get(identity) ?? 0) >= this.o.maxEarlyPerIdentity) {
      throw err('RATE_LIMIT', 'too many registrations waiting for their REQUEST', { retryAfter: this.o.retryAfter });
    }
    if (this.earlyCount >= this.o.maxEarly) throw err('NO_RESOURCE', 'the server has no capacity for another registration', { retryAfter: this.o.retryAfter });
    const e = this.create(uid);
    e.earlyBy = identity;
    this.early.set(identity, (this.early.get(identity) ?? 0) + 1);
    this.earlyCount++;
    this.arm(e);
    return e;
  }

  private uncharge(e: Entry): void {
    const by = e.earlyBy;
    if (by === undefined) return;
    e.earlyBy = undefined;
    this.earlyCount--;
    const n = (this.early.get(by) ?? 1) - 1;
    if (n > 0) this.early.set(by, n);
    else this.early.delete(by);
  }

  private take(identity: string): number {
    const cfg = this.o.requestRate;
    if (!cfg) return 0;
    const t = this.o.now();
    const b = this.buckets.get(identity) ?? { tokens: cfg.burst, at: t };
    b.tokens = Math.min(cfg.burst, b.tokens + ((t - b.at) / 1000) * cfg.perSecond);
    b.at = t;
    if (this.buckets.size > 10_000) for (const [k, v] of this.buckets) if (v.tokens >= cfg.burst) this.buckets.delete(k);
    this.buckets.set(identity, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / cfg.perSecond;
  }

  private arm(e: Entry): void {
    clearTimeout(e.deadline);
    e.deadlineAt = this.o.now() + this.o.rendezvousTimeoutMs;
    e.deadline = setTimeout(() => this.expire(e), this.o.rendezvousTimeoutMs);
    e.deadline.unref();
  }

  private expire(e: Entry): void {
    e.deadline = undefined;
    if (this.entries.get(e.uid) !== e || (e.state !== 'pending' && e.state !== 'setup')) return;
    const s = `${Math.round(this.o.rendezvousTimeoutMs / 1000)} s`;
    let reason: SciStreamError;
    if (!e.req) reason = err('INVALID_UID', `no REQUEST for this uid within ${s}`);
    else if (e.state === 'setup') reason = err('TIMEOUT', `the data path was not set up within ${s}`);
    else if (e.req.role === 'PROD') reason = err('TIMEOUT', `no HELLO for this session within ${s}`, { details: 'the producer application controller must send HELLO with this uid' });
    else reason = err('TIMEOUT', `no UPDATETARGETS for this session within ${s}`);
    void this.end(e, reason, 'timeout');
  }

  private wait(e: Entry, kind: WaiterKind, ctx: ControlContext): Promise<ControlReply> {
    return new Promise<ControlReply>((resolve, reject) => e.waiters.push({ kind, connection: ctx.connection, resolve, reject }));
  }

  private drop(e: Entry, kind: WaiterKind, reason: SciStreamError): void {
    for (const w of e.waiters.filter((x) => x.kind === kind)) w.reject(reason);
    e.waiters = e.waiters.filter((x) => x.kind !== kind);
  }

  private replyFor(e: Entry, kind: WaiterKind): ControlReply {
    const listeners = [...(e.path?.listeners ?? [])];
    if (kind === 'hello') return { type: 'appresponse', uid: e.uid, message: e.state === 'active' ? 'session active' : `session ${e.state}`, listeners };
    const prodListeners = e.req?.role === 'PROD' ? [...(e.hello?.listeners ?? [])] : [];
    return { type: 'response', uid: e.uid, state: e.state, listeners, prodListeners };
  }

  private advance(e: Entry): void {
    if (e.state !== 'pending' || !e.req) return;
    const req = e.req;
    const ready = req.role === 'PROD' ? e.hello : e.remotes;
    if (!ready) return;
    e.state = 'setup';
    this.emit('setup', e, { role: req.role });
    const rate = req.rate === undefined ? {} : { rate: req.rate };
    const ds = this.o.dataServer;
    e.opening = (async () => {
      let path: DataPath;
      try {
        path = req.role === 'PROD'
          ? await ds.openInbound({ uid: e.uid, targets: [...ready.listeners], numConn: req.numConn, ...rate })
          : await ds.openOutbound({ uid: e.uid, remotes: [...ready.listeners], numConn: req.numConn, ...rate, ...(req.connections === undefined ? {} : { connections: req.connections }) });
      } catch (cause) {
        if (e.state !== 'setup') return;
        const reason = classifyDataError(cause, this.o.retryAfter);
        this.emit('failed', e, { error: reason });
        void this.end(e, reason, 'failed');
        return;
      }
      if (e.state !== 'setup' || this.entries.get(e.uid) !== e) {
        await this.closePath(e, path);
        return;
      }
      if (path.listeners.length > MAX_LISTENERS || !path.listeners.every((l) => isEndpoint(l))) {
        // The replies could not carry them: a data-server bug, not the client's.
        await this.closePath(e, path);
        const reason = err('SERVER_ERR', 'the data server failed to set up the session');
        this.emit('failed', e, { error: new SciStreamError('SERVER_ERR', 'the data server returned listeners that are not host:port endpoints') });
        void this.end(e, reason, 'failed');
        return;
      }
      e.path = path;
      e.state = 'active';
      clearTimeout(e.deadline);
      e.deadline = undefined;
      this.remember(e.uid, e.owner);
      const onClosed = (): void => {
        if (e.path === path && e.state === 'active') void this.end(e, err('INVALID_UID', 'the data path closed'), 'closed');
      };
      path.closed.then(onClosed, onClosed);
      this.emit('active', e, { role: req.role });
      const waiters = e.waiters;
      e.waiters = [];
      for (const w of waiters) w.resolve(this.replyFor(e, w.kind));
    })();
  }

  /**
   * End an entry (release, timeout, failure, disconnect, shutdown): its
   * waiting messages get `reason`; once a data path being opened has
   * settled and the path is closed, the entry and its quota are freed.
   */
  private end(e: Entry, reason: SciStreamError, event: ControlEvent['type']): Promise<void> {
    if (e.ending) return e.ending;
    e.state = 'releasing';
    clearTimeout(e.deadline);
    clearTimeout(e.grace);
    e.deadline = e.grace = undefined;
    const waiters = e.waiters;
    e.waiters = [];
    for (const w of waiters) w.reject(reason);
    e.ending = (async () => {
      if (e.opening) await e.opening;
      if (e.path) await this.closePath(e, e.path);
      e.state = 'closed';
      this.remove(e);
      this.emit(event, e, event === 'timeout' || event === 'failed' ? { error: reason } : {});
    })();
    return e.ending;
  }

  private async closePath(e: Entry, path: DataPath): Promise<void> {
    try {
      await path.close();
    } catch (cause) {
      this.emit('failed', e, { error: classifyDataError(cause) });
    }
  }

  private remove(e: Entry): void {
    if (this.entries.get(e.uid) !== e) return;
    this.entries.delete(e.uid);
    this.uncharge(e);
    if (e.req && e.owner !== undefined) {
      this.requested--;
      const n = (this.owned.get(e.owner) ?? 1) - 1;
      if (n > 0) this.owned.set(e.owner, n);
      else this.owned.delete(e.owner);
    }
  }

  private remember(uid: string, owner: string | undefined): void {
    this.used.add(uid);
    if (owner !== undefined) this.endedOwner.set(uid, owner);
    if (this.used.size > this.o.rememberUids) {
      const first = this.used.values().next();
      if (!first.done) {
        this.used.delete(first.value);
        this.endedOwner.delete(first.value);
      }
    }
  }

  private emit(type: ControlEvent['type'], e: Entry, extra: Omit<ControlEvent, 'type' | 'tag'> = {}): void {
    if (!this.o.onEvent) return;
    try {
      this.o.onEvent({ type, tag: e.tag, ...extra });
    } catch {
      /* a logger's failure is not ours */
    }
  }
}
