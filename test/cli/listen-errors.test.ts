/**
 * The long-running commands on an address they cannot listen on — a busy port, an address
 * this host does not have, a host name that does not resolve, a busy `--metrics`/`--status`
 * port — print one line naming the address and the reason and exit 1 (no `Unhandled 'error'
 * event` stack); `connect --content-type` with a line break prints the error and exits 1
 * instead of hanging. Real processes, real sockets on 127.0.0.1.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';
import { run, startListener, stop } from '../helpers/cli.js';

const pki = testPki();
const usersFile = join(pki.dir, 'listen-errors-users.json');
writeFileSync(usersFile, serializeUsersFile(new Map([['alice', await createUserEntry('listen errors test password', 4096)]])), { mode: 0o600 });
const s2csArgs = ['s2cs', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile];

/** A port held by a plain TCP listener on 127.0.0.1 until the test ends. */
async function busyPort(t: { teardown(f: () => void): void }): Promise<number> {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  return (blocker.address() as net.AddressInfo).port;
}

/** Exactly one line on stderr, matching `re`; nothing on stdout; exit 1. */
function oneLineFailure(t: import('ava').ExecutionContext, r: { code: number | null; stdout: string; stderr: string }, re: RegExp): void {
  t.is(r.code, 1, `exit code; stderr: ${r.stderr}`);
  t.notRegex(r.stderr, /Unhandled 'error' event|^\s+at /m, 'no stack trace');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  t.is(lines.length, 1, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.regex(lines[0] ?? '', re);
  t.is(r.stdout, '', 'no "listening on" line');
}

const inUse = (port: number): RegExp => new RegExp(`^beepstream: cannot listen on 127\\.0\\.0\\.1:${port}: address in use \\(EADDRINUSE\\)`);

test('listen --port BUSY: one line naming the address and "address in use", exit 1', async (t) => {
  const port = await busyPort(t);
  oneLineFailure(t, await run(['listen', '--port', String(port)]), inUse(port));
});

test('listen --host 192.0.2.1 (not on this host) and --host not_a_host: one line each, exit 1', async (t) => {
  oneLineFailure(t, await run(['listen', '--host', '192.0.2.1', '--port', '0']), /^beepstream: cannot listen on 192\.0\.2\.1:0: address not available on this host \(EADDRNOTAVAIL\)/);
  oneLineFailure(t, await run(['listen', '--host', 'not_a_host', '--port', '0']), /^beepstream: cannot listen on not_a_host:0: (host not found|host name lookup failed) \(E[A-Z_]+\)/);
});

test('listen --metrics 127.0.0.1:BUSY: one line naming the metrics address, exit 1', async (t) => {
  const port = await busyPort(t);
  oneLineFailure(t, await run(['listen', '--port', '0', '--metrics', `127.0.0.1:${port}`]), inUse(port));
});

test('s2cs --port BUSY, --status BUSY and --metrics BUSY: one line naming the address, exit 1', async (t) => {
  t.timeout(240_000);
  const port = await busyPort(t);
  oneLineFailure(t, await run([...s2csArgs, '--port', String(port)]), inUse(port));
  oneLineFailure(t, await run([...s2csArgs, '--port', '0', '--status', `127.0.0.1:${port}`]), inUse(port));
  oneLineFailure(t, await run([...s2csArgs, '--port', '0', '--metrics', `127.0.0.1:${port}`]), inUse(port));
  oneLineFailure(t, await run([...s2csArgs, '--port', '0', '--host', 'not_a_host']), /^beepstream: cannot listen on not_a_host:0: /);
});

test('connect --content-type with a line break prints the error and exits 1 (no hang)', async (t) => {
  t.timeout(180_000);
  const { child, address } = await startListener();
  t.teardown(() => void stop(child));
  const r = await run(['connect', address, '--profile', 'http://xml.resource.org/profiles/NULL/ECHO', '--message', 'hi', '--content-type', 'text/plain\nX: 1']);
  t.is(r.code, 1, `stderr: ${r.stderr}`);
  t.regex(r.stderr, /invalid characters in MIME header Content-Type.*BEEP_ERR_INVALID_ARGUMENT/);
  t.notRegex(r.stdout, /^RPY/m, 'nothing was sent');
  const f = await run(['connect', address, '--profile', 'http://xml.resource.org/profiles/NULL/ECHO', '--file', pki.paths.serverCert, '--content-type', 'text/plain\r\nX: 1']);
  t.is(f.code, 1, `stderr: ${f.stderr}`);
  t.regex(f.stderr, /BEEP_ERR_INVALID_ARGUMENT/);
  t.is(await stop(child), 0, 'the listener is unharmed and exits 0 on SIGTERM');
});
