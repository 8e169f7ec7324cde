/**
 * Where the JS heap of a small round trip goes, outside the bench harness:
 * a beepstream echo server (this process) and a client (a forked child) over
 * loopback, the same echo profile and round trip as the `rr-1` case
 * (`bench/impl/beep.ts`). Each side measures the heap allocated per round
 * trip over `N` round trips (as the bench's `gcmeter.ts` does) and, with
 * `--sites`, samples allocations with V8's heap profiler and prints the
 * functions that allocated most, per round trip.
 *
 *   node --expose-gc dist/bench/heapprobe.js [--impl beepstream|raw-tcp|http2] [--n 20000] [--sites] [--interval 128] [--top 25] [--depth 1] [--loop bare|bench|promise|await|bigint] [--channels 1]
 *
 * `--impl` runs another implementation of the bench (`bench/impl/`) instead of
 * beepstream, both sides, so its sites can be set beside beepstream's: what both
 * clients allocate in the same loop is the harness's, not the library's.
 * `--handler async` serves the echo with the bench's former handler
 * (`await res.reply(await msg.bytes())`) instead of the bench's own.
 * `--channels K` drives K streams at once, `N` round trips in all (as `rr-64` does with 64;
 * the `--loop` choice then does not apply).
 * `--counts` reads the server's counts every 20 ms, as the bench's server worker does.
 * `--depth K` keys each site by its K innermost frames (callers after `<`).
 * `--loop bare` (default) runs the round trips through the bench's driver
 * (`lib/rtloop.ts`: `roundTripCb`, no promise) without timing them; `--loop
 * bench` is that driver timing each round trip as the `rr-*` cases do;
 * `--loop promise` awaits `roundTrip()` per round trip (the adapter's
 * promise API); `--loop await` is the bench's driver before issue 13's
 * seventh session (`await roundTrip()`, two `performance.now()`, a sample
 * in a `Float64Array`); `--loop bigint` the one before the sixth (two
 * `hrtime.bigint()`, a sample pushed). The differences are the driver's own
 * share of the client's figure.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { Session as Inspector } from 'node:inspector';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gcMeter } from './lib/gcmeter.js';
import { loadImpl } from './impl/index.js';
import { Latencies, roundTrips } from './lib/rtloop.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    sites: { type: 'boolean', default: false },
    interval: { type: 'string', default: '128' },
    top: { type: 'string', default: '25' },
    loop: { type: 'string', default: 'bare' },
    depth: { type: 'string', default: '1' },
    counts: { type: 'boolean', default: false },
    handler: { type: 'string', default: 'bench' },
    impl: { type: 'string', default: 'beepstream' },
    channels: { type: 'string', default: '1' },
    child: { type: 'string' },
  },
});

const N = Number(args.n);
/** Streams (channels) driven at once, each one round trip at a time (`rr-64`: 64); `N` round trips in all. */
const CHANNELS = Math.max(1, Number(args.channels));
const OPTS = { limits: { receiveWindow: 4194304, maxSendFrame: 262144 }, manyStreams: false };
const SMALL = new Uint8Array(100).fill(120);

interface SampleNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SampleNode[];
}

function post<T>(s: Inspector, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => s.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
}

/** Start sampling when asked; `stop` returns the top allocating functions, octets per round trip. */
async function sampler(): Promise<{ stop(): Promise<string> }> {
  const s = new Inspector();
  s.connect();
  if (args.sites) await post(s, 'HeapProfiler.startSampling', { samplingInterval: Number(args.interval), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return {
    async stop(): Promise<string> {
      if (!args.sites) return '';
      const { profile } = await post<{ profile: { head: SampleNode } }>(s, 'HeapProfiler.stopSampling');
      const agg = new Map<string, number>();
      const depth = Number(args.depth);
      const walk = (n: SampleNode, path: string[]): void => {
        const u = n.callFrame.url.replace(/^.*\/dist\//, '');
        const here = [`${n.callFrame.functionName || '(anon)'} ${u}:${n.callFrame.lineNumber + 1}`, ...path];
        const k = here.slice(0, depth).join(' < ');
        if (n.selfSize > 0) agg.set(k, (agg.get(k) ?? 0) + n.selfSize);
        for (const c of n.children) walk(c, here);
      };
      walk(profile.head, []);
      const rows = [...agg].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top));
      return rows.map(([k, v]) => `  ${(v / N).toFixed(0).padStart(6)} B  ${k}`).join('\n');
    },
  };
}

/** The bench's echo as it was before issue 13's sixth session: an async handler awaiting a promise per reply. */
async function asyncEchoServer(): Promise<{ port: number; counts(): unknown; close(): Promise<void> }> {
  const { createServer, defineProfile } = await import('../src/index.js');
  const { ECHO_URI } = await import('./impl/beep.js');
  const echo = defineProfile({
    uri: ECHO_URI,
    async onMessage(msg, res) {
      await res.reply(await msg.bytes());
    },
  });
  const srv = createServer({ profiles: [echo], limits: OPTS.limits });
  const { port } = await srv.listen(0, '127.0.0.1');
  return { port, counts: () => srv.sessions.size, close: () => srv.close(1000) };
}

/** CPU per round trip, user + system (µs), over the measured interval (sampling, with `--sites`, costs CPU too). */
function cpuText(c: NodeJS.CpuUsage): string {
  return `${((c.user + c.system) / N).toFixed(1)} µs per round trip (user ${(c.user / N).toFixed(1)}, system ${(c.system / N).toFixed(1)})`;
}

async function runServer(): Promise<void> {
  const srv = args.handler === 'async' ? await asyncEchoServer() : await (await loadImpl(args.impl)).server(OPTS);
  const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--child', String(srv.port)], { execArgv: process.execArgv });
  let meter: ReturnType<typeof gcMeter> | null = null;
  let prof: { stop(): Promise<string> } | null = null;
  let cpu0 = process.cpuUsage();
  child.on('message', (m: { cmd: string; text?: string }) => {
    void (async () => {
      if (m.cmd === 'mark') {
        // As the bench's server worker does from `mark` to `report`: sample its counts every 20 ms.
        if (args.counts) setInterval(() => srv.counts(), 20).unref();
        prof = await sampler();
        meter = gcMeter();
        cpu0 = process.cpuUsage();
        child.send({ cmd: 'go' });
      } else if (m.cmd === 'report') {
        const cpu = process.cpuUsage(cpu0);
        const a = meter!.read().allocated;
        const sites = await prof!.stop();
        console.log(`server: ${(a / N).toFixed(0)} B allocated per round trip (${N} round trips), CPU ${cpuText(cpu)}`);
        if (sites) console.log(sites);
        console.log(m.text);
        child.send({ cmd: 'exit' });
        await srv.close();
        process.exit(0);
      }
    })();
  });
}

async function runClient(port: number): Promise<void> {
  const conn = await (await loadImpl(args.impl)).client(OPTS).connect(port);
  const streams = [];
  for (let i = 0; i < CHANNELS; i++) streams.push(await conn.open('echo'));
  const s = streams[0]!;
  const per = Math.ceil(N / CHANNELS);
  await roundTrips(streams, SMALL, Math.ceil(2000 / CHANNELS));
  const send = (m: object): void => void process.send!(m);
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    send({ cmd: 'mark' });
  });
  const prof = await sampler();
  const meter = gcMeter();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (CHANNELS > 1) {
    // As `rr-64` does: every stream's loop at once (the bench's driver, latencies kept).
    await roundTrips(streams, SMALL, per, Infinity, new Latencies(per * CHANNELS));
  } else if (args.loop === 'bench') {
    // The bench's driver (lib/rtloop.ts), latencies kept.
    await roundTrips([s], SMALL, N, Infinity, new Latencies(N));
  } else if (args.loop === 'await') {
    // The driver before issue 13's seventh session: an await per round trip, latencies in a Float64Array.
    const lat = new Float64Array(N);
    for (let i = 0; i < N && performance.now() < 1e12; i++) {
      const t = performance.now();
      await s.roundTrip(SMALL);
      lat[i] = performance.now() - t;
    }
  } else if (args.loop === 'bigint') {
    const samples: bigint[] = [];
    for (let i = 0; i < N; i++) {
      const t = process.hrtime.bigint();
      await s.roundTrip(SMALL);
      samples.push(process.hrtime.bigint() - t);
    }
  } else if (args.loop === 'promise') {
    for (let i = 0; i < N; i++) await s.roundTrip(SMALL);
  } else {
    await roundTrips([s], SMALL, N);
  }
  const cpu = process.cpuUsage(cpu0);
  const rate = N / ((performance.now() - t0) / 1000);
  const a = meter.read().allocated;
  const sites = await prof.stop();
  send({ cmd: 'report', text: `client: ${(a / N).toFixed(0)} B allocated per round trip (loop: ${args.loop}), CPU ${cpuText(cpu)}, ${rate.toFixed(0)} round trips/s${sites ? `\n${sites}` : ''}` });
  process.once('message', () => {
    conn.destroy();
    process.exit(0);
  });
}

if (args.child) void runClient(Number(args.child));
else void runServer();
