/**
 * A process of the DECADE benchmark group (forked by `bench/decade/group.ts`):
 *
 * - `decade-server`: a DECADE server as `decade serve` runs it — a FileStore
 *   on disk, the DRP/SDT profiles behind the TLS profile (`requireTls`),
 *   `DECADE_LIMITS`; optionally allowed to fetch from an origin
 *   (server to server, spec/decade.md §8).
 * - `https-server`: the plain `node:https` baseline: `GET /obj` streams the
 *   file (`createReadStream`, 256 KiB reads, as the FileStore reads), `PUT
 *   /obj` writes the body to a temporary file, fsyncs it and renames it into
 *   place (the durability a DECADE PUT gives, without its SHA-256).
 * - `client`: one measured PUT or GET against one of them (or nginx), and its
 *   metrics. Tokens and keys travel over IPC only, never in argv.
 *
 * @module
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import https from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { JsonWebKey } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { createServer } from '../../src/channels/index.js';
import { tlsProfile } from '../../src/profiles/index.js';
import { DECADE_LIMITS, DecadeClient, DecadeServer, FileStore, NameVerifier } from '../../src/decade/index.js';

/** Parent → worker. */
export type DecadeWorkerInit =
  | { role: 'decade-server'; dir: string; cert: string; key: string; account: string; publicJwk: JsonWebKey; relay?: { allow: string[]; ca: string } }
  | { role: 'https-server'; dir: string; cert: string; key: string }
  | {
      /** Two GETs at once on one connection, tokens weighted `weights[0]`:`weights[1]`; their octet shares. */
      role: 'weights';
      port: number;
      ca: string;
      names: [string, string];
      size: number;
      tokens: [string, string];
      weights: [number, number];
    }
  | {
      role: 'client';
      impl: 'beepstream' | 'node-https' | 'nginx';
      op: 'put' | 'get';
      port: number;
      ca: string;
      file: string;
      size: number;
      name: string;
      token?: string;
      /** GET through this server from an origin (server to server). */
      source?: { origin: string; token: string };
      /** node-https / nginx GET: verify SHA-256 against the name as the octets arrive, as the DECADE client does (equal client work). */
      hash?: boolean;
    };

/** Worker → parent. */
export type DecadeWorkerMsg =
  | { type: 'ready'; port: number }
  | { type: 'mark' }
  | { type: 'result'; metrics: Record<string, number>; cipher: string }
  | { type: 'error'; message: string };

function send(m: DecadeWorkerMsg): Promise<void> {
  return new Promise((resolve) => (process.send ? process.send(m, undefined, {}, () => resolve()) : resolve()));
}

const fail = (err: unknown): void => {
  void send({ type: 'error', message: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) }).then(() => process.exit(1));
};
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
// Stopped by the runner: exit normally (so --cpu-prof writes its profile).
process.once('SIGTERM', () => process.exit(0));

const CHUNK = 256 * 1024;
const CIPHER = 'TLS_AES_128_GCM_SHA256';

// ------------------------------------------------------------------ servers

async function decadeServer(init: Extract<DecadeWorkerInit, { role: 'decade-server' }>): Promise<void> {
  const store = new FileStore({ dir: init.dir });
  await store.open();
  const decade = new DecadeServer({
    store,
    accounts: [{ id: init.account, publicKey: init.publicJwk }],
    ...(init.relay ? { relay: { allow: init.relay.allow, tls: { ca: init.relay.ca, serverName: 'localhost' } } } : {}),
  });
  const server = createServer({ profiles: [tlsProfile({ cert: init.cert, key: init.key }), ...decade.profiles], requireTls: true, limits: DECADE_LIMITS });
  const { port } = await server.listen(0, '127.0.0.1');
  await send({ type: 'ready', port });
}

async function httpsServer(init: Extract<DecadeWorkerInit, { role: 'https-server' }>): Promise<void> {
  const path = join(init.dir, 'obj');
  let seq = 0;
  const server = https.createServer({ cert: init.cert, key: init.key, minVersion: 'TLSv1.3' }, (req, res) => {
    void (async () => {
      if (req.url !== '/obj') {
        res.writeHead(404).end();
        return;
      }
      if (req.method === 'GET') {
        const s = await stat(path);
        res.writeHead(200, { 'content-length': s.size, 'content-type': 'application/octet-stream' });
        await pipeline(createReadStream(path, { highWaterMark: CHUNK }), res);
      } else if (req.method === 'PUT') {
        const tmp = join(init.dir, `obj.${process.pid}.${seq++}.part`);
        await pipeline(req, createWriteStream(tmp, { mode: 0o600, highWaterMark: CHUNK }));
        // Durable before it is in place, as a DECADE PUT (fsync reaches the file's pages through any descriptor).
        const fh = await open(tmp, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, path);
        res.writeHead(201).end();
      } else {
        res.writeHead(405).end();
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
      console.error(`https-server: ${String(err)}`);
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    void send({ type: 'ready', port: typeof a === 'object' && a !== null ? a.port : 0 });
  });
}

// ------------------------------------------------------------------ the client

interface Measured {
  bytes: number;
  seconds: number;
  /** GET: seconds from the request to its first octet. */
  ttfb?: number;
  cipher: string;
}

async function httpsTransfer(init: Extract<DecadeWorkerInit, { role: 'client' }>, go: () => Promise<void>): Promise<Measured> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: init.ca, ciphers: CIPHER, minVersion: 'TLSv1.3' });
  const request = (method: string, headers: Record<string, string | number> = {}): ClientRequest =>
    https.request({ host: '127.0.0.1', port: init.port, method, path: '/obj', agent, servername: 'localhost', headers });
  // One small exchange first, so the measured part runs on a connection already set up (as DECADE's does).
  await new Promise<void>((resolve, reject) => {
    request('HEAD').on('response', (r: IncomingMessage) => r.resume().on('end', resolve)).on('error', reject).end();
  });
  let cipher = '';
  await go();
  const t0 = performance.now();
  let ttfb: number | undefined;
  let bytes = 0;
  if (init.op === 'get') {
    const v = init.hash === true ? new NameVerifier(init.name) : null;
    await new Promise<void>((resolve, reject) => {
      const req = request('GET');
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        cipher = (res.socket as TLSSocket).getCipher().standardName;
        if (res.statusCode !== 200) return reject(new Error(`GET: HTTP ${res.statusCode}`));
        res.on('data', (c: Buffer) => {
          ttfb ??= performance.now();
          v?.update(c);
          bytes += c.byteLength;
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.end();
    });
    if (v !== null && !v.matches()) throw new Error('GET: the octets do not match the name');
  } else {
    await new Promise<void>((resolve, reject) => {
      const req = request('PUT', { 'content-length': init.size, 'content-type': 'application/octet-stream' });
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        cipher = (res.socket as TLSSocket).getCipher().standardName;
        res.resume();
        if (res.statusCode !== 201 && res.statusCode !== 204) return reject(new Error(`PUT: HTTP ${res.statusCode}`));
        res.on('end', resolve);
      });
      pipeline(createReadStream(init.file, { highWaterMark: CHUNK }), req).catch(reject);
    });
    bytes = init.size;
  }
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return { bytes, seconds, ...(ttfb !== undefined ? { ttfb: (ttfb - t0) / 1000 } : {}), cipher };
}

async function decadeTransfer(init: Extract<DecadeWorkerInit, { role: 'client' }>, go: () => Promise<void>): Promise<Measured> {
  const token = init.token as string;
  const c = await DecadeClient.connect({ host: '127.0.0.1', port: init.port, tls: { ca: init.ca, serverName: 'localhost' } });
  // One small exchange first (the DRP channel), as the HTTPS client's HEAD.
  await c.status(token).catch(() => undefined);
  const cipher = (c.session.core.security as { cipher?: string }).cipher ?? '?';
  await go();
  const t0 = performance.now();
  let ttfb: number | undefined;
  let bytes = 0;
  if (init.op === 'get') {
    // Views of the received frames (no copy, no Readable); the client verifies the content
    // against its name as it reads, as `decade get` does.
    const { chunks } = await c.getChunks(token, init.name, { views: true, ...(init.source ? { source: init.source } : {}) });
    const v = new NameVerifier(init.name);
    for await (const chunk of chunks) {
      ttfb ??= performance.now();
      v.update(chunk);
      bytes += chunk.byteLength;
    }
    if (!v.matches()) throw new Error('GET: the octets do not match the name');
  } else {
    await c.putStream(token, init.name, init.size, createReadStream(init.file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>);
    bytes = init.size;
  }
  const seconds = (performance.now() - t0) / 1000;
  await c.close();
  return { bytes, seconds, ...(ttfb !== undefined ? { ttfb: (ttfb - t0) / 1000 } : {}), cipher };
}

async function client(init: Extract<DecadeWorkerInit, { role: 'client' }>): Promise<void> {
  let cpu0 = process.cpuUsage();
  // The parent reads the server's CPU time between `mark` and the result.
  const go = async (): Promise<void> => {
    const started = new Promise<void>((resolve) => process.once('message', () => resolve()));
    await send({ type: 'mark' });
    await started;
    cpu0 = process.cpuUsage();
  };
  const m = init.impl === 'beepstream' ? await decadeTransfer(init, go) : await httpsTransfer(init, go);
  const cpu = process.cpuUsage(cpu0);
  if (m.bytes !== init.size) throw new Error(`${init.op}: moved ${m.bytes} of ${init.size} octets`);
  await send({
    type: 'result',
    cipher: m.cipher,
    metrics: { bytes: m.bytes, seconds: m.seconds, cpuClient: (cpu.user + cpu.system) / 1e6, ...(m.ttfb !== undefined ? { ttfb: m.ttfb } : {}) },
  });
  process.exit(0);
}

/**
 * Both GETs start together; the receiver counts octets in arrival order ('data' events). The
 * share is the heavy transfer's octets over the light one's while the heavy one went from 10 %
 * to 90 % of its size (both running all that time: the light one needs longer).
 */
async function weights(init: Extract<DecadeWorkerInit, { role: 'weights' }>): Promise<void> {
  const c = await DecadeClient.connect({ host: '127.0.0.1', port: init.port, tls: { ca: init.ca, serverName: 'localhost' } });
  await c.status(init.tokens[0]).catch(() => undefined);
  const started = new Promise<void>((resolve) => process.once('message', () => resolve()));
  await send({ type: 'mark' });
  await started;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const [h, l] = await Promise.all([c.getStream(init.tokens[0], init.names[0]), c.getStream(init.tokens[1], init.names[1])]);
  let nh = 0;
  let nl = 0;
  let mark: { h: number; l: number } | undefined;
  let ratio = Number.NaN;
  const size = init.size;
  const ended = (b: NodeJS.ReadableStream): Promise<void> => new Promise((resolve, reject) => b.once('end', resolve).once('error', reject));
  h.body.on('data', (chunk: Buffer) => {
    nh += chunk.byteLength;
    if (mark === undefined && nh >= size / 10) mark = { h: nh, l: nl };
    if (Number.isNaN(ratio) && mark !== undefined && nh >= (size * 9) / 10) ratio = (nh - mark.h) / Math.max(1, nl - mark.l);
  });
  l.body.on('data', (chunk: Buffer) => (nl += chunk.byteLength));
  await Promise.all([ended(h.body), ended(l.body)]);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await c.close();
  const want = init.weights[0] / init.weights[1];
  await send({
    type: 'result',
    cipher: '',
    metrics: { bytes: nh + nl, seconds, cpuClient: (cpu.user + cpu.system) / 1e6, weightRatio: ratio, shareErrorPct: (Math.abs(ratio / want - 1) * 100) },
  });
  process.exit(0);
}

process.once('message', (init: DecadeWorkerInit) => {
  const run = init.role === 'decade-server' ? decadeServer(init) : init.role === 'https-server' ? httpsServer(init) : init.role === 'weights' ? weights(init) : client(init);
  run.catch(fail);
});
