/**
 * The layer rule (ARCHITECTURE.md): imports go downward only, and a layer is
 * entered through its index.ts. dependency-cruiser checks it with the
 * repository's `.dependency-cruiser.cjs` — on `src/` (no violation), and on
 * a small tree built here that breaks each rule once (every break found), so
 * the check is known to bite.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}
interface CruiseResult {
  summary: { violations: Violation[]; totalCruised: number; error: number };
}

/** Run dependency-cruiser on `cwd`/src with the repository's rules; its JSON report. */
function cruise(cwd: string): Promise<{ result: CruiseResult }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'src', '--config', CONFIG, '--output-type', 'json'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dependency-cruiser did not finish within 120 s: ${err}`));
    }, 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({ result: JSON.parse(out) as CruiseResult });
      } catch {
        reject(new Error(`dependency-cruiser printed no report (exit ${code}): ${err.slice(0, 2000)}`));
      }
    });
  });
}

const brief = (v: Violation): string => `${v.rule.name}: ${v.from} → ${v.to}`;

test('src/ keeps the layer rule: every cross-layer import goes through an index.ts, none goes upward', async (t) => {
  t.timeout(180_000);
  const { result } = await cruise(ROOT);
  t.deepEqual(result.summary.violations.map(brief), []);
  t.is(result.summary.error, 0);
  t.true(result.summary.totalCruised > 100, `cruised ${result.summary.totalCruised} modules: the .js specifiers resolved to the .ts sources`);
});

test('the check bites: a tree that bypasses an index, imports upward, or crosses between applications fails it', async (t) => {
  t.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
    'src/errors.ts': 'export class BeepError extends Error {}\n',
    'src/framing/index.ts': "export * from './header.js';\n",
    'src/framing/header.ts': "export const H = 1;\n",
    // Upward: framing may not import channels.
    'src/framing/upward.ts': "import { core } from '../channels/index.js';\nexport const u = core;\n",
    'src/channels/index.ts': "export * from './core.js';\n",
    'src/channels/core.ts': "import { H } from '../framing/index.js';\nimport { BeepError } from '../errors.js';\nexport const core = H + String(BeepError);\n",
    // Allowed: through the index.
    'src/profiles/index.ts': "export * from './good.js';\nexport * from './bypass.js';\n",
    'src/profiles/good.ts': "import { core } from '../channels/index.js';\nexport const good = core;\n",
    // Bypass: reaches into channels/core.ts.
    'src/profiles/bypass.ts': "import { core } from '../channels/core.js';\nexport const bypass = core;\n",
    'src/flows/index.ts': "export const flows = 1;\n",
    // Sibling applications do not import each other.
    'src/scistream/index.ts': "import { flows } from '../flows/index.js';\nexport const s = flows;\n",
    // An import that resolves to nothing.
    'src/ops/index.ts': "import { gone } from '../channels/missing.js';\nexport const o = gone;\n",
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const { result } = await cruise(dir);
  t.is(result.summary.error, 4, 'the check fails, once per break');
  const found = result.summary.violations.map(brief).sort();
  t.deepEqual(found, [
    'cross-layer-through-index: src/profiles/bypass.ts → src/channels/core.ts',
    'no-upward-from-framing: src/framing/upward.ts → src/channels/index.ts',
    'no-upward-from-scistream: src/scistream/index.ts → src/flows/index.ts',
    'resolvable: src/ops/index.ts → ../channels/missing.js',
  ]);
});
