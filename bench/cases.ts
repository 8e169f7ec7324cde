/**
 * The benchmark cases: their parameters (full and `--quick`), which
 * implementations run them, and the client-side driver of each. A driver runs
 * in the client worker process; it reaches the server worker through
 * `ctx.server()` (relayed by the parent) to mark the start of a measurement
 * and to collect the server's CPU time and memory.
 *
 * @module
 */
import { gcMeter, type GcCounts } from './lib/gcmeter.js';
import { perEnd, type TunnelEnds } from './lib/tunnelmeter.js';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { BenchConn, BenchStream, ClientImpl, ServerCounts } from './lib/adapter.js';
import { GiB, MB, MiB, latencySummary, latencySummaryMs } from './lib/stats.js';
import { Latencies, roundTrips } from './lib/rtloop.js';

/** Metrics of one measurement (one case, one implementation, one round). */
export type Metrics = Record<string, number>;

/** What the server worker reports at the end of a measurement. */
export interface ServerReport {
  /** CPU seconds (user + system) since `mark`. */
  cpu: number;
  /** Memory growth since `mark` (octets); after GC when asked. */
  heap: number;
  rss: number;
  external: number;
  /** Bulk payload octets the server received since `mark`. */
  received: number;
  /** Octets read off the wire since `mark`. */
  wire: number;
  counts: ServerCounts;
  /**
   * CPU seconds since `mark` of the processes between the applications (the
   * two S2DS or the two stunnels of a `tunnel` case), added by the runner.
   */
  tunnelCpu?: number;
  /** The same per tunnel end (`out`: consumer facility, `in`: producer facility), with system calls and collections, added by the runner. */
  tunnelEnds?: TunnelEnds;
  /** beepstream: the public `session.stats` counters since `mark`, summed over the server's sessions. */
  stats?: Record<string, number>;
  /** beepstream: the most payload octets held unread at any 20 ms sample since `mark`, and how it was read. */
  peakBuffered?: number;
  bufferedSource?: 'flow' | 'estimate';
  /** beepstream with a flow snapshot: the `slow` channels' own `channel.flow.peakBuffered` (since they opened). */
  slowPeakBuffered?: number;
  /** Largest RSS growth over `mark` seen at those samples (octets). */
  peakRss?: number;
  /** JS heap allocated, collections and minor page faults of the server process since `mark`. */
  gc?: GcCounts;
}

/** What a driver may use. */
export interface DriverContext {
  readonly client: ClientImpl;
  readonly port: number;
  readonly params: CaseParams;
  /** Ask the server worker to mark the start (`mark`) or report (`report`). */
  server(cmd: 'mark', arg?: { gc?: boolean; sample?: boolean }): Promise<unknown>;
  server(cmd: 'report', arg?: { gc?: boolean; expect?: { sessions?: number; streams?: number } }): Promise<ServerReport>;
}

/** Parameters of a case (a superset; each case reads what it needs). */
export interface CaseParams {
  channels?: number;
  /** Octets in all, spread evenly over the channels. */
  bytes?: number;
  /** Round trips per channel. */
  requests?: number;
  warmup?: number;
  /** Channels or sessions to open (scale), or operations (churn). */
  count?: number;
  /** How many at once (churn pipelining, scale batches). */
  concurrency?: number;
  /** Wall-clock bound of the measured part, seconds. */
  capSeconds?: number;
  /** Measured duration (control case), seconds. */
  seconds?: number;
  /** Control case: how long the uploads run before bulk alone is measured (ms). */
  settleMs?: number;
  /**
   * Bulk cases: octets uploaded on a stream of its own (opened first, closed
   * before the measured part: a channel, an HTTP/2 stream, a TCP or
   * application connection), so freshly started processes run warm, as
   * long-running ones would: JIT, and V8's first full collection, which every
   * Node process runs once its old space first reaches ≈ 10–13 MB, whatever
   * the transfer (see {@link bulkWarmup}).
   */
  warmupBytes?: number;
}

/** A case. */
export interface CaseDef {
  readonly id: string;
  readonly title: string;
  /** Implementations, beepstream first. */
  readonly impls: readonly string[];
  params(quick: boolean): CaseParams;
  /** Whether the workers must see many streams per session (raises beepstream's maxChannels, etc.). */
  readonly manyStreams?: boolean;
  /**
   * A SciStream data-path case: both applications are the raw-tcp ones (the
   * server worker is the producer application, the client worker the consumer
   * application) and each implementation is the tunnel between them
   * (`lib/tunnel.ts`): two more processes the runner starts per measurement.
   */
  readonly tunnel?: boolean;
  /**
   * Implementations that are beepstream under other limits, by name: such a
   * case compares settings in one run (e.g. the library's defaults against a
   * hand-set window). `--impl beepstream` selects them too.
   */
  readonly variants?: Readonly<Record<string, { impl: string; limits: Record<string, number> }>>;
  drive(ctx: DriverContext): Promise<Metrics>;
}

/** Case ids' limits that `--window`, `--frame`, `--limit` and `--defaults` do not change. */
export const LIBRARY_DEFAULTS: Record<string, number> = {};
/** A hand-set 16 MiB window, auto-tuning off: the reference the defaults are held against. */
export const FIXED_16MIB: Record<string, number> = { receiveWindow: 16 * MiB, maxReceiveWindow: 16 * MiB };

/** The 1 MiB buffer every bulk sender writes over and over. */
const BULK_BUF = randomBytes(MiB);
/** The 100-octet request/response message. */
const SMALL = randomBytes(100);

const now = (): number => performance.now();
const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
}

function memNow(): NodeJS.MemoryUsage {
  gcNow();
  return process.memoryUsage();
}

async function openMany(conn: BenchConn, kind: 'sink' | 'echo', n: number): Promise<BenchStream[]> {
  const out: BenchStream[] = [];
  for (let i = 0; i < n; i++) out.push(await conn.open(kind));
  return out;
}

/** Run `fn` over `n` workers until `more()` is false. */
async function workers(n: number, more: () => boolean, fn: () => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (more()) await fn();
    }),
  );
}

// ------------------------------------------------------------------ drivers

async function driveBulk(ctx: DriverContext): Promise<Metrics> {
  const n = ctx.params.channels ?? 1;
  const per = Math.floor((ctx.params.bytes ?? GiB) / n);
  const conn = await ctx.client.connect(ctx.port);
  if (ctx.params.warmupBytes) {
    const w = await conn.open('sink');
    await w.bulk(ctx.params.warmupBytes, BULK_BUF);
    await w.close();
  }
  const streams = await openMany(conn, 'sink', n);
  await ctx.server('mark');
  const clientStats0 = conn.stats?.();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const deadline = t0 + (ctx.params.capSeconds ?? 60) * 1000;
  let capped = 0;
  const stop = (): boolean => {
    if (now() < deadline) return false;
    capped = 1;
    return true;
  };
  const results = await Promise.all(
    streams.map(async (s) => {
      const sent = await s.bulk(per, BULK_BUF, stop);
      return { t: now() - t0, sent };
    }),
  );
  const cpuClient = cpuSeconds(process.cpuUsage(cpu0));
  const rep = await ctx.server('report');
  conn.destroy();
  // A tunnel case: the two processes in the middle count too.
  const cpuTunnel = rep.tunnelCpu;
  const times = results.map((r) => r.t);
  // What the server counted (a baseline's shortened upload is not waited for).
  const bytes = rep.received;
  if (!capped && bytes !== per * n) throw new Error(`server counted ${bytes} octets, ${per * n} sent`);
  const last = Math.max(...times);
  const first = Math.min(...times);
  // beepstream: flow-control work per GiB moved, from the public session.stats of both sides
  // (window stalls happen at the sender, SEQs are sent by the receiver).
  const flow: Metrics = {};
  if (rep.stats && clientStats0 && conn.stats) {
    const c1 = conn.stats();
    const d = (k: string): number => (c1[k] ?? 0) - (clientStats0[k] ?? 0) + (rep.stats?.[k] ?? 0);
    const gib = bytes / GiB;
    flow.stallsPerGiB = d('windowStalls') / gib;
    // Of those, the ones after which the receiver sat idle (it read everything and nothing was queued).
    flow.idleStallsPerGiB = d('peerWindowStallsIdle') / gib;
    flow.seqsPerGiB = d('seqOut') / gib;
  }
  // The receiver's memory management per GiB: what the allocator and the collector cost it.
  const recv: Metrics = rep.gc ? { recvMajorGcsPerGiB: rep.gc.majorGcs / (bytes / GiB), recvMinorGcsPerGiB: rep.gc.minorGcs / (bytes / GiB), recvFaultsPerGiB: rep.gc.minorFaults / (bytes / GiB) } : {};
  return {
    ...flow,
    ...recv,
    mbps: bytes / MB / (last / 1000),
    cpuPerGiB: (cpuClient + rep.cpu + (cpuTunnel ?? 0)) / (bytes / GiB),
    cpuClient,
    cpuServer: rep.cpu,
    ...(cpuTunnel !== undefined ? { cpuTunnel, cpuTunnelPerGiB: cpuTunnel / (bytes / GiB) } : {}),
    ...(rep.tunnelEnds ? perEnd(rep.tunnelEnds, bytes / GiB) : {}),
    fairness: last / first,
    wireOverhead: rep.wire / bytes,
    seconds: last / 1000,
    bytes,
    capped,
  };
}

async function driveRoundTrips(ctx: DriverContext): Promise<Metrics> {
  const n = ctx.params.channels ?? 1;
  const perChannel = ctx.params.requests ?? 10_000;
  const conn = await ctx.client.connect(ctx.port);
  const streams = await openMany(conn, 'echo', n);
  const warmup = ctx.params.warmup ?? 200;
  await roundTrips(streams, SMALL, warmup);
  await ctx.server('mark');
  // The driver allocates nothing per round trip of its own (lib/rtloop.ts: a
  // callback loop per stream, latencies in a typed array made here), since the
  // JS heap per message is measured over it (bench/README.md, issue 13).
  const lat = new Latencies(n * perChannel);
  const meter = gcMeter();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const deadline = t0 + (ctx.params.capSeconds ?? 30) * 1000;
  await roundTrips(streams, SMALL, perChannel, deadline, lat);
  const count = lat.count;
  const elapsed = (now() - t0) / 1000;
  const cpuClient = cpuSeconds(process.cpuUsage(cpu0));
  const gcClient = meter.read();
  const rep = await ctx.server('report');
  conn.destroy();
  const sum = latencySummaryMs(lat.ms.subarray(0, count));
  const perRt = (s: number): number => (s * 1e6) / count;
  return {
    rps: count / elapsed,
    p50: sum.p50,
    p99: sum.p99,
    max: sum.max,
    requests: count,
    clientCpuUsPerRt: perRt(cpuClient),
    serverCpuUsPerRt: perRt(rep.cpu),
    // JS heap allocated per 100-octet message per side (one request and one reply per round trip).
    clientHeapPerMsg: gcClient.allocated / count,
    ...(rep.gc ? { serverHeapPerMsg: rep.gc.allocated / count } : {}),
  };
}

async function driveChurn(ctx: DriverContext): Promise<Metrics> {
  const total = ctx.params.count ?? 20_000;
  const conc = ctx.params.concurrency ?? 128;
  const conn = await ctx.client.connect(ctx.port);
  const op = async (): Promise<void> => {
    const s = await conn.open('echo');
    await s.roundTrip(SMALL);
    await s.close();
  };
  let warm = 0;
  const warmup = ctx.params.warmup ?? 500;
  await workers(conc, () => warm++ < warmup, op);
  let started = 0;
  let done = 0;
  // No 20 ms sampling of buffered octets and RSS: its cost (walking every channel) would count as the server's.
  await ctx.server('mark', { sample: false });
  const meter = gcMeter();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const deadline = t0 + (ctx.params.capSeconds ?? 30) * 1000;
  await workers(
    conc,
    () => started < total && now() < deadline,
    async () => {
      started++;
      await op();
      done++;
    },
  );
  const elapsed = (now() - t0) / 1000;
  const cpuClient = cpuSeconds(process.cpuUsage(cpu0));
  const gcClient = meter.read();
  const rep = await ctx.server('report');
  conn.destroy();
  // Per 1,000 channels (each: start, one 100-octet exchange, close), per side:
  // CPU milliseconds, JS heap allocated (KB), young and full collections.
  const k = done / 1000;
  return {
    perSecond: done / elapsed,
    ops: done,
    clientCpuMsPerK: (cpuClient * 1000) / k,
    serverCpuMsPerK: (rep.cpu * 1000) / k,
    clientHeapKBPerK: gcClient.allocated / 1024 / k,
    clientMinorGcsPerK: gcClient.minorGcs / k,
    clientMajorGcs: gcClient.majorGcs,
    ...(rep.gc
      ? { serverHeapKBPerK: rep.gc.allocated / 1024 / k, serverMinorGcsPerK: rep.gc.minorGcs / k, serverMajorGcs: rep.gc.majorGcs }
      : {}),
  };
}

async function driveScaleChannels(ctx: DriverContext): Promise<Metrics> {
  const n = ctx.params.count ?? 10_000;
  const batch = ctx.params.concurrency ?? 500;
  const conn = await ctx.client.connect(ctx.port);
  // Warm the code paths (and lazily built state) with a few channels opened and closed.
  for (const s of await Promise.all(Array.from({ length: 50 }, () => conn.open('echo')))) await s.close();
  await sleep(50);
  await ctx.server('mark', { gc: true });
  const m0 = memNow();
  const t0 = now();
  for (let opened = 0; opened < n; ) {
    const k = Math.min(batch, n - opened);
    await Promise.all(Array.from({ length: k }, () => conn.open('echo')));
    opened += k;
  }
  const openSeconds = (now() - t0) / 1000;
  const rep = await ctx.server('report', { gc: true, expect: { streams: n } });
  const m1 = memNow();
  conn.destroy();
  return {
    serverHeap: rep.heap / n,
    serverRss: rep.rss / n,
    serverExternal: rep.external / n,
    clientHeap: (m1.heapUsed - m0.heapUsed) / n,
    clientRss: (m1.rss - m0.rss) / n,
    clientExternal: (m1.external - m0.external) / n,
    openPerSecond: n / openSeconds,
  };
}

async function driveScaleSessions(ctx: DriverContext): Promise<Metrics> {
  const n = ctx.params.count ?? 1000;
  const batch = ctx.params.concurrency ?? 100;
  // Warm up: a few sessions made and dropped.
  for (const c of await Promise.all(Array.from({ length: 10 }, () => ctx.client.connect(ctx.port)))) c.destroy();
  await sleep(200);
  await ctx.server('mark', { gc: true });
  const m0 = memNow();
  const conns: BenchConn[] = [];
  const t0 = now();
  while (conns.length < n) {
    const k = Math.min(batch, n - conns.length);
    conns.push(...(await Promise.all(Array.from({ length: k }, () => ctx.client.connect(ctx.port)))));
  }
  const openSeconds = (now() - t0) / 1000;
  const rep = await ctx.server('report', { gc: true, expect: { sessions: n } });
  const m1 = memNow();
  for (const c of conns) c.destroy();
  return {
    serverHeap: rep.heap / n,
    serverRss: rep.rss / n,
    serverExternal: rep.external / n,
    clientHeap: (m1.heapUsed - m0.heapUsed) / n,
    clientRss: (m1.rss - m0.rss) / n,
    clientExternal: (m1.external - m0.external) / n,
    openPerSecond: n / openSeconds,
  };
}

async function driveControl(ctx: DriverContext): Promise<Metrics> {
  const n = ctx.params.channels ?? 8;
  const conn = await ctx.client.connect(ctx.port);
  // The control channel first, as a SciStream session opens it before its data channels.
  const control = await conn.open('control');
  const sinks = await openMany(conn, 'sink', n);
  for (let i = 0; i < (ctx.params.warmup ?? 200); i++) await control.roundTrip(SMALL);
  let stopped = false;
  const uploads = sinks.map((s) => s.bulk(2 ** 50, BULK_BUF, () => stopped));
  uploads.forEach((p) => p.catch(() => undefined));
  // Bulk alone, then beside the control traffic, then alone again, each phase as long:
  // the uploads fill the windows and the socket buffers, and before each alone phase a
  // receiver's control hold (spec/flow-control.md) lapses. The beside phase is compared
  // with the mean of the two alone phases, so drift over the case (JIT, heap growth,
  // other load) does not count as the control traffic's cost.
  const seconds = ctx.params.seconds ?? 3;
  const settle = ctx.params.settleMs ?? 1300;
  const phase = async <T>(run: () => Promise<T>): Promise<{ rep: ServerReport; seconds: number; mbps: number; counts: Metrics; out: T }> => {
    await ctx.server('mark');
    const c0 = conn.stats?.();
    const cpu0 = process.cpuUsage();
    const t0 = now();
    const out = await run();
    const rep = await ctx.server('report');
    const seconds = (now() - t0) / 1000;
    return { rep, seconds, mbps: rep.received / MB / seconds, counts: phaseCounts(rep, c0, conn.stats?.(), cpu0), out };
  };
  await sleep(settle);
  const before = await phase(() => sleep(seconds * 1000));
  const beside = await phase(async () => {
    const samples: bigint[] = [];
    const until = now() + seconds * 1000;
    while (now() < until) {
      const t = process.hrtime.bigint();
      await control.roundTrip(SMALL);
      samples.push(process.hrtime.bigint() - t);
    }
    return samples;
  });
  await sleep(settle);
  const after = await phase(() => sleep(seconds * 1000));
  stopped = true;
  await Promise.race([Promise.all(uploads), sleep(5000)]);
  conn.destroy();
  const lat = latencySummary(beside.out);
  const aloneMBps = (before.mbps + after.mbps) / 2;
  const counts: Metrics = {};
  for (const [k, v] of Object.entries(before.counts)) counts[`${k}Alone`] = v;
  for (const [k, v] of Object.entries(beside.counts)) counts[`${k}Beside`] = v;
  return {
    p50: lat.p50,
    p99: lat.p99,
    max: lat.max,
    requests: beside.out.length,
    bulkMBps: beside.mbps,
    bulkAloneMBps: aloneMBps,
    bulkAloneBeforeMBps: before.mbps,
    bulkAloneAfterMBps: after.mbps,
    bulkRatio: beside.mbps / aloneMBps,
    wireMBps: beside.rep.wire / MB / beside.seconds,
    ...counts,
  };
}

/**
 * The counts that explain a control-case phase, per GiB the server counted:
 * CPU seconds of both processes, and (beepstream) data frames and SEQs the
 * receiver handled and the sender's window stalls (public `session.stats`).
 */
function phaseCounts(rep: ServerReport, c0: Record<string, number> | undefined, c1: Record<string, number> | undefined, cpu0: NodeJS.CpuUsage): Metrics {
  const gib = rep.received / GiB;
  const out: Metrics = { cpuPerGiB: (cpuSeconds(process.cpuUsage(cpu0)) + rep.cpu) / gib };
  if (rep.stats && c0 && c1) {
    out.framesPerGiB = (rep.stats.framesIn ?? 0) / gib;
    out.seqsPerGiB = (rep.stats.seqOut ?? 0) / gib;
    out.stallsPerGiB = ((c1.windowStalls ?? 0) - (c0.windowStalls ?? 0)) / gib;
  }
  return out;
}

/**
 * A bulk channel alone, then the same upload beside a channel whose reader
 * consumes 1 MB/s (`slow` sink), then alone again once the slow upload has
 * ended, all on one session. Reports the bulk channel's MB/s beside the slow
 * reader against the mean of the two alone phases (so drift over the case —
 * JIT, heap growth, other load — does not count as interference), and the
 * most octets the receiver held unread meanwhile (the slow channel's own
 * peak when the library keeps one), with the receiver's RSS growth.
 */
async function driveSlowReader(ctx: DriverContext): Promise<Metrics> {
  const bytes = ctx.params.bytes ?? 512 * MiB;
  const capMs = (ctx.params.capSeconds ?? 20) * 1000;
  const conn = await ctx.client.connect(ctx.port);
  const bulk = await conn.open('sink');
  const upload = async (): Promise<{ mbps: number; capped: number }> => {
    const t0 = now();
    let capped = 0;
    const sent = await bulk.bulk(bytes, BULK_BUF, () => (now() - t0 > capMs ? (capped = 1) === 1 : false));
    return { mbps: sent / MB / ((now() - t0) / 1000), capped };
  };
  await upload(); // warm-up: JIT, and the window grown as far as the policy grows it
  const before = await upload();
  const slow = await conn.open('slow');
  let stopSlow = false;
  const slowDone = slow.bulk(2 ** 50, BULK_BUF, () => stopSlow).then(
    () => true,
    () => false,
  );
  await sleep(500); // the slow channel's window fills (all of it: the reader is slow)
  await ctx.server('mark', { gc: true });
  const beside = await upload();
  const rep = await ctx.server('report');
  // End the slow upload: its reader drains what it holds at 1 MB/s (bounded wait), then bulk alone again.
  stopSlow = true;
  const slowEnded = await Promise.race([slowDone, sleep(10_000).then(() => false)]);
  const after = slowEnded ? await upload() : undefined;
  conn.destroy();
  const alone = after ? (before.mbps + after.mbps) / 2 : before.mbps;
  return {
    bulkAloneMBps: alone,
    bulkAloneBeforeMBps: before.mbps,
    ...(after ? { bulkAloneAfterMBps: after.mbps } : {}),
    bulkMBps: beside.mbps,
    bulkRatio: beside.mbps / alone,
    // The slow channel's own peak when the library keeps one (channel.flow.peakBuffered); else the
    // receiver's sampled peak of octets held unread (the bulk sink reads at once).
    ...(rep.slowPeakBuffered !== undefined
      ? { slowPeakBufferedKiB: rep.slowPeakBuffered / 1024, bufferedFromFlow: 1 }
      : rep.peakBuffered !== undefined
        ? { slowPeakBufferedKiB: rep.peakBuffered / 1024, bufferedFromFlow: rep.bufferedSource === 'flow' ? 1 : 0 }
        : {}),
    ...(rep.peakBuffered !== undefined ? { receiverPeakUnreadKiB: rep.peakBuffered / 1024 } : {}),
    serverPeakRssMiB: (rep.peakRss ?? 0) / MiB,
    capped: Math.max(before.capped, beside.capped, after?.capped ?? 0),
  };
}

// ------------------------------------------------------------------ the cases

/**
 * The warm-up upload of every bulk case (own stream, every implementation): 512 MiB (64 MiB with
 * `--quick`). Every fresh Node process makes one full (Mark-Compact) collection once its old space
 * first reaches about 10–13 MB, whichever transfer it is in; after 64 MiB it still landed in the
 * measured GiB in 2 of 4 rounds on a loaded machine, after 512 MiB in none of 8 (bench/README.md,
 * "Issue 13, eighth session").
 */
function bulkWarmup(quick: boolean): number {
  return quick ? 64 * MiB : 512 * MiB;
}

const BULK_IMPLS = ['beepstream', 'raw-tcp', 'tls1.3-aes128gcm', 'tls1.2-psk-aes128gcm', 'http2', 'yamux'] as const;
const MUX_COMPARE = ['beepstream', 'raw-tcp', 'http2', 'yamux'] as const;

/** Every case, in the order they run. */
export const CASES: readonly CaseDef[] = [
  {
    id: 'bulk-1',
    title: 'bulk, 1 channel',
    impls: BULK_IMPLS,
    params: (q) => ({ channels: 1, bytes: q ? 256 * MiB : GiB, warmupBytes: bulkWarmup(q), capSeconds: q ? 8 : 20 }),
    drive: driveBulk,
  },
  {
    id: 'bulk-8',
    title: 'bulk, 8 channels',
    impls: MUX_COMPARE,
    params: (q) => ({ channels: 8, bytes: q ? 256 * MiB : GiB, warmupBytes: bulkWarmup(q), capSeconds: q ? 8 : 20 }),
    drive: driveBulk,
  },
  {
    // The library's own defaults against a hand-set 16 MiB window (auto-tuning off), same run, same sizes;
    // these limits are fixed: --window/--frame/--max-window/--limit/--defaults do not apply here.
    id: 'bulk-1-window',
    title: 'bulk, 1 channel: library defaults vs a fixed 16 MiB window',
    impls: ['beepstream', 'beepstream-16MiB'],
    variants: { beepstream: { impl: 'beepstream', limits: LIBRARY_DEFAULTS }, 'beepstream-16MiB': { impl: 'beepstream', limits: FIXED_16MIB } },
    params: (q) => ({ channels: 1, bytes: q ? 256 * MiB : GiB, warmupBytes: bulkWarmup(q), capSeconds: q ? 8 : 20 }),
    drive: driveBulk,
  },
  {
    id: 'bulk-64',
    title: 'bulk, 64 channels',
    impls: MUX_COMPARE,
    params: (q) => ({ channels: 64, bytes: q ? 256 * MiB : GiB, warmupBytes: bulkWarmup(q), capSeconds: q ? 8 : 20 }),
    drive: driveBulk,
  },
  {
    id: 'rr-1',
    title: '100-byte request/response, 1 channel',
    impls: MUX_COMPARE,
    params: (q) => ({ channels: 1, requests: q ? 2000 : 10_000, warmup: q ? 200 : 3000, capSeconds: q ? 5 : 15 }),
    drive: driveRoundTrips,
  },
  {
    id: 'rr-64',
    title: '100-byte request/response, 64 channels',
    impls: MUX_COMPARE,
    // 2,000 per channel after 200 (full): the former 200 after 20 lasted 0.1–0.2 s and
    // measured JIT warm-up more than steady state (same code: 56k/s then, 119k/s now).
    params: (q) => ({ channels: 64, requests: q ? 50 : 2000, warmup: q ? 10 : 200, capSeconds: q ? 5 : 15 }),
    drive: driveRoundTrips,
  },
  {
    id: 'churn',
    title: 'channel churn (start + one exchange + close, 128 in flight)',
    impls: ['beepstream', 'http2', 'yamux'],
    params: (q) => ({ count: q ? 3000 : 20_000, concurrency: 128, warmup: q ? 300 : 1000, capSeconds: q ? 5 : 15 }),
    drive: driveChurn,
  },
  {
    id: 'scale-channels',
    title: 'idle channels on one session',
    impls: ['beepstream', 'http2', 'yamux'],
    manyStreams: true,
    params: (q) => ({ count: q ? 2000 : 10_000, concurrency: 500 }),
    drive: driveScaleChannels,
  },
  {
    id: 'scale-sessions',
    title: 'idle sessions on one listener',
    impls: MUX_COMPARE,
    params: (q) => ({ count: q ? 200 : 1000, concurrency: 100 }),
    drive: driveScaleSessions,
  },
  {
    // One channel read at 1 MB/s beside a bulk channel on the same session; library defaults (fixed).
    id: 'slow-reader',
    title: 'slow reader (1 MB/s) beside a bulk channel, one session, library defaults',
    impls: ['beepstream'],
    variants: { beepstream: { impl: 'beepstream', limits: LIBRARY_DEFAULTS } },
    params: (q) => ({ bytes: q ? 128 * MiB : 512 * MiB, capSeconds: q ? 8 : 20 }),
    drive: driveSlowReader,
  },
  {
    id: 'control',
    title: 'control channel under 8-channel bulk load',
    impls: MUX_COMPARE,
    params: (q) => ({ channels: 8, seconds: q ? 1.5 : 3, warmup: 200 }),
    drive: driveControl,
  },
  {
    // App → S2DS → BEEP over TLS-PSK → S2DS → app, against the stunnel chain (lib/tunnel.ts).
    id: 'scistream-1',
    title: 'SciStream data path, 1 application connection',
    impls: ['beepstream', 'stunnel', 'node-tls'],
    tunnel: true,
    params: (q) => ({ channels: 1, bytes: q ? 128 * MiB : GiB, warmupBytes: 64 * MiB, capSeconds: q ? 15 : 40 }),
    drive: driveBulk,
  },
  {
    id: 'scistream-8',
    title: 'SciStream data path, 8 application connections',
    impls: ['beepstream', 'stunnel', 'node-tls'],
    tunnel: true,
    params: (q) => ({ channels: 8, bytes: q ? 128 * MiB : GiB, warmupBytes: 64 * MiB, capSeconds: q ? 15 : 40 }),
    drive: driveBulk,
  },
];
