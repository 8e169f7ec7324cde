/**
 * Graceful shutdown of the long-running commands: SIGTERM on `listen` lets an
 * exchange in flight finish, refuses new work and releases the session; on
 * `s2cs` it releases every SciStream session (data paths closed, ports freed,
 * waiting requests answered) and exits 0.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ANSWERS_URI, connect, createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';
import { BIN, run, startListener, stop } from '../helpers/cli.js';

const exitOf = (child: ChildProcess): Promise<number | string | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode ?? child.signalCode)
    : once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string | null);

test('listen: SIGTERM lets an ANS stream in flight finish, refuses new connections, releases the session and exits 0', async (t) => {
  const { child, address } = await startListener();
  t.teardown(() => void stop(child));
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const s = await connect({ host, port });
  const ch = await s.startChannel(ANSWERS_URI);
  let answers = 0;
  let signalled = false;
  for await (const a of ch.requestAnswers('200:65536')) {
    answers += (await a.bytes()).length === 65536 ? 1 : 0;
    if (!signalled) {
      signalled = true;
      child.kill('SIGTERM');
      // Give the listener time to stop accepting while our stream is still open.
      await new Promise((r) => setTimeout(r, 300));
      await t.throwsAsync(connect({ host, port, timeout: 2000 }));
    }
  }
  t.is(answers, 200, 'every answer arrived');
  await s.whenClosed();
  t.is(s.core.failure, undefined, 'the session was released, not terminated');
  t.is(await exitOf(child), 0);
});

test.serial('s2cs: SIGTERM releases every SciStream session — data path closed, ports freed, a waiting request answered — and exits 0', async (t) => {
  t.timeout(240_000);
  const pki = testPki();
  const PASSWORD = 'shutdown test password';
  const usersFile = join(pki.dir, 'shutdown-users.json');
  writeFileSync(usersFile, serializeUsersFile(new Map([['alice', await createUserEntry(PASSWORD, 4096)]])), { mode: 0o600 });
  const env = { ...process.env, SS_PW: PASSWORD };
  const AUTH = ['--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--user', 'alice', '--password', 'env:SS_PW'];
  const cli = (args: string[]): ReturnType<typeof run> => run(args, 30000, { env: { SS_PW: PASSWORD } });
  const startS2cs = async (): Promise<{ child: ChildProcess; address: string }> => {
    const child = spawn(process.execPath, [BIN, 's2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const rl = createInterface({ input: child.stdout! });
    const [line] = (await Promise.race([once(rl, 'line'), new Promise((_, rej) => setTimeout(() => rej(new Error('s2cs did not start')), 60_000))])) as [string];
    return { child, address: line.replace(/^listening on /, '') };
  };
  const prod = await startS2cs();
  const cons = await startS2cs();
  t.teardown(() => Promise.all([stop(prod.child), stop(cons.child)]));
  const app = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('error', () => undefined);
    c.pipe(c);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.teardown(() => app.close());
  const appPort = (app.address() as net.AddressInfo).port;

  const uidFile = join(pki.dir, 'shutdown-uid.txt');
  t.is((await cli(['s2uc', 'new-uid', '--uid-file', uidFile])).code, 0);
  const inbound = cli(['s2uc', 'inbound-request', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`, '--num-conn', '2', '--json']);
  t.is((await cli(['appctrl', 'hello', '--server', prod.address, ...AUTH, '--uid', `file:${uidFile}`, '--prod-listener', `127.0.0.1:${appPort}`, '--json'])).code, 0);
  const inb = await inbound;
  t.is(inb.code, 0, inb.stderr);
  // inbound-request --json: one JSON line per event, the listeners last.
  const remote = (JSON.parse(inb.stdout.trim().split('\n').pop() as string) as { listeners: string[] }).listeners;
  const outb = await cli(['s2uc', 'outbound-request', '--server', cons.address, ...AUTH, '--uid', `file:${uidFile}`, '--remote', remote.join(','), '--num-conn', '2', '--json']);
  t.is(outb.code, 0, outb.stderr);
  const local = (JSON.parse(outb.stdout) as { listeners: string[] }).listeners[0] as string;

  // A consumer application mid-stream, and a second REQUEST still waiting for its HELLO.
  const sock = net.connect({ host: '127.0.0.1', port: Number(local.split(':')[1]), allowHalfOpen: true });
  sock.on('error', () => undefined);
  let echoed = 0;
  sock.on('data', (d: Buffer) => (echoed += d.length));
  sock.write(Buffer.alloc(64 * 1024, 7));
  const deadline = Date.now() + 30_000;
  while (echoed < 64 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(echoed, 64 * 1024, 'data flows before the shutdown');
  const waitingUid = join(pki.dir, 'shutdown-uid-2.txt');
  t.is((await cli(['s2uc', 'new-uid', '--uid-file', waitingUid])).code, 0);
  const waiting = cli(['s2uc', 'inbound-request', '--server', prod.address, ...AUTH, '--uid', `file:${waitingUid}`, '--num-conn', '1']);
  await new Promise((r) => setTimeout(r, 500));

  const started = Date.now();
  prod.child.kill('SIGTERM');
  t.is(await exitOf(prod.child), 0, 's2cs exits 0');
  t.true(Date.now() - started < 30_000, 'within the deadline (its grace period plus generous slack for a loaded machine)');
  // The waiting request got an answer (an error), not silence.
  const w = await waiting;
  t.not(w.code, 0);
  t.regex(w.stderr, /beepstream: /);
  // The application's connection through the tunnel ended.
  if (!sock.destroyed) await Promise.race([once(sock, 'close'), new Promise((r) => setTimeout(r, 10_000))]);
  t.true(sock.destroyed || sock.readableEnded, 'the consumer application connection ended');
  // The producer side's data ports are free: nothing listens there any more.
  for (const l of remote) {
    const port = Number(l.slice(l.lastIndexOf(':') + 1));
    const refused = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(false);
      });
      c.once('error', () => resolve(true));
    });
    t.true(refused, `port ${port} freed`);
  }
  t.is(readFileSync(uidFile, 'utf8').trim().length, 32);
});
