/**
 * What a new user of the CLI hits first (issue 12, "The CLI"): sending
 * standard input, nothing to send, the password prompt, errors that say what
 * is wrong in one format, config file paths, the demos' help, units and
 * temporary keys, and the level of a peer going away — real processes.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ECHO_URI } from '../../src/index.js';
import { testPki } from '../helpers/certs.js';
import { BIN, run, startListener, stop } from '../helpers/cli.js';

const pki = testPki();
const dir = mkdtempSync(join(tmpdir(), 'beepstream-usability-'));

test('connect --file - and --file /dev/stdin send standard input; the reply is the exact bytes', async (t) => {
  const { child, address } = await startListener();
  try {
    for (const file of ['-', '/dev/stdin']) {
      const r = await run(['connect', address, '--profile', ECHO_URI, '--file', file], 30000, { input: `from stdin via ${file}` });
      t.is(r.code, 0, r.stderr);
      t.true(r.stdout.includes(`RPY: from stdin via ${file}`), r.stdout);
    }
    const data = randomBytes(300_000);
    const big = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const c = spawn(process.execPath, [BIN, 'connect', address, '--profile', ECHO_URI, '--file', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.on('close', (code) => resolve({ code, stdout }));
      c.stdin.end(data);
    });
    t.is(big.code, 0);
    t.true(big.stdout.includes(`RPY: (${data.length} octets, sha256 ${createHash('sha256').update(data).digest('hex')})`), big.stdout);
    const twice = await run(['connect', address, '--profile', ECHO_URI, '--file', '-', '--count', '2'], 30000, { input: 'x' });
    t.is(twice.code, 2);
    t.regex(twice.stderr, /^beepstream: standard input can be read only once/);
  } finally {
    await stop(child);
  }
});

test('connect with neither --message nor --file says so and exits 2 without connecting', async (t) => {
  // Port 1: nothing listens there; the usage error must come first.
  const r = await run(['connect', '127.0.0.1:1', '--profile', ECHO_URI]);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^beepstream: nothing to send: give --message TEXT, --file PATH, or --file - /);
});

// util-linux `script` provides the pseudo-terminal; without it the test is skipped (and says so).
const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).error === undefined;
(hasScript ? test : test.skip)('users add on a terminal prompts on the terminal and does not echo the password (needs util-linux script)', async (t) => {
  const file = join(dir, 'tty-users.json');
  const password = 'tty secret ' + randomBytes(4).toString('hex');
  // util-linux `script` gives the command a pseudo-terminal; the answers are typed after each prompt.
  const out = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const c = spawn('script', ['-qec', `${process.execPath} ${BIN} users add ${file} bob --iterations 4096`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    let step = 0;
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`no prompt in time; output so far: ${JSON.stringify(text)}`));
    }, 30000);
    c.on('error', reject);
    c.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (step === 0 && text.includes('password for bob: ')) {
        step = 1;
        c.stdin.write(password + '\r');
      } else if (step === 1 && text.includes('again: ')) {
        step = 2;
        c.stdin.write(password + '\r');
      }
    });
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: text });
    });
  });
  t.is(out.code, 0, out.out);
  t.regex(out.out, /password for bob: /);
  t.false(out.out.includes(password), `the password was echoed: ${JSON.stringify(out.out)}`);
  t.regex(out.out, /created .*tty-users\.json: user bob/);
  t.false(readFileSync(file, 'utf8').includes(password));
});

test('users add reads a piped password from stdin and prints neither a prompt nor the password', async (t) => {
  const file = join(dir, 'pipe-users.json');
  const password = 'piped secret ' + randomBytes(4).toString('hex');
  const r = await run(['users', 'add', file, 'carol', '--iterations', '4096'], 30000, { input: password + '\n' });
  t.is(r.code, 0, r.stderr);
  t.false(r.stdout.includes(password) || r.stderr.includes(password));
  t.false(/password for/.test(r.stdout + r.stderr));
});

test('connect --tls to a listener without TLS says TLS is not offered; SASL likewise', async (t) => {
  const { child, address } = await startListener();
  try {
    const tls = await run(['connect', address, '--profile', ECHO_URI, '--tls', '--message', 'x']);
    t.is(tls.code, 1);
    t.regex(tls.stderr, /^beepstream: the listener does not offer TLS: its greeting lists no http:\/\/iana\.org\/beep\/TLS/m);
    t.notRegex(tls.stderr, /550 all requested profiles/);
    const sasl = await run(['connect', address, '--profile', ECHO_URI, '--sasl', 'ANONYMOUS', '--message', 'x']);
    t.is(sasl.code, 1);
    t.regex(sasl.stderr, /does not offer SASL ANONYMOUS/);
  } finally {
    await stop(child);
  }
});

test('a garbage certificate or key is refused naming the flag (or config key) and the file', async (t) => {
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'this is not PEM\n');
  const c = await run(['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--tls-ca', garbage, '--message', 'x']);
  t.is(c.code, 2);
  t.true(c.stderr.includes(`beepstream: --tls-ca ${JSON.stringify(garbage)}: not a PEM certificate`), c.stderr);
  t.notRegex(c.stderr, /PEM routines/);
  const l = await run(['listen', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', garbage]);
  t.is(l.code, 2);
  t.true(l.stderr.includes(`--tls-key ${JSON.stringify(garbage)}: not a PEM private key`), l.stderr);
  // From a config file: the key is named, not a flag that was never given.
  const usersFile = join(dir, 'cfg-users.json');
  await run(['users', 'add', usersFile, 'alice', '--iterations', '4096'], 30000, { input: 'pw\n' });
  const cfg = join(dir, 's2cs-garbage.yaml');
  writeFileSync(cfg, `tlsCert: ${pki.paths.serverCert}\ntlsKey: ${garbage}\nusers: ${usersFile}\nport: 0\n`);
  const s = await run(['s2cs', '--config', cfg]);
  t.is(s.code, 2);
  t.true(s.stderr.includes(`key "tlsKey" in --config ${JSON.stringify(cfg)} ${JSON.stringify(garbage)}: not a PEM private key`), s.stderr);
  t.notRegex(s.stderr, /--tls-key/);
  // listen names the key too, and resolves the relative path against the file.
  const lcfg = join(dir, 'listen-garbage.yaml');
  writeFileSync(lcfg, 'tlsCert: garbage.pem\ntlsKey: garbage.pem\n');
  const lr = await run(['listen', '--config', lcfg, '--port', '0']);
  t.is(lr.code, 2);
  t.true(lr.stderr.includes(`key "tlsCert" in --config ${JSON.stringify(lcfg)} ${JSON.stringify(garbage)}: not a PEM certificate`), lr.stderr);
});

test('relative paths in a --config file resolve against the file, not the working directory', async (t) => {
  const cfgDir = join(dir, 'facility');
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(join(cfgDir, 'cert.pem'), readFileSync(pki.paths.serverCert));
  writeFileSync(join(cfgDir, 'key.pem'), readFileSync(pki.paths.serverKey));
  const r0 = await run(['users', 'add', join(cfgDir, 'users.json'), 'alice', '--iterations', '4096'], 30000, { input: 'pw\n' });
  t.is(r0.code, 0, r0.stderr);
  const cfg = join(cfgDir, 's2cs.yaml');
  writeFileSync(cfg, 'tlsCert: cert.pem\ntlsKey: ./key.pem\nusers: users.json\nport: 0\n');
  // Run from another directory: the paths must still be found.
  const child = spawn(process.execPath, [BIN, 's2cs', '--config', cfg], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const rl = createInterface({ input: child.stdout });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no first line; stderr: ${stderr}`)), 60_000);
    rl.once('line', (l) => (clearTimeout(timer), resolve(l)));
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`s2cs exited ${code}: ${stderr}`))));
  });
  t.regex(line, /^listening on 127\.0\.0\.1:[1-9][0-9]*$/);
  t.is(await stop(child), 0);
  // And the printed configuration shows where they resolved to.
  const p = await run(['s2cs', '--config', cfg, '--print-config', 'json']);
  t.is(p.code, 0, p.stderr);
  t.is((JSON.parse(p.stdout) as { tlsCert: string }).tlsCert, join(cfgDir, 'cert.pem'));
});

test('one error format: the same reply code prints the same way from connect and s2uc; one prefix; no repetition', async (t) => {
  // A 535 from connect (SCRAM with a wrong password)…
  const usersFile = join(dir, 'fmt-users.json');
  await run(['users', 'add', usersFile, 'alice', '--iterations', '4096'], 30000, { input: 'right\n' });
  const { child, address } = await startListener(['--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--sasl-users', usersFile]);
  let fromConnect = '';
  try {
    const r = await run(['connect', address, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--sasl', 'SCRAM-SHA-256', '--user', 'alice', '--password', 'env:PW', '--profile', ECHO_URI, '--message', 'x'], 30000, { env: { PW: 'wrong' } });
    t.is(r.code, 1);
    fromConnect = r.stderr.split('\n').find((l) => / 535/.test(l)) ?? '';
    t.regex(fromConnect, /^beepstream: error 535: /);
  } finally {
    await stop(child);
  }
  // …and from s2uc against an S2CS.
  const s = spawn(process.execPath, [BIN, 's2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const rl = createInterface({ input: s.stdout });
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('s2cs did not start')), 60_000);
      rl.once('line', (l) => (clearTimeout(timer), resolve(l)));
    });
    const server = line.replace(/^listening on /, '');
    const r = await run(['s2uc', 'status', '--server', server, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--user', 'alice', '--password', 'env:PW', '--uid', 'env:UID'], 30000, { env: { PW: 'wrong', UID: 'c'.repeat(32) } });
    t.is(r.code, 1);
    const fromS2uc = r.stderr.split('\n').find((l) => / 535/.test(l)) ?? '';
    t.is(fromS2uc, fromConnect);
  } finally {
    await stop(s);
  }
  // Commander's own errors take the same prefix.
  const unknown = await run(['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--bogus']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^beepstream: unknown option '--bogus'/);
  t.notRegex(unknown.stderr, /^error:/m);
  // A bad users file is named once.
  const bad = join(dir, 'bad-users.json');
  writeFileSync(bad, '{ not json');
  const u = await run(['users', 'list', bad]);
  t.is(u.code, 2);
  t.is(u.stderr.trim(), `beepstream: users file ${bad}: is not valid JSON`);
});

test('demo --help does not claim to be what npm start runs; scistream-demo does', async (t) => {
  const demo = await run(['demo', '--help']);
  t.is(demo.code, 0);
  t.notRegex(demo.stdout, /\(what `npm start` runs\)/);
  t.regex(demo.stdout, /npm start` runs scistream-demo/);
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  t.regex(pkg.scripts.start, /scistream-demo/);
});

test('scistream-demo prints a unit that fits and leaves no temporary keys behind, on success and on SIGINT', async (t) => {
  t.timeout(120_000);
  const tmp = mkdtempSync(join(tmpdir(), 'beepstream-demo-tmp-'));
  const ok = await run(['scistream-demo', '--bytes-per-stream', '1048576', '--num-conn', '2'], 90000, { env: { TMPDIR: tmp } });
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /summary: 2 streams, 2\.00 MiB each way/);
  t.notRegex(ok.stdout, /0\.00 GiB/);
  t.deepEqual(readdirSync(tmp), [], 'no temporary directory left after a run');
  // Interrupted mid-transfer.
  const child = spawn(process.execPath, [BIN, 'scistream-demo', '--bytes-per-stream', String(8 * 1024 ** 3), '--num-conn', '1', '--rate', '1048576'], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
  const rl = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the demo did not start its session in time')), 60000);
    rl.on('line', (l) => {
      if (/consumer application connects to/.test(l)) (clearTimeout(timer), resolve());
    });
  });
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  t.deepEqual(readdirSync(tmp), [], 'no temporary directory left after SIGINT');
  // A failure while generating the keys (no openssl on PATH) removes them too.
  const noOpenssl = await run(['scistream-demo', '--bytes-per-stream', '1024'], 30000, { env: { TMPDIR: tmp, PATH: '' } });
  t.is(noOpenssl.code, 1);
  t.regex(noOpenssl.stderr, /needs the openssl command/);
  t.deepEqual(readdirSync(tmp), [], 'no temporary directory left after an error');
});

test('the listener logs a client that goes away mid-exchange at info, not as a warning', async (t) => {
  t.timeout(180_000);
  const { child, address } = await startListener(['--log-format', 'json']);
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  try {
    // An endless body (/dev/zero), then the client is interrupted.
    const client = spawn(process.execPath, [BIN, 'connect', address, '--profile', ECHO_URI, '--file', '/dev/zero', '--quiet'], { stdio: ['ignore', 'ignore', 'ignore'] });
    for (let i = 0; i < 200 && !lines.some((l) => l.includes('"channel.open"')); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    client.kill('SIGKILL');
    await new Promise((r) => client.once('exit', r));
    for (let i = 0; i < 200 && !lines.some((l) => l.includes('"session.close"')); i++) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await stop(child);
  }
  const records = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; event: string });
  const handler = records.filter((r) => r.event === 'handler.error');
  t.true(handler.length >= 1, 'the interrupted exchange is logged');
  t.deepEqual(handler.map((r) => r.level).filter((l) => l !== 'info'), [], lines.join('\n'));
});

test('a reader that closes the pipe early (beepstream … | head -1) ends the command quietly, exit 0, no EPIPE stack', async (t) => {
  const child = spawn(process.execPath, [BIN, 's2uc', 'session', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // Go away before it writes, like a `head` that already has its line.
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  t.is(code, 0, stderr);
  t.false(/EPIPE|Unhandled/.test(stderr), stderr);
});

test('listen --session-memory-budget bounds the windows a session is granted; a budget below 1 MiB is refused', async (t) => {
  const bad = await run(['listen', '--port', '0', '--memory-budget', '1000']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /invalid --memory-budget "1000": expected an integer from 1048576 to/);
  const budget = 2 * 1024 * 1024;
  const { child, address } = await startListener(['--session-memory-budget', String(budget)]);
  try {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    const { connect } = await import('../../src/index.js');
    const session = await connect({ host, port });
    const ch = await session.startChannel(ECHO_URI);
    // 12 MiB through the echo (within its 16 MiB message limit): on loopback the
    // policy would grow the listener's window past 2 MiB; the budget caps what
    // the listener grants.
    const { body, reply } = ch.createRequest();
    // The echo streams its reply back as the request arrives: read it meanwhile.
    const echoedP = reply.then((m) => m.bytes());
    const failed = echoedP.then(() => new Promise<never>(() => undefined));
    const chunk = Buffer.alloc(256 * 1024, 1);
    let peak = 0;
    for (let i = 0; i < 48; i++) {
      peak = Math.max(peak, ch.flow.sendWindow);
      if (!body.write(chunk)) await Promise.race([new Promise((r) => body.once('drain', r)), failed]);
    }
    body.end();
    const echoed = await echoedP;
    t.is(echoed.length, 12 * 1024 * 1024);
    t.true(peak <= budget, `largest window granted ${peak} within the ${budget}-octet budget`);
    t.true(peak > 64 * 1024, `the window still grew past the initial 64 KiB (${peak})`);
    await session.close();
  } finally {
    await stop(child);
  }
});
