/**
 * The small HTTP plumbing shared by the metrics endpoint and the status
 * page: one `node:http` server bound to one address, with short timeouts,
 * defensive response headers, and a `close()` that also drops idle
 * keep-alive connections so a shutdown never waits for a scraper.
 *
 * @module
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenError } from '../errors.js';
import { formatEndpoint } from '../scistream/index.js';

/** A running operator endpoint (metrics or status page). */
export interface OpsServer {
  /** `host:port` it is bound to (the real port when 0 was asked for). */
  readonly address: string;
  /** The URL to open or scrape, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  /** Stop listening and drop every connection; resolves once closed. */
  close(): Promise<void>;
}

/** A request handler; it must answer (or throw: a 500 is sent). */
export type OpsHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/** @internal Headers every operator response carries. */
export const BASE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

/** @internal Send a short plain-text answer. */
export function sendText(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(text + '\n', 'utf8');
  res.writeHead(status, { ...BASE_HEADERS, ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** @internal The path of a request, without its query string. */
export function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * @internal Listen on `host:port` (port 0 picks one) with `handler`; only
 * GET and HEAD are served (405 otherwise), a handler that throws gets a 500
 * with no detail. A failure to listen rejects with a `BEEP_ERR_LISTEN` BeepError
 * naming the address and the reason.
 */
export async function listenHttp(host: string, port: number, path: string, handler: OpsHandler): Promise<OpsServer> {
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch(() => {
        if (!res.headersSent) sendText(res, 500, 'internal error');
        else res.destroy();
      });
  });
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(listenError(err, host, port));
    server.once('error', onError);
    try {
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    } catch (err) {
      server.off('error', onError);
      onError(err as Error); // a bad port is thrown synchronously
    }
  });
  // A failing socket never takes the process down; the listener's later errors are ignored.
  server.on('error', () => undefined);
  server.on('clientError', (_err, socket) => socket.destroy());
  const a = server.address() as AddressInfo;
  const address = formatEndpoint(a.address, a.port);
  let closing: Promise<void> | undefined;
  return {
    address,
    url: `http://${address}${path}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
