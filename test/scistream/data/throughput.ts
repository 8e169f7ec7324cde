/**
 * Throughput of the data path on loopback with TLS-PSK — a measurement, not a
 * test (ava does not run it). Two processes, as two facilities would be: the
 * child runs the producer application and the inbound receiver, the parent
 * the outbound sender and the consumer application. The producer writes a
 * pre-generated buffer over and over; the consumer counts.
 *
 *   node dist/test/scistream/data/throughput.js [--streams 1,4] [--mib 1024] [--both] [--baseline] [--limits JSON]
 *
 * `--both` sends the same amount consumer → producer at the same time;
 * `--baseline` also measures a bare TLS-PSK TCP proxy (no BEEP) for comparison.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type SessionLimits } from '../../../src/index.js';
import { TLS_CIPHERS } from '../../../src/profiles/index.js';
import { createDataServer, derivePsk, pskResolver } from '../../../src/scistream/data/index.js';

const MiB = 1024 * 1024;
const CHUNK = randomBytes(1 * MiB);

/** Write `total` octets of CHUNK to `s` with backpressure, then end. */
function blast(s: net.Socket, total: number): void {
  let left = total;
  const more = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        s.once('drain', more);
        return;
      }
    }
    s.end();
  };
  more();
}

function sink(s: net.Socket): Promise<number> {
  let n = 0;
  s.on('data', (d: Buffer) => (n += d.length));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(n));
    s.once('error', reject);
  });
}

type Msg = { kind: 'start'; uid: string; streams: number; perStream: number; both: boolean; mode: 'beep' | 'tls'; limits: SessionLimits } | { kind: 'ready'; listeners: string[] } | { kind: 'stop' } | { kind: 'cpu'; seconds: number };

async function child(): Promise<void> {
  let server: net.Server | null = null;
  let stopper: (() => Promise<void>) | null = null;
  let cpu0 = process.cpuUsage();
  process.on('message', async (m: Msg) => {
    if (m.kind === 'stop') {
      const cpu = process.cpuUsage(cpu0);
      process.send?.({ kind: 'cpu', seconds: (cpu.user + cpu.system) / 1e6 } satisfies Msg, () => {
        void stopper?.().then(() => {
          server?.close();
          process.exit(0);
        });
      });
      return;
    }
    if (m.kind !== 'start') return;
    cpu0 = process.cpuUsage();
    const producer = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => undefined);
      void sink(s).then(() => undefined, () => undefined);
      blast(s, m.perStream);
    });
    server = producer;
    await new Promise<void>((r) => producer.listen(0, '127.0.0.1', r));
    const target = `127.0.0.1:${(producer.address() as net.AddressInfo).port}`;
    if (m.mode === 'beep') {
      const ds = createDataServer({ host: '127.0.0.1', limits: m.limits });
      const inbound = await ds.openInbound({ uid: m.uid, targets: [target], numConn: m.streams });
      stopper = () => ds.close();
      process.send?.({ kind: 'ready', listeners: [...inbound.listeners] } satisfies Msg);
    } else {
      // Baseline: a bare TLS-PSK server piping each connection to the producer.
      const resolve = pskResolver(m.uid);
      const t = tls.createServer({ pskCallback: (_s, id) => resolve(id), ciphers: TLS_CIPHERS, minVersion: 'TLSv1.3' }, (s) => {
        const p = net.connect({ host: '127.0.0.1', port: (producer.address() as net.AddressInfo).port, allowHalfOpen: true });
        s.on('error', () => p.destroy());
        p.on('error', () => s.destroy());
        s.pipe(p);
        p.pipe(s);
      });
      await new Promise<void>((r) => t.listen(0, '127.0.0.1', r));
      stopper = async () => void t.close();
      process.send?.({ kind: 'ready', listeners: [`127.0.0.1:${(t.address() as net.AddressInfo).port}`] } satisfies Msg);
    }
  });
}

/** Delivered octets per second, and CPU seconds (both processes) per GiB delivered. */
async function run(proc: ChildProcess, mode: 'beep' | 'tls', streams: number, totalMiB: number, both: boolean, limits: SessionLimits): Promise<{ rate: number; cpuPerGiB: number }> {
  const uid = randomBytes(16).toString('hex');
  const perStream = Math.floor((totalMiB * MiB) / streams);
  const ready = new Promise<string[]>((r) => proc.once('message', (m: Msg) => m.kind === 'ready' && r(m.listeners)));
  proc.send({ kind: 'start', uid, streams, perStream, both, mode, limits } satisfies Msg);
  const remotes = await ready;
  let listeners: string[];
  let close: () => Promise<void>;
  if (mode === 'beep') {
    const ds = createDataServer({ host: '127.0.0.1', limits });
    const outbound = await ds.openOutbound({ uid, remotes, numConn: streams });
    listeners = [...outbound.listeners];
    close = () => ds.close();
  } else {
    const { identity, key } = derivePsk(uid);
    const [host, port] = (remotes[0] as string).split(':');
    const local = net.createServer({ allowHalfOpen: true }, (c) => {
      const s = tls.connect({ host, port: Number(port), pskCallback: () => ({ identity, psk: key as unknown as DataView }), ciphers: TLS_CIPHERS, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
      s.on('error', () => c.destroy());
      c.on('error', () => s.destroy());
      c.pipe(s);
      s.pipe(c);
    });
    await new Promise<void>((r) => local.listen(0, '127.0.0.1', r));
    listeners = Array.from({ length: streams }, () => `127.0.0.1:${(local.address() as net.AddressInfo).port}`);
    close = async () => void local.close();
  }
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const got = await Promise.all(
    listeners.map(
      (l) =>
        new Promise<number>((resolve, reject) => {
          const [h, p] = l.split(':');
          const c = net.connect({ host: h, port: Number(p), allowHalfOpen: true });
          c.on('error', reject);
          c.once('connect', () => {
            if (both) blast(c, perStream);
            sink(c).then((n) => {
              c.destroy();
              resolve(n);
            }, reject);
          });
        }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const bytes = got.reduce((a, b) => a + b, 0);
  await close();
  const childCpu = new Promise<number>((r) => proc.once('message', (m: Msg) => m.kind === 'cpu' && r(m.seconds)));
  proc.send({ kind: 'stop' } satisfies Msg);
  const total = (cpu.user + cpu.system) / 1e6 + (await childCpu);
  const moved = both ? 2 * bytes : bytes;
  return { rate: bytes / seconds, cpuPerGiB: total / (moved / (1024 * MiB)) };
}

async function main(): Promise<void> {
  const arg = (name: string, def: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? (process.argv[i + 1] ?? def) : def;
  };
  const streamsList = arg('streams', '1,4').split(',').map(Number);
  const mib = Number(arg('mib', '1024'));
  const both = process.argv.includes('--both');
  const limits = JSON.parse(arg('limits', '{}')) as SessionLimits;
  // The bare proxy does not carry half-close, so it is measured one way only.
  const modes: ('beep' | 'tls')[] = process.argv.includes('--baseline') && !both ? ['beep', 'tls'] : ['beep'];
  for (const mode of modes) {
    for (const streams of streamsList) {
      const proc = fork(fileURLToPath(import.meta.url), ['--child'], { stdio: 'inherit' });
      const { rate, cpuPerGiB } = await run(proc, mode, streams, mib, both, limits);
      await new Promise((r) => proc.once('exit', r));
      console.log(
        `${mode === 'beep' ? 'BEEP data path' : 'bare TLS-PSK proxy'}, ${streams} stream(s), ${mib} MiB producer → consumer${both ? ' and the same back' : ''}: ` +
          `${(rate / 1e6).toFixed(0)} MB/s delivered to the consumer${both ? ' (as much again the other way)' : ''}; ${cpuPerGiB.toFixed(2)} CPU s per GiB moved (both processes)`,
      );
    }
  }
}

if (process.argv.includes('--child')) void child();
else await main();
