/**
 * The inbound receiver (producer-side S2DS): a BEEP listener on a port of the
 * range that offers only TLS until a peer proves the uid-derived key, then
 * the data and data-control profiles. Each data channel is one connection to
 * the producer application (`targets[index % targets.length]`).
 *
 * @module
 */
import type net from 'node:net';
import { BeepError, ErrorCodes } from '../../errors.js';
import { type Channel, type SessionHandle, createServer, type BeepServer, type Session, type StartDecision, type StartRequest } from '../../channels/index.js';
import { tlsProfile } from '../../profiles/index.js';
import type { DataPath, DataPathStats, InboundSpec } from '../dataplane.js';
import { StreamBridge } from './bridge.js';
import { bucketsFor, checkSpec, connectTcp, dataLimits, settleWithin, StreamStats, type DirectionBuckets, type PathSettings } from './common.js';
import { closeServer, formatHostPort, listenInRange, parseHostPort, type HostPort } from './ports.js';
import { dataControlProfile, dataProfile, DataLink, type LinkInfo, type ProfileHost } from './profiles.js';
import { pskResolver } from './psk.js';
import { DataCodes, DataWireError, parseStreamInit } from './wire.js';

/** Connections beyond num_conn let in to try TLS (a failed peer's slot frees at its deadline). */
const HANDSHAKE_SLACK = 4;

/** The producer side of one SciStream session's data path. */
export class InboundPath implements DataPath, ProfileHost {
  /** Which end of the data path this is. */
  readonly side = 'inbound' as const;
  /** The one `host:port` the remote outbound sender connects to. */
  listeners: readonly string[] = [];
  /** Resolves once the path is closed and everything it held is freed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly spec: InboundSpec;
  private readonly settings: PathSettings;
  private readonly targets: HostPort[];
  private readonly server: BeepServer;
  private readonly raw = new Set<net.Socket>();
  private readonly sessions = new Set<Session>();
  private readonly linkMap = new Map<SessionHandle, DataLink>();
  /** Producer connections made in onStart, until onOpen takes them. */
  private readonly pending = new Map<SessionHandle, Map<number, net.Socket>>();
  /** Streams open or being opened (bounded by num_conn). */
  private reserved = 0;
  private readonly counters = new StreamStats();
  private readonly buckets: DirectionBuckets;
  private closing: Promise<void> | null = null;

  private constructor(spec: InboundSpec, settings: PathSettings) {
    checkSpec(spec);
    if (!Array.isArray(spec.targets) || spec.targets.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'targets must list at least one host:port');
    this.spec = spec;
    this.settings = settings;
    this.targets = spec.targets.map(parseHostPort);
    this.buckets = bucketsFor(spec.rate);
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.server = createServer({
      requireTls: true,
      limits: dataLimits(settings.limits),
      profiles: [
        tlsProfile({ psk: pskResolver(spec.uid), minVersion: settings.minVersion, handshakeTimeout: settings.handshakeTimeout }),
        dataProfile(this),
        dataControlProfile(this),
      ],
    });
    this.server.server.maxConnections = spec.numConn + HANDSHAKE_SLACK;
    this.server.on('error', (err) => settings.report(err));
    this.server.server.on('connection', (s: net.Socket) => {
      this.raw.add(s);
      s.once('close', () => this.raw.delete(s));
    });
    this.server.on('session', (s) => this.onSession(s));
  }

  /** Listen on a port of the range; the path is ready once this resolves. */
  static async open(spec: InboundSpec, settings: PathSettings): Promise<InboundPath> {
    const path = new InboundPath(spec, settings);
    try {
      const port = await listenInRange(path.server.server, settings.host, settings.portRange);
      path.listeners = [formatHostPort(settings.advertiseHost, port)];
    } catch (err) {
      await path.close();
      throw err;
    }
    return path;
  }

  /** Connections proxied and octets carried so far. */
  stats(): DataPathStats {
    return this.counters.snapshot();
  }

  private onSession(s: Session): void {
    if (this.closing) {
      s.destroy();
      return;
    }
    this.sessions.add(s);
    // TLS must be in place in time, or the connection goes (it holds a slot).
    const deadline = setTimeout(() => {
      if (!s.handle.security.tls) s.destroy();
    }, this.settings.handshakeTimeout);
    s.on('handlerError', (err) => this.settings.report(err));
    s.on('tuned', (tuned) => {
      clearTimeout(deadline);
      this.linkMap.set(tuned, new DataLink(s));
    });
    s.on('close', (err) => {
      clearTimeout(deadline);
      this.sessions.delete(s);
      if (err && !this.closing) this.settings.report(err);
      const core = s.handle;
      this.linkMap.delete(core);
      const socks = this.pending.get(core);
      this.pending.delete(core);
      for (const sock of socks?.values() ?? []) {
        sock.destroy();
        this.reserved--;
      }
      socks?.clear();
    });
  }

  /** For the data profiles ({@link ProfileHost}): the link of a session of this path. */
  linkOf(session: SessionHandle): DataLink | undefined {
    return this.linkMap.get(session);
  }

  /** For the data profiles ({@link ProfileHost}): report a failure. */
  report(err: unknown): void {
    this.settings.report(err);
  }

  /** For the data profiles: a data channel start: connect to the producer application, then accept. */
  async startStream(req: StartRequest): Promise<StartDecision> {
    if (this.closing) return { accept: false, code: DataCodes.CLOSING, diagnostic: 'data path closing' };
    let index: number;
    try {
      index = parseStreamInit(req.content);
    } catch (err) {
      return { accept: false, code: err instanceof DataWireError ? err.replyCode : DataCodes.BAD_INIT, diagnostic: 'expected <stream index=...>' };
    }
    if (!this.linkMap.has(req.session)) return { accept: false, code: 550, diagnostic: 'not a data session' };
    if (this.reserved >= this.spec.numConn) {
      return { accept: false, code: DataCodes.TOO_MANY, diagnostic: `${this.spec.numConn} application connections already open` };
    }
    this.reserved++;
    const target = this.targets[index % this.targets.length] as HostPort;
    let socket: net.Socket;
    try {
      socket = await connectTcp(target, this.settings.connectTimeout);
    } catch (err) {
      this.reserved--;
      this.settings.report(err);
      return { accept: false, code: DataCodes.UNREACHABLE, diagnostic: 'cannot reach the producer application' };
    }
    if (this.closing || req.session.isClosed) {
      socket.destroy();
      this.reserved--;
      return { accept: false, code: DataCodes.CLOSING, diagnostic: 'data path closing' };
    }
    let byNumber = this.pending.get(req.session);
    if (!byNumber) this.pending.set(req.session, (byNumber = new Map()));
    byNumber.set(req.number, socket);
    // onOpen runs synchronously after an accepted start; if the start failed
    // after all (session ended meanwhile), drop the connection.
    setImmediate(() => {
      if (byNumber.get(req.number) === socket) {
        byNumber.delete(req.number);
        socket.destroy();
        this.reserved--;
      }
    });
    return { accept: true };
  }

  /** For the data profiles: the data channel is open: bridge it with its producer connection. */
  openStream(channel: Channel): void {
    const byNumber = this.pending.get(channel.session);
    const socket = byNumber?.get(channel.number);
    const link = this.linkMap.get(channel.session);
    if (!socket || !link) {
      channel.close(DataCodes.RESET).catch(() => undefined);
      return;
    }
    byNumber?.delete(channel.number);
    const hooks = this.counters.hooks(
      'inbound',
      (b) => link.notify({ kind: 'reset', channel: b.channel.number }),
      (b) => {
        if (link.bridges.get(b.channel.number) === b) link.bridges.delete(b.channel.number);
        this.reserved--;
      },
    );
    const bridge = new StreamBridge({
      channel,
      socket,
      closer: false,
      sendBucket: this.buckets.toConsumer,
      recvBucket: this.buckets.toProducer,
      hooks,
    });
    link.bridges.set(channel.number, bridge);
    link.opened++;
  }

  /** The TLS-tuned BEEP connections carrying this path now. */
  links(): LinkInfo[] {
    return [...this.linkMap.values()].map((l) => l.info());
  }

  /**
   * Free everything: application connections are aborted, BEEP sessions
   * destroyed, the port released. Resolves (as does `closed`) once done.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const stopped = closeServer(this.server.server);
      for (const link of this.linkMap.values()) for (const b of link.bridges.values()) b.abort();
      for (const byNumber of this.pending.values()) for (const s of byNumber.values()) s.destroy();
      const sessions = [...this.sessions];
      for (const s of sessions) s.destroy();
      for (const s of this.raw) s.destroy();
      await settleWithin(Promise.all(sessions.map((s) => s.whenClosed())), 5000);
      await stopped;
      this.resolveClosed();
    })();
    return this.closing;
  }
}
