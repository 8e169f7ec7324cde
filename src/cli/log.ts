/**
 * Structured logs of the long-running commands (`listen`, `s2cs`): a pino
 * logger writing JSON lines (or pino-pretty's human form) to stdout after the
 * `listening on HOST:PORT` line, fed by the `node:diagnostics_channel` events
 * of the session layer and by the S2CS's SciStream events.
 *
 * Every record has `event` (a stable name such as `session.close`) besides
 * pino's `level`, `time`, `pid`, `hostname` and `msg`; the fields of each
 * event are listed in `docs/logging.md`. No record carries a password, token,
 * key or session uid: the events never hold them, free text is scrubbed of
 * uid-like hexadecimal runs, and pino's `redact` censors secret-named fields
 * as a second line of defence.
 *
 * @module
 */
import { Option } from 'commander';
import pino from 'pino';
import type { Logger, DestinationStream, LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { DIAGNOSTICS_CHANNELS, subscribeAll, type AuthEvent, type ChannelEvent, type FrameEvent, type LimitEvent, type SessionCloseEvent, type SessionOpenEvent, type SessionTunedEvent } from '../channels/index.js';
import type { ControlEvent, DataErrorReport } from '../scistream/index.js';
import { UsageError } from './address.js';

/** The levels `--log-level` accepts, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** The formats `--log-format` accepts; `auto` is `pretty` when stdout is a terminal, else `json`. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** A log format. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Field paths pino censors (`[redacted]`) whatever logs them: secret-named
 * fields at the top level and one level down. The events logged here never
 * carry these; this is the second line of defence.
 */
export const REDACT_PATHS: readonly string[] = (() => {
  const names = ['password', 'passwd', 'passphrase', 'secret', 'token', 'accessToken', 'bearer', 'authorization', 'key', 'pskKey', 'privateKey', 'psk', 'uid', 'blob', 'proof', 'credentials'];
  return [...names, ...names.map((n) => `*.${n}`)];
})();

/** Parse `--log-level`: one of {@link LOG_LEVELS}, case-insensitive; else a usage error naming `name`. */
export function parseLogLevel(text: string, name = '--log-level'): LevelWithSilent {
  const v = text.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: expected one of ${LOG_LEVELS.join(', ')}`);
  return v as LevelWithSilent;
}

/** Parse `--log-format`: one of {@link LOG_FORMATS}. */
export function parseLogFormat(text: string, name = '--log-format'): LogFormat {
  const v = text.trim().toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(v)) throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: expected one of ${LOG_FORMATS.join(', ')}`);
  return v as LogFormat;
}

/** `--log-level <level>` (default `info`), for a command's options. */
export function logLevelOption(): Option {
  return new Option('--log-level <level>', 'least severe log records written').choices([...LOG_LEVELS]).default('info');
}

/** `--log-format <format>` (default `auto`: pretty on a terminal, else JSON lines). */
export function logFormatOption(): Option {
  return new Option('--log-format <format>', 'log records as JSON lines, or pretty (human); auto: pretty when stdout is a terminal').choices([...LOG_FORMATS]).default('auto');
}

/**
 * A stream that holds what is written until {@link LineGate.open}, then
 * passes everything on: log records wait until the `listening on` line is
 * out. Records written to a gate never opened are dropped.
 */
export class LineGate {
  private held: string[] | null = [];
  /** Whether the underlying stream is a terminal (for `auto` format). */
  readonly isTTY: boolean;

  constructor(private readonly dest: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout) {
    this.isTTY = dest.isTTY === true;
  }

  /** Write now, or hold until {@link open}. */
  write(text: string): boolean {
    if (this.held) {
      if (this.held.length < 10_000) this.held.push(text);
      return true;
    }
    return this.dest.write(text);
  }

  /** Write what was held, and everything from now on. */
  open(): void {
    const h = this.held;
    this.held = null;
    if (h && h.length > 0) this.dest.write(h.join(''));
  }
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Level name (default `info`). */
  level?: string;
  /** `json`, `pretty`, or `auto` (the default: pretty when `destination` is a terminal). */
  format?: LogFormat;
  /** Where lines go (default `process.stdout`). */
  destination?: { write(text: string): unknown; isTTY?: boolean };
  /** Component name, logged as `name` (e.g. `listen`, `s2cs`). */
  name?: string;
}

/**
 * Create the CLI's logger. JSON lines with an ISO `time`, or pino-pretty's
 * single-line human form (formatted synchronously, so nothing is lost at
 * exit). Writes go through `destination` (the same stream as the
 * `listening on` line, so order holds).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = parseLogLevel(options.level ?? 'info');
  const dest = options.destination ?? process.stdout;
  const format = options.format ?? 'auto';
  const human = format === 'pretty' || (format === 'auto' && dest.isTTY === true);
  let stream: DestinationStream;
  if (human) {
    const prettify = pretty.prettyFactory({ colorize: dest.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: true });
    stream = { write: (line: string) => void dest.write(prettify(line)) };
  } else {
    stream = { write: (line: string) => void dest.write(line) };
  }
  return pino(
    {
      level,
      ...(options.name ? { name: options.name } : {}),
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

const UID_LIKE = /\b[0-9a-fA-F]{32,}\b/g;

/** Free text with uid-like (≥ 32 hexadecimal digits) runs replaced: a uid is a secret (the data path's PSK derives from it). */
export function scrub(text: string): string {
  return text.replace(UID_LIKE, '[redacted]');
}

/** Options of {@link logSessions}. */
export interface SessionLogOptions {
  /** Log only the sessions this accepts (default: every session of the process). */
  filter?: (sessionId: number) => boolean;
}

/**
 * Log the session layer's diagnostics events: sessions opened, tuned and
 * closed, channels opened and closed, authentication outcomes, limits hit.
 * Frames are logged at `trace` level (header only). Returns a function that
 * unsubscribes.
 */
export function logSessions(log: Logger, options: SessionLogOptions = {}): () => void {
  const ok = options.filter ?? ((): boolean => true);
  const subs: [string, (m: unknown) => void][] = [];
  const on = <T>(name: string, f: (e: T) => void): void => {
    const fn = (m: unknown): void => {
      try {
        f(m as T);
      } catch {
        /* a logging failure never reaches the session */
      }
    };
    subs.push([name, fn]);
  };
  on<SessionOpenEvent>(DIAGNOSTICS_CHANNELS.sessionOpen, (e) => {
    if (!ok(e.sessionId)) return;
    log.info({ event: 'session.open', sessionId: e.sessionId, role: e.role, remote: e.remote, local: e.local }, `session ${e.sessionId} opened${e.remote ? ` with ${e.remote}` : ''}`);
  });
  on<SessionTunedEvent>(DIAGNOSTICS_CHANNELS.sessionTuned, (e) => {
    if (!ok(e.sessionId)) return;
    log.info(
      { event: 'session.tuned', sessionId: e.sessionId, tls: e.tls, tlsVersion: e.protocol, cipher: e.cipher, peerCommonName: e.peerCommonName, pskIdentity: e.pskIdentity },
      `session ${e.sessionId} tuned${e.tls ? ` with ${e.protocol ?? 'TLS'} ${e.cipher ?? ''}`.trimEnd() : ''}`,
    );
  });
  on<SessionCloseEvent>(DIAGNOSTICS_CHANNELS.sessionClose, (e) => {
    if (!ok(e.sessionId)) return;
    const fields = {
      event: 'session.close',
      sessionId: e.sessionId,
      role: e.role,
      remote: e.remote,
      outcome: e.error ? 'terminated' : 'released',
      errorCode: e.error?.code,
      error: e.error ? scrub(e.error.message) : undefined,
      octetsIn: e.stats.octetsIn,
      octetsOut: e.stats.octetsOut,
      framesIn: e.stats.framesIn,
      framesOut: e.stats.framesOut,
      windowStalls: e.stats.windowStalls,
      durationMs: e.durationMs,
    };
    if (e.error) log.warn(fields, `session ${e.sessionId} terminated: ${fields.error} [${e.error.code}]`);
    else log.info(fields, `session ${e.sessionId} released`);
  });
  const channel = (what: 'open' | 'close') => (e: ChannelEvent) => {
    if (!ok(e.sessionId)) return;
    const fields = {
      event: `channel.${what}`,
      sessionId: e.sessionId,
      channel: e.channel,
      profile: e.profile,
      ...(what === 'open' ? { startedBy: e.remote ? 'peer' : 'local' } : {}),
      errorCode: e.error?.code,
      error: e.error ? scrub(e.error.message) : undefined,
    };
    const text = `session ${e.sessionId} channel ${e.channel} ${what === 'open' ? 'opened' : 'closed'}: ${e.profile}`;
    // A channel that ends with its session (or a tuning reset) is no news: the session record says why.
    if (e.error && e.error.code !== 'BEEP_ERR_SESSION_CLOSED') log.warn(fields, `${text} [${e.error.code}]`);
    else log.info(fields, e.error ? `${text} (${fields.error})` : text);
  };
  on<ChannelEvent>(DIAGNOSTICS_CHANNELS.channelOpen, channel('open'));
  on<ChannelEvent>(DIAGNOSTICS_CHANNELS.channelClose, channel('close'));
  on<AuthEvent>(DIAGNOSTICS_CHANNELS.auth, (e) => {
    if (!ok(e.sessionId)) return;
    const fields = { event: 'auth', sessionId: e.sessionId, remote: e.remote, mechanism: e.mechanism, outcome: e.outcome, identity: e.identity, replyCode: e.code, reason: e.reason === undefined ? undefined : scrub(e.reason) };
    if (e.outcome === 'success') log.info(fields, `session ${e.sessionId} authenticated with ${e.mechanism} as ${e.identity ?? '?'}`);
    else log.warn(fields, `session ${e.sessionId} authentication with ${e.mechanism} failed: ${e.code ?? ''} ${fields.reason ?? ''}`.trimEnd());
  });
  on<LimitEvent>(DIAGNOSTICS_CHANNELS.limit, (e) => {
    if (e.sessionId !== undefined && !ok(e.sessionId)) return;
    log.warn(
      { event: 'limit', sessionId: e.sessionId, remote: e.remote, limit: e.limit, action: e.action, replyCode: e.code, detail: scrub(e.detail) },
      `limit ${e.limit} hit: ${e.action}${e.code ? ` with ${e.code}` : ''} (${scrub(e.detail)})`,
    );
  });
  const frame = (e: FrameEvent): void => {
    if (!log.isLevelEnabled('trace') || !ok(e.sessionId)) return;
    log.trace({ event: `frame.${e.direction}`, sessionId: e.sessionId, frame: { ...e.frame } }, `session ${e.sessionId} frame ${e.direction}: ${e.frame.type} channel ${e.frame.channel}`);
  };
  if (log.isLevelEnabled('trace')) {
    on<FrameEvent>(DIAGNOSTICS_CHANNELS.frameIn, frame);
    on<FrameEvent>(DIAGNOSTICS_CHANNELS.frameOut, frame);
  }
  return subscribeAll(subs);
}

const WARN_EVENTS: ReadonlySet<ControlEvent['type']> = new Set(['failed', 'timeout']);

/**
 * A `control.onEvent` handler logging SciStream session events as
 * `scistream.<type>` records: the session's `tag` (never its uid), the
 * identity, the role, and for failures the §8 `errorCode` with its reply code
 * and message.
 */
export function logSciStreamEvent(log: Logger): (e: ControlEvent) => void {
  return (e) => {
    const fields = {
      event: `scistream.${e.type}`,
      tag: e.tag,
      identity: e.identity,
      role: e.role,
      errorCode: e.error?.code,
      replyCode: e.error?.replyCode,
      error: e.error ? scrub(e.error.message) : undefined,
      retryAfter: e.error?.retryAfter,
      keep: e.keep,
    };
    // `orphaned` is the normal end of every CLI command that leaves a kept
    // session: its control connection closed, the session stays until RELEASE.
    const note = e.type === 'orphaned' ? (e.keep ? ': its requesting connection closed; kept until RELEASE' : ': its requesting connection closed; released') : '';
    const text = `scistream session ${e.tag} ${e.type}${e.role ? ` (${e.role})` : ''}${e.error ? `: ${e.error.code} ${fields.error}` : ''}${note}`;
    if (WARN_EVENTS.has(e.type) || e.error) log.warn(fields, text);
    else log.info(fields, text);
  };
}

/**
 * An `onDataError` handler for `startS2cs` logging each data-plane failure
 * as a `scistream.data.error` warning with the endpoint and errno (draft §5:
 * connection failures SHOULD be logged) and the tags of the sessions
 * concerned; never a uid.
 */
export function logDataError(log: Logger): (r: DataErrorReport) => void {
  return (r) => {
    const message = scrub(r.error instanceof Error ? r.error.message : String(r.error));
    const fields = { event: 'scistream.data.error', endpoint: r.endpoint, errno: r.errno, tags: r.tags.length ? r.tags : undefined, error: message };
    const where = r.endpoint ? ` ${r.endpoint}` : '';
    const sessions = r.tags.length ? ` (session ${r.tags.join(', ')})` : '';
    log.warn(fields, `data connection${where} failed: ${r.errno ?? message}${sessions}`);
  };
}
