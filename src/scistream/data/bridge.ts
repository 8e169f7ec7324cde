/**
 * One proxied application TCP connection ↔ one data channel.
 *
 * Each direction is one long-lived streaming MSG: ours carries what we read
 * from the application socket, the peer's is written to it. The end of a MSG
 * is a half-close (FIN to the application), answered by an empty RPY once the
 * FIN is written. A reset (the application's RST or socket error, or the
 * peer's `<reset>` notice, or an ERR to our MSG) truncates our MSG, answers the
 * peer's with ERR 554 and aborts the application connection. When both
 * exchanges are complete the side that started the channel closes it.
 *
 * @module
 */
import type net from 'node:net';
import { BeepReplyError } from '../../errors.js';
import type { Channel, IncomingMessage, Responder } from '../../channels/index.js';
import type { TokenBucket } from './bucket.js';
import { writeViews } from './sink.js';
import { SocketSource } from './source.js';
import { resetSocket } from './ports.js';
import { DataCodes } from './wire.js';

/** What a bridge reports to the data path that owns it. */
export interface BridgeHooks {
  /** `n` octets read from the application went into the tunnel. */
  sent(n: number): void;
  /** `n` octets from the tunnel were written to the application. */
  received(n: number): void;
  /**
   * The application connection was reset here: tell the peer (data-control
   * `<reset>`). Returns false when there is no control channel to say it on.
   */
  notifyReset(bridge: StreamBridge): boolean;
  /** The channel is gone and the socket closed or closing: forget the bridge. */
  done(bridge: StreamBridge): void;
}

/** Options of a {@link StreamBridge}. */
export interface BridgeOptions {
  /** The data channel (open). */
  channel: Channel;
  /** The application connection, half-open allowed (`allowHalfOpen: true`) and paused. */
  socket: net.Socket;
  /**
   * This side started the channel: it closes it once both directions are
   * over, and the peer knows the channel from the start. The other side says
   * nothing about the channel (frames, notices) until {@link StreamBridge.go}.
   */
  closer: boolean;
  /** Pace for what we read from the application (shared by the path's streams). */
  sendBucket?: TokenBucket | undefined;
  /** Pace for what we write to the application. */
  recvBucket?: TokenBucket | undefined;
  /** Where statistics, resets and the end are reported. */
  hooks: BridgeHooks;
}

interface PeerStream {
  msg: IncomingMessage;
  res: Responder;
  replied: boolean;
  resolve: () => void;
  sink: { stop(): void } | null;
}

const noop = (): void => undefined;

/** Who reset a stream, if anyone. */
export type ResetOrigin = 'local' | 'remote' | null;

/** Couples one application socket with one data channel, both directions. */
export class StreamBridge {
  /** The data channel. */
  readonly channel: Channel;
  /** The application connection. */
  readonly socket: net.Socket;
  /** Set once the stream was reset, telling by whom. */
  resetBy: ResetOrigin = null;
  /** The channel is gone. */
  finished = false;
  private readonly opts: BridgeOptions;
  private sendStarted = false;
  /** Octets put into our MSG so far. */
  private sentBytes = 0;
  /** The peer has the channel open (it may be sent frames and notices about it). */
  private peerKnows: boolean;
  /** A reset notice waits for {@link peerKnows}. */
  private noticePending = false;
  private sendSettled = false;
  private source: SocketSource | null = null;
  private abortCtl: AbortController | null = null;
  private peer: PeerStream | null = null;
  private recvDone = false;
  private closing = false;
  /** The application sent FIN and we forwarded all it sent. */
  private appEnded = false;
  /** We sent the application FIN after everything else, and it was flushed. */
  private appFinished = false;

  constructor(options: BridgeOptions) {
    this.opts = options;
    this.channel = options.channel;
    this.socket = options.socket;
    this.peerKnows = options.closer;
    this.socket.on('error', () => this.localReset());
    this.socket.once('close', () => this.onSocketClose());
    this.channel.once('close', (err) => this.onChannelClose(err));
    if (this.socket.destroyed) queueMicrotask(() => this.localReset());
    if (this.channel.state === 'closed') queueMicrotask(() => this.onChannelClose(undefined));
  }

  /** True while both directions are open or draining and no reset happened. */
  get active(): boolean {
    return !this.finished && this.resetBy === null;
  }

  /**
   * Start our direction: one streaming MSG fed from the application socket.
   * The outbound sender calls it at once; the inbound receiver once the peer
   * said `<ready>` (or its MSG arrived), since the peer must know the channel
   * before frames on it arrive.
   */
  go(): void {
    if (!this.peerKnows) {
      this.peerKnows = true;
      if (this.noticePending) this.tellReset();
    }
    if (this.sendStarted || this.resetBy !== null || this.finished) return;
    this.sendStarted = true;
    const ctl = new AbortController();
    // The body is the application socket itself, read in large reads (source.ts);
    // the application's FIN ends the iteration, i.e. completes our MSG (its final frame).
    const source = new SocketSource(this.socket, {
      bucket: this.opts.sendBucket,
      count: (n) => {
        this.sentBytes += n;
        this.opts.hooks.sent(n);
      },
      onEnd: () => {
        this.appEnded = true;
      },
      // The core says when it is done with each octet (written to the TLS socket): slabs are reused.
      recycle: true,
    });
    this.abortCtl = ctl;
    this.source = source;
    this.channel.request(source, { signal: ctl.signal, onReleased: (n) => source.released(n) }).then(
      (m) => {
        void m.dump().catch(noop);
        this.onSendSettled(null);
      },
      (err: unknown) => this.onSendSettled(err),
    );
    source.start();
  }

  private onSendSettled(err: unknown): void {
    this.sendSettled = true;
    // Lets the core finish reading the body (after a reset it may wait for more).
    this.source?.end();
    // An ERR to our MSG: the peer reset the stream.
    if (err instanceof BeepReplyError && this.resetBy === null) this.remoteReset();
    else this.check();
  }

  /**
   * The peer's MSG on this channel: write its body to the application,
   * half-close on its end, then reply. Resolves once the reply is begun.
   */
  onPeerMessage(msg: IncomingMessage, res: Responder): Promise<void> {
    // Frames from the peer prove it has the channel: our direction may start.
    this.go();
    return new Promise<void>((resolve) => {
      if (this.peer !== null || this.resetBy !== null || this.finished) {
        res.error(DataCodes.RESET, this.peer !== null ? 'one stream MSG per direction' : 'stream reset').catch(noop);
        resolve();
        return;
      }
      const peer: PeerStream = { msg, res, replied: false, resolve, sink: null };
      this.peer = peer;
      peer.sink = writeViews(msg, this.socket, {
        bucket: this.opts.recvBucket,
        count: this.opts.hooks.received,
        onEnd: () => this.peerEnded(),
        // Failed before its end: the channel or session went away.
        onFail: () => this.replyPeer(false),
      });
    });
  }

  private peerEnded(): void {
    if (this.resetBy !== null || this.finished) return;
    const s = this.socket;
    if (s.destroyed) {
      this.localReset();
      return;
    }
    // Half-close towards the application; reply once the FIN is written.
    s.once('finish', () => {
      this.appFinished = true;
      this.replyPeer(true);
    });
    s.end();
  }

  private replyPeer(ok: boolean): void {
    const p = this.peer;
    this.recvDone = true;
    if (p === null || p.replied) {
      this.check();
      return;
    }
    p.replied = true;
    p.sink?.stop();
    // ERR before the MSG is complete is allowed (RFC 3080 §2.6.3): the peer ends its MSG.
    const sent = ok ? p.res.reply('') : p.res.error(DataCodes.RESET, 'stream reset');
    sent.catch(noop);
    p.resolve();
    this.check();
  }

  /**
   * Stop our direction. With `keepOpen` (the peer was told on the control
   * channel) a MSG already under way is left open: the peer's ERR ends it
   * (RFC 3080 §2.6.3), so the peer never mistakes it for a half-close. A MSG
   * not yet on the wire is withdrawn; otherwise it is cut short, unsent
   * octets dropped and its reply ignored.
   */
  private abortSend(keepOpen: boolean): void {
    if (!this.sendStarted) {
      this.sendStarted = true;
      this.sendSettled = true;
      return;
    }
    this.source?.stop();
    if (this.sendSettled) return;
    if (keepOpen && (this.sentBytes > 0 || this.appEnded)) return;
    this.abortCtl?.abort();
    this.source?.end();
  }

  private tellReset(): boolean {
    this.noticePending = false;
    return this.opts.hooks.notifyReset(this);
  }

  /** The application connection failed or was reset here. */
  localReset(): void {
    if (this.resetBy !== null || this.finished) return;
    this.resetBy = 'local';
    // The notice goes on the control channel, ahead of anything on this one.
    // Until the peer has the channel open, it waits (our MSG has not started either).
    let told = false;
    if (this.peerKnows) told = this.tellReset();
    else this.noticePending = true;
    this.abortSend(told);
    this.replyPeer(false);
    if (!this.socket.destroyed) this.socket.destroy();
    this.check();
  }

  /** The peer reset the stream: abort the application connection (RST). */
  remoteReset(): void {
    if (this.resetBy !== null || this.finished) return;
    this.resetBy = 'remote';
    resetSocket(this.socket);
    this.abortSend(false);
    this.replyPeer(false);
    this.check();
  }

  /** The data path is closing: abort the application connection, tell no one. */
  abort(): void {
    if (this.finished) return;
    if (this.resetBy === null) {
      this.resetBy = 'local';
      resetSocket(this.socket);
      this.abortSend(false);
      this.replyPeer(false);
    }
  }

  private onSocketClose(): void {
    if (this.resetBy !== null || this.finished) return;
    // A clean end is FIN both ways; anything else lost data: reset.
    if (!(this.appEnded && this.appFinished)) this.localReset();
  }

  /** Both exchanges over: the starter closes the channel (the peer agrees once quiescent). */
  private check(): void {
    if (this.closing || this.finished || !this.sendSettled || !this.recvDone) return;
    this.closing = true;
    if (this.resetBy === null && !this.socket.destroyed && this.appEnded && this.appFinished) this.socket.destroy();
    if (this.opts.closer && this.channel.state === 'open') {
      // A refusal or a lost session ends the channel with the session anyway.
      this.channel.close().catch(noop);
    }
  }

  private onChannelClose(err: Error | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.source?.stop();
    this.peer?.sink?.stop();
    const clean = this.appEnded && this.appFinished;
    // The channel went away under a live stream (session lost, path closed): abort it.
    if (this.resetBy === null && !clean) {
      this.resetBy = err ? 'remote' : 'local';
      resetSocket(this.socket);
    } else if (!this.socket.destroyed) {
      this.socket.destroy();
    }
    this.source?.end();
    const p = this.peer;
    if (p && !p.replied) {
      // Nothing will carry it, but the MSG counts as answered (no 451 from the core).
      p.replied = true;
      p.res.error(DataCodes.RESET, 'stream reset').catch(noop);
      p.resolve();
    }
    this.opts.hooks.done(this);
  }
}
