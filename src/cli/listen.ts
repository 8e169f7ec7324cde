/**
 * `beepstream listen`: serve the echo and answers profiles.
 *
 * @module
 */
import net from 'node:net';
import { createServer } from '../channels/session.js';
import { answersProfile } from '../profiles/answers.js';
import { echoProfile } from '../profiles/echo.js';
import { formatEndpoint, parsePort, parsePositiveInt, UsageError } from './address.js';
import { listenerTuning, type ListenSecurityOptions } from './security.js';
import { untilSignal } from './signals.js';
import { defineProfile } from '../profiles/define.js';

/** Options of `listen`, as given on the command line. */
export interface ListenOptions extends ListenSecurityOptions {
  host: string;
  port: string;
  maxChannels: string;
  maxMessageSize: string;
  /** Echo and answers require an authenticated session (530 before). */
  requireAuth?: boolean;
}

/**
 * Listen until SIGINT or SIGTERM, then release every session and return.
 * The first line written to stdout is exactly `listening on HOST:PORT`.
 */
export async function runListen(opts: ListenOptions, signal?: AbortSignal): Promise<void> {
  const port = parsePort(opts.port, 0);
  if (!opts.host || /\s/.test(opts.host)) throw new UsageError(`invalid host ${JSON.stringify(opts.host)}`);
  const maxChannels = parsePositiveInt('--max-channels', opts.maxChannels, 2147483647);
  const maxMessageSize = parsePositiveInt('--max-message-size', opts.maxMessageSize);
  const tuning = await listenerTuning(opts);
  if (opts.requireAuth && !tuning.summary.some((l) => l.startsWith('sasl'))) {
    throw new UsageError('--require-auth needs a SASL mechanism (--sasl-users, --jwks, --allow-anonymous or --tls-ca)');
  }
  const served = [echoProfile, answersProfile].map((p) => (opts.requireAuth ? defineProfile({ ...p, requires: { authentication: true } }) : p));
  // Signal handlers go in before anything is printed (see untilSignal).
  const { stopped, stop } = untilSignal(signal);
  const server = createServer({ profiles: [...tuning.profiles, ...served], requireTls: tuning.requireTls, limits: { maxChannels, maxMessageSize } });
  try {
    const addr = await server.listen(port, opts.host);
    process.stdout.write(`listening on ${formatEndpoint(addr.address, addr.port)}\n`);
    for (const line of tuning.summary) process.stderr.write(`${line}\n`);
  } catch (err) {
    stop();
    throw err;
  }
  server.on('session', (session) => {
    const s = session.socket as net.Socket;
    const peer = formatEndpoint(s.remoteAddress ?? '?', s.remotePort ?? 0);
    process.stderr.write(`session from ${peer} opened\n`);
    session.on('close', (err) => {
      process.stderr.write(err ? `session from ${peer} terminated: ${err.message} [${err.code}]\n` : `session from ${peer} released\n`);
    });
  });
  await stopped;
  await server.close(2000);
}
