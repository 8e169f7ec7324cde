#!/usr/bin/env node
// compare.mjs — beepstream at two commits in one run: "before and after" for a change.
//
//   node bench/compare.mjs --base REF [--head REF] [--rounds N] [-- BENCH OPTIONS]
//
// Builds REF (any git revision) into a scratch copy beside this tree, then runs the
// benchmark of each tree (`dist/bench/run.js --rounds 1 --impl beepstream …`) N times,
// alternating which goes first (ABBA…), so drift on a shared machine lands on both alike.
// Prints, per case and metric, the median of each side and the ratio head ÷ base, and
// writes bench/results/compare.json. Run `npm run build` first (the head is this tree's
// dist/, unless --head names a revision: then it is built like the base, and this tree
// may be rebuilt while the comparison runs). BENCH OPTIONS default to `--quick`; pass e.g. `-- --only rr,bulk-1`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dd = process.argv.indexOf('--');
const own = dd < 0 ? process.argv.slice(2) : process.argv.slice(2, dd);
const benchArgs = dd < 0 ? ['--quick'] : process.argv.slice(dd + 1);
let values;
try {
  ({ values } = parseArgs({ args: own, options: { base: { type: 'string' }, head: { type: 'string' }, rounds: { type: 'string', default: '3' }, help: { type: 'boolean' } } }));
} catch (e) {
  console.error(`compare: ${e.message}`);
  process.exit(2);
}
if (values.help || !values.base) {
  console.error('usage: node bench/compare.mjs --base REF [--rounds N] [-- BENCH OPTIONS]');
  process.exit(values.help ? 0 : 2);
}
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`compare: --rounds must be a positive integer, got ${JSON.stringify(values.rounds)}`);
  process.exit(2);
}
if (!existsSync(join(ROOT, 'dist/bench/run.js'))) {
  console.error('compare: no dist/bench/run.js here: run `npm run build` first');
  process.exit(2);
}

const git = (...a) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).trim();
/** Build revision `ref` (`git archive` into a scratch directory, this tree's node_modules linked in, compiled with this tree's TypeScript); its directory and commit. */
function buildRevision(ref) {
  let sha;
  try {
    sha = git('rev-parse', '--verify', `${ref}^{commit}`);
  } catch {
    console.error(`compare: ${JSON.stringify(ref)} is not a revision of this repository`);
    process.exit(2);
  }
  const dir = join(ROOT, 'node_modules/.cache/beepstream-compare', sha.slice(0, 12));
  if (!existsSync(join(dir, 'dist/bench/run.js'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    console.error(`compare: building ${ref} (${sha.slice(0, 12)}) in ${dir}`);
    execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${sha} | tar -x -C "${dir}"`], { stdio: 'inherit' });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      // Type errors still emit (the examples import the package by name, which a first build
      // of a copy cannot resolve); only a missing runner is fatal.
    }
    if (!existsSync(join(dir, 'dist/bench/run.js'))) {
      console.error(`compare: building ${ref} produced no dist/bench/run.js`);
      process.exit(1);
    }
  }
  return { dir, sha };
}

const { dir: baseDir, sha } = buildRevision(values.base);
const headBuilt = values.head === undefined ? null : buildRevision(values.head);
const headDir = headBuilt ? headBuilt.dir : ROOT;
const head = headBuilt
  ? headBuilt.sha.slice(0, 7)
  : git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') ? '+changes' : '');

const tmp = join(ROOT, 'bench/results/compare');
mkdirSync(tmp, { recursive: true });
const runs = { base: [], head: [] };
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ['base', 'head'] : ['head', 'base'];
  for (const side of order) {
    const dir = side === 'base' ? baseDir : headDir;
    const out = join(tmp, `${side}-${r}.json`);
    console.error(`compare: round ${r + 1}/${rounds}: ${side}`);
    execFileSync(process.execPath, [join(dir, 'dist/bench/run.js'), '--rounds', '1', '--impl', 'beepstream', ...benchArgs, '--out', out], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    runs[side].push(JSON.parse(readFileSync(out.replace(/\.json$/, '-raw.json'), 'utf8')).medians);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3));
const rows = [];
for (const [caseId, impls] of Object.entries(runs.head[0] ?? {})) {
  const metrics = impls.beepstream ?? {};
  for (const metric of Object.keys(metrics)) {
    const h = runs.head.map((m) => m[caseId]?.beepstream?.[metric]).filter((x) => typeof x === 'number');
    const b = runs.base.map((m) => m[caseId]?.beepstream?.[metric]).filter((x) => typeof x === 'number');
    if (h.length === 0 || b.length === 0) continue;
    const hm = median(h);
    const bm = median(b);
    rows.push({ case: caseId, metric, base: bm, head: hm, ratio: bm === 0 ? null : hm / bm, baseRuns: b, headRuns: h });
  }
}
console.log(`beepstream ${head} against ${values.base} (${sha.slice(0, 12)}): medians of ${rounds} alternating runs of \`run.js --rounds 1 ${benchArgs.join(' ')}\`\n`);
console.log('| case | metric | base | head | head ÷ base | base runs | head runs |');
console.log('|---|---|---:|---:|---:|---|---|');
for (const r of rows) {
  console.log(`| ${r.case} | ${r.metric} | ${fmt(r.base)} | ${fmt(r.head)} | ${r.ratio === null ? '—' : r.ratio.toFixed(2) + '×'} | ${r.baseRuns.map(fmt).join(', ')} | ${r.headRuns.map(fmt).join(', ')} |`);
}
writeFileSync(join(ROOT, 'bench/results/compare.json'), `${JSON.stringify({ base: values.base, baseSha: sha, head, rounds, benchArgs, rows }, null, 2)}\n`);
