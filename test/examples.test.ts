/**
 * The examples under `examples/` are programs: each is run here as a child
 * process (`node dist/examples/NAME.js`, as its header says) and must exit 0
 * printing its expected line. The echo server and client run as a pair over
 * a real socket. Every TypeScript snippet of `docs/writing-a-profile.md`
 * must appear verbatim in the example file it names, so the guide cannot
 * drift from code that is compiled and run.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as `dist/test/examples.test.js`). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TIMEOUT = 60_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start `node dist/examples/NAME.js ARGS`. */
function start(name: string, args: string[] = []): ChildProcess {
  return spawn(process.execPath, [join(ROOT, 'dist', 'examples', `${name}.js`), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Collect a child's output until it exits (killed after `timeoutMs`). */
function finish(child: ChildProcess, timeoutMs = TIMEOUT): Promise<Run> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Run an example to completion. */
const run = (name: string, args: string[] = []): Promise<Run> => finish(start(name, args));

/** Standalone examples and the one line each prints on success. */
const PROGRAMS: Record<string, string> = {
  'answers-stream':
    'answers: 5 readings in kelvin from 294.65 K to 295.45 K; latest 21.50 °C; fahrenheit refused with 504; 2 channels in parallel: 3 + 3 readings',
  streaming: 'streaming: uploaded 16777216 octets (SHA-256 match), downloaded 16777216 octets (SHA-256 match)',
  'secure-profile': 'secure: refused with 538 before TLS, 530 before SASL; then "hello alice, over TLSv1.3"',
  'scistream-library': 'scistream: 1048576 octets each way through the tunnel, SHA-256 match at both ends; released',
};

/** Files of `examples/` that are not programs: modules imported by the programs, and tests. */
const MODULES = ['readings-profile.ts', 'readings-profile.test.ts'];

for (const [name, line] of Object.entries(PROGRAMS)) {
  // Serial: each is a whole server and client; no need to load a busy CI machine with all at once.
  test.serial(`examples/${name}.ts runs and prints its line`, async (t) => {
    const r = await run(name);
    t.is(r.code, 0, `exit ${r.code ?? r.signal}; stderr:\n${r.stderr}`);
    t.is(r.stdout, `${line}\n`, r.stderr);
  });
}

test.serial('examples/echo-server.ts and echo-client.ts talk over a real socket', async (t) => {
  const server = start('echo-server');
  const done = finish(server);
  t.teardown(() => void server.kill('SIGKILL'));
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the echo server printed no address')), 20_000);
    createInterface({ input: server.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    server.once('exit', (code) => reject(new Error(`the echo server exited early with ${code}`)));
  });
  const m = /^listening on (127\.0\.0\.1:[0-9]+)$/.exec(first);
  t.truthy(m, first);

  const client = await run('echo-client', [(m as RegExpExecArray)[1] as string]);
  t.is(client.code, 0, client.stderr);
  t.is(client.stdout, 'echo: hello, BEEP (text/plain); pipelined: one two three\n', client.stderr);

  // SIGTERM: sessions released, listener closed, exit 0.
  server.kill('SIGTERM');
  const r = await done;
  t.is(r.code, 0, `exit ${r.code ?? r.signal}; stderr:\n${r.stderr}`);
  t.true(r.stdout.endsWith('closed\n'), r.stdout);
});

test('every example is run by this file or is a module of one', (t) => {
  const files = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.ts')).sort();
  const known = [...Object.keys(PROGRAMS).map((n) => `${n}.ts`), 'echo-server.ts', 'echo-client.ts', ...MODULES].sort();
  t.deepEqual(files, known);
});

test('every TypeScript snippet of docs/writing-a-profile.md is verbatim from the example it names', (t) => {
  const guide = readFileSync(join(ROOT, 'docs', 'writing-a-profile.md'), 'utf8');
  // A snippet is a ```ts block; the line before it names its source: <!-- from examples/NAME.ts -->
  const blocks = [...guide.matchAll(/(?:<!-- from (examples\/[\w.-]+\.ts) -->\n)?```ts\n([\s\S]*?)```/g)];
  t.true(blocks.length >= 8, `only ${blocks.length} snippets found`);
  for (const [, source, code] of blocks) {
    if (source === undefined) {
      t.fail(`a snippet names no example file:\n${code}`);
      continue;
    }
    const text = readFileSync(join(ROOT, source), 'utf8');
    t.true(text.includes(code as string), `not found verbatim in ${source}:\n${code}`);
  }
});
