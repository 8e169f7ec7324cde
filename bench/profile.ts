/**
 * Summarise V8 `.cpuprofile` files (from `npm run bench -- --cpu-prof`, or
 * any `node --cpu-prof`): the functions with the most self time.
 *
 *   node dist/bench/profile.js FILE.cpuprofile [--top N] [--inclusive]
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A function and its self time. */
export interface HotFunction {
  name: string;
  where: string;
  selfMs: number;
  percent: number;
}

function where(url: string, line: number): string {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const m = /\/(dist\/(?:src|bench)\/.*)$/.exec(u) ?? /\/node_modules\/(.*)$/.exec(u);
  const short = m ? m[1] : u.startsWith('node:') ? u : basename(u);
  return `${short}:${line + 1}`;
}

/** Self time per function (summed over every place it appears in the tree), most first. */
export function hotFunctions(file: string, top = 20): { totalMs: number; functions: HotFunction[]; byFile: { file: string; percent: number }[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = p.endTime - p.startTime;
  const agg = new Map<string, { name: string; where: string; us: number }>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    const w = where(n.callFrame.url, n.callFrame.lineNumber);
    const key = `${name}@${w}`;
    const e = agg.get(key) ?? { name, where: w, us: 0 };
    e.us += us;
    agg.set(key, e);
    const f = w.replace(/:\d+$/, '');
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const functions = [...agg.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: (100 * e.us) / total }));
  const byFile = [...files.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, us]) => ({ file: f, percent: (100 * us) / total }));
  return { totalMs: total / 1000, functions, byFile };
}

/**
 * Inclusive (self + callees) time of the functions whose location matches
 * `filter` (default: beepstream's own code), most first — where a call path
 * spends its time, whichever Node internals the self time lands in.
 */
export function inclusiveFunctions(file: string, top = 20, filter: RegExp = /^dist\/src\//): HotFunction[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const total = p.endTime - p.startTime;
  const agg = new Map<string, { name: string; where: string; us: number }>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    const seen = new Set<string>();
    for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n) break;
      const w = where(n.callFrame.url, n.callFrame.lineNumber);
      if (!filter.test(w)) continue;
      const name = n.callFrame.functionName || '(anonymous)';
      const key = `${name}@${w}`;
      if (seen.has(key)) continue; // recursion: count a sample once per function
      seen.add(key);
      const e = agg.get(key) ?? { name, where: w, us: 0 };
      e.us += dt;
      agg.set(key, e);
    }
  }
  return [...agg.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: (100 * e.us) / total }));
}

/** A printable summary of one profile. */
export function formatProfile(file: string, top = 20, inclusive = false): string {
  const { totalMs, functions, byFile } = hotFunctions(file, top);
  const lines = [`${basename(file)}: ${(totalMs / 1000).toFixed(2)} s profiled`, '  self %   self ms  function (where)'];
  for (const f of functions) lines.push(`  ${f.percent.toFixed(1).padStart(6)}  ${f.selfMs.toFixed(0).padStart(8)}  ${f.name} (${f.where})`);
  lines.push('  by file:');
  for (const f of byFile.slice(0, 10)) lines.push(`  ${f.percent.toFixed(1).padStart(6)}  ${f.file}`);
  if (inclusive) {
    lines.push('  inclusive (self + callees), beepstream code:', '   total %  total ms  function (where)');
    for (const f of inclusiveFunctions(file, top)) lines.push(`  ${f.percent.toFixed(1).padStart(6)}  ${f.selfMs.toFixed(0).padStart(8)}  ${f.name} (${f.where})`);
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '20' }, inclusive: { type: 'boolean', default: false } },
  });
  for (const f of positionals) console.log(`${formatProfile(f, Number(values.top), values.inclusive)}\n`);
}
