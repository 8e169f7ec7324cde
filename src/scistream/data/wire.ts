/**
 * What the data plane puts on the wire besides the application's octets:
 * the two profile URIs, the piggybacked stream initialisation, the elements
 * of the data-control channel, the reply codes, and the session limits data
 * sessions run with. `spec/scistream-data.md` is the full description.
 *
 * @module
 */
import { BeepOperationError, ErrorCodes } from '../../errors.js';
import { XmlError, parseXml, type XmlErrorReason } from '../../xml/index.js';
import type { SessionLimits } from '../../channels/index.js';

/** URI of the data profile: one channel per proxied application TCP connection. */
export const DATA_URI = 'urn:beepstream:scistream:data:1';
/** URI of the data-control profile (a `control: true` channel per BEEP session). */
export const DATA_CONTROL_URI = 'urn:beepstream:scistream:data-control:1';

/** Reply codes of the data plane (RFC 3080 §8 meanings). */
export const DataCodes = {
  /** ERR to a data MSG: the stream was reset (application RST or error, or path closed). */
  RESET: 554,
  /** Start refused: the producer application could not be reached. */
  UNREACHABLE: 554,
  /** Start refused: num_conn application connections are already open. */
  TOO_MANY: 550,
  /** Start refused: poorly-formed `<stream>` initialisation. */
  BAD_INIT: 501,
  /** Start refused: the data path is closing. */
  CLOSING: 421,
} as const;

/**
 * Limits of data sessions unless overridden. Sized for a long fat path: the
 * flow policy grows a channel's window from a modest 1 MiB towards
 * 2 × rate × RTT, up to 64 MiB per channel, within a 128 MiB receive budget
 * per BEEP connection shared by its channels (each striped connection has its
 * own); 256 KiB frames, 256 KiB queued per stream ahead of the window.
 * Measured on a 1 Gbit/s, 100 ms path (`bench/wan`, bench/README.md): one
 * application connection reached 0.85 × one TCP connection with a 32 MiB
 * ceiling (the window sat at it) and 0.94 × with 64 MiB; what is buffered
 * stays small (≈ 0.2 MiB) while the application reads.
 */
export const DATA_LIMITS: Readonly<SessionLimits> = Object.freeze({
  receiveWindow: 1024 * 1024,
  maxReceiveWindow: 64 * 1024 * 1024,
  sessionReceiveBudget: 128 * 1024 * 1024,
  maxSendFrame: 256 * 1024,
  sendHighWaterMark: 256 * 1024,
  // A data session lives as long as its SciStream session (released by the
  // control plane) and may carry no stream for a while between application
  // connections; the TLS-PSK handshake timeout guards the unauthenticated start.
  idleTimeout: Infinity,
});

/** Largest data-control message or piggybacked init accepted (octets). */
export const MAX_CONTROL_MESSAGE = 1024;

/**
 * Thrown for a poorly-formed data-plane element: an {@link XmlError}
 * (`BEEP_ERR_XML_SYNTAX` with reply code 500, `BEEP_ERR_XML_PARAMETER` with
 * 501) that keeps its name for `instanceof`. The reply code to send is
 * `replyCode`.
 */
export class DataWireError extends XmlError {
  /** A refusal with reply code 500 (the document; `reason` default `malformed`) or 501 (a parameter). */
  constructor(replyCode: 500 | 501, message: string, reason?: XmlErrorReason, options: { cause?: unknown } = {}) {
    super(replyCode === 501 ? 'parameter' : reason === undefined || reason === 'parameter' ? 'malformed' : reason, message, options);
  }
}

const NUMBER = /^[0-9]{1,10}$/;

/** Parse one data-plane element (with the one safe XML reader, `src/xml/`): its name and attributes. */
function parseElement(content: Uint8Array | string | undefined): { name: string; attrs: ReadonlyMap<string, string> } {
  try {
    const el = parseXml(content ?? '', { maxBytes: MAX_CONTROL_MESSAGE });
    return { name: el.name, attrs: el.attrs };
  } catch (err) {
    if (err instanceof XmlError) throw new DataWireError(err.replyCode, err.message, err.reason, { cause: err });
    throw err;
  }
}

function numberAttr(attrs: ReadonlyMap<string, string>, name: string, max: number): number {
  const v = attrs.get(name);
  if (v === undefined || !NUMBER.test(v) || Number(v) > max) throw new DataWireError(501, `attribute ${name} missing or out of range`);
  return Number(v);
}

/** The piggybacked initialisation of a data channel start: `<stream index='i' />`. */
export function buildStreamInit(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 2147483647) throw new BeepOperationError(ErrorCodes.INVALID_ARGUMENT, `stream index ${index} out of range`);
  return `<stream index='${index}' />`;
}

/** Parse a data channel's piggybacked `<stream index='i' />`; returns the stream index. */
export function parseStreamInit(content: Uint8Array | string | undefined): number {
  const { name, attrs } = parseElement(content);
  if (name !== 'stream') throw new DataWireError(501, `expected <stream>, got <${name.slice(0, 32)}>`);
  return numberAttr(attrs, 'index', 2147483647);
}

/** A data-control message: `ready` (the outbound sender has the channel open) or `reset`. */
export type ControlMessage = { kind: 'ready' | 'reset'; channel: number };

/** Build `<ready channel='n' />` or `<reset channel='n' />`. */
export function buildControl(m: ControlMessage): string {
  if (!Number.isInteger(m.channel) || m.channel < 1 || m.channel > 2147483647) throw new BeepOperationError(ErrorCodes.INVALID_ARGUMENT, `channel ${m.channel} out of range`);
  return `<${m.kind} channel='${m.channel}' />`;
}

/** Parse a data-control MSG body. Throws {@link DataWireError} (`replyCode` 500/501) otherwise. */
export function parseControl(content: Uint8Array | string): ControlMessage {
  const { name, attrs } = parseElement(content);
  if (name !== 'ready' && name !== 'reset') throw new DataWireError(501, `unknown element <${name.slice(0, 32)}>`);
  return { kind: name, channel: numberAttr(attrs, 'channel', 2147483647) };
}

/** The positive reply to a data-control MSG. */
export const CONTROL_OK = '<ok />';
