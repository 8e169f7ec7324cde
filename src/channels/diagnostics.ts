/**
 * Observability hooks: `node:diagnostics_channel` channels on which the
 * session layer publishes its lifecycle, every frame in and out, the limits
 * it enforces, and authentication outcomes. Nothing is built or published
 * while a channel has no subscriber, so an unobserved session pays one
 * property check per frame.
 *
 * Subscribe with `diagnostics_channel.subscribe(name, fn)` or through
 * {@link diagnostics}; the CLI's logs, metrics and `--trace` are built on
 * these events. Payload previews are at most {@link PREVIEW_OCTETS} octets;
 * no event carries a password, token or key.
 *
 * @module
 */
import dc from 'node:diagnostics_channel';
import type { FrameHeader } from '../framing/index.js';
import type { Role } from './types.js';
import type { ChannelFlowStats } from './flow.js';

/** Channel names, stable: tools subscribe by name. */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  sessionOpen: 'beepstream:session:open',
  sessionClose: 'beepstream:session:close',
  sessionTuned: 'beepstream:session:tuned',
  channelOpen: 'beepstream:channel:open',
  channelClose: 'beepstream:channel:close',
  frameIn: 'beepstream:frame:in',
  frameOut: 'beepstream:frame:out',
  limit: 'beepstream:limit',
  auth: 'beepstream:auth',
} as const);

/** Octets of payload a frame event carries at most. */
export const PREVIEW_OCTETS = 256;

/** Counters of one session (kept across tuning resets). */
export interface SessionStats {
  /** Octets read from the transport / written to it (frames, including headers). */
  octetsIn: number;
  octetsOut: number;
  /** Data frames received / sent (SEQ frames excluded). */
  framesIn: number;
  framesOut: number;
  /** SEQ frames received / sent (RFC 3081 §3.1.4). */
  seqIn: number;
  seqOut: number;
  /** Times a channel had octets to send and no window left to send them in. */
  windowStalls: number;
  /** Times the peer was held back by our receive window (a frame began exactly at an edge we advertised). */
  peerWindowStalls: number;
  /**
   * Of {@link peerWindowStalls}, those that left us idle: the SEQ's round trip
   * was the path's (within 1.5 × the shortest), so nothing was queued ahead of
   * the peer's next octets: the window, not the reader or the transport, held
   * the transfer back. The rest cost nothing: octets were still queued for us.
   */
  peerWindowStallsIdle: number;
  /** Receive windows grown / shrunk by the flow policy. */
  windowGrows: number;
  windowShrinks: number;
}

/** A fresh, zeroed {@link SessionStats}. */
export function newSessionStats(): SessionStats {
  return { octetsIn: 0, octetsOut: 0, framesIn: 0, framesOut: 0, seqIn: 0, seqOut: 0, windowStalls: 0, peerWindowStalls: 0, peerWindowStallsIdle: 0, windowGrows: 0, windowShrinks: 0 };
}

/** `beepstream:session:open`: a session started (transport connected, greeting queued). */
export interface SessionOpenEvent {
  sessionId: number;
  role: Role;
  /** `host:port` of each end, when the transport is a socket. */
  local?: string;
  remote?: string;
}

/** `beepstream:session:close`: the session ended and its transport closed. */
export interface SessionCloseEvent {
  sessionId: number;
  role: Role;
  remote?: string;
  /** Absent when the session was released cleanly. */
  error?: { code: string; message: string };
  stats: SessionStats;
  durationMs: number;
}

/** `beepstream:session:tuned`: a tuning reset completed (e.g. TLS, RFC 3080 §3). */
export interface SessionTunedEvent {
  sessionId: number;
  tls: boolean;
  protocol?: string;
  cipher?: string;
  peerCommonName?: string;
  pskIdentity?: string;
}

/** `beepstream:channel:open` / `beepstream:channel:close`. */
export interface ChannelEvent {
  sessionId: number;
  channel: number;
  profile: string;
  /** The peer started it (open events only). */
  remote?: boolean;
  /** Why it closed, when it was not a clean close (close events only). */
  error?: { code: string; message: string };
}

/** `beepstream:frame:in` / `beepstream:frame:out`: one frame, as the RFC writes it. */
export interface FrameEvent {
  sessionId: number;
  direction: 'in' | 'out';
  /** The parsed header. */
  frame: FrameHeader;
  /** The first octets of the payload (at most {@link PREVIEW_OCTETS}; empty for SEQ). */
  preview: Uint8Array;
  /** On a SEQ we send (channels other than 0): the channel's receive-window state that produced it. */
  flow?: ChannelFlowStats;
}

/** `beepstream:limit`: a limit was hit, and what the peer got. */
export interface LimitEvent {
  sessionId?: number;
  remote?: string;
  /** The limit's name, as in `SessionLimits` or `ServerOptions` (e.g. `greetingTimeout`). */
  limit: string;
  /** Refused with a reply code (greeting or start), or the session terminated. */
  action: 'refused' | 'terminated';
  /** The reply code sent, when refused. */
  code?: number;
  detail: string;
}

/** `beepstream:auth`: a SASL exchange ended. Never carries credentials. */
export interface AuthEvent {
  sessionId: number;
  mechanism: string;
  outcome: 'success' | 'failure';
  /** The authenticated identity, on success. */
  identity?: string;
  /** The reply code and reason, on failure. */
  code?: number;
  reason?: string;
  remote?: string;
}

/** The channels as objects (publish side and for `subscribe`). */
export const diagnostics = {
  sessionOpen: dc.channel(DIAGNOSTICS_CHANNELS.sessionOpen),
  sessionClose: dc.channel(DIAGNOSTICS_CHANNELS.sessionClose),
  sessionTuned: dc.channel(DIAGNOSTICS_CHANNELS.sessionTuned),
  channelOpen: dc.channel(DIAGNOSTICS_CHANNELS.channelOpen),
  channelClose: dc.channel(DIAGNOSTICS_CHANNELS.channelClose),
  frameIn: dc.channel(DIAGNOSTICS_CHANNELS.frameIn),
  frameOut: dc.channel(DIAGNOSTICS_CHANNELS.frameOut),
  limit: dc.channel(DIAGNOSTICS_CHANNELS.limit),
  auth: dc.channel(DIAGNOSTICS_CHANNELS.auth),
} as const;

/**
 * Subscribe `fn` to each named channel; returns the function that
 * unsubscribes them all (the CLI's logs and trace and the metrics use it).
 */
export function subscribeAll(subs: readonly (readonly [name: string, fn: (message: unknown) => void])[]): () => void {
  for (const [name, fn] of subs) dc.subscribe(name, fn);
  return () => {
    for (const [name, fn] of subs) dc.unsubscribe(name, fn);
  };
}

let lastSessionId = 0;

/** @internal A process-unique session id (for logs and events). */
export function nextSessionId(): number {
  lastSessionId = lastSessionId >= Number.MAX_SAFE_INTEGER ? 1 : lastSessionId + 1;
  return lastSessionId;
}

/** @internal Publish a limit event if anyone listens. */
export function publishLimit(e: LimitEvent): void {
  if (diagnostics.limit.hasSubscribers) diagnostics.limit.publish(e);
}

/** @internal The first {@link PREVIEW_OCTETS} octets of `parts`. */
export function previewOf(parts: readonly Uint8Array[]): Uint8Array {
  const out: Uint8Array[] = [];
  let n = 0;
  for (const p of parts) {
    if (n >= PREVIEW_OCTETS) break;
    const take = p.byteLength <= PREVIEW_OCTETS - n ? p : p.subarray(0, PREVIEW_OCTETS - n);
    out.push(take);
    n += take.byteLength;
  }
  return out.length === 1 ? (out[0] as Uint8Array) : Buffer.concat(out);
}
