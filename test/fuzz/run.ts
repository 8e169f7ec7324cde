/**
 * `npm run fuzz`: runs the fuzz targets of `targets.ts` under the
 * coverage-guided engine of `engine.ts`.
 *
 * ```
 * node dist/test/fuzz/run.js [--time <seconds per target>] [--target <name>]... [--seed <n>] [--list]
 * ```
 *
 * Each target runs in a worker thread, seeded with `test/fuzz/corpus/<target>/`.
 * The main thread is a watchdog: the worker publishes the running input in
 * shared memory, and an input that runs longer than twice {@link HANG_MS}
 * (a synchronous infinite loop included; an asynchronous input that does not
 * settle within {@link HANG_MS} is an ordinary crash) is saved as a hang, the
 * worker is terminated and a new one continues with the corpus so far. At the end the
 * corpus is minimised by coverage (at most {@link CORPUS_CAP} files) and
 * written back; crashes go to `test/fuzz/crashers/<target>/<sha1>` (one per
 * signature) with a `.txt` note of the stack. Prints a table per target and
 * exits 1 when anything crashed.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FUZZ_DIR, Fuzzer, inputFiles, sha1, sharedSlot, slotOf, type Crash } from './engine.js';
import { TARGETS, watchEscapes } from './targets.js';

/** An asynchronous input not settled after this long is a crash; a synchronous one running twice as long, a hang (ms). */
const HANG_MS = 1000;
/** Most corpus files kept per target. */
const CORPUS_CAP = 200;
/** Most worker restarts (after hangs) per target. */
const MAX_RESTARTS = 5;

interface WorkerInit {
  target: string;
  seed: number;
  /** Milliseconds left to fuzz. */
  millis: number;
  seeds: Uint8Array[];
  slot: SharedArrayBuffer;
}

type WorkerMessage =
  | { kind: 'ready' }
  | { kind: 'new'; input: Uint8Array }
  | { kind: 'crash'; crash: Crash }
  | { kind: 'stats'; execs: number; blocks: number; features: number; corpus: number }
  | { kind: 'done'; execs: number; blocks: number; features: number; corpus: number; kept: Uint8Array[] };

// ---------------------------------------------------------------- worker side

async function workerMain(init: WorkerInit): Promise<void> {
  const port = parentPort as NonNullable<typeof parentPort>;
  const target = TARGETS.find((t) => t.name === init.target);
  if (!target) throw new Error(`unknown target ${init.target}`);
  watchEscapes();
  await target.setup?.();
  const fuzzer = new Fuzzer(target, {
    seed: init.seed,
    timeoutMs: HANG_MS,
    slot: slotOf(init.slot),
    events: {
      onNew: (input) => port.postMessage({ kind: 'new', input } satisfies WorkerMessage),
      onCrash: (crash) => port.postMessage({ kind: 'crash', crash } satisfies WorkerMessage),
    },
  });
  port.postMessage({ kind: 'ready' } satisfies WorkerMessage);
  const start = performance.now();
  const stats = (): { execs: number; blocks: number; features: number; corpus: number } => ({
    execs: fuzzer.execs, blocks: fuzzer.blocks.size, features: fuzzer.features.size, corpus: fuzzer.corpus.length,
  });
  // Progress every 10 s, between batches of the main loop.
  let next = start + 10_000;
  const end = start + init.millis;
  while (performance.now() < end) {
    await fuzzer.run(fuzzer.corpus.length === 0 ? init.seeds.map((s) => Buffer.from(s)) : [], Math.min(next, end));
    port.postMessage({ kind: 'stats', ...stats() } satisfies WorkerMessage);
    next += 10_000;
  }
  const s = stats();
  const kept = await fuzzer.minimise(fuzzer.corpus, CORPUS_CAP);
  fuzzer.close();
  port.postMessage({ kind: 'done', ...s, kept } satisfies WorkerMessage);
}

// ---------------------------------------------------------------- main side

/** What a target's run produced. */
interface Result {
  target: string;
  seconds: number;
  execs: number;
  corpus: number;
  kept: number;
  blocks: number;
  features: number;
  crashes: number;
  hangs: number;
}

function saveCrash(target: string, crash: Crash): string {
  const dir = path.join(FUZZ_DIR, 'crashers', target);
  fs.mkdirSync(dir, { recursive: true });
  const name = sha1(crash.input);
  fs.writeFileSync(path.join(dir, name), crash.input);
  fs.writeFileSync(path.join(dir, `${name}.txt`), `${crash.signature}\n\n${crash.detail}\n`);
  return name;
}

function saveCorpus(target: string, kept: readonly Uint8Array[]): void {
  const dir = path.join(FUZZ_DIR, 'corpus', target);
  fs.mkdirSync(dir, { recursive: true });
  // Hand-written seeds (`seed-*`) stay; fuzzer-found files are replaced by the minimised set.
  for (const f of fs.readdirSync(dir)) if (/^[0-9a-f]{40}$/.test(f)) fs.rmSync(path.join(dir, f));
  const seeds = new Set(inputFiles(dir).map((f) => sha1(fs.readFileSync(f))));
  for (const k of kept) {
    const name = sha1(k);
    if (!seeds.has(name)) fs.writeFileSync(path.join(dir, name), k);
  }
}

/** One worker's run; resolves with its final message, or `null` after a hang (the worker is then gone). */
function runWorker(init: WorkerInit, onMessage: (m: WorkerMessage) => void, onHang: (input: Buffer) => void): Promise<Extract<WorkerMessage, { kind: 'done' }> | null> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: init });
    const { header, bytes } = slotOf(init.slot);
    let ready = false;
    let lastCount = -1;
    let lastChange = Date.now();
    let settled = false;
    const timer = setInterval(() => {
      if (!ready) return;
      const count = Atomics.load(header, 0);
      if (count !== lastCount) {
        lastCount = count;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > HANG_MS * 2) {
        // Stuck in one input (a timeout would have fired by now in an async target): a synchronous hang.
        settled = true;
        clearInterval(timer);
        onHang(Buffer.from(bytes.subarray(0, Atomics.load(header, 1))));
        void worker.terminate().then(() => resolve(null));
      }
    }, 250);
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'ready') {
        ready = true;
        lastChange = Date.now();
      }
      onMessage(m);
      if (m.kind === 'done') {
        settled = true;
        clearInterval(timer);
        void worker.terminate().then(() => resolve(m));
      }
    });
    worker.on('error', (err) => {
      clearInterval(timer);
      if (!settled) reject(err);
    });
    worker.on('exit', (code) => {
      clearInterval(timer);
      if (!settled) reject(new Error(`fuzz worker exited with code ${code}`));
    });
  });
}

async function fuzzTarget(name: string, seconds: number, seed: number): Promise<Result> {
  const corpusDir = path.join(FUZZ_DIR, 'corpus', name);
  const corpus: Uint8Array[] = inputFiles(corpusDir).map((f) => fs.readFileSync(f));
  const { buffer } = sharedSlot(64 * 1024);
  const signatures = new Set<string>();
  const result: Result = { target: name, seconds, execs: 0, corpus: 0, kept: 0, blocks: 0, features: 0, crashes: 0, hangs: 0 };
  const end = Date.now() + seconds * 1000;
  const log = (s: string): void => void process.stderr.write(`[${name}] ${s}\n`);
  let execsBefore = 0;
  for (let restart = 0; restart <= MAX_RESTARTS; restart++) {
    const millis = Math.max(0, end - Date.now());
    const done = await runWorker(
      { target: name, seed: seed + restart, millis, seeds: corpus, slot: buffer },
      (m) => {
        if (m.kind === 'new') corpus.push(m.input);
        else if (m.kind === 'crash') {
          // A restarted worker reports again what an earlier one found: count each signature once.
          if (!signatures.has(m.crash.signature)) {
            signatures.add(m.crash.signature);
            result.crashes++;
            log(`CRASH ${saveCrash(name, m.crash)}: ${m.crash.signature}`);
          }
        } else if (m.kind === 'stats') {
          log(`execs ${execsBefore + m.execs}  corpus ${m.corpus}  blocks ${m.blocks}  features ${m.features}`);
        }
      },
      (input) => {
        if (result.hangs++ === 0) result.crashes++;
        const crash: Crash = { input, signature: `hang over ${HANG_MS * 2} ms`, detail: 'synchronous hang: the input did not finish' };
        log(`HANG ${saveCrash(name, crash)}`);
      },
    );
    if (done) {
      result.execs = execsBefore + done.execs;
      result.corpus = done.corpus;
      result.blocks = done.blocks;
      result.features = done.features;
      result.kept = done.kept.length;
      saveCorpus(name, done.kept);
      return result;
    }
    execsBefore += Atomics.load(slotOf(buffer).header, 0);
    Atomics.store(slotOf(buffer).header, 0, 0);
    if (Date.now() >= end) break;
  }
  result.execs = execsBefore;
  return result;
}

function table(results: readonly Result[]): string {
  const head = ['target', 'seconds', 'execs', 'execs/s', 'corpus', 'kept', 'blocks', 'features', 'crashes'];
  const rows = results.map((r) => [r.target, String(r.seconds), String(r.execs), (r.execs / Math.max(1, r.seconds)).toFixed(0), String(r.corpus), String(r.kept), String(r.blocks), String(r.features), r.hangs ? `${r.crashes} (${r.hangs} hangs)` : String(r.crashes)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  let seconds = 30;
  let seed = Date.now() % 2 ** 31;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--time' && v !== undefined && Number(v) > 0) (seconds = Number(v)), i++;
    else if (a === '--target' && v !== undefined) names.push(v), i++;
    else if (a === '--seed' && v !== undefined && Number.isInteger(Number(v))) (seed = Number(v)), i++;
    else if (a === '--list') {
      for (const t of TARGETS) console.log(`${t.name}\n  ${t.description}\n`);
      return 0;
    } else {
      console.error(`usage: run.js [--time <seconds per target>] [--target <${TARGETS.map((t) => t.name).join('|')}>]... [--seed <n>] [--list]`);
      return 2;
    }
  }
  for (const n of names) {
    if (!TARGETS.some((t) => t.name === n)) {
      console.error(`unknown target ${n}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
      return 2;
    }
  }
  const chosen = names.length > 0 ? names : TARGETS.map((t) => t.name);
  console.error(`fuzzing ${chosen.join(', ')} for ${seconds} s each, seed ${seed}`);
  const results: Result[] = [];
  for (const n of chosen) results.push(await fuzzTarget(n, seconds, seed));
  console.log(table(results));
  return results.some((r) => r.crashes > 0) ? 1 : 0;
}

if (isMainThread) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 2;
    },
  );
} else {
  void workerMain(workerData as WorkerInit);
}
