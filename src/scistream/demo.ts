/**
 * The main job: a complete SciStream session over BEEP on loopback, on
 * embedded defaults. Two S2CS (producer and consumer facility) with
 * generated development certificates, a producer application that listens,
 * a consumer application that connects through the tunnel with `num_conn`
 * streams, data in both directions with a live progress line, a SHA-256
 * check of every byte at both ends, RELEASE, and a summary.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { scramSha256Client, createUserEntry } from '../profiles/index.js';
import { newUid, appctrlHello, sessionTag, type S2ucClient } from './control/index.js';
import { generateDevPki, removeDevPki } from './devcerts.js';
import { connectControl, startS2cs, type S2cs } from './roles.js';

/** Options of {@link runSciStreamDemo}. */
export interface DemoOptions {
  /** Octets each stream carries in each direction (default 512 MiB: 2 GiB each way with 4 streams). */
  bytesPerStream: number;
  /** Parallel streams (num_conn, default 4). */
  numConn: number;
  /** Rate limit, octets/s for the whole session (default none). */
  rate?: number;
  /** Print a progress line every this many ms (default 1000; 0: none). */
  progressMs?: number;
}

/** The outcome of a demo run. */
export interface DemoResult {
  ok: boolean;
  seconds: number;
  bytesEachWay: number;
  streams: { index: number; toProducerOk: boolean; toConsumerOk: boolean }[];
}

/**
 * Octets in the largest binary unit that keeps the number at 1 or more:
 * `2.00 GiB`, `4.00 MiB`, `512.00 KiB`, `100 B`.
 */
export function formatOctets(n: number): string {
  const units: [string, number][] = [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
  for (const [unit, size] of units) if (n >= size) return `${(n / size).toFixed(2)} ${unit}`;
  return `${n} B`;
}

/** Deterministic pseudo-random data for a stream: 1 MiB blocks keyed by seed. */
function dataSource(seed: number, total: number): () => Buffer | null {
  const block = createHash('sha512').update(`block-${seed}`).digest();
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  chunk.writeUInt32BE(seed, 0);
  let sent = 0;
  return () => {
    if (sent >= total) return null;
    const n = Math.min(chunk.length, total - sent);
    sent += n;
    return n === chunk.length ? chunk : chunk.subarray(0, n);
  };
}

/** Write everything `next` yields to `socket`, honouring backpressure, then end it. */
function pump(socket: net.Socket, next: () => Buffer | null, hash: ReturnType<typeof createHash>, count: (n: number) => void): void {
  const go = (): void => {
    for (;;) {
      const b = next();
      if (b === null) {
        socket.end();
        return;
      }
      hash.update(b);
      count(b.length);
      if (!socket.write(b)) {
        socket.once('drain', go);
        return;
      }
    }
  };
  go();
}

interface StreamEnds {
  sent: string;
  received: string;
  bytesIn: number;
  bytesOut: number;
}

/** Run the demo; `log` receives every line. Rejects only on setup failures. */
export async function runSciStreamDemo(options: DemoOptions, log: (line: string) => void): Promise<DemoResult> {
  const { bytesPerStream, numConn } = options;
  // The demo needs the PEM texts only: the files (private keys among them)
  // go at once, so no exit path — error, SIGINT, crash — leaves them behind.
  const pki = generateDevPki();
  removeDevPki(pki);
  const password = randomBytes(18).toString('base64');
  const users = new Map([['scientist', await createUserEntry(password, 4096)]]);
  const facilities: S2cs[] = [];
  const clients: S2ucClient[] = [];
  const producerApp = net.createServer({ allowHalfOpen: true });
  const consumers: net.Socket[] = [];
  try {
    for (const name of ['producer', 'consumer']) {
      const s = await startS2cs({ port: 0, cert: pki.serverCert, key: pki.serverKey, users, control: { maxConnPerSession: Math.max(64, numConn) } });
      facilities.push(s);
      log(`${name} facility: S2CS on ${s.address} (TLS + SCRAM-SHA-256), S2DS on 127.0.0.1`);
    }
    const [prodFacility, consFacility] = facilities as [S2cs, S2cs];

    // The producer application listens; each connection says which stream it is.
    const producerEnds = new Map<number, StreamEnds>();
    const producerDone: Promise<void>[] = [];
    let producerBytesIn = 0;
    let producerBytesOut = 0;
    producerApp.on('connection', (socket) => {
      producerDone.push(
        new Promise<void>((resolve, reject) => {
          const got = createHash('sha256');
          const sent = createHash('sha256');
          let index = -1;
          let head = Buffer.alloc(0);
          let bytesIn = 0;
          let bytesOut = 0;
          socket.on('data', (d: Buffer) => {
            if (index < 0) {
              head = Buffer.concat([head, d]);
              if (head.length < 4) return;
              index = head.readUInt32BE(0);
              d = head.subarray(4);
              pump(socket, dataSource(index, bytesPerStream), sent, (n) => ((bytesOut += n), (producerBytesOut += n)));
            }
            got.update(d);
            bytesIn += d.length;
            producerBytesIn += d.length;
          });
          socket.on('end', () => undefined);
          socket.on('close', () => {
            producerEnds.set(index, { sent: sent.digest('hex'), received: got.digest('hex'), bytesIn, bytesOut });
            resolve();
          });
          socket.on('error', reject);
        }),
      );
    });
    await new Promise<void>((r) => producerApp.listen(0, '127.0.0.1', r));
    const prodAddr = producerApp.address() as net.AddressInfo;
    log(`producer application listening on 127.0.0.1:${prodAddr.port}`);

    // The user client and the application controller talk to the S2CSs over TLS + SASL.
    const [ph, pp] = prodFacility.address.split(':') as [string, string];
    const [ch, cp] = consFacility.address.split(':') as [string, string];
    const sasl = scramSha256Client({ username: 'scientist', password });
    const s2ucProd = await connectControl({ host: ph, port: Number(pp), ca: pki.ca, serverName: 'localhost', sasl });
    const s2ucCons = await connectControl({ host: ch, port: Number(cp), ca: pki.ca, serverName: 'localhost', sasl });
    const appctrl = await connectControl({ host: ph, port: Number(pp), ca: pki.ca, serverName: 'localhost', sasl });
    clients.push(s2ucProd, s2ucCons, appctrl);
    const uid = newUid();
    log(`session ${sessionTag(uid)} (uid: 128 bits from a CSPRNG, not shown), num_conn ${numConn}${options.rate ? `, rate ${options.rate} B/s` : ''}`);
    const rate = options.rate === undefined ? {} : { rate: options.rate };
    const [prodResp] = await Promise.all([
      s2ucProd.request({ uid, role: 'PROD', numConn, ...rate }),
      appctrlHello(appctrl.session, { uid, role: 'PROD', prodListeners: [`127.0.0.1:${prodAddr.port}`] }),
    ]);
    log(`producer S2CS: inbound receiver at ${prodResp.listeners.join(', ')}`);
    const [consResp] = await Promise.all([
      s2ucCons.request({ uid, role: 'CONS', numConn, ...rate }),
      s2ucCons.update({ uid, role: 'CONS', remoteListeners: prodResp.listeners }),
    ]);
    log(`consumer S2CS: outbound sender, consumer application connects to ${consResp.listeners.join(', ')}`);

    // The consumer application connects through the tunnel, num_conn times.
    const t0 = process.hrtime.bigint();
    const consumerEnds = new Map<number, StreamEnds>();
    const perStream = Array.from({ length: numConn }, () => ({ in: 0, out: 0 }));
    const consumerDone = Array.from({ length: numConn }, (_, i) => {
      const target = consResp.listeners[i % consResp.listeners.length] as string;
      const idx = target.lastIndexOf(':');
      return new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: target.slice(0, idx).replace(/^\[|\]$/g, ''), port: Number(target.slice(idx + 1)), allowHalfOpen: true });
        consumers.push(socket);
        const got = createHash('sha256');
        const sent = createHash('sha256');
        socket.once('connect', () => {
          const id = Buffer.alloc(4);
          id.writeUInt32BE(i);
          socket.write(id);
          pump(socket, dataSource(1000 + i, bytesPerStream), sent, (n) => ((perStream[i] as { out: number }).out += n));
        });
        socket.on('data', (d: Buffer) => {
          got.update(d);
          (perStream[i] as { in: number }).in += d.length;
        });
        socket.on('close', () => {
          const s = perStream[i] as { in: number; out: number };
          consumerEnds.set(i, { sent: sent.digest('hex'), received: got.digest('hex'), bytesIn: s.in, bytesOut: s.out });
          resolve();
        });
        socket.on('error', reject);
      });
    });

    let last = perStream.map((s) => s.in + s.out);
    let lastT = Date.now();
    const timer =
      options.progressMs === 0
        ? null
        : setInterval(() => {
            const now = Date.now();
            const cur = perStream.map((s) => s.in + s.out);
            const rates = cur.map((c, i) => ((c - (last[i] ?? 0)) / 1e6 / ((now - lastT) / 1000)).toFixed(0));
            const done = cur.reduce((a, b) => a + b, 0) / (2 * numConn * bytesPerStream);
            log(`  ${(done * 100).toFixed(0).padStart(3)}%  MB/s per stream (both directions): ${rates.join(' ')}`);
            last = cur;
            lastT = now;
          }, options.progressMs ?? 1000);
    try {
      await Promise.all([...consumerDone]);
      await Promise.all(producerDone);
    } finally {
      if (timer) clearInterval(timer);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

    // Every byte checked at both ends, in both directions.
    const streams = Array.from({ length: numConn }, (_, i) => {
      const c = consumerEnds.get(i);
      const p = producerEnds.get(i);
      return {
        index: i,
        toProducerOk: !!c && !!p && c.sent === p.received && p.bytesIn === bytesPerStream,
        toConsumerOk: !!c && !!p && p.sent === c.received && c.bytesIn === bytesPerStream,
      };
    });
    const status = await s2ucProd.status(uid).catch(() => null);
    await Promise.all([s2ucProd.release(uid), s2ucCons.release(uid)]);
    log(`RELEASE: both facilities freed the session${status ? ` (producer S2DS carried ${status.stats?.connections ?? '?'} connections)` : ''}`);
    if (process.env.BEEPSTREAM_DEMO_DEBUG) for (let i = 0; i < numConn; i++) log(`debug ${i} consumer ${JSON.stringify(consumerEnds.get(i))} producer ${JSON.stringify(producerEnds.get(i))}`);
    const ok = streams.every((s) => s.toProducerOk && s.toConsumerOk);
    const each = numConn * bytesPerStream;
    log(
      `summary: ${numConn} streams, ${formatOctets(each)} each way in ${seconds.toFixed(1)} s ` +
        `(${((2 * each) / seconds / 1e6).toFixed(0)} MB/s both directions), SHA-256 ${ok ? 'match at both ends for every stream' : 'MISMATCH'}`,
    );
    void producerBytesIn;
    void producerBytesOut;
    return { ok, seconds, bytesEachWay: each, streams };
  } finally {
    for (const s of consumers) s.destroy();
    for (const c of clients) await c.close().catch(() => undefined);
    for (const c of clients) c.session.destroy();
    await new Promise<void>((r) => producerApp.close(() => r()));
    for (const f of facilities) await f.close().catch(() => undefined);
  }
}
