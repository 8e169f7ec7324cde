/**
 * SciStream from the command line (issue 12): events as JSON lines while
 * inbound-request waits, the uid printed only when asked, one `session`
 * command from a shared client config file and environment, num_conn
 * checked against the library's limit, the details of server errors, a
 * refusing producer application logged, counted and shown in STATUS, and
 * `orphaned` at info — across real processes.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { MAX_NUM_CONN } from '../../src/scistream/data/index.js';
import { testPki } from '../helpers/certs.js';
import { BIN, run, stop } from '../helpers/cli.js';

const pki = testPki();
const dir = mkdtempSync(join(tmpdir(), 'beepstream-session-cli-'));
const PASSWORD = 'session test password';
const usersFile = join(dir, 'users.json');
writeFileSync(usersFile, serializeUsersFile(new Map([['alice', await createUserEntry(PASSWORD, 4096)]])), { mode: 0o600 });
const AUTH = ['--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--user', 'alice', '--password', 'env:SS_PW'];

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 45000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(args, timeoutMs, { env: { SS_PW: PASSWORD, ...env } });
}

interface S2csProc {
  child: ChildProcess;
  address: string;
  lines: string[];
  metrics?: string;
}

async function startS2cs(extra: string[] = []): Promise<S2csProc> {
  const child = spawn(process.execPath, [BIN, 's2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile, '--log-format', 'json', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(rl, 'line'), new Promise((_, rej) => setTimeout(() => rej(new Error('s2cs did not start')), 60_000))])) as [string];
  rl.on('line', (l) => lines.push(l));
  let metrics: string | undefined;
  if (extra.includes('--metrics')) {
    const err = createInterface({ input: child.stderr! });
    const [m] = (await Promise.race([once(err, 'line'), new Promise((_, rej) => setTimeout(() => rej(new Error('no metrics line')), 60_000))])) as [string];
    metrics = /http:\/\/\S+/.exec(m)?.[0];
  }
  return { child, address: line.replace(/^listening on /, ''), lines, ...(metrics ? { metrics } : {}) };
}

function records(p: S2csProc): { level: string; event: string; [k: string]: unknown }[] {
  return p.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; event: string });
}

async function until(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test.serial('inbound-request --json prints events as they happen, the uid first when asked; never the uid unless asked', async (t) => {
  t.timeout(240_000);
  const prod = await startS2cs();
  try {
    // Without a way to hand the new uid out, it would be lost: refused before connecting.
    const lost = await cli(['s2uc', 'inbound-request', '--server', prod.address, ...AUTH, '--json']);
    t.is(lost.code, 2);
    t.regex(lost.stderr, /a new uid would be lost: give --uid-file FILE .*--print-uid/);
    // --print-uid --json: the first line (the uid) arrives while the REQUEST still waits for its HELLO.
    const child = spawn(process.execPath, [BIN, 's2uc', 'inbound-request', '--server', prod.address, ...AUTH, '--json', '--print-uid'], { env: { ...process.env, SS_PW: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<number | null>((r) => child.once('close', r));
    const rl = createInterface({ input: child.stdout! });
    const lines: string[] = [];
    rl.on('line', (l) => lines.push(l));
    await until(() => lines.length >= 1, 'the first JSON line');
    const first = JSON.parse(lines[0] as string) as { event: string; uid: string; tag: string };
    t.is(first.event, 'uid');
    t.regex(first.uid, /^[0-9a-f]{32}$/);
    const hello = await cli(['appctrl', 'hello', '--server', prod.address, ...AUTH, '--uid', 'env:THE_UID', '--prod-listener', '127.0.0.1:9', '--json'], { THE_UID: first.uid });
    t.is(hello.code, 0, hello.stderr);
    t.false(hello.stdout.includes(first.uid) || hello.stderr.includes(first.uid));
    t.is(await closed, 0);
    const last = JSON.parse(lines[lines.length - 1] as string) as { event: string; listeners: string[]; tag: string };
    t.is(last.event, 'listeners');
    t.is(last.tag, first.tag);
    t.true(last.listeners.length >= 1);
    // A literal --uid is warned about, as a literal --password is; the uid is not printed back.
    const lit = await cli(['s2uc', 'release', '--server', prod.address, ...AUTH, '--uid', first.uid]);
    t.is(lit.code, 0, lit.stderr);
    t.regex(lit.stderr, /warning: --uid given literally is visible in the process listing/);
    t.false(lit.stdout.includes(first.uid));
    t.false(lit.stderr.replace(/--uid given literally/, '').includes(first.uid));
  } finally {
    t.is(await stop(prod.child), 0);
  }
});

test.serial('session: one command from a shared --config file and BEEPSTREAM_CLIENT_* sets up both facilities with num_conn K and prints the consumer listeners', async (t) => {
  t.timeout(120_000);
  const prod = await startS2cs();
  const cons = await startS2cs();
  const app = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (d) => c.write(Buffer.from(d.toString().toUpperCase())));
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  // One client config for every client command; the CA path is relative to the file.
  const cfgDir = mkdtempSync(join(dir, 'client-'));
  copyFileSync(pki.paths.ca, join(cfgDir, 'ca.pem'));
  const cfg = join(cfgDir, 'client.yaml');
  writeFileSync(cfg, `tlsCa: ca.pem\nserverName: localhost\nuser: alice\npassword: env:SS_PW\nprodServer: ${prod.address}\nconsServer: ${cons.address}\nuidFile: uid.txt\n`);
  try {
    const r = await cli(['session', '--config', cfg, '--prod-listener', `127.0.0.1:${appPort}`, '--num-conn', '3', '--json']);
    t.is(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; listeners?: string[] });
    const last = events[events.length - 1] as { event: string; listeners: string[] };
    t.is(last.event, 'listeners');
    t.is(last.listeners.length, 3, 'num_conn 3: three consumer-side listeners');
    const uid = readFileSync(join(cfgDir, 'uid.txt'), 'utf8').trim();
    t.regex(uid, /^[0-9a-f]{32}$/);
    t.false(r.stdout.includes(uid), 'the uid went to the file, not the output');
    // Text mode prints the same final line.
    // The consumer application connects through the tunnel.
    const [host, port] = (last.listeners[0] as string).split(':') as [string, string];
    const sock = net.connect({ host, port: Number(port), allowHalfOpen: true });
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.end('one command');
    await once(sock, 'end');
    t.is(got, 'ONE COMMAND');
    // STATUS and RELEASE take the server from the environment, the rest from the same file
    // (whose session-only keys, e.g. prodServer, s2uc ignores).
    const st = await cli(['s2uc', 'status', '--config', cfg, '--uid', `file:${join(cfgDir, 'uid.txt')}`, '--json'], { BEEPSTREAM_CLIENT_SERVER: prod.address });
    t.is(st.code, 0, st.stderr);
    t.is((JSON.parse(st.stdout) as { state: string; numConn: number }).numConn, 3);
    for (const s of [prod, cons]) {
      const rel = await cli(['s2uc', 'release', '--config', cfg, '--server', s.address, '--uid', `file:${join(cfgDir, 'uid.txt')}`]);
      t.is(rel.code, 0, rel.stderr);
    }
    // Kept sessions whose command ended: logged at info, with the reason.
    const orphaned = records(prod).filter((x) => x.event === 'scistream.orphaned');
    t.true(orphaned.length >= 1);
    t.deepEqual(orphaned.filter((x) => x.level !== 'info').map((x) => x.level), []);
    t.regex(String((orphaned[0] as { msg?: string }).msg), /kept until RELEASE/);
  } finally {
    app.close();
    t.is(await stop(prod.child), 0);
    t.is(await stop(cons.child), 0);
  }
});

test.serial('num_conn is checked against the library limit; server errors keep their details (limit, endpoint)', async (t) => {
  t.timeout(240_000);
  const over = await cli(['s2uc', 'request', '--server', '127.0.0.1:1', ...AUTH, '--uid', 'env:U', '--role', 'PROD', '--num-conn', String(MAX_NUM_CONN + 1)], { U: 'a'.repeat(32) });
  t.is(over.code, 2);
  t.regex(over.stderr, new RegExp(`--num-conn "${MAX_NUM_CONN + 1}": expected an integer from 1 to ${MAX_NUM_CONN}`));
  const maxConn = await cli(['s2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile, '--max-conn', String(MAX_NUM_CONN + 1)]);
  t.is(maxConn.code, 2);
  t.regex(maxConn.stderr, new RegExp(`--max-conn .*from 1 to ${MAX_NUM_CONN}`));
  const s = await startS2cs(['--max-conn', '8']);
  try {
    // Above the server's own limit (allowed by the CLI): NO_RESOURCE with the limit it sent.
    const many = await cli(['s2uc', 'request', '--server', s.address, ...AUTH, '--uid', 'env:U', '--role', 'PROD', '--num-conn', '100'], { U: 'b'.repeat(32) });
    t.is(many.code, 1);
    t.regex(many.stderr, /^beepstream: error 450: NO_RESOURCE: too many connections requested \(at most 8 connections per session\)/m);
    // A remote receiver nobody listens on: CONN_ERROR naming the endpoint.
    const closed = await freePort();
    const conn = await cli(['s2uc', 'outbound-request', '--server', s.address, ...AUTH, '--uid', 'env:U', '--remote', `127.0.0.1:${closed}`], { U: 'c'.repeat(32) });
    t.is(conn.code, 1);
    t.regex(conn.stderr, new RegExp(`^beepstream: error 554: CONN_ERROR: failed to establish a connection to a remote endpoint: 127\\.0\\.0\\.1:${closed} \\(`, 'm'));
  } finally {
    t.is(await stop(s.child), 0);
  }
});

test.serial('a producer application that refuses connections is logged with endpoint and errno, counted in the metrics and shown in STATUS', async (t) => {
  t.timeout(120_000);
  const prod = await startS2cs(['--metrics', '127.0.0.1:0']);
  const cons = await startS2cs();
  const refusing = await freePort();
  const uidFile = join(dir, 'refuse-uid.txt');
  try {
    const r = await cli(['session', '--prod-server', prod.address, '--cons-server', cons.address, ...AUTH, '--prod-listener', `127.0.0.1:${refusing}`, '--uid-file', uidFile]);
    t.is(r.code, 0, r.stderr);
    const listeners = /^listeners (\S+)$/m.exec(r.stdout)?.[1]?.split(',') ?? [];
    t.is(listeners.length, 1, r.stdout);
    // The consumer application connects; the producer application refuses.
    const [host, port] = (listeners[0] as string).split(':') as [string, string];
    const sock = net.connect({ host, port: Number(port) });
    sock.on('error', () => undefined);
    sock.write('hello?');
    await new Promise((r) => sock.once('close', r));
    await until(() => records(prod).some((x) => x.event === 'scistream.data.error'), 'the data error record');
    const rec = records(prod).find((x) => x.event === "scistream.data.error") as unknown as { level: string; endpoint: string; errno: string; msg: string; tags?: string[] };
    t.is(rec.level, 'warn');
    t.is(rec.endpoint, `127.0.0.1:${refusing}`);
    t.is(rec.errno, 'ECONNREFUSED');
    t.true(rec.msg.includes(`127.0.0.1:${refusing}`));
    t.is(rec.tags?.length, 1);
    const st = await cli(['s2uc', 'status', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`]);
    t.is(st.code, 0, st.stderr);
    t.regex(st.stdout, new RegExp(`^data errors 1 \\(last: 127\\.0\\.0\\.1:${refusing} ECONNREFUSED\\)$`, 'm'));
    const text = await get(`${prod.metrics}`);
    t.regex(text, /^beepstream_scistream_data_errors_total\{errno="ECONNREFUSED"\} 1$/m);
    for (const s of [prod, cons]) await cli(['s2uc', 'release', '--server', s.address, ...AUTH, '--uid', `file:${uidFile}`]);
  } finally {
    t.is(await stop(prod.child), 0);
    t.is(await stop(cons.child), 0);
  }
});

test.serial('session --connections K stripes the consumer side data path over K TCP connections', async (t) => {
  t.timeout(120_000);
  const bad = await cli(['session', '--prod-server', '127.0.0.1:1', '--cons-server', '127.0.0.1:1', ...AUTH, '--prod-listener', '127.0.0.1:9', '--num-conn', '2', '--connections', '3', '--print-uid']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--connections 3 exceeds --num-conn 2/);
  const prod = await startS2cs();
  const cons = await startS2cs();
  const app = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (d) => c.write(d));
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  const uidFile = join(dir, 'striped-uid.txt');
  try {
    const r = await cli(['session', '--prod-server', prod.address, '--cons-server', cons.address, ...AUTH, '--prod-listener', `127.0.0.1:${appPort}`, '--num-conn', '4', '--connections', '2', '--uid-file', uidFile]);
    t.is(r.code, 0, r.stderr);
    const listeners = /^listeners (\S+)$/m.exec(r.stdout)?.[1]?.split(',') ?? [];
    t.is(listeners.length, 4);
    // Four application connections through the tunnel, each echoed intact.
    const echoed = await Promise.all(listeners.map((l, i) => new Promise<string>((resolve, reject) => {
      const [host, port] = l.split(':') as [string, string];
      const sock = net.connect({ host, port: Number(port), allowHalfOpen: true });
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('error', reject);
      sock.on('close', () => resolve(got));
      sock.end(`stream ${i}`);
    })));
    t.deepEqual(echoed, ['stream 0', 'stream 1', 'stream 2', 'stream 3']);
    // The consumer-side S2CS opened exactly K = 2 data sessions (it initiates only data sessions).
    const dataSessions = records(cons).filter((x) => x.event === 'session.open' && x.role === 'initiator');
    t.is(dataSessions.length, 2);
    for (const s of [prod, cons]) await cli(['s2uc', 'release', '--server', s.address, ...AUTH, '--uid', `file:${uidFile}`]);
  } finally {
    app.close();
    t.is(await stop(prod.child), 0);
    t.is(await stop(cons.child), 0);
  }
});
