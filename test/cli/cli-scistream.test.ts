/**
 * The SciStream CLI across real processes: two s2cs, a producer application,
 * appctrl hello, s2uc inbound-request / outbound-request, data through the
 * tunnel, status, release; and its errors.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';
import { BIN, run, stop } from '../helpers/cli.js';

const pki = testPki();
const PASSWORD = 'scistream test password';
const usersFile = join(pki.dir, 'scistream-users.json');
writeFileSync(usersFile, serializeUsersFile(new Map([['alice', await createUserEntry(PASSWORD, 4096)]])), { mode: 0o600 });
const ENV = { ...process.env, SS_PW: PASSWORD };
const AUTH = ['--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--user', 'alice', '--password', 'env:SS_PW'];

function cli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(args, timeoutMs, { env: { SS_PW: PASSWORD } });
}

async function startS2cs(): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [BIN, 's2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(rl, 'line'), new Promise((_, rej) => setTimeout(() => rej(new Error('s2cs did not start')), 60_000))])) as [string];
  return { child, address: line.replace(/^listening on /, '') };
}

test.serial('a SciStream session across processes: producer and consumer facilities, data through the tunnel, status, release', async (t) => {
  t.timeout(240_000);
  const prod = await startS2cs();
  const cons = await startS2cs();
  const app = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (d) => c.write(Buffer.from(d.toString().toUpperCase())));
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  try {
    const uidFile = join(pki.dir, 'uid.txt');
    t.is((await cli(['s2uc', 'new-uid', '--uid-file', uidFile])).code, 0);
    const uid = readFileSync(uidFile, 'utf8').trim();
    t.regex(uid, /^[0-9a-f]{32}$/);
    const inbound = cli(['s2uc', 'inbound-request', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`, '--num-conn', '2', '--json']);
    const hello = await cli(['appctrl', 'hello', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`, '--prod-listener', `127.0.0.1:${appPort}`, '--json']);
    t.is(hello.code, 0, hello.stderr);
    const inb = await inbound;
    t.is(inb.code, 0, inb.stderr);
    // JSON lines, one per event; the last one holds the listeners. The uid
    // (a secret) is not printed: it was not asked for (--print-uid).
    const events = inb.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; uid?: string; listeners?: string[] });
    const inDoc = events[events.length - 1] as { event: string; listeners: string[] };
    t.is(inDoc.event, 'listeners');
    t.false(inb.stdout.includes(uid), 'the uid is never printed unless asked');
    t.true(inDoc.listeners.length >= 1);
    const outb = await cli(['s2uc', 'outbound-request', '--server', cons.address, ...AUTH, '--uid', `file:${uidFile}`, '--remote', inDoc.listeners.join(','), '--num-conn', '2', '--json']);
    t.is(outb.code, 0, outb.stderr);
    const local = (JSON.parse(outb.stdout) as { listeners: string[] }).listeners;
    t.is(local.length, 2);
    // The consumer application connects through the tunnel.
    const [host, port] = (local[0] as string).split(':') as [string, string];
    const sock = net.connect({ host, port: Number(port), allowHalfOpen: true });
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.end('through the tunnel');
    await once(sock, 'end');
    t.is(got, 'THROUGH THE TUNNEL');
    const status = await cli(['s2uc', 'status', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`, '--json']);
    t.is(status.code, 0, status.stderr);
    const st = JSON.parse(status.stdout) as { state: string; stats: { connections: number } | null };
    t.is(st.state, 'active');
    t.is(st.stats?.connections, 1);
    // Producer side first: its RELEASE ends the consumer side's data path too, and the
    // consumer side's RELEASE by the same owner still succeeds (idempotent).
    for (const s of [prod, cons]) {
      const r = await cli(['s2uc', 'release', '--server', s.address, ...AUTH, '--uid', `file:${uidFile}`]);
      t.is(r.code, 0, r.stderr);
    }
    const after = await cli(['s2uc', 'status', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`]);
    t.is(after.code, 1);
    t.regex(after.stderr, /INVALID_UID/);
    for (const r of [inb, hello, outb, status]) t.false(r.stdout.includes(PASSWORD) || r.stderr.includes(PASSWORD));
  } finally {
    app.close();
    t.is(await stop(prod.child), 0);
    t.is(await stop(cons.child), 0);
  }
});

test('SciStream CLI errors: bad arguments exit 2; a wrong password or an unknown uid exit 1 with the code', async (t) => {
  t.timeout(180_000);
  const usage: [string[], RegExp][] = [
    [['s2uc', 'release', '--server', '127.0.0.1:1', ...AUTH, '--uid', 'not-a-uid'], /--uid must be 32 lowercase hexadecimal/],
    [['s2uc', 'request', '--server', '127.0.0.1:1', ...AUTH, '--uid', 'a'.repeat(32), '--role', 'BOTH'], /--role must be PROD or CONS/],
    [['s2uc', 'outbound-request', '--server', '127.0.0.1:1', ...AUTH, '--uid', 'a'.repeat(32), '--remote', 'nohost'], /invalid address/],
    [['s2uc', 'status', '--server', '127.0.0.1:1', '--uid', 'a'.repeat(32)], /give --user and --password/],
    [['s2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey], /give --users and\/or --jwks/],
    [['s2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile, '--port-range', '9-1'], /FROM must not exceed TO/],
  ];
  for (const [args, pattern] of usage) {
    const r = await cli(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, pattern);
  }
  const s = await startS2cs();
  try {
    const unknown = await cli(['s2uc', 'release', '--server', s.address, ...AUTH, '--uid', 'b'.repeat(32)]);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /INVALID_UID/);
    const bad = await cli(['s2uc', 'status', '--server', s.address, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--user', 'alice', '--password', 'env:NOPE'], 60_000);
    t.is(bad.code, 2);
    const wrong = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, 's2uc', 'status', '--server', s.address, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--user', 'alice', '--password', 'env:WRONG', '--uid', 'c'.repeat(32)], { env: { ...ENV, WRONG: 'not it' } });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    t.is(wrong.code, 1);
    t.regex(wrong.stderr, /535/);
    t.false(wrong.stderr.includes('not it'));
  } finally {
    await stop(s.child);
  }
});

test('s2cs --config: a JSON file supplies the options, flags override it, and bad keys are named', async (t) => {
  t.timeout(120_000);
  const cfg = join(pki.dir, 's2cs.json');
  writeFileSync(cfg, JSON.stringify({ tlsCert: pki.paths.serverCert, tlsKey: pki.paths.serverKey, users: usersFile, port: 1 }));
  // --port on the command line wins over the file's port 1 (which would need privileges).
  const child = spawn(process.execPath, [BIN, 's2cs', '--config', cfg, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(rl, 'line'), new Promise((_, rej) => setTimeout(() => rej(new Error('no first line')), 60_000))])) as [string];
  t.regex(line, /^listening on 127\.0\.0\.1:[1-9][0-9]*$/);
  t.not(line, 'listening on 127.0.0.1:1');
  t.is(await stop(child), 0);
  const cases: [unknown, RegExp][] = [
    [{ tlsCert: pki.paths.serverCert, tlsKey: pki.paths.serverKey, users: usersFile, bogus: 1 }, /unknown key "bogus"/],
    [{ tlsCert: [pki.paths.serverCert] }, /key "tlsCert" must be a string or a number/],
    [['not', 'an', 'object'], /expected a JSON object/],
  ];
  for (const [doc, pattern] of cases) {
    writeFileSync(cfg, JSON.stringify(doc));
    const r = await cli(['s2cs', '--config', cfg]);
    t.is(r.code, 2);
    t.regex(r.stderr, pattern);
  }
  writeFileSync(cfg, '{ not json');
  const r = await cli(['s2cs', '--config', cfg]);
  t.is(r.code, 2);
  t.regex(r.stderr, /is not valid JSON/);
});
