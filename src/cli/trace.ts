/**
 * `--trace`: every frame in and out, written as RFC 3080 writes its examples.
 *
 * Each line starts with the role of the peer that sent the frame — `I:` the
 * initiator (the `connect` side), `L:` the listener — then the header line,
 * the payload split at CRLF (at most `maxOctets` octets of it — default 64 —
 * or, on channel 0, up to 256, so that management messages read whole; octets other
 * than printable ASCII escaped as `\r`, `\n`, `\t`, `\\` or `\xHH`; then
 * `…(N more octets)` when cut), then `END` (RFC 3080 §2.2.1). SEQ frames
 * (RFC 3081 §3.1.3) have neither payload nor trailer: their header line only.
 *
 * ```
 * I: MSG 1 0 . 0 5
 * I: hello
 * I: END
 * L: SEQ 1 5 65536
 * # flow channel 1: window 65536, unread 0, rtt 0.4 ms (min 0.3), rate 0 octets/s, peer stalls 0, grows 0, shrinks 0
 * ```
 *
 * Secrets stay out: the payload of frames on SASL channels is not shown,
 * nor the content of any `<blob>` on channel 0 (a piggybacked initial
 * response), nor any `uid` attribute value (SciStream). Built on the
 * `beepstream:frame:*` diagnostics channels; the frames of one session, or of
 * every session of the process (then `#` lines name the session).
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { DIAGNOSTICS_CHANNELS, PREVIEW_OCTETS, subscribeAll, type ChannelEvent, type FrameEvent, type SessionCloseEvent, type SessionOpenEvent, type Role, type ChannelFlowStats } from '../channels/index.js';
import { formatHeaderLine } from '../framing/index.js';
import { UsageError } from './address.js';

/** Payload octets shown per frame by default. */
export const TRACE_OCTETS = 64;

/** Profile URI prefix whose channels carry credentials (RFC 3080 §4.1). */
const SASL_PREFIX = 'http://iana.org/beep/SASL/';

/** Escape one payload segment (no CRLF in it): printable ASCII as is, the rest as escapes. */
export function escapeOctets(b: Uint8Array): string {
  let s = '';
  for (const c of b) {
    if (c === 0x5c) s += '\\\\';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x09) s += '\\t';
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/** Options of {@link formatFrame}. */
export interface FormatFrameOptions {
  /** Role of this process in the session: decides which frames are `I:` and which `L:`. */
  localRole: Role;
  /** Payload octets shown at most (default {@link TRACE_OCTETS}, at most {@link PREVIEW_OCTETS}). */
  maxOctets?: number;
  /** The same on channel 0 (default {@link PREVIEW_OCTETS}: greetings, starts and closes whole). */
  mgmtOctets?: number;
  /** Do not show the payload (e.g. a SASL channel): one line says how many octets it had. */
  hidePayload?: boolean;
}

/** Mask secrets in a shown payload (text form): `<blob>` contents and `uid` attribute values. */
export function maskPayload(text: string): string {
  return text
    .replace(/(<blob\b[^>]*?(?<!\/)>)(?:(?!<\/blob>)[\s\S])+/g, (_m, open: string) => `${open}***`)
    .replace(/(\buid\s*=\s*)(['"])[^'"]*(\2?)/g, (_m, pre: string, q: string, close: string) => `${pre}${q}***${close}`);
}

/**
 * The receive-window state behind a SEQ we sent, as a `#` comment line: the
 * window, what sits unread, the RTT estimate, how often the peer was held
 * back by our window, and the policy's resizes (spec/flow-control.md).
 */
export function formatFlow(channel: number, f: ChannelFlowStats): string {
  const ms = (x: number): string => x.toFixed(1);
  return `# flow channel ${channel}: window ${f.window}, unread ${f.buffered}, rtt ${ms(f.srttMs)} ms (min ${ms(f.minRttMs)}), rate ${f.rate} octets/s, peer stalls ${f.peerStalls}, grows ${f.grows}, shrinks ${f.shrinks}\n`;
}

/**
 * One frame as lines (each ending in `\n`), RFC style: `I:`/`L:` header,
 * payload lines, `END`. The payload is the event's preview, cut to `maxOctets`.
 */
export function formatFrame(e: Pick<FrameEvent, 'direction' | 'frame' | 'preview' | 'flow'>, options: FormatFrameOptions): string {
  const senderIsInitiator = (e.direction === 'out') === (options.localRole === 'initiator');
  const p = senderIsInitiator ? 'I:' : 'L:';
  const header = formatHeaderLine(e.frame).replace(/\r\n$/, '');
  if (e.frame.type === 'SEQ') return e.flow ? `${p} ${header}\n${formatFlow(e.frame.channel, e.flow)}` : `${p} ${header}\n`;
  const size = e.frame.size;
  const lines = [`${p} ${header}`];
  if (size > 0) {
    if (options.hidePayload) {
      lines.push(`${p} …(${size} octets not shown)`);
    } else {
      const limit = e.frame.channel === 0 ? (options.mgmtOctets ?? PREVIEW_OCTETS) : (options.maxOctets ?? TRACE_OCTETS);
      const max = Math.max(0, Math.min(limit, PREVIEW_OCTETS));
      const shown = e.preview.subarray(0, Math.min(max, size));
      // Split at CRLF first, escape each piece (no CR or LF survives unescaped), then mask across lines.
      const pieces: string[] = [];
      let from = 0;
      for (let i = 0; i + 1 < shown.byteLength; i++) {
        if (shown[i] === 0x0d && shown[i + 1] === 0x0a) {
          pieces.push(escapeOctets(shown.subarray(from, i)));
          from = i + 2;
          i++;
        }
      }
      pieces.push(escapeOctets(shown.subarray(from)));
      const segs = maskPayload(pieces.join('\r\n')).split('\r\n');
      // A payload ending in CRLF ends its last line there (as the RFC's examples show).
      if (segs.length > 1 && segs[segs.length - 1] === '') segs.pop();
      if (shown.byteLength > 0) for (const seg of segs) lines.push(seg === '' ? p : `${p} ${seg}`);
      if (size > shown.byteLength) lines.push(`${p} …(${size - shown.byteLength} more octets)`);
    }
  }
  lines.push(`${p} END`);
  return lines.map((l) => l + '\n').join('');
}

/** Options of {@link startTrace}. */
export interface TraceOptions {
  /** Role of this process in the traced sessions. */
  localRole: Role;
  /** Where lines go (default: standard error). */
  write?: (text: string) => void;
  /** Payload octets shown per frame (default {@link TRACE_OCTETS}). */
  maxOctets?: number;
  /**
   * `first`: trace only the first session of `localRole` that opens after
   * this call (what `connect` owns); `all`: every session of that role, each
   * frame block preceded by a `# session N` line when the session changes.
   */
  sessions: 'first' | 'all';
}

/**
 * Subscribe to the frame events and write each frame (see {@link formatFrame}).
 * Returns a function that unsubscribes.
 */
export function startTrace(options: TraceOptions): () => void {
  const write = options.write ?? ((t: string): void => void process.stderr.write(t));
  const traced = new Set<number>();
  const sasl = new Set<string>(); // `${session}:${channel}` of SASL channels
  let picked = false;
  let last = -1;
  const onOpen = (m: unknown): void => {
    const e = m as SessionOpenEvent;
    if (e.role !== options.localRole) return;
    if (options.sessions === 'first') {
      if (picked) return;
      picked = true;
    } else {
      write(`# session ${e.sessionId} opened${e.remote ? ` with ${e.remote}` : ''}\n`);
      last = e.sessionId;
    }
    traced.add(e.sessionId);
  };
  const onClose = (m: unknown): void => {
    const e = m as SessionCloseEvent;
    if (!traced.has(e.sessionId)) return;
    traced.delete(e.sessionId);
    for (const k of sasl) if (k.startsWith(`${e.sessionId}:`)) sasl.delete(k);
    if (options.sessions === 'all') {
      write(`# session ${e.sessionId} closed${e.error ? `: ${e.error.code}` : ''}\n`);
      last = -1;
    }
  };
  const onChannelOpen = (m: unknown): void => {
    const e = m as ChannelEvent;
    if (traced.has(e.sessionId) && e.profile.startsWith(SASL_PREFIX)) sasl.add(`${e.sessionId}:${e.channel}`);
  };
  const onChannelClose = (m: unknown): void => {
    const e = m as ChannelEvent;
    sasl.delete(`${e.sessionId}:${e.channel}`);
  };
  const onFrame = (m: unknown): void => {
    const e = m as FrameEvent;
    if (!traced.has(e.sessionId)) return;
    let out = '';
    if (options.sessions === 'all' && last !== e.sessionId) {
      out += `# session ${e.sessionId}\n`;
      last = e.sessionId;
    }
    out += formatFrame(e, {
      localRole: options.localRole,
      ...(options.maxOctets !== undefined ? { maxOctets: options.maxOctets } : {}),
      hidePayload: sasl.has(`${e.sessionId}:${e.frame.channel}`),
    });
    write(out);
  };
  const subs: [string, (m: unknown) => void][] = [
    [DIAGNOSTICS_CHANNELS.sessionOpen, onOpen],
    [DIAGNOSTICS_CHANNELS.sessionClose, onClose],
    [DIAGNOSTICS_CHANNELS.channelOpen, onChannelOpen],
    [DIAGNOSTICS_CHANNELS.channelClose, onChannelClose],
    [DIAGNOSTICS_CHANNELS.frameIn, onFrame],
    [DIAGNOSTICS_CHANNELS.frameOut, onFrame],
  ];
  return subscribeAll(subs);
}

/** Parse `--trace-octets`: 0 to {@link PREVIEW_OCTETS}; else a usage error. */
export function parseTraceOctets(text: string): number {
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) > PREVIEW_OCTETS) throw new UsageError(`invalid --trace-octets ${JSON.stringify(text)}: expected an integer from 0 to ${PREVIEW_OCTETS}`);
  return Number(text);
}

/** @internal For tests: a frame event from a header and payload. */
export function frameEventOf(direction: 'in' | 'out', frame: FrameEvent['frame'], payload: string | Uint8Array = ''): FrameEvent {
  return { sessionId: 0, direction, frame, preview: typeof payload === 'string' ? Buffer.from(payload) : payload };
}
