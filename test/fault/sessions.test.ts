/**
 * Fault injection, many seeds: real beepstream sessions (client ↔ BeepServer
 * on 127.0.0.1) through a {@link FaultProxy} that drops the connection (FIN
 * or RST) at a random point, delays, splits and coalesces chunks, and stalls
 * a direction for a while.
 *
 * Every case, whatever the faults, must end with:
 * - every promise of the test (connect, startChannel, requests, bodies,
 *   answers, writes, close, the server's replies) settled within a bound;
 * - both sessions closed (`whenClosed()`), the server's `sessions` empty;
 * - the data sequence-checked at both receivers: each side got a prefix of
 *   what was sent, in order, never a gap, a duplicate or a reordering; and
 *   everything when the proxy dropped nothing.
 * Each scenario then checks that no socket, timer or immediate is left
 * (async_hooks, unref'd timers included, and `process.getActiveResourcesInfo()`).
 *
 * Replay: FAULT_SEEDS=3,17 runs only those seeds of every scenario;
 * FAULT_BASE_SEED shifts the seed range.
 */
import { Buffer } from 'node:buffer';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test, { type ExecutionContext } from 'ava';
import { connect, createServer, type Session } from '../../src/channels/session.js';
import type { Channel } from '../../src/channels/channel.js';
import type { IncomingMessage } from '../../src/channels/message.js';
import { defineProfile, sameHeaders, type ChannelProfile } from '../../src/profiles/index.js';
import {
  FaultProxy, PromiseTracker, ResourceTracker, SeqChecker, activeResources, createRng, describePlan, mixSeed, randomPlan, resourceExcess,
  seqPayload, sleep, until, within, type FaultPlan, type RandomPlanOptions, type Rng,
} from '../helpers/fault-proxy.js';

const SEQ_ECHO = 'urn:beepstream:test:fault:seq-echo';
const SEQ_ANSWERS = 'urn:beepstream:test:fault:seq-answers';
const BASE_SEED = Number(process.env.FAULT_BASE_SEED ?? 0x5eed0000);
const TRACE = Number(process.env.FAULT_TRACE ?? 0);
const ONLY = process.env.FAULT_SEEDS?.split(',').map((s) => Number(s.trim())).filter((n) => Number.isFinite(n));

// ---------------------------------------------------------------- the server side of a case

/** What the server of one case saw, checked as it arrives. */
class ServerLog {
  readonly problems: string[] = [];
  /** Per logical stream: sequence numbers of the MSGs handed to the profile, in order. */
  readonly begun = new Map<number, number[]>();
  /** Per logical stream: sequence numbers of the MSGs whose body was read complete and correct. */
  readonly completed = new Map<number, Set<number>>();
  constructor(readonly tracker: PromiseTracker) {}

  /**
   * A MSG of (stream, seq) was handed to the profile: MSGs of a channel are
   * handed over in order (RFC 3080 §2.6.1), so it must be the next of its stream.
   */
  begin(stream: number, seq: number): void {
    let l = this.begun.get(stream);
    if (!l) this.begun.set(stream, (l = []));
    if (seq !== l.length) this.problems.push(`server: stream ${stream} got seq ${seq} after [${l.slice(-3).join(',')}] (gap, duplicate or reorder)`);
    l.push(seq);
  }

  /** The body of (stream, seq) was read to its end, every octet checked. */
  complete(stream: number, seq: number): void {
    let s = this.completed.get(stream);
    if (!s) this.completed.set(stream, (s = new Set()));
    if (s.has(seq)) this.problems.push(`server: stream ${stream} seq ${seq} completed twice`);
    s.add(seq);
  }
}

function intHeader(msg: IncomingMessage, name: string): number {
  const v = Number(msg.headers[name]);
  return Number.isInteger(v) ? v : -1;
}

/**
 * Echo that checks what it echoes: the MSG carries X-Stream, X-Seq, X-Len;
 * its body must be `seqPayload(stream, seq, len)`, octet for octet, streamed.
 */
function seqEchoProfile(log: ServerLog): ChannelProfile {
  return defineProfile({
    uri: SEQ_ECHO,
    async onMessage(msg, res) {
      const stream = intHeader(msg, 'x-stream');
      const seq = intHeader(msg, 'x-seq');
      const len = intHeader(msg, 'x-len');
      log.begin(stream, seq);
      const checker = new SeqChecker(stream, seq);
      const check = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          checker.push(chunk);
          cb(null, chunk);
        },
        // Every octet of the MSG has been through transform(): it ended here.
        flush(cb) {
          if (checker.error) log.problems.push(`server: ${checker.error}`);
          else if (checker.received !== len) log.problems.push(`server: stream ${stream} seq ${seq} ended after ${checker.received} of ${len} octets`);
          else log.complete(stream, seq);
          cb();
        },
      });
      await log.tracker.track(`server echo ${stream}/${seq}`, pipeline(msg, check, res.replyStream(sameHeaders(msg))));
    },
  });
}

/**
 * One-to-many: a MSG `count:size:stream` is answered by `count` ANS, answer i
 * being `seqPayload(stream, i, size)` (whole, or streamed in pieces when
 * `stream` is odd), then NUL.
 */
function seqAnswersProfile(log: ServerLog): ChannelProfile {
  return defineProfile({
    uri: SEQ_ANSWERS,
    async onMessage(msg, res) {
      const text = await msg.text(64);
      const [count, size, stream] = text.split(':').map(Number) as [number, number, number];
      log.begin(stream, 0);
      log.complete(stream, 0);
      for (let i = 0; i < count; i++) {
        const body = seqPayload(stream, i, size);
        if (stream % 2 === 0) {
          await log.tracker.track(`server answer ${stream}/${i}`, res.answer(body));
        } else {
          const w = res.answerStream();
          const piece = Math.max(1, Math.ceil(size / 3));
          const done = log.tracker.track(`server answerStream ${stream}/${i}`, writeAll(w, chunksOf(body, piece)));
          await done;
        }
      }
      await log.tracker.track(`server NUL ${stream}`, res.end());
    },
  });
}

function* chunksOf(buf: Buffer, n: number): Generator<Buffer> {
  for (let o = 0; o < buf.length; o += n) yield buf.subarray(o, o + n);
}

/**
 * Write `chunks` to `w` honouring backpressure, then end it. Settles when the
 * Writable finishes (resolves) or fails/closes first (rejects): never waits
 * on a 'drain' that cannot come.
 */
function writeAll(w: Writable, chunks: Iterable<Buffer>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    w.once('error', fail);
    w.once('close', () => fail(new Error('writable closed before finishing')));
    w.once('finish', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    const it = chunks[Symbol.iterator]();
    const pump = (): void => {
      for (;;) {
        if (w.destroyed || settled) return;
        const r = it.next();
        if (r.done) {
          w.end();
          return;
        }
        if (!w.write(r.value)) {
          w.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

// ---------------------------------------------------------------- one case

interface CaseContext {
  seed: number;
  rng: Rng;
  client: Session;
  tracker: PromiseTracker;
  problems: string[];
  /** True when the proxy dropped the connection. */
  dropped(): boolean;
}

interface CaseOutcome {
  seed: number;
  plan: string;
  problems: string[];
  dropped: 'fin' | 'rst' | undefined;
  connected: boolean;
  /** The workload reported everything delivered. */
  complete: boolean;
  splits: number;
  coalesced: number;
  stalled: boolean;
}

type Workload = (c: CaseContext) => Promise<boolean>;

async function runCase(seed: number, planOptions: RandomPlanOptions | FaultPlan, workload: Workload, fixed = false): Promise<CaseOutcome> {
  const tracker = new PromiseTracker();
  const log = new ServerLog(tracker);
  const problems: string[] = [];
  const server = createServer({ profiles: [seqEchoProfile(log), seqAnswersProfile(log)] });
  const serverSessions: Session[] = [];
  server.on('session', (s) => serverSessions.push(s));
  const { port } = await server.listen(0);
  const proxy = new FaultProxy({ target: { port }, seed, trace: TRACE, plan: (_i, rng) => (fixed ? { ...(planOptions as FaultPlan) } : randomPlan(rng, planOptions as RandomPlanOptions)) });
  await proxy.listen();
  let client: Session | undefined;
  let complete = false;
  try {
    client = await tracker.track('connect', connect({ port: proxy.port, timeout: 5000 }));
  } catch {
    /* dropped before the greeting: a settled rejection */
  }
  if (client) {
    const c = client;
    const ctx: CaseContext = { seed, rng: createRng(mixSeed(seed, 0xc11e)), client: c, tracker, problems, dropped: () => proxy.connections.some((x) => x.dropped !== undefined) };
    try {
      complete = await within(workload(ctx), 20_000, 'workload');
    } catch (err) {
      const pend = tracker.pending();
      problems.push(`workload: ${(err as Error).message}; pending then: ${pend.slice(0, 8).join('; ')}${pend.length > 8 ? ` (+${pend.length - 8})` : ''}`);
      const conn = proxy.connections[0];
      if (conn) problems.push(`proxy: c2s ${JSON.stringify(conn.c2s.stats)} s2c ${JSON.stringify(conn.s2c.stats)}`);
    }
    await tracker.track('client close', c.close()).catch(() => undefined);
  }
  const pending = await tracker.settle(10_000);
  if (pending.length) problems.push(`still pending after 10 s: ${pending.slice(0, 8).join('; ')}${pending.length > 8 ? ` (+${pending.length - 8})` : ''}`);
  const closing = [...(client ? [client] : []), ...serverSessions].map((s) => s.whenClosed());
  try {
    await within(Promise.all(closing), 10_000, 'both sessions closed');
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (!(await until(() => server.sessions.size === 0, 2000))) problems.push(`server still holds ${server.sessions.size} session(s)`);
  for (const s of [...(client ? [client] : []), ...serverSessions]) {
    if (!s.core.isClosed) problems.push(`a ${s.role} session is not closed (state ${s.core.state})`);
  }
  problems.push(...log.problems);
  const conns = proxy.connections;
  const dropped = conns.find((x) => x.dropped)?.dropped;
  if (!dropped && client && !complete && problems.length === 0) problems.push('nothing was dropped, yet not everything was delivered');
  if (!dropped && !client) problems.push('connect failed, yet nothing was dropped');
  if (TRACE && problems.length) for (const x of conns) problems.push(`transcript of connection ${x.index}:\n${x.transcript()}`);
  // Leave nothing behind for the next case, whatever happened.
  client?.destroy();
  for (const s of serverSessions) s.destroy();
  await proxy.close();
  await server.close(100);
  return {
    seed,
    plan: conns.map((x) => describePlan(x.plan)).join(' | ') || 'no connection',
    problems,
    dropped,
    connected: client !== undefined,
    complete,
    splits: conns.reduce((a, x) => a + x.c2s.stats.splits + x.s2c.stats.splits, 0),
    coalesced: conns.reduce((a, x) => a + x.c2s.stats.coalesced + x.s2c.stats.coalesced, 0),
    stalled: conns.some((x) => x.c2s.stats.everStalled || x.s2c.stats.everStalled),
  };
}

/**
 * Run `count` seeded cases of `workload`, `parallel` at a time, then check
 * the outcomes and that nothing (socket, timer, immediate) was left behind.
 */
async function scenario(t: ExecutionContext, name: string, count: number, parallel: number, planOptions: RandomPlanOptions, workload: Workload): Promise<CaseOutcome[]> {
  const seeds = ONLY?.length ? ONLY : Array.from({ length: count }, (_, i) => (BASE_SEED + i) >>> 0);
  const before = activeResources();
  const resources = new ResourceTracker().enable();
  const started = performance.now();
  const outcomes: CaseOutcome[] = [];
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < seeds.length) {
        const seed = seeds[next++] as number;
        outcomes.push(await runCase(seed, planOptions, workload));
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, seeds.length) }, worker));
    // Nothing may be left: every socket closed, every timer and immediate gone.
    const clean = await resources.until(() => resources.size === 0 && Object.keys(resourceExcess(before, activeResources())).length === 0, 3000);
    if (!clean) for (const st of resources.liveStacks().slice(0, 5)) t.log(st);
    t.true(clean, `left behind: async_hooks ${JSON.stringify(resources.counts())}, active ${JSON.stringify(resourceExcess(before, activeResources()))}`);
  } finally {
    resources.disable();
  }
  const failed = outcomes.filter((o) => o.problems.length > 0);
  for (const o of failed.slice(0, 10)) t.log(`FAILED seed ${o.seed} (replay: FAULT_SEEDS=${o.seed}) [${o.plan}]: ${o.problems.slice(0, TRACE ? 100 : 6).join(' / ')}`);
  t.deepEqual(failed.map((o) => o.seed), [], `${failed.length} of ${outcomes.length} cases failed`);
  const n = (f: (o: CaseOutcome) => boolean): number => outcomes.filter(f).length;
  t.log(
    `${name}: ${outcomes.length} cases in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `dropped fin ${n((o) => o.dropped === 'fin')}, rst ${n((o) => o.dropped === 'rst')}, never connected ${n((o) => !o.connected)}, ` +
      `complete ${n((o) => o.complete)}, stalled ${n((o) => o.stalled)}, split writes ${outcomes.reduce((a, o) => a + o.splits, 0)}, ` +
      `coalesced writes ${outcomes.reduce((a, o) => a + o.coalesced, 0)}`,
  );
  return outcomes;
}

/** The faults must actually have been exercised (unless replaying given seeds). */
function exercised(t: ExecutionContext, outcomes: CaseOutcome[]): void {
  if (ONLY?.length) return;
  const n = (f: (o: CaseOutcome) => boolean): number => outcomes.filter(f).length;
  t.true(n((o) => o.dropped === 'fin') > 0 && n((o) => o.dropped === 'rst') > 0, 'both kinds of drop happened');
  t.true(n((o) => o.complete) >= outcomes.length / 5, 'a good share of cases completed');
  t.true(n((o) => o.connected && o.dropped !== undefined && !o.complete) > 0, 'some connections were cut mid-exchange');
  t.true(n((o) => o.splits > 0) > 0, 'some writes were split');
  t.true(n((o) => o.coalesced > 0) > 0, 'some writes were coalesced');
  t.true(n((o) => o.stalled) > 0, 'some directions stalled');
}

/** Outcomes of requests on one channel must be a prefix of successes (nothing after a failure succeeds). */
function prefixOk(results: boolean[]): boolean {
  const firstFail = results.indexOf(false);
  return firstFail < 0 || results.slice(firstFail).every((r) => !r);
}

async function startChannels(c: CaseContext, uri: string, n: number): Promise<Channel[]> {
  const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => c.tracker.track(`startChannel ${i}`, c.client.startChannel(uri))));
  if (!c.dropped()) {
    for (const r of settled) if (r.status === 'rejected') c.problems.push(`startChannel failed without a drop: ${String(r.reason)}`);
  }
  return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

// ---------------------------------------------------------------- workloads

/** Size of a random message: mostly small, sometimes well beyond the initial window. */
const size = (rng: Rng): number => (rng.chance(0.15) ? rng.int(300_000) : rng.chance(0.3) ? 0 : rng.int(3000));

/** Pipelined echo requests of random sizes on 1–3 channels. */
const echoWorkload: Workload = async (c) => {
  const nch = c.rng.range(1, 3);
  const channels = await startChannels(c, SEQ_ECHO, nch);
  if (channels.length < nch && !c.dropped()) c.problems.push(`only ${channels.length} of ${nch} channels started`);
  let all = channels.length === nch;
  // Sometimes release the session while the requests are in flight: the
  // release waits for them (RFC 3080 §2.3.1.3), so they still all complete.
  const earlyClose = c.rng.chance(0.3);
  if (earlyClose) queueMicrotask(() => void c.tracker.track('early close', c.client.close()).catch(() => undefined));
  await Promise.all(
    channels.map(async (ch, k) => {
      const stream = ch.number;
      const m = c.rng.range(1, 12);
      const sizes = Array.from({ length: m }, () => size(c.rng));
      const results = await Promise.all(
        sizes.map(async (len, seq) => {
          const body = seqPayload(stream, seq, len);
          try {
            const reply = await c.tracker.track(`request ${k}/${seq}`, ch.request(body, { headers: { 'X-Stream': String(stream), 'X-Seq': String(seq), 'X-Len': String(len) } }));
            const got = await c.tracker.track(`reply body ${k}/${seq}`, reply.bytes());
            if (!got.equals(body)) {
              c.problems.push(`client: reply ${stream}/${seq} differs from what was sent (${got.length} vs ${len} octets)`);
              return false;
            }
            return true;
          } catch {
            return false;
          }
        }),
      );
      if (!prefixOk(results)) c.problems.push(`client: channel ${stream}: replies ${results.map((r) => (r ? 1 : 0)).join('')} — a success after a failure`);
      if (results.includes(false)) all = false;
    }),
  );
  return all;
};

/** One-to-many replies (ANS… NUL), answers whole or streamed, on 1–2 channels. */
const answersWorkload: Workload = async (c) => {
  const nch = c.rng.range(1, 2);
  const channels = await startChannels(c, SEQ_ANSWERS, nch);
  let all = channels.length === nch;
  let streamId = 0;
  await Promise.all(
    channels.map(async (ch, k) => {
      const reqs = c.rng.range(1, 4);
      const results = await Promise.all(
        Array.from({ length: reqs }, async (_, r) => {
          const count = c.rng.range(0, 40);
          const sz = c.rng.chance(0.2) ? c.rng.int(100_000) : c.rng.int(500);
          const stream = (ch.number << 8) + streamId++;
          let got = 0;
          // Sometimes the consumer stops early (the rest of the reply is discarded).
          const stopAt = c.rng.chance(0.2) ? c.rng.int(count + 1) : -1;
          const run = (async (): Promise<boolean> => {
            for await (const a of ch.requestAnswers(`${count}:${sz}:${stream}`)) {
              if (got === stopAt) return true;
              if (a.type !== 'ANS' || a.ansno !== got) {
                c.problems.push(`client: stream ${stream}: answer #${got} came as ${a.type} ansno ${a.ansno}`);
                await a.dump();
                return false;
              }
              const body = await c.tracker.track(`answer body ${stream}/${got}`, a.bytes());
              if (!body.equals(seqPayload(stream, got, sz))) {
                c.problems.push(`client: stream ${stream}: answer ${got} is not the expected one`);
                return false;
              }
              got++;
            }
            if (got !== count && stopAt < 0) {
              c.problems.push(`client: stream ${stream}: NUL after ${got} of ${count} answers`);
              return false;
            }
            return true;
          })();
          return c.tracker.track(`answers ${k}/${r}`, run).catch(() => false);
        }),
      );
      if (!prefixOk(results)) c.problems.push(`client: channel ${ch.number}: ${results.map((r) => (r ? 1 : 0)).join('')} — a success after a failure`);
      if (results.includes(false)) all = false;
    }),
  );
  return all;
};

/** A streamed multi-MiB body echoed back, plus small echoes on a second channel meanwhile. */
const streamWorkload: Workload = async (c) => {
  const channels = await startChannels(c, SEQ_ECHO, 2);
  if (channels.length < 2) return false;
  const [big, small] = channels as [Channel, Channel];
  const total = c.rng.range(1, 3) * 1024 * 1024 + c.rng.int(65536);
  const stream = big.number;
  const { body, reply } = big.createRequest({ headers: { 'X-Stream': String(stream), 'X-Seq': '0', 'X-Len': String(total) } });
  c.tracker.track('stream reply', reply).catch(() => undefined);
  const payload = function* (rng: Rng): Generator<Buffer> {
    for (let o = 0; o < total; ) {
      const n = Math.min(total - o, 1 + rng.int(128 * 1024));
      yield seqPayload(stream, 0, n, o);
      o += n;
    }
  };
  const sent = c.tracker.track('stream body written', writeAll(body, payload(createRng(c.seed)))).then(() => true, () => false);
  const checker = new SeqChecker(stream, 0);
  const received = c.tracker.track(
    'stream reply read',
    (async () => {
      const msg = await reply;
      for await (const chunk of msg) checker.push(chunk as Buffer);
      return checker.received === total && !checker.error;
    })(),
  ).catch(() => false);
  const smalls = Promise.all(
    Array.from({ length: c.rng.range(0, 5) }, async (_, seq) => {
      const b = seqPayload(small.number, seq, c.rng.int(2000));
      try {
        const r = await c.tracker.track(`small ${seq}`, small.request(b, { headers: { 'X-Stream': String(small.number), 'X-Seq': String(seq), 'X-Len': String(b.length) } }));
        return (await c.tracker.track(`small body ${seq}`, r.bytes())).equals(b);
      } catch {
        return false;
      }
    }),
  );
  const [okSent, okRecv, okSmall] = await Promise.all([sent, received, smalls]);
  if (checker.error) c.problems.push(`client: ${checker.error}`);
  if (!prefixOk(okSmall)) c.problems.push('client: a small echo succeeded after one failed');
  return okSent && okRecv && okSmall.every(Boolean);
};

// ---------------------------------------------------------------- scenarios

test.serial('echo messages of random sizes through random faults: every case settles, each side gets an in-order prefix, nothing leaks', async (t) => {
  t.timeout(180_000);
  const outcomes = await scenario(t, 'echo', 200, 8, { maxDropAfter: 256 * 1024 }, echoWorkload);
  exercised(t, outcomes);
});

test.serial('ANS/NUL one-to-many replies through random faults: answers arrive as an in-order prefix, every case settles, nothing leaks', async (t) => {
  t.timeout(180_000);
  const outcomes = await scenario(t, 'answers', 150, 8, { maxDropAfter: 256 * 1024 }, answersWorkload);
  exercised(t, outcomes);
});

test.serial('a streamed multi-MiB body echoed through random faults: both ends see an exact prefix (all of it when nothing dropped), nothing leaks', async (t) => {
  t.timeout(240_000);
  const outcomes = await scenario(t, 'stream', 50, 4, { maxDropAfter: 8 * 1024 * 1024, maxDropAfterMs: 200, stall: 0.3, maxStallAfter: 1024 * 1024 }, streamWorkload);
  exercised(t, outcomes);
});

test.serial('the fault proxy itself is faithful without faults and deterministic per seed', async (t) => {
  // Without faults, a session through the proxy is an ordinary session.
  for (let seed = 1; seed <= 5; seed++) {
    const o = await runCase(seed, {}, echoWorkload, true);
    t.deepEqual(o.problems, []);
    t.true(o.complete, `seed ${seed}`);
    t.is(o.splits + o.coalesced, 0);
  }
  // The same seed gives the same plan.
  const a = randomPlan(createRng(mixSeed(42, 0)));
  const b = randomPlan(createRng(mixSeed(42, 0)));
  t.deepEqual(a, b);
  await sleep(0);
});
