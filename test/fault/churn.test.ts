/**
 * Churn: 10,000 short sessions against one BeepServer — connect, start an
 * echo channel, one echo, release — one in ten through a FaultProxy that
 * drops it (FIN or RST) somewhere in that exchange. Afterwards the server
 * holds no session, every session settled and closed, no socket or timer is
 * left, and after a forced GC the heap is back near its baseline.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import test from 'ava';
import { connect, createServer, type Session } from '../../src/channels/session.js';
import { ECHO_URI, echoProfile } from '../../src/profiles/index.js';
import { FaultProxy, ResourceTracker, activeResources, resourceExcess, sleep, until, within } from '../helpers/fault-proxy.js';

const MiB = 1024 * 1024;
const SESSIONS = Number(process.env.FAULT_CHURN ?? 10_000);
const PARALLEL = 16;
const WARMUP = 500;

function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Heap used after full collections (several, with turns in between for finalizers and weak callbacks). */
async function settledHeap(gc: () => void): Promise<number> {
  let h = Infinity;
  for (let i = 0; i < 6; i++) {
    gc();
    await sleep(20);
    h = Math.min(h, process.memoryUsage().heapUsed);
  }
  return h;
}

type Outcome = 'ok' | 'failed' | 'hung';

test.serial(`churn: ${SESSIONS} sessions (one in ten dropped by faults) leave no session, socket or timer behind, and the heap returns near its baseline`, async (t) => {
  // About a minute on a quiet machine; several with two busy cores. A bound, not a measurement.
  t.timeout(480_000);
  const gc = getGc();
  const server = createServer({ profiles: [echoProfile] });
  const { port } = await server.listen(0);
  const proxy = new FaultProxy({
    target: { port },
    seed: 0xc4a2,
    retain: 0,
    // Drop somewhere in greeting / start / echo / release (about 900 octets both ways in all).
    plan: (_i, rng) => ({ dropAfter: rng.int(1000), dropMode: rng.chance(0.5) ? 'fin' : 'rst', ...(rng.chance(0.3) ? { split: 1, maxPieces: 4 } : {}) }),
  });
  await proxy.listen();
  const problems: string[] = [];

  const one = async (i: number): Promise<Outcome> => {
    const faulty = i % 10 === 5;
    let s: Session | undefined;
    const run = async (): Promise<Outcome> => {
      try {
        s = await connect({ port: faulty ? proxy.port : port, timeout: 5000 });
        const ch = await s.startChannel(ECHO_URI);
        const r = await ch.request(`hello ${i}`);
        const text = await r.text();
        if (text !== `hello ${i}`) problems.push(`session ${i}: echo returned ${JSON.stringify(text)}`);
        await s.close();
        return 'ok';
      } catch (err) {
        if (!faulty) problems.push(`session ${i} (no faults) failed: ${String(err)}`);
        s?.destroy();
        return 'failed';
      } finally {
        if (s) await within(s.whenClosed(), 5000, `session ${i} closed`).catch((e: Error) => void problems.push(e.message));
      }
    };
    try {
      return await within(run(), 15_000, `session ${i}`);
    } catch (err) {
      problems.push((err as Error).message);
      s?.destroy();
      return 'hung';
    }
  };

  const churn = async (from: number, to: number): Promise<Record<Outcome, number>> => {
    const counts: Record<Outcome, number> = { ok: 0, failed: 0, hung: 0 };
    let next = from;
    const worker = async (): Promise<void> => {
      while (next < to) counts[await one(next++)]++;
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    return counts;
  };

  try {
    // Warm up (JIT, lazily built tables), then the baseline.
    await churn(0, WARMUP);
    t.true(await until(() => server.sessions.size === 0 && proxy.open.length === 0, 5000), 'warm-up sessions gone');
    const before = activeResources();
    const heap0 = await settledHeap(gc);
    const resources = new ResourceTracker().enable();
    const t0 = performance.now();
    let counts: Record<Outcome, number>;
    try {
      counts = await churn(WARMUP, WARMUP + SESSIONS);
      const ms = performance.now() - t0;
      t.true(await until(() => server.sessions.size === 0, 10_000), `server still holds ${server.sessions.size} sessions`);
      t.true(await until(() => proxy.open.length === 0, 10_000), `proxy still holds ${proxy.open.length} connections`);
      t.true(
        await resources.until(() => resources.size === 0 && Object.keys(resourceExcess(before, activeResources())).length === 0, 5000),
        `left behind: async_hooks ${JSON.stringify(resources.counts())}, active ${JSON.stringify(resourceExcess(before, activeResources()))}`,
      );
      t.log(`${SESSIONS} sessions in ${(ms / 1000).toFixed(1)} s (${PARALLEL} at a time): ok ${counts.ok}, failed (faults) ${counts.failed}, hung ${counts.hung}; proxy connections ${proxy.accepted}`);
    } finally {
      resources.disable();
    }
    const heap1 = await settledHeap(gc);
    const growth = (heap1 - heap0) / MiB;
    t.log(`heap used after GC: baseline ${(heap0 / MiB).toFixed(1)} MiB, after churn ${(heap1 / MiB).toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)} MiB)`);
    for (const p of problems.slice(0, 10)) t.log(p);
    t.deepEqual(problems.length, 0, `${problems.length} problems`);
    t.is(counts.hung, 0, 'every session settled');
    t.true(counts.failed > 0 && counts.ok >= SESSIONS * 0.9, 'the faults dropped some sessions, the others all completed');
    t.true(growth < 12, `heap grew by ${growth.toFixed(2)} MiB`);
    t.is(server.sessions.size, 0);
  } finally {
    await proxy.close();
    await server.close(100);
  }
});
