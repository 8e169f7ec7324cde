/**
 * The package as a user gets it: `npm pack` (from the built checkout, as `prepare`/`prepack`
 * leave it), then `npm install <tarball>` into an empty temporary project (dependencies from the
 * npm cache when they are there, else the registry), then the package is imported by name (both
 * entry points; an echo exchange over 127.0.0.1 proves its dependencies resolve) and its bin
 * runs. Also: the tarball carries dist/, the LICENSE, the CHANGELOG, docs/ and every source a
 * source map points at. Bounded: each command has a deadline.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to completion within `ms` (killed after that: the test fails, it never hangs). */
function sh(cmd: string, args: string[], cwd: string, ms: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${ms} ms; stderr: ${stderr}`));
    }, ms);
    child.on('error', (e) => (clearTimeout(timer), reject(e)));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('npm pack → npm install <tarball> in an empty project: it imports by name, serves an echo, and its bin prints the version', async (t) => {
  t.timeout(600_000);
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-pack-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  // --ignore-scripts: dist/ is already built by `npm test`'s pretest; prepare would only build it again.
  const packed = await sh(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT, 180_000);
  t.is(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  if (info === undefined) return t.fail('npm pack printed no package');
  const files = new Set(info.files.map((f) => f.path));
  for (const f of ['package.json', 'LICENSE', 'CHANGELOG.md', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/framing/index.js', 'dist/src/cli/bin.js', 'docs/writing-a-profile.md', 'spec/conformance.md']) {
    t.true(files.has(f), `the tarball has ${f}`);
  }
  t.false([...files].some((f) => f.startsWith('dist/test/') || f.startsWith('docs/api/') || f.startsWith('node_modules/')), 'no tests, generated API pages or dependencies');
  // Every source map's sources are in the package.
  const missingSources: string[] = [];
  for (const f of files) {
    if (!f.endsWith('.js.map')) continue;
    const map = JSON.parse(readFileSync(join(ROOT, f), 'utf8')) as { sources: string[] };
    for (const s of map.sources) {
      const target = posix.normalize(posix.join(posix.dirname(f), s));
      if (!files.has(target)) missingSources.push(`${f} → ${target}`);
    }
  }
  t.deepEqual(missingSources.slice(0, 5), [], 'every source a map points at is shipped');

  const project = join(dir, 'project');
  await sh('mkdir', ['-p', project], dir, 10_000);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'beepstream-pack-probe', version: '1.0.0', private: true, type: 'module' }));
  // --ignore-scripts: the package has no install script of its own; its one native
  // dependency (better-sqlite3, for the flows and DECADE stores) would compile from source here,
  // minutes on a busy 2-core machine, and loads its addon only when a store opens. `npm ci`
  // builds it for the rest of the suite.
  const installed = await sh(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, info.filename)], project, 300_000);
  t.is(installed.code, 0, installed.stderr);

  writeFileSync(
    join(project, 'probe.js'),
    `import { connect, createServer, echoProfile, ECHO_URI } from 'beepstream';
import { FrameDecoder } from 'beepstream/framing';
const server = createServer({ profiles: [echoProfile] });
const { port } = await server.listen(0, '127.0.0.1');
const session = await connect({ host: '127.0.0.1', port });
const ch = await session.startChannel(ECHO_URI);
const text = await (await ch.request('packed')).text();
await session.close();
await server.close(100);
console.log(typeof FrameDecoder, text);
`,
  );
  const probe = await sh(process.execPath, ['probe.js'], project, 60_000);
  t.is(probe.code, 0, probe.stderr);
  t.is(probe.stdout, 'function packed\n');

  const bin = await sh(join(project, 'node_modules', '.bin', 'beepstream'), ['--version'], project, 60_000);
  t.is(bin.code, 0, bin.stderr);
  t.is(bin.stdout.trim(), VERSION);
  const npx = await sh('npx', ['--no-install', 'beepstream', '--version'], project, 60_000);
  t.is(npx.code, 0, npx.stderr);
  t.is(npx.stdout.trim(), VERSION);
});
