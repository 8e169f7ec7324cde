/**
 * The flows scenario group of `npm run bench` (select it with `--only flows`
 * or one scenario id): the flows server runs as a real `beepstream flows
 * serve` process (plaintext, as the NATS baseline is; SCRAM-SHA-256), the
 * clients in the runner's process; nats-server (Debian's, file storage) is
 * started by the bench for the JetStream rows. Each scenario is measured
 * `rounds` times; medians are reported.
 *
 * - flows-publish: sustained publish of 200-octet events with
 *   acknowledgements on one connection (batches of 1,000, 4 in flight), on
 *   the embedded SQLite store and on the JetStream store; the baseline is
 *   the @nats-io/jetstream client publishing the same events to the same
 *   nats-server (1,000 publishes in flight). Target: ≥ 50,000 events/s and
 *   ≥ 1.0× the baseline.
 * - flows-latency: publish-to-delivery latency at 1,000 events/s (batches of
 *   10 every 10 ms) to 100 subscribers (10 sessions × 10 subscriptions),
 *   measured over 10 s (quick: 3 s) after 1 s at the same rate that is not
 *   counted (JIT warm-up; the p99 with it counted is reported too).
 *   Target: p99 ≤ 10 ms.
 * - flows-replay: a day of the S2S draft's load, 3,000,000 events (quick:
 *   300,000), stored beforehand, replayed by one subscriber from the start.
 *   Target: under 60 s.
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as netServer, connect as tcpConnect } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Buffer } from 'node:buffer';
import { createUserEntry, scramSha256Client, serializeUsersFile, type ScramCredentials } from '../src/profiles/index.js';
import { connectFlows, openSqliteStore, type EventInit, type FlowsClient, type NewEvent } from '../src/flows/index.js';
import { median } from './lib/stats.js';

/** The scenario ids of the group. */
export const FLOWS_SCENARIOS = ['flows-publish', 'flows-latency', 'flows-replay'] as const;

const BIN = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
const PASSWORD = 'bench-password-not-secret';
const NS = 'urn:example:bench';
const DATA = 'x'.repeat(200);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Proc {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
  /** The server's `--stats` line, once it stopped (flows serve only). */
  stats?: string;
}

async function startServe(dir: string, extra: string[]): Promise<Proc> {
  const users = new Map<string, ScramCredentials>([['bench', await createUserEntry(PASSWORD, 4096)]]);
  const usersFile = join(dir, 'users.json');
  writeFileSync(usersFile, serializeUsersFile(users));
  const child = spawn(process.execPath, [BIN, 'flows', 'serve', '--insecure', '--port', '0', '--users', usersFile, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stats: string | undefined;
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line.startsWith('flows: stats: ')) stats = line.slice('flows: stats: '.length);
    else if (!line.startsWith('flows: store ')) process.stderr.write(`${line}\n`);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('flows serve did not start within 60 s')), 60_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      const m = /:(\d+)$/.exec(line);
      m ? resolve(Number(m[1])) : reject(new Error(`flows serve said ${line}`));
    });
  });
  const proc: Proc = {
    child,
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      if (stats !== undefined) proc.stats = stats;
    },
  };
  return proc;
}

/** From a `--stats` line: syncs per 1,000 rows, rows per commit, event-loop delay p99 (ms). */
function parseStats(line: string | undefined): { syncs: number; rowsPerCommit: number; loopP99: number } | undefined {
  const m = line === undefined ? null : /per 1,000 rows: syncs ([\d.]+).*rows per commit ([\d.]+).*event-loop delay p50 [\d.]+ ms, p99 ([\d.]+) ms/.exec(line);
  return m ? { syncs: Number(m[1]), rowsPerCommit: Number(m[2]), loopP99: Number(m[3]) } : undefined;
}

async function startNatsServer(dir: string): Promise<Proc> {
  const bin = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => spawnSync(p, ['--version'], { stdio: 'ignore' }).status === 0);
  if (!bin) throw new Error('nats-server is not installed (Debian: apt-get install nats-server)');
  const port = await freePort();
  const child = spawn(bin, ['-js', '-sd', join(dir, 'js'), '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = tcpConnect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) break;
    await sleep(100);
  }
  return { child, port, stop: async () => (child.kill('SIGTERM'), await exited) };
}

function client(port: number): Promise<FlowsClient> {
  return connectFlows({ port, tls: false, sasl: scramSha256Client({ username: 'bench', password: PASSWORD }) });
}

const event = (): EventInit => ({ type: `{${NS}}tick`, source: 'bench', data: DATA });

/** Publish `total` events in batches of `batch`, `inflight` batches outstanding; events/s. */
async function publishRate(c: FlowsClient, flow: string, total: number, batch = 1000, inflight = 4): Promise<number> {
  await c.create(flow);
  const p = await c.producer(flow, 'bench');
  const events = Array.from({ length: batch }, event);
  const t0 = performance.now();
  let sent = 0;
  const running = new Set<Promise<unknown>>();
  while (sent < total) {
    const pr = p.publish(events.map((e) => ({ ...e })));
    running.add(pr);
    void pr.finally(() => running.delete(pr));
    sent += batch;
    if (running.size >= inflight) await Promise.race(running);
  }
  await Promise.all(running);
  return total / ((performance.now() - t0) / 1000);
}

/** The @nats-io/jetstream client publishing the same events to a stream with file storage, `inflight` outstanding. */
async function natsRate(port: number, total: number, inflight = 1000): Promise<number> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream, jetstreamManager, StorageType } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: `127.0.0.1:${port}` });
  const jsm = await jetstreamManager(nc);
  const name = `BENCH${Date.now()}`;
  await jsm.streams.add({ name, subjects: [`${name.toLowerCase()}.>`], storage: StorageType.File });
  const js = jetstream(nc);
  // The same content as a flows event: its JSON fields and the 200-octet payload.
  const body = Buffer.from(JSON.stringify({ type: `{${NS}}tick`, source: 'bench', time: new Date().toISOString(), contentType: 'text/plain', data: DATA }));
  const t0 = performance.now();
  const running = new Set<Promise<unknown>>();
  for (let i = 1; i <= total; i++) {
    const pr = js.publish(`${name.toLowerCase()}.p`, body, { msgID: `p:${i}` });
    running.add(pr);
    void pr.finally(() => running.delete(pr));
    if (running.size >= inflight) await Promise.race(running);
  }
  await Promise.all(running);
  const rate = total / ((performance.now() - t0) / 1000);
  await jsm.streams.delete(name);
  await nc.close();
  return rate;
}

/**
 * p50/p99 publish-to-delivery (ms) at `rate` events/s for `seconds`, to `subs` subscribers over
 * `sessions` sessions, after `warmup` seconds at the same rate that are not counted (both processes
 * compile their hot paths then); `all` is the p99 with the warm-up counted too.
 */
async function latency(port: number, rate: number, seconds: number, sessions: number, subs: number, warmup: number): Promise<{ p50: number; p99: number; all: number; delivered: number }> {
  const pub = await client(port);
  const flow = `lat-${Date.now()}`;
  await pub.create(flow);
  const clients = await Promise.all(Array.from({ length: sessions }, () => client(port)));
  const samples: number[] = [];
  const early: number[] = [];
  const skip = rate * warmup; // the flow is new: its offsets start at 1
  const total = rate * (seconds + warmup);
  const readers: Promise<void>[] = [];
  for (let i = 0; i < subs; i++) {
    const sub = await (clients[i % sessions] as FlowsClient).subscribe(flow, { from: 'end' });
    readers.push((async () => {
      let n = 0;
      for await (const e of sub) {
        (e.offset > skip ? samples : early).push(performance.now() - Number((e.data as string).slice(0, 20)));
        if (++n >= total) break;
      }
    })());
  }
  const p = await pub.producer(flow, 'lat');
  const perTick = Math.max(1, Math.round(rate / 100));
  const t0 = performance.now();
  for (let k = 0; k * perTick < total; k++) {
    const due = t0 + k * 10;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await p.publish(Array.from({ length: perTick }, () => ({ type: `{${NS}}tick`, source: 'bench', data: `${performance.now().toFixed(6).padStart(20, '0')}${'x'.repeat(180)}` })));
  }
  await Promise.race([Promise.all(readers), sleep(30_000)]);
  await Promise.all([pub, ...clients].map((c) => c.close()));
  samples.sort((a, b) => a - b);
  const at = (xs: number[], q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
  const all = [...early, ...samples].sort((a, b) => a - b);
  return { p50: at(samples, 0.5), p99: at(samples, 0.99), all: at(all, 0.99), delivered: samples.length };
}

/** Store `total` events in a SQLite file (not timed), then time one subscriber replaying them through a `flows serve` on it. */
async function replay(dir: string, total: number, round: number): Promise<{ seconds: number; rate: number }> {
  const path = join(dir, `replay-${round}.db`);
  const store = await openSqliteStore({ path });
  await store.createFlow('day', '', { publish: ['bench'], subscribe: ['bench'], admin: ['bench'] });
  const payload = Buffer.from(DATA);
  for (let seq = 1; seq <= total; ) {
    const n = Math.min(10_000, total - seq + 1);
    const events: NewEvent[] = Array.from({ length: n }, (_, k) => ({ seq: seq + k, id: `e${seq + k}`, ns: NS, name: 'tick', source: 'bench', time: '2026-12-07T00:00:00Z', contentType: 'text/plain', text: true, payload }));
    await store.append('day', 'bench', 'p', events);
    seq += n;
  }
  await store.close();
  const server = await startServe(dir, ['--data', path]);
  try {
    const c = await client(server.port);
    const t0 = performance.now();
    const sub = await c.subscribe('day', { from: 'start', follow: false, batch: 4096 });
    let n = 0;
    for await (const e of sub) {
      if (e.offset !== ++n) throw new Error(`replay out of order at ${n}`);
    }
    const seconds = (performance.now() - t0) / 1000;
    await c.close();
    if (n !== total) throw new Error(`replayed ${n} of ${total}`);
    return { seconds, rate: total / seconds };
  } finally {
    await server.stop();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  }
}

/** Run the selected flows scenarios; returns the markdown section (targets first) for the bench report. */
export async function runFlowsBench(ids: readonly string[], rounds: number, quick: boolean, log: (s: string) => void): Promise<string> {
  const dir = mkdtempSync(join(os.tmpdir(), 'beepstream-bench-flows-'));
  const rows: string[] = [];
  const targets: string[] = [];
  try {
    if (ids.includes('flows-publish')) {
      const total = quick ? 50_000 : 200_000;
      const sqlite: number[] = [];
      const jsStore: number[] = [];
      const native: number[] = [];
      const work: { syncs: number; rowsPerCommit: number; loopP99: number }[] = [];
      for (let r = 1; r <= rounds; r++) {
        const nats = await startNatsServer(join(dir, `nats-${r}`));
        const embedded = await startServe(dir, ['--data', join(dir, `publish-${r}.db`), '--stats']);
        const onJs = await startServe(dir, ['--store', 'jetstream', '--nats', `127.0.0.1:${nats.port}`]);
        try {
          const order = [
            async () => sqlite.push(await publishRate(await client(embedded.port), `pub${r}`, total)),
            async () => jsStore.push(await publishRate(await client(onJs.port), `pubjs${r}`, total)),
            async () => native.push(await natsRate(nats.port, total)),
          ];
          for (let k = 0; k < order.length; k++) await (order[(k + r - 1) % order.length] as () => Promise<unknown>)();
        } finally {
          await embedded.stop();
          await onJs.stop();
          await nats.stop();
        }
        const w = parseStats(embedded.stats);
        if (w) work.push(w);
        log(`[${r}/${rounds}] flows-publish sqlite ${Math.round(sqlite.at(-1) ?? 0)} ev/s, flows on jetstream ${Math.round(jsStore.at(-1) ?? 0)} ev/s, @nats-io/jetstream ${Math.round(native.at(-1) ?? 0)} ev/s; SQLite server: ${embedded.stats ?? 'no stats'}`);
      }
      const [a, b, n] = [median(sqlite), median(jsStore), median(native)];
      rows.push(`| flows-publish | flows, SQLite store | ${Math.round(a)} events/s | ${(a / n).toFixed(2)}× |`);
      rows.push(`| flows-publish | flows, JetStream store | ${Math.round(b)} events/s | ${(b / n).toFixed(2)}× |`);
      rows.push(`| flows-publish | @nats-io/jetstream client (baseline) | ${Math.round(n)} events/s | 1.00× |`);
      if (work.length > 0) {
        rows.push(`| flows-publish | SQLite server's work (medians) | ${median(work.map((w) => w.syncs)).toFixed(2)} fdatasyncs per 1,000 events, ${median(work.map((w) => w.rowsPerCommit)).toFixed(0)} rows per commit, event-loop delay p99 ${median(work.map((w) => w.loopP99)).toFixed(1)} ms | |`);
      }
      targets.push(`| publish 200-octet events with acks, one connection, SQLite | ≥ 50,000 events/s | ${Math.round(a)} | ${a >= 50_000 ? 'met' : 'MISSED'} |`);
      targets.push(`| … ÷ @nats-io/jetstream to nats-server (file storage) | ≥ 1.0× | ${(a / n).toFixed(2)}× | ${a >= n ? 'met' : 'MISSED'} |`);
    }
    if (ids.includes('flows-latency')) {
      const p99s: number[] = [];
      const p50s: number[] = [];
      const alls: number[] = [];
      for (let r = 1; r <= rounds; r++) {
        const server = await startServe(dir, ['--data', join(dir, `lat-${r}.db`)]);
        try {
          const l = await latency(server.port, 1000, quick ? 3 : 10, 10, 100, 1);
          p99s.push(l.p99);
          p50s.push(l.p50);
          alls.push(l.all);
          log(`[${r}/${rounds}] flows-latency p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms over ${l.delivered} deliveries after 1 s of warm-up (p99 with the warm-up counted: ${l.all.toFixed(2)} ms)`);
        } finally {
          await server.stop();
        }
      }
      rows.push(`| flows-latency | 1,000 events/s to 100 subscribers (10 sessions × 10), after 1 s of warm-up | p50 ${median(p50s).toFixed(2)} ms, p99 ${median(p99s).toFixed(2)} ms | |`);
      rows.push(`| flows-latency | the same, the warm-up second counted too | p99 ${median(alls).toFixed(2)} ms | |`);
      targets.push(`| publish-to-delivery p99 at 1,000 events/s, 100 subscribers | ≤ 10 ms | ${median(p99s).toFixed(2)} ms | ${median(p99s) <= 10 ? 'met' : 'MISSED'} |`);
    }
    if (ids.includes('flows-replay')) {
      const total = quick ? 300_000 : 3_000_000;
      const secs: number[] = [];
      for (let r = 1; r <= rounds; r++) {
        const x = await replay(dir, total, r);
        secs.push(x.seconds);
        log(`[${r}/${rounds}] flows-replay ${total} events in ${x.seconds.toFixed(1)} s (${Math.round(x.rate)} events/s)`);
      }
      rows.push(`| flows-replay | ${total.toLocaleString('en')} events, one subscriber from the start | ${median(secs).toFixed(1)} s (${Math.round(total / median(secs))} events/s) | |`);
      targets.push(`| replay a day of S2S load (${total.toLocaleString('en')} events) | < 60 s${quick ? ' (quick: 1/10 of the day)' : ''} | ${median(secs).toFixed(1)} s | ${median(secs) < 60 ? 'met' : 'MISSED'} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    `### Flows (medians of ${rounds} round(s)${quick ? ', QUICK' : ''})`,
    '',
    '| target | goal | measured | |',
    '|---|---|---|---|',
    ...targets,
    '',
    '| scenario | what | measured | ratio to baseline |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}
