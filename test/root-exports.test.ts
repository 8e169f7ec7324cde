/**
 * The package root exports the library's API only: at most 60 runtime names,
 * exactly the ones the README's "API" section lists; every layer is reachable
 * through its own subpath (package.json "exports" → the layer's index).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import * as root from '../src/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAX_ROOT_EXPORTS = 60;

/** The names listed in the README's `## API` section: backticked identifiers on its `- **Group:**` lines. */
function readmeApiNames(): string[] {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const start = readme.indexOf('\n## API\n');
  if (start < 0) return [];
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const names: string[] = [];
  let inList = false;
  for (const line of section.split('\n')) {
    if (line.startsWith('- **')) inList = true;
    else if (!line.startsWith('  ')) inList = false;
    if (!inList) continue;
    for (const m of line.matchAll(/`([A-Za-z_$][A-Za-z0-9_$]*)`/g)) names.push(m[1] as string);
  }
  return names;
}

test(`the package root exports at most ${MAX_ROOT_EXPORTS} runtime names`, (t) => {
  const names = Object.keys(root);
  t.true(names.length > 0);
  t.true(names.length <= MAX_ROOT_EXPORTS, `${names.length} runtime exports: ${names.join(' ')}`);
});

test("the README's API section lists exactly the root's runtime exports, each once", (t) => {
  const listed = readmeApiNames();
  t.true(listed.length > 0, 'the README has an API section with a list');
  t.deepEqual(listed.filter((n, i) => listed.indexOf(n) !== i), [], 'no name listed twice');
  t.deepEqual([...new Set(listed)].sort(), Object.keys(root).sort());
});

test('no layer internals at the root: the session core, windows, framing and parsers are behind subpaths', (t) => {
  for (const internal of ['SessionCore', 'RecvWindow', 'SendWindow', 'FrameDecoder', 'buildGreeting', 'parseMgmt', 'parseTlsElement', 'createMetrics', 'parseRequest', 'dial']) {
    t.false(internal in root, `${internal} is not exported by the root`);
  }
});

test('every layer subpath in package.json "exports" points at built files that load, and each is a layer index', async (t) => {
  const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { exports: Record<string, string | { types: string; import: string }> };
  const subpaths = Object.entries(pkg.exports).filter(([k, v]) => k !== '.' && typeof v !== 'string') as [string, { types: string; import: string }][];
  t.deepEqual(subpaths.map(([k]) => k).sort(), ['./channels', './decade', './flows', './framing', './ops', './profiles', './scistream', './transports']);
  for (const [name, target] of subpaths) {
    t.regex(target.import, /^\.\/dist\/src\/[a-z]+\/index\.js$/, name);
    t.true(existsSync(`${ROOT}/${target.types}`), `${name}: ${target.types} exists`);
    const mod = (await import(`${ROOT}/${target.import}`)) as Record<string, unknown>;
    t.true(Object.keys(mod).length > 0, `${name} exports something`);
  }
  const channels = (await import(`${ROOT}/dist/src/channels/index.js`)) as Record<string, unknown>;
  t.is(typeof channels.SessionCore, 'function', 'the session core moved to beepstream/channels');
});

test('the published declarations (built with stripInternal) type-check for a strict consumer of the root and every subpath', (t) => {
  t.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-dts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const layers = ['framing', 'transports', 'channels', 'profiles', 'scistream', 'ops', 'flows', 'decade'];
  const lines = [`import * as root from '${ROOT}dist/src/index.js';`, ...layers.map((l, i) => `import * as m${i} from '${ROOT}dist/src/${l}/index.js';`)];
  lines.push(`export const all = [root, ${layers.map((_, i) => `m${i}`).join(', ')}];`);
  // Use what the root promises, so a declaration that lost a member fails here.
  lines.push(`export async function use(s: root.Session, c: root.Channel): Promise<string> { const h: root.SessionHandle = s.handle; const t: root.TuningContext = root.tuningOf(s); void t; return String(h.security.tls) + c.session.id; }`);
  writeFileSync(join(dir, 'probe.ts'), lines.join('\n') + '\n');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', 'false', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), 'probe.ts'], { cwd: dir, encoding: 'utf8', timeout: 170_000 });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
});
