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

/** Options of `listen`, as given on the command line. */
export interface ListenOptions {
  host: string;
  port: string;
  maxChannels: string;
  maxMessageSize: string;
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
  // Signal handlers go in before anything is printed: a supervisor that reads
  // the first line and then sends SIGTERM must never meet the default action.
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  signal?.addEventListener('abort', stop, { once: true });
  const server = createServer({ profiles: [echoProfile, answersProfile], limits: { maxChannels, maxMessageSize } });
  try {
    const addr = await server.listen(port, opts.host);
    process.stdout.write(`listening on ${formatEndpoint(addr.address, addr.port)}\n`);
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
