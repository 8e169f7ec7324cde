import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECHO_URI, ANSWERS_URI } from '../../src/index.js';
import { parseEndpoint, formatEndpoint, UsageError } from '../../src/cli/address.js';
import { run, startListener, stop } from '../helpers/cli.js';

test('listen prints exactly "listening on HOST:PORT" as its first line and exits 0 on SIGTERM', async (t) => {
  const { child, firstLine } = await startListener();
  t.regex(firstLine, /^listening on 127\.0\.0\.1:[1-9][0-9]*$/);
  t.is(await stop(child), 0);
});

test('connect to the echo profile prints the greeting profiles and the exact reply', async (t) => {
  const { child, address } = await startListener();
  try {
    const r = await run(['connect', address, '--profile', ECHO_URI, '--message', 'hello there', '--count', '3']);
    t.is(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.is(lines[0], 'greeting:');
    t.true(lines.includes(`  profile ${ECHO_URI}`));
    t.true(lines.includes(`  profile ${ANSWERS_URI}`));
    t.regex(r.stdout, /channel 1 started: http:\/\/xml\.resource\.org\/profiles\/NULL\/ECHO/);
    t.is(lines.filter((l) => l === 'RPY: hello there').length, 3);
  } finally {
    await stop(child);
  }
});

test('connect to the answers profile prints N ANS replies then NUL', async (t) => {
  const { child, address } = await startListener();
  try {
    const r = await run(['connect', address, '--profile', ANSWERS_URI, '--message', '4:8']);
    t.is(r.code, 0, r.stderr);
    const ans = r.stdout.split('\n').filter((l) => l.startsWith('ANS '));
    t.deepEqual(ans, ['ANS 0: aaaaaaaa', 'ANS 1: aaaaaaaa', 'ANS 2: aaaaaaaa', 'ANS 3: aaaaaaaa']);
    t.regex(r.stdout, /\nNUL\n$/);
  } finally {
    await stop(child);
  }
});

test('connect --file streams a file through echo and the reply hash matches', async (t) => {
  const { child, address } = await startListener();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'beepstream-cli-'));
    const path = join(dir, 'data.bin');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(path, data);
    const r = await run(['connect', address, '--profile', ECHO_URI, '--file', path]);
    t.is(r.code, 0, r.stderr);
    const hex = createHash('sha256').update(data).digest('hex');
    t.true(r.stdout.includes(`RPY: (${data.length} octets, sha256 ${hex})`), r.stdout);
  } finally {
    await stop(child);
  }
});

test('connect exits non-zero with the reply code and text when the start is refused', async (t) => {
  const { child, address } = await startListener();
  try {
    const r = await run(['connect', address, '--profile', 'urn:example:unknown', '--message', 'x']);
    t.is(r.code, 1);
    t.regex(r.stderr, /^beepstream: error 550: all requested profiles are unsupported$/m);
  } finally {
    await stop(child);
  }
});

test('connect exits non-zero with the reply code and text on an ERR reply', async (t) => {
  const { child, address } = await startListener();
  try {
    const r = await run(['connect', address, '--profile', ANSWERS_URI, '--message', 'not a number']);
    t.is(r.code, 1);
    t.regex(r.stderr, /^beepstream: error 501: /);
  } finally {
    await stop(child);
  }
});

test('connect to a closed port fails with exit 1 and says why', async (t) => {
  // Bind-and-release to find a port with nothing listening.
  const { child, address } = await startListener();
  await stop(child);
  const r = await run(['connect', address, '--profile', ECHO_URI, '--message', 'x', '--timeout', '5000']);
  t.is(r.code, 1);
  t.regex(r.stderr, /cannot connect to .*ECONNREFUSED.*\[BEEP_ERR_TRANSPORT\]/);
});

test('bad arguments print what is wrong and exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['connect', 'no-port-here', '--profile', ECHO_URI], /invalid address "no-port-here"/],
    [['connect', '127.0.0.1:70000', '--profile', ECHO_URI], /invalid port "70000"/],
    [['connect', '127.0.0.1:10288'], /required option '--profile <uri>' not specified/],
    [['connect', '127.0.0.1:10288', '--profile', ECHO_URI, '--message', 'a', '--file', 'b'], /cannot be used with option/],
    [['connect', '127.0.0.1:10288', '--profile', ECHO_URI, '--count', '0'], /invalid --count "0"/],
    [['connect', '127.0.0.1:10288', '--profile', ECHO_URI, '--file', '/nonexistent/file'], /cannot read --file/],
    [['listen', '--port', 'abc'], /invalid port "abc"/],
    [['nosuchcommand'], /unknown command 'nosuchcommand'/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, pattern, args.join(' '));
  }
});

test('--help works on every command and --version prints the package version', async (t) => {
  for (const args of [['--help'], ['listen', '--help'], ['connect', '--help'], ['demo', '--help']]) {
    const r = await run(args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.stdout, /Usage: beepstream/);
  }
  const v = await run(['--version']);
  t.is(v.code, 0);
  t.regex(v.stdout.trim(), /^[0-9]+\.[0-9]+\.[0-9]+/);
});

test('demo runs a full loopback exchange and exits 0', async (t) => {
  const r = await run(['demo', '--bytes', String(8 * 1024 * 1024)], 180_000);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /sha256 match/);
  t.regex(r.stdout, /answers channel \d+: 5 ANS then NUL/);
  t.regex(r.stdout, /300 channels open at once: all echoed/);
  t.regex(r.stdout, /session released/);
});

test('endpoint parsing accepts HOST:PORT and [IPv6]:PORT and formats them back', (t) => {
  t.deepEqual(parseEndpoint('127.0.0.1:10288'), { host: '127.0.0.1', port: 10288 });
  t.deepEqual(parseEndpoint('localhost:1'), { host: 'localhost', port: 1 });
  t.deepEqual(parseEndpoint('[::1]:10288'), { host: '::1', port: 10288 });
  t.is(formatEndpoint('::1', 5), '[::1]:5');
  t.is(formatEndpoint('127.0.0.1', 5), '127.0.0.1:5');
  t.throws(() => parseEndpoint('::1:10288'), { instanceOf: UsageError });
  t.throws(() => parseEndpoint('host:0'), { instanceOf: UsageError });
});

test('npm start runs the SciStream demo (the main job), and npm run bench the benchmark suite', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  t.regex(pkg.scripts.start ?? '', /node dist\/src\/cli\/bin\.js scistream-demo$/);
  t.regex(pkg.scripts.bench ?? '', /node dist\/bench\/run\.js/);
  t.is(pkg.scripts.test, 'ava');
});

test('scistream-demo: a complete SciStream session on loopback checks every byte and exits 0', async (t) => {
  const r = await run(['scistream-demo', '--bytes-per-stream', String(8 * 1024 * 1024), '--num-conn', '4'], 240_000);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.regex(r.stdout, /producer facility: S2CS on 127\.0\.0\.1:\d+ \(TLS \+ SCRAM-SHA-256\)/);
  t.regex(r.stdout, /RELEASE: both facilities freed the session/);
  t.regex(r.stdout, /summary: 4 streams, .* SHA-256 match at both ends for every stream/);
});
