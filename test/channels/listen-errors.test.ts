/**
 * A listen that fails — address in use, not available, host not found, bad port — rejects
 * with a `BEEP_ERR_LISTEN` BeepError naming the address and the reason (the Node error as its
 * cause), and never crashes the process with an unhandled 'error' event: on BeepServer and on
 * the operator HTTP endpoints. Real sockets; one check runs in a child process, where an
 * unhandled 'error' would end the process.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { BeepError, createServer, ErrorCodes } from '../../src/index.js';
import { createMetrics, startMetricsServer } from '../../src/ops/index.js';

const INDEX = fileURLToPath(new URL('../../src/index.js', import.meta.url));

/** A port held by a plain TCP listener on 127.0.0.1 until the test ends. */
async function busyPort(t: { teardown(f: () => void): void }): Promise<number> {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  return (blocker.address() as net.AddressInfo).port;
}

/** Resolve after one full turn of the event loop (an 'error' emitted on nextTick would have fired). */
const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test('BeepServer.listen on a busy port rejects with BEEP_ERR_LISTEN naming address and reason; the process carries on', async (t) => {
  const port = await busyPort(t);
  const server = createServer();
  const err = await t.throwsAsync(server.listen(port, '127.0.0.1'), { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.LISTEN);
  t.is(err?.message, `cannot listen on 127.0.0.1:${port}: address in use (EADDRINUSE)`);
  t.is((err?.cause as NodeJS.ErrnoException | undefined)?.code, 'EADDRINUSE', 'the Node error is the cause');
  await turn();
  // The same server can still listen elsewhere, and closes.
  const addr = await server.listen(0, '127.0.0.1');
  t.true(addr.port > 0);
  await server.close(100);
});

test('try { await server.listen(busy) } catch {} does not crash the process (child process)', async (t) => {
  const port = await busyPort(t);
  const script = `
    import { createServer } from ${JSON.stringify(INDEX)};
    try { await createServer().listen(${port}, '127.0.0.1'); console.log('listened?'); }
    catch (e) { console.log('caught', e.code); }
    setTimeout(() => console.log('still alive'), 200);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  t.is(code, 0, `stderr: ${err}`);
  t.is(out, 'caught BEEP_ERR_LISTEN\nstill alive\n');
  t.notRegex(err, /Unhandled 'error' event/);
});

test('BeepServer.listen on a host that does not resolve rejects with BEEP_ERR_LISTEN', async (t) => {
  const err = await t.throwsAsync(createServer().listen(0, 'not_a_host'), { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.LISTEN);
  t.regex(err?.message ?? '', /^cannot listen on not_a_host:0: (host not found \((ENOTFOUND|EAI_NONAME)\)|host name lookup failed \(EAI_(AGAIN|FAIL)\))$/);
  await turn();
});

test('BeepServer.listen on an address this host does not have rejects with BEEP_ERR_LISTEN (EADDRNOTAVAIL)', async (t) => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never configured on a host.
  const err = await t.throwsAsync(createServer().listen(0, '192.0.2.1'), { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.LISTEN);
  t.is(err?.message, 'cannot listen on 192.0.2.1:0: address not available on this host (EADDRNOTAVAIL)');
  await turn();
});

test('BeepServer.listen with a bad port rejects with BEEP_ERR_LISTEN (no synchronous throw)', async (t) => {
  const server = createServer();
  let p: Promise<unknown> | undefined;
  t.notThrows(() => void (p = server.listen(70000, '127.0.0.1').catch((e: unknown) => e)));
  const err = (await p) as BeepError;
  t.true(err instanceof BeepError);
  t.is(err.code, ErrorCodes.LISTEN);
  t.regex(err.message, /^cannot listen on 127\.0\.0\.1:70000: invalid port \(ERR_SOCKET_BAD_PORT\)$/);
});

test('the metrics endpoint on a busy port rejects with BEEP_ERR_LISTEN naming address and reason', async (t) => {
  const port = await busyPort(t);
  const metrics = createMetrics({ defaultMetrics: false });
  t.teardown(() => metrics.close());
  const err = await t.throwsAsync(startMetricsServer({ host: '127.0.0.1', port, metrics }), { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.LISTEN);
  t.is(err?.message, `cannot listen on 127.0.0.1:${port}: address in use (EADDRINUSE)`);
  await turn();
});
