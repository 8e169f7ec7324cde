/**
 * A small, read-only live status page of an S2CS: `GET /` serves one
 * self-contained HTML page (see `page.ts`), `GET /api/sessions` the
 * SciStream sessions as JSON — by tag, never by uid — with a ring buffer of
 * recent throughput samples each. No framework.
 *
 * Hardening: a strict Content-Security-Policy (`default-src 'none'`, the
 * inline style and script admitted by their SHA-256 only, fetches to the
 * same origin only), `nosniff`, no framing, no caching, no referrer; only
 * GET/HEAD; and the `Host` header must name the server by an IP address,
 * `localhost`, the bound host or one of `allowedHosts` (so a DNS-rebinding
 * page elsewhere cannot read it).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import type http from 'node:http';
import type { S2cs } from '../scistream/index.js';
import { BASE_HEADERS, listenHttp, pathOf, sendText, type OpsServer } from './http.js';
import { PAGE_SCRIPT, PAGE_STYLE, pageHtml } from './page.js';
import { ThroughputSampler, type SessionView } from './sampler.js';

/** Options of {@link startStatusServer}. */
export interface StatusServerOptions {
  /** Address to bind (only this one). */
  host: string;
  /** Port (0 picks a free one). */
  port: number;
  /** The S2CS whose sessions are shown. */
  s2cs: S2cs;
  /** Milliseconds between throughput samples (default 1000). */
  sampleMs?: number;
  /** Samples kept per session (default 120: two minutes at 1 s). */
  samples?: number;
  /** Host names (besides IP addresses, `localhost` and `host`) the page may be reached by. */
  allowedHosts?: readonly string[];
}

/** The JSON document of `GET /api/sessions`. */
export interface SessionsDocument {
  /** The S2CS control listener (`host:port`). */
  server: string;
  /** Server time of the document (ms since the epoch). */
  now: number;
  /** Milliseconds between samples. */
  sampleMs: number;
  /** How many samples are kept per session (the plot spans `sampleMs × window`). */
  window: number;
  /** Every session the S2CS holds, by tag. */
  sessions: SessionView[];
}

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The Content-Security-Policy of the page: nothing but its own inline style and script, and same-origin fetches. */
export const STATUS_CSP = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_SCRIPT)}`,
  `style-src ${sha256(PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The host part of a `Host` header (brackets of an IPv6 literal removed), lower-cased. */
function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::[0-9]{1,5})?$/.exec(header.trim());
  return m ? (m[1] as string).replace(/^\[|\]$/g, '').toLowerCase() : null;
}

/**
 * Start the status page of `s2cs` on `host:port`: `GET /` (the page) and
 * `GET /api/sessions` (JSON, {@link SessionsDocument}); 404 elsewhere.
 * Throughput is sampled on an unref'd timer that `close()` clears.
 */
export async function startStatusServer(opts: StatusServerOptions): Promise<OpsServer> {
  const sampler = new ThroughputSampler(opts.s2cs.control.registry, {
    ...(opts.sampleMs === undefined ? {} : { sampleMs: opts.sampleMs }),
    ...(opts.samples === undefined ? {} : { capacity: opts.samples }),
  });
  const allowed = new Set(['localhost', opts.host.toLowerCase(), ...(opts.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  const page = Buffer.from(pageHtml(), 'utf8');
  const headers = { ...BASE_HEADERS, 'Content-Security-Policy': STATUS_CSP };
  const send = (req: http.IncomingMessage, res: http.ServerResponse, type: string, body: Buffer): void => {
    res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  sampler.start();
  let server: OpsServer;
  try {
    server = await listenHttp(opts.host, opts.port, '/', (req, res) => {
      const name = hostName(req.headers.host);
      if (name === null || (net.isIP(name) === 0 && !allowed.has(name))) return sendText(res, 403, 'forbidden: unexpected Host header', headers);
      const path = pathOf(req);
      if (path === '/' || path === '/index.html') return send(req, res, 'text/html; charset=utf-8', page);
      if (path === '/favicon.ico') {
        res.writeHead(204, headers);
        return void res.end();
      }
      if (path === '/api/sessions') {
        const doc: SessionsDocument = { server: opts.s2cs.address, now: Date.now(), sampleMs: sampler.sampleMs, window: sampler.capacity, sessions: sampler.sessions() };
        return send(req, res, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(doc), 'utf8'));
      }
      return sendText(res, 404, 'not found', headers);
    });
  } catch (err) {
    sampler.stop();
    throw err;
  }
  return {
    address: server.address,
    url: server.url,
    async close() {
      sampler.stop();
      await server.close();
    },
  };
}
