/**
 * `beepstream listen`: serve the echo and answers profiles.
 *
 * @module
 */
import { createServer, DEFAULT_MEMORY_BUDGET, DEFAULT_LIMITS } from '../channels/index.js';
import { answersProfile, echoProfile, defineProfile } from '../profiles/index.js';
import { formatEndpoint, parseEndpoint, parsePort, parsePositiveInt, UsageError } from './address.js';
import { startOpsEndpoints, type OpsEndpoints, limitLogs } from '../ops/index.js';
import { listenerTuning, type ListenSecurityOptions } from './security.js';
import { untilSignal } from './signals.js';
import { createLogger, LineGate, logSessions, parseLogFormat, parseLogLevel, scrub } from './log.js';
import { parseTraceOctets, startTrace } from './trace.js';

/** Smallest `--memory-budget` / `--session-memory-budget` (octets): room for a few channels' initial windows. */
export const MIN_MEMORY_BUDGET = 1024 * 1024;

/** Options of `listen`, as given on the command line. */
export interface ListenOptions extends ListenSecurityOptions {
  host: string;
  port: string;
  /** `--unix PATH`: listen on a Unix domain socket instead of TCP. */
  unix?: string;
  maxChannels: string;
  maxMessageSize: string;
  /** `--memory-budget`: what all sessions together may hold because of their peers (octets). */
  memoryBudget?: string;
  /** `--session-memory-budget`: the same for one session (octets). */
  sessionMemoryBudget?: string;
  /** Echo and answers require an authenticated session (530 before). */
  requireAuth?: boolean;
  /** `--metrics HOST:PORT`: serve Prometheus metrics at `http://HOST:PORT/metrics`. */
  metrics?: string;
  /** `--log-level` (default `info`) and `--log-format` (default `auto`). */
  logLevel?: string;
  logFormat?: string;
  /** `--trace`: every frame in and out on stderr; `--trace-octets`: payload octets shown per frame. */
  trace?: boolean;
  traceOctets?: string;
}

const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'BEEP_ERR_SESSION_CLOSED', 'BEEP_ERR_CHANNEL_CLOSED']);

/** True when an error (or one of its causes) says the peer went away: a reset, a broken pipe, a closed session. */
function peerWentAway(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e !== null && typeof e === 'object' && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string' && PEER_GONE.has(c)) return true;
    const m = (e as { message?: unknown }).message;
    if (typeof m === 'string' && /\b(?:ECONNRESET|EPIPE)\b/.test(m)) return true;
  }
  return false;
}

/**
 * Listen until SIGINT or SIGTERM, then release every session and return.
 * The first line written to stdout is exactly `listening on HOST:PORT` (or
 * `listening on unix:PATH` with `--unix`).
 */
export async function runListen(opts: ListenOptions, signal?: AbortSignal): Promise<void> {
  const port = parsePort(opts.port, 0);
  if (!opts.host || /\s/.test(opts.host)) throw new UsageError(`invalid host ${JSON.stringify(opts.host)}`);
  const maxChannels = parsePositiveInt('--max-channels', opts.maxChannels, 2147483647);
  const maxMessageSize = parsePositiveInt('--max-message-size', opts.maxMessageSize);
  const memoryBudget = parsePositiveInt('--memory-budget', opts.memoryBudget ?? String(DEFAULT_MEMORY_BUDGET), 2 ** 53 - 1, MIN_MEMORY_BUDGET);
  const sessionMemoryBudget = parsePositiveInt('--session-memory-budget', opts.sessionMemoryBudget ?? String(DEFAULT_LIMITS.sessionMemoryBudget), 2 ** 53 - 1, MIN_MEMORY_BUDGET);
  const metricsAt = opts.metrics === undefined ? undefined : parseEndpoint(opts.metrics, 0);
  const tuning = await listenerTuning(opts);
  if (opts.requireAuth && !tuning.summary.some((l) => l.startsWith('sasl'))) {
    throw new UsageError('--require-auth needs a SASL mechanism (--sasl-users, --jwks, --allow-anonymous or --tls-ca)');
  }
  const logLevel = parseLogLevel(opts.logLevel ?? 'info');
  const logFormat = parseLogFormat(opts.logFormat ?? 'auto');
  const traceOctets = opts.traceOctets === undefined ? undefined : parseTraceOctets(opts.traceOctets);
  const served = [echoProfile, answersProfile].map((p) => (opts.requireAuth ? defineProfile({ ...p, requires: { authentication: true } }) : p));
  // Signal handlers go in before anything is printed (see untilSignal).
  const { stopped, stop } = untilSignal(signal);
  // Log records wait behind the gate until the "listening on" line is out.
  const gate = new LineGate(process.stdout);
  const log = limitLogs(createLogger({ level: logLevel, format: logFormat, destination: gate, name: 'listen' })); // issue 17: bounded per session
  const unsubscribe = logSessions(log);
  const untrace = opts.trace ? startTrace({ localRole: 'listener', sessions: 'all', maxOctets: traceOctets }) : () => undefined;
  const server = createServer({ profiles: [...tuning.profiles, ...served], requireTls: tuning.requireTls, memoryBudget, limits: { maxChannels, maxMessageSize, sessionMemoryBudget } });
  let address: string;
  let ops: OpsEndpoints | undefined;
  try {
    if (metricsAt) ops = await startOpsEndpoints({ metrics: metricsAt, servers: [{ name: 'listen', server }] });
    if (opts.unix !== undefined) {
      await server.listen({ path: opts.unix });
      address = `unix:${opts.unix}`;
    } else {
      const addr = await server.listen(port, opts.host);
      address = formatEndpoint(addr.address, addr.port);
    }
    process.stdout.write(`listening on ${address}\n`);
    for (const line of ops?.lines ?? []) process.stderr.write(`${line}\n`);
  } catch (err) {
    await ops?.close();
    stop();
    unsubscribe();
    untrace();
    throw err;
  }
  gate.open();
  log.info({ event: 'listen', address, security: tuning.summary, requireAuth: opts.requireAuth === true }, `listening on ${address}${tuning.summary.length ? ` (${tuning.summary.join('; ')})` : ''}`);
  server.on('session', (session) => {
    session.on('handlerError', (e: unknown) => {
      const err = e as { message?: string; code?: string };
      const text = scrub(String(err?.message ?? e));
      const fields = { event: 'handler.error', sessionId: session.id, errorCode: err?.code, error: text };
      // A peer dropping its connection mid-exchange (an interrupted client) is
      // the peer's business, not a fault here: info, not a warning.
      if (peerWentAway(e)) log.info(fields, `session ${session.id}: the peer went away during an exchange: ${text}`);
      else log.warn(fields, `session ${session.id}: a profile handler failed: ${text}`);
    });
  });
  await stopped;
  log.info({ event: 'shutdown' }, 'stopping: releasing every session');
  await server.close(2000);
  await ops?.close();
  log.info({ event: 'stopped' }, 'stopped');
  unsubscribe();
  untrace();
}
