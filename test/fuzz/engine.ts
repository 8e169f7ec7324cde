/**
 * A small coverage-guided fuzzer on V8's own block coverage.
 *
 * After every input the engine takes V8's precise coverage
 * (`Profiler.takePreciseCoverage`, which resets the counters because
 * `callCount` is on) through a same-thread `node:inspector` session — whose
 * `post` calls back synchronously — and keeps only the ranges of scripts under
 * `dist/src`. A *feature* is a (script, block range, hit-count bucket) triple,
 * the buckets being libFuzzer's (1, 2, 3, 4–7, 8–15, 16–31, 32–127, 128+). An
 * input that shows a feature never seen before joins the in-memory corpus;
 * new inputs are corpus entries mutated by a short stack of byte-level
 * mutations (bit and byte flips, range insert / delete / duplicate, splicing
 * two entries, dictionary tokens, markup built from a word of the input —
 * `<w>`, `</w>`, `<w/>`, ` w='…'` — and decimal numbers replaced by
 * interesting ones).
 *
 * A {@link FuzzTarget} throws when its oracle is violated; the engine records
 * the input as a crash, deduplicated by a signature (error name, message with
 * digits blanked, first stack frame). Hangs are the business of the caller
 * (see `run.ts`): the engine publishes the input it is running in a
 * `SharedArrayBuffer` so a watchdog thread can save it.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One fuzz target: a function over bytes whose oracle throws on a violation. */
export interface FuzzTarget {
  /** Short name: also the directory name under `corpus/` and `crashers/`. */
  readonly name: string;
  /** What the target drives and what its oracle checks (for the README and `--list`). */
  readonly description: string;
  /** Tokens the dictionary mutator inserts. */
  readonly dictionary: readonly string[];
  /** Longest input generated, in octets. */
  readonly maxLen: number;
  /** One-time preparation (keys, credentials) before the first input. */
  setup?(): Promise<void>;
  /**
   * Run one input. Returns (or resolves) when the input is accepted by the
   * oracle; throws (or rejects) with a description of the violation otherwise.
   */
  run(data: Buffer): void | Promise<void>;
}

/** `test/fuzz/` in the source tree (the compiled engine runs from `dist/test/fuzz/`). */
export const FUZZ_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fuzz');

/** The input files of a corpus or crashers directory (hidden files and `.txt` notes excluded), sorted. */
export function inputFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => !f.startsWith('.') && !f.endsWith('.txt')).sort().map((f) => path.join(dir, f));
}

/** Seeded PRNG (mulberry32): the same `--seed` replays the same mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform integer in `[0, n)`; 0 when `n <= 0`. */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  /** A random element of a non-empty array. */
  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)] as T;
  }
}

// ---------------------------------------------------------------- coverage

/** libFuzzer's hit-count buckets. */
function bucket(count: number): number {
  if (count <= 3) return count;
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

interface CoverageRange {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface ScriptCoverage {
  url: string;
  functions: { ranges: CoverageRange[] }[];
}

/** V8 block coverage of the scripts whose URL passes a filter. */
export class Coverage {
  private readonly session = new Session();
  private readonly scripts = new Map<string, number>();

  constructor(private readonly include: (url: string) => boolean = (u) => u.includes('/dist/src/')) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  private post(method: string, params?: object): unknown {
    let result: unknown;
    let error: Error | null = null;
    let called = false;
    // A same-thread inspector session dispatches synchronously: the callback
    // has run when post returns (checked here rather than assumed).
    this.session.post(method, params ?? {}, (err, res) => {
      called = true;
      error = err;
      result = res;
    });
    if (!called) throw new Error(`inspector did not answer ${method} synchronously`);
    if (error) throw error;
    return result;
  }

  /** Features hit since the last call (and resets the counters). */
  take(): string[] {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    const out: string[] = [];
    for (const script of result) {
      if (!this.include(script.url)) continue;
      let id = this.scripts.get(script.url);
      if (id === undefined) this.scripts.set(script.url, (id = this.scripts.size));
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count > 0) out.push(`${id}:${r.startOffset}:${r.endOffset}:${bucket(r.count)}`);
        }
      }
    }
    return out;
  }

  /** Stop profiling and disconnect. */
  close(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.post('Profiler.disable');
    this.session.disconnect();
  }
}

/** The block a feature belongs to (the feature without its bucket). */
export function blockOf(feature: string): string {
  return feature.slice(0, feature.lastIndexOf(':'));
}

// ---------------------------------------------------------------- mutation

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0x3c, 0x3e, 0x3d, 0x2c, 0x26, 0x27, 0x22, 0x2f, 0x2e, 0x2a];
const INTERESTING_NUMBERS = ['0', '1', '2', '-1', '4095', '4096', '65535', '65536', '2147483646', '2147483647', '2147483648', '4294967295', '4294967296', '9007199254740993', '00', '01', '+1', '1e3'];

/** Mutates inputs: a random stack of one to five byte-level (and light markup) mutations. */
export class Mutator {
  private readonly dict: Buffer[];

  constructor(
    private readonly rng: Rng,
    dictionary: readonly string[],
    private readonly maxLen: number,
  ) {
    this.dict = [...dictionary, ...INTERESTING_NUMBERS].map((t) => Buffer.from(t, 'latin1'));
  }

  /** A mutant of `input`; `other` is a second corpus entry for splicing. */
  mutate(input: Buffer, other: Buffer): Buffer {
    let b: Buffer = Buffer.from(input);
    const n = 1 + this.rng.below(5);
    for (let i = 0; i < n; i++) b = this.once(b, other);
    return b.length > this.maxLen ? b.subarray(0, this.maxLen) : b;
  }

  private insert(b: Buffer, at: number, part: Buffer): Buffer {
    return Buffer.concat([b.subarray(0, at), part, b.subarray(at)]);
  }

  private once(b: Buffer, other: Buffer): Buffer {
    const r = this.rng;
    const len = b.length;
    const pos = r.below(len + 1);
    switch (r.below(13)) {
      case 0: // flip a bit
        if (len > 0) {
          const i = r.below(len);
          b[i] = (b[i] ?? 0) ^ (1 << r.below(8));
        }
        return b;
      case 1: // set a byte to an interesting or random value
        if (len > 0) b[r.below(len)] = r.below(2) ? r.pick(INTERESTING_BYTES) : r.below(256);
        return b;
      case 2: { // insert random bytes
        const part = Buffer.alloc(1 + r.below(8));
        for (let i = 0; i < part.length; i++) part[i] = r.below(2) ? r.pick(INTERESTING_BYTES) : r.below(256);
        return this.insert(b, pos, part);
      }
      case 3: { // delete a range
        if (len === 0) return b;
        const n = 1 + r.below(Math.min(len - pos, 16) || 1);
        return Buffer.concat([b.subarray(0, pos), b.subarray(Math.min(len, pos + n))]);
      }
      case 4: { // duplicate a range
        if (len === 0) return b;
        const from = r.below(len);
        const n = 1 + r.below(Math.min(len - from, 64));
        return this.insert(b, pos, Buffer.from(b.subarray(from, from + n)));
      }
      case 5: { // overwrite a range with another part of the input
        if (len < 2) return b;
        const from = r.below(len);
        const to = r.below(len);
        const n = 1 + r.below(Math.min(len - from, len - to, 32));
        b.copy(b, to, from, from + n);
        return b;
      }
      case 6: { // splice: head of this one, tail of the other
        if (other.length === 0) return b;
        return Buffer.concat([b.subarray(0, pos), other.subarray(r.below(other.length))]);
      }
      case 7: { // insert a chunk of the other
        if (other.length === 0) return b;
        const from = r.below(other.length);
        return this.insert(b, pos, other.subarray(from, from + 1 + r.below(Math.min(other.length - from, 64))));
      }
      case 8:
      case 9: // insert a dictionary token
        return this.insert(b, pos, r.pick(this.dict));
      case 10: { // overwrite with a dictionary token
        const t = r.pick(this.dict);
        if (len < t.length) return this.insert(b, pos, t);
        const at = r.below(len - t.length + 1);
        return Buffer.concat([b.subarray(0, at), t, b.subarray(at + t.length)]);
      }
      case 11: { // markup from a word of the input: <w>, </w>, <w/>, or an attribute w='…'
        const words = b.toString('latin1').match(/[A-Za-z_][A-Za-z0-9_:.-]{0,31}/g);
        if (!words) return b;
        const w = r.pick(words);
        const forms = [`<${w}>`, `</${w}>`, `<${w}/>`, ` ${w}='${r.pick(words)}'`, `<${w}><${r.pick(words)}/></${w}>`];
        return this.insert(b, pos, Buffer.from(r.pick(forms), 'latin1'));
      }
      default: { // replace a decimal number with an interesting one, or step it
        const s = b.toString('latin1');
        const nums = [...s.matchAll(/[0-9]+/g)];
        if (nums.length === 0) return this.insert(b, pos, Buffer.from(r.pick(INTERESTING_NUMBERS)));
        const m = r.pick(nums);
        const v = m[0];
        const step = r.below(3);
        const rep = step === 0 ? r.pick(INTERESTING_NUMBERS) : String(BigInt(v) + (step === 1 ? 1n : -1n));
        const at = m.index ?? 0;
        return Buffer.concat([b.subarray(0, at), Buffer.from(rep, 'latin1'), b.subarray(at + v.length)]);
      }
    }
  }
}

// ---------------------------------------------------------------- the loop

/** A crash: the input and what went wrong. */
export interface Crash {
  readonly input: Buffer;
  /** Deduplication key: error name, message with digits blanked, first stack frame. */
  readonly signature: string;
  /** The error's stack (or message). */
  readonly detail: string;
}

/** The deduplication key of an error. */
export function crashSignature(err: unknown): string {
  if (!(err instanceof Error)) return `non-error: ${String(err).slice(0, 80)}`;
  const frame = (err.stack ?? '').split('\n').find((l) => l.trim().startsWith('at ') && !l.includes('/test/fuzz/'))?.trim() ?? '';
  const msg = err.message.split('\n')[0]?.replace(/[0-9]+/g, '#').slice(0, 100) ?? '';
  return `${err.name}: ${msg} ${frame.replace(/:[0-9]+:[0-9]+\)?$/, '')}`;
}

/** SHA-1 of an input, hex: its file name under `corpus/` and `crashers/`. */
export function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

/** Where the engine publishes the running input for a watchdog. */
export interface InputSlot {
  /** `[0]` counts finished executions; `[1]` is the length of the input in `bytes`. */
  readonly header: Int32Array;
  readonly bytes: Uint8Array;
}

/** Allocate an {@link InputSlot} in shared memory for inputs up to `maxLen` octets. */
export function sharedSlot(maxLen: number): { buffer: SharedArrayBuffer; slot: InputSlot } {
  const buffer = new SharedArrayBuffer(8 + maxLen);
  return { buffer, slot: slotOf(buffer) };
}

/** View an {@link InputSlot} over a shared buffer made by {@link sharedSlot}. */
export function slotOf(buffer: SharedArrayBuffer): InputSlot {
  return { header: new Int32Array(buffer, 0, 2), bytes: new Uint8Array(buffer, 8) };
}

/** Callbacks of {@link Fuzzer.run}. */
export interface FuzzEvents {
  /** A new corpus entry. */
  onNew?(input: Buffer): void;
  /** A crash with a signature not seen before in this run. */
  onCrash?(crash: Crash): void;
}

/** Options of a {@link Fuzzer}. */
export interface FuzzerOptions {
  seed: number;
  /** Milliseconds one input may take before it counts as a hang (async targets). */
  timeoutMs: number;
  slot?: InputSlot;
  events?: FuzzEvents;
}

/** Runs one target under coverage: the corpus, the mutation loop and corpus minimisation. */
export class Fuzzer {
  readonly corpus: Buffer[] = [];
  /** Features seen, and the blocks they belong to. */
  readonly features = new Set<string>();
  readonly blocks = new Set<string>();
  readonly signatures = new Set<string>();
  execs = 0;
  crashes = 0;
  private readonly rng: Rng;
  private readonly mutator: Mutator;
  private readonly coverage = new Coverage();

  constructor(
    readonly target: FuzzTarget,
    private readonly options: FuzzerOptions,
  ) {
    this.rng = new Rng(options.seed);
    this.mutator = new Mutator(this.rng, target.dictionary, target.maxLen);
    this.coverage.take(); // drop what setup and imports hit
  }

  /** Run one input; returns its features, or the error its oracle raised. */
  async execute(input: Buffer): Promise<{ features: string[]; error?: unknown }> {
    const slot = this.options.slot;
    if (slot) {
      const n = Math.min(input.length, slot.bytes.length);
      slot.bytes.set(input.subarray(0, n));
      Atomics.store(slot.header, 1, n);
    }
    let error: unknown;
    let failed = false;
    try {
      const r = this.target.run(input);
      if (r && typeof (r as Promise<void>).then === 'function') await withTimeout(r as Promise<void>, this.options.timeoutMs);
    } catch (err) {
      failed = true;
      error = err;
    }
    this.execs++;
    if (slot) Atomics.add(slot.header, 0, 1);
    const features = this.coverage.take();
    return failed ? { features, error } : { features };
  }

  /** Run `input` and keep it if it shows a new feature; record it if it crashes. */
  async consider(input: Buffer): Promise<boolean> {
    const res = await this.execute(input);
    const features = res.features;
    if ('error' in res) {
      this.crashes++;
      const signature = crashSignature(res.error);
      if (!this.signatures.has(signature)) {
        this.signatures.add(signature);
        const detail = res.error instanceof Error ? (res.error.stack ?? res.error.message) : String(res.error);
        this.options.events?.onCrash?.({ input: Buffer.from(input), signature, detail });
      }
      return false;
    }
    let fresh = false;
    for (const f of features) {
      if (!this.features.has(f)) {
        this.features.add(f);
        this.blocks.add(blockOf(f));
        fresh = true;
      }
    }
    if (fresh) {
      this.corpus.push(Buffer.from(input));
      this.options.events?.onNew?.(input);
    }
    return fresh;
  }

  /**
   * Fuzz until `deadline` (a `performance.now()` time) or `maxExecs`; the
   * seeds are run first. An empty corpus starts from the empty input.
   */
  async run(seeds: readonly Buffer[], deadline: number, maxExecs = Number.POSITIVE_INFINITY): Promise<void> {
    for (const s of seeds) await this.consider(s.subarray(0, this.target.maxLen));
    if (this.corpus.length === 0) {
      await this.consider(Buffer.alloc(0));
      if (this.corpus.length === 0) this.corpus.push(Buffer.alloc(0));
    }
    while (this.execs < maxExecs && performance.now() < deadline) {
      // Batches between clock reads; a few of each batch from recent entries.
      for (let i = 0; i < 64; i++) {
        const c = this.corpus;
        const base = this.rng.below(4) === 0 ? (c[c.length - 1 - this.rng.below(Math.min(c.length, 16))] as Buffer) : this.rng.pick(c);
        await this.consider(this.mutator.mutate(base, this.rng.pick(c)));
      }
    }
  }

  /**
   * Minimise a corpus by coverage: run the entries smallest first, keep
   * those that add a feature, then (when more than `cap` remain) choose
   * greedily by how many features each still adds.
   */
  async minimise(entries: readonly Buffer[], cap: number): Promise<Buffer[]> {
    const sorted = [...entries].sort((a, b) => a.length - b.length || Buffer.compare(a, b));
    const seen = new Set<string>();
    const kept: { input: Buffer; features: Set<string> }[] = [];
    for (const input of sorted) {
      const res = await this.execute(input);
      if ('error' in res) continue;
      const set = new Set(res.features);
      let fresh = false;
      for (const f of set) if (!seen.has(f)) (seen.add(f), (fresh = true));
      if (fresh) kept.push({ input, features: set });
    }
    if (kept.length <= cap) return kept.map((k) => k.input);
    const covered = new Set<string>();
    const out: Buffer[] = [];
    const left = [...kept];
    while (out.length < cap && left.length > 0) {
      let best = 0;
      let bestGain = -1;
      for (let i = 0; i < left.length; i++) {
        let gain = 0;
        for (const f of (left[i] as (typeof left)[number]).features) if (!covered.has(f)) gain++;
        if (gain > bestGain) (bestGain = gain), (best = i);
      }
      if (bestGain <= 0) break;
      const [chosen] = left.splice(best, 1);
      if (!chosen) break;
      for (const f of chosen.features) covered.add(f);
      out.push(chosen.input);
    }
    return out;
  }

  /** Stop coverage collection. */
  close(): void {
    this.coverage.close();
  }
}

/** A timeout error: the input did not settle in time (a hang or a lost promise). */
export class FuzzTimeout extends Error {
  constructor(ms: number) {
    super(`input did not settle within ${ms} ms`);
    this.name = 'FuzzTimeout';
  }
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzTimeout(ms)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
