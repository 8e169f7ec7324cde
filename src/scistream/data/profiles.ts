/**
 * The data profile and the data-control profile, and {@link DataLink}: what
 * a data path knows about one BEEP session carrying its streams.
 *
 * Both profiles are built per data path (they close over it) with the public
 * `defineProfile` API; the path supplies a {@link ProfileHost}.
 *
 * @module
 */
import type { Channel, SessionHandle, Session, ChannelProfile, StartDecision, StartRequest } from '../../channels/index.js';
import { BEEP_XML } from '../../framing/index.js';
import { defineProfile } from '../../profiles/index.js';
import type { StreamBridge } from './bridge.js';
import { buildControl, CONTROL_OK, DATA_CONTROL_URI, DATA_URI, DataWireError, MAX_CONTROL_MESSAGE, parseControl, type ControlMessage } from './wire.js';

const noop = (): void => undefined;

/** What {@link DataLink.info} tells about one BEEP connection of a data path. */
export interface LinkInfo {
  /** Streams open on it now. */
  streams: number;
  /** Streams it carried so far. */
  opened: number;
  /** TLS version, e.g. `TLSv1.3`. */
  protocol: string | undefined;
  /** TLS cipher suite. */
  cipher: string | undefined;
}

/** One BEEP session of a data path: its control channel and its streams by channel number. */
export class DataLink {
  /** The TLS-tuned BEEP session. */
  readonly session: Session;
  /** The data-control channel, once open. */
  control: Channel | null = null;
  /** Live streams, by channel number. */
  readonly bridges = new Map<number, StreamBridge>();
  /** Streams carried so far. */
  opened = 0;

  constructor(session: Session) {
    this.session = session;
  }

  /** A summary for diagnostics. */
  info(): LinkInfo {
    return { streams: this.bridges.size, opened: this.opened, protocol: this.session.handle.security.protocol, cipher: this.session.handle.security.cipher };
  }

  /**
   * Send a data-control notice; fire and forget (a lost session loses it, and
   * its streams with it). False when there is no open control channel.
   */
  notify(m: ControlMessage): boolean {
    const ch = this.control;
    if (ch === null || ch.state !== 'open') return false;
    ch.request(buildControl(m), { contentType: BEEP_XML }).then((r) => r.dump(), noop).catch(noop);
    return true;
  }
}

/** What the profiles need from the data path they belong to. */
export interface ProfileHost {
  /** `inbound` accepts data channels; `outbound` starts them and refuses the peer's. */
  readonly side: 'inbound' | 'outbound';
  /** The session's link, if the session is a data session of this path. */
  linkOf(session: SessionHandle): DataLink | undefined;
  /** Inbound: decide on a data channel start (connect to the producer application first). */
  startStream?(request: StartRequest): Promise<StartDecision>;
  /** Inbound: a data channel the peer started is open. */
  openStream?(channel: Channel): void;
  /** A handler failed or a peer misbehaved; for diagnostics. */
  report(err: unknown): void;
}

/** The data profile (`urn:beepstream:scistream:data:1`) bound to one path. */
export function dataProfile(host: ProfileHost): ChannelProfile {
  return defineProfile({
    uri: DATA_URI,
    advertise: host.side === 'inbound',
    async onStart(request) {
      if (host.side !== 'inbound' || !host.startStream) return { accept: false, code: 550, diagnostic: 'data channels are started by the outbound sender' };
      return host.startStream(request);
    },
    onOpen(channel) {
      if (host.side === 'inbound') host.openStream?.(channel);
    },
    onMessage(msg, res, channel) {
      const bridge = host.linkOf(channel.session)?.bridges.get(channel.number);
      if (!bridge) return res.error(550, 'no stream on this channel');
      return bridge.onPeerMessage(msg, res);
    },
  });
}

/**
 * The data-control profile (`urn:beepstream:scistream:data-control:1`), a
 * `control: true` channel so its notices overtake bulk frames: `<ready>` and
 * `<reset>` for the streams of the same session, each answered `<ok />`.
 */
export function dataControlProfile(host: ProfileHost): ChannelProfile {
  return defineProfile({
    uri: DATA_CONTROL_URI,
    control: true,
    advertise: host.side === 'inbound',
    onStart({ session }) {
      if (host.side !== 'inbound') return { accept: false, code: 550, diagnostic: 'the outbound sender starts the control channel' };
      const link = host.linkOf(session);
      if (!link) return { accept: false, code: 550, diagnostic: 'not a data session' };
      if (link.control !== null) return { accept: false, code: 550, diagnostic: 'one control channel per session' };
      return { accept: true };
    },
    onOpen(channel) {
      const link = host.linkOf(channel.session);
      if (link && link.control === null) link.control = channel;
    },
    async onMessage(msg, res, channel) {
      let m: ControlMessage;
      try {
        m = parseControl(await msg.bytes(MAX_CONTROL_MESSAGE));
      } catch (err) {
        host.report(err);
        await res.error(err instanceof DataWireError ? err.replyCode : 500, err instanceof DataWireError ? err.message : 'poorly-formed control message');
        return;
      }
      const bridge = host.linkOf(channel.session)?.bridges.get(m.channel);
      // A notice for a stream already gone is moot: still positive.
      if (bridge) {
        if (m.kind === 'ready') bridge.go();
        else bridge.remoteReset();
      }
      await res.reply(CONTROL_OK, { contentType: BEEP_XML });
    },
  });
}
