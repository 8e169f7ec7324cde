/**
 * The outbound sender (consumer-side S2DS): K BEEP connections (striping,
 * default 1) to the remote inbound receiver, each tuned with the uid-derived
 * TLS-PSK and carrying a data-control channel, and num_conn local listeners
 * for the consumer application. Each accepted application connection becomes
 * one data channel, on the connections in turn.
 *
 * @module
 */
import net from 'node:net';
import { BeepError, ErrorCodes } from '../../errors.js';
import { type SessionHandle, connect, type Session } from '../../channels/index.js';
import { startTls } from '../../profiles/index.js';
import type { DataPath, DataPathStats, OutboundSpec } from '../dataplane.js';
import { StreamBridge } from './bridge.js';
import { bucketsFor, checkSpec, dataLimits, settleWithin, StreamStats, type DirectionBuckets, type PathSettings } from './common.js';
import { closeServer, formatHostPort, listenInRange, parseHostPort, resetSocket, type HostPort } from './ports.js';
import { dataControlProfile, dataProfile, DataLink, type LinkInfo, type ProfileHost } from './profiles.js';
import { derivePsk } from './psk.js';
import { buildStreamInit, DATA_CONTROL_URI, DATA_URI } from './wire.js';

const noop = (): void => undefined;


/** How long an application connection may wait for a slot freed by a closing stream (ms). */
const WAIT_FOR_SLOT_MS = 5000;
/** The consumer side of one SciStream session's data path. */
export class OutboundPath implements DataPath, ProfileHost {
  /** Which end of the data path this is. */
  readonly side = 'outbound' as const;
  /** One `host:port` per stream index (num_conn of them), for the consumer application. */
  listeners: readonly string[] = [];
  /** Resolves once the path is closed and everything it held is freed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly spec: OutboundSpec;
  private readonly settings: PathSettings;
  private readonly remotes: HostPort[];
  private readonly sessions = new Set<Session>();
  private linkList: DataLink[] = [];
  private readonly linkBySession = new Map<SessionHandle, DataLink>();
  private readonly servers: net.Server[] = [];
  private readonly appSockets = new Set<net.Socket>();
  /** Streams open or being started (bounded by num_conn). */
  private reserved = 0;
  /**
   * Application connections that arrived while every slot was still held by a
   * stream whose channel is closing (an app that reconnects at once): they get
   * the next free slot instead of a reset (bounded in number and time).
   */
  private readonly waiting: { index: number; socket: net.Socket; timer: NodeJS.Timeout }[] = [];
  private nextLink = 0;
  private readonly counters = new StreamStats();
  private readonly buckets: DirectionBuckets;
  private closing: Promise<void> | null = null;

  private constructor(spec: OutboundSpec, settings: PathSettings) {
    checkSpec(spec);
    if (!Array.isArray(spec.remotes) || spec.remotes.length === 0) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'remotes must list at least one host:port');
    this.spec = spec;
    this.settings = settings;
    this.remotes = spec.remotes.map(parseHostPort);
    this.buckets = bucketsFor(spec.rate);
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  /**
   * Connect and tune every BEEP connection (a wrong key fails here: the
   * handshake is refused), then listen for the consumer application.
   * On failure everything opened so far is freed and the error rethrown.
   */
  static async open(spec: OutboundSpec, settings: PathSettings): Promise<OutboundPath> {
    const path = new OutboundPath(spec, settings);
    try {
      const k = Math.min(spec.connections ?? settings.connections, spec.numConn);
      const results = await Promise.allSettled(Array.from({ length: k }, (_, j) => path.connectLink(path.remotes[j % path.remotes.length] as HostPort)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      path.linkList = results.map((r) => (r as PromiseFulfilledResult<DataLink>).value);
      const listeners: string[] = [];
      for (let i = 0; i < spec.numConn; i++) {
        const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => path.accept(i, s));
        server.on('error', (err) => settings.report(err));
        path.servers.push(server);
        const port = await listenInRange(server, settings.host, settings.portRange);
        listeners.push(formatHostPort(settings.advertiseHost, port));
      }
      path.listeners = listeners;
    } catch (err) {
      await path.close();
      throw err;
    }
    for (const link of path.linkList) {
      link.session.on('close', (err) => {
        if (path.closing) return;
        settings.report(err ?? new BeepError(ErrorCodes.SESSION_CLOSED, 'data session ended by the peer'));
        // A lost connection ends the path; its streams are already aborted.
        void path.close();
      });
    }
    return path;
  }

  private async connectLink(remote: HostPort): Promise<DataLink> {
    const { identity, key } = derivePsk(this.spec.uid);
    const session = await connect({
      host: remote.host,
      port: remote.port,
      timeout: this.settings.connectTimeout,
      requireTls: true,
      limits: dataLimits(this.settings.limits),
      profiles: [dataProfile(this), dataControlProfile(this)],
    });
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    session.on('handlerError', (err) => this.settings.report(err));
    if (this.closing) {
      session.destroy();
      throw new BeepError(ErrorCodes.SESSION_CLOSED, 'data path closed');
    }
    await startTls(session, { psk: { identity, key }, minVersion: this.settings.minVersion, maxVersion: 'TLSv1.3', handshakeTimeout: this.settings.handshakeTimeout });
    if (!session.peerProfiles.includes(DATA_URI)) {
      session.destroy();
      throw new BeepError(ErrorCodes.START_REFUSED, `${formatHostPort(remote.host, remote.port)} offers no SciStream data profile`, { origin: 'remote' });
    }
    const link = new DataLink(session);
    this.linkBySession.set(session.handle, link);
    const control = await session.startChannel(DATA_CONTROL_URI);
    link.control = control;
    return link;
  }

  /** Connections proxied and octets carried so far. */
  stats(): DataPathStats {
    return this.counters.snapshot();
  }

  /** The BEEP connections of this path (K with striping). */
  links(): LinkInfo[] {
    return this.linkList.map((l) => l.info());
  }

  /** For the data profiles ({@link ProfileHost}): the link of a session of this path. */
  linkOf(session: SessionHandle): DataLink | undefined {
    return this.linkBySession.get(session);
  }

  /** For the data profiles ({@link ProfileHost}): report a failure. */
  report(err: unknown): void {
    this.settings.report(err);
  }

  /** A consumer application connection on the listener of stream `index`. */
  private accept(index: number, socket: net.Socket): void {
    socket.on('error', noop);
    if (!this.closing && this.reserved >= this.spec.numConn && this.waiting.length < this.spec.numConn) {
      const entry = {
        index,
        socket,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          resetSocket(socket);
        }, WAIT_FOR_SLOT_MS),
      };
      this.waiting.push(entry);
      socket.once('close', () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          clearTimeout(entry.timer);
        }
      });
      return;
    }
    const link = this.linkList[this.nextLink++ % this.linkList.length];
    if (this.closing || this.reserved >= this.spec.numConn || !link || link.session.handle.isClosed) {
      resetSocket(socket);
      return;
    }
    this.reserved++;
    this.appSockets.add(socket);
    socket.once('close', () => this.appSockets.delete(socket));
    socket.setNoDelay(true);
    link.session.startChannel(DATA_URI, { content: buildStreamInit(index) }).then(
      (channel) => {
        if (this.closing) {
          this.freeSlot();
          resetSocket(socket);
          channel.close().catch(noop);
          return;
        }
        const hooks = this.counters.hooks(
          'outbound',
          (b) => link.notify({ kind: 'reset', channel: b.channel.number }),
          (b) => {
            if (link.bridges.get(b.channel.number) === b) link.bridges.delete(b.channel.number);
            this.freeSlot();
          },
        );
        const bridge = new StreamBridge({
          channel,
          socket,
          closer: true,
          sendBucket: this.buckets.toProducer,
          recvBucket: this.buckets.toConsumer,
          hooks,
        });
        link.bridges.set(channel.number, bridge);
        link.opened++;
        // The peer sends on the channel only after this (or after our first frame).
        link.notify({ kind: 'ready', channel: channel.number });
        bridge.go();
      },
      (err: unknown) => {
        // Refused (producer unreachable, num_conn reached) or session gone.
        this.freeSlot();
        this.settings.report(err);
        resetSocket(socket);
      },
    );
  }

  /** A stream's slot is free again: hand it to the longest-waiting application connection. */
  private freeSlot(): void {
    this.reserved--;
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) {
      clearTimeout(next.timer);
      if (next.socket.destroyed) continue; // went away while waiting
      this.accept(next.index, next.socket);
      return;
    }
  }

  /**
   * Free everything: listeners closed (ports free), application connections
   * aborted, BEEP sessions released (when idle) or destroyed. Resolves (as
   * does `closed`) once done.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const idle = this.reserved === 0;
      const stopped = Promise.all(this.servers.map((s) => closeServer(s)));
      for (const link of this.linkList) for (const b of link.bridges.values()) b.abort();
      for (const s of this.appSockets) resetSocket(s);
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        resetSocket(w.socket);
      }
      const sessions = [...this.sessions];
      // Idle: a polite BEEP release; otherwise (or if it stalls) destroy.
      if (idle) await Promise.all(sessions.map((s) => settleWithin(s.close(), 2000)));
      for (const s of sessions) if (!s.handle.isClosed) s.destroy();
      await settleWithin(Promise.all(sessions.map((s) => s.whenClosed())), 5000);
      await stopped;
      this.resolveClosed();
    })();
    return this.closing;
  }
}
