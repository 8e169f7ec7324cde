/**
 * The Unix domain socket transport on its own: the socket file's life
 * (created by listen, refused when it exists, removed on close), errors with
 * stable codes, the transport description on both ends, and the CLI's
 * `listen --unix PATH` / `connect unix:PATH`. Socket files live in temporary
 * directories that are removed afterwards.
 */
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connect, createServer, type Session } from '../../src/channels/session.js';
import { ErrorCodes } from '../../src/errors.js';
import { ECHO_URI, echoProfile } from '../../src/profiles/index.js';
import { describeTransport, dial, formatTarget, MAX_UNIX_PATH } from '../../src/transports/index.js';
import { run, startListener, stop } from '../helpers/cli.js';
import { socketDir } from '../helpers/transport.js';

test('listen({ path }) creates the socket file, serves echo over it, and close() removes the file', async (t) => {
  const path = join(socketDir(t), 'echo.sock');
  const server = createServer({ profiles: [echoProfile] });
  const bound = await server.listen({ path });
  t.deepEqual(bound, { kind: 'unix', path });
  t.true(lstatSync(path).isSocket(), 'a socket file at the path');
  const accepted = new Promise<Session>((r) => server.once('session', r));
  const client = await connect({ path });
  const ch = await client.startChannel(ECHO_URI);
  t.is(await (await ch.request('over a unix socket')).text(), 'over a unix socket');
  const peer = await accepted;
  t.deepEqual(client.transport, { kind: 'unix', remote: path });
  t.deepEqual(peer.transport, { kind: 'unix', local: path });
  t.is(client.handle.remote, undefined, 'no host:port over a Unix socket');
  await client.close();
  await server.close(1000);
  t.false(existsSync(path), 'the socket file is gone after close');
});

test('listen on a path that exists is refused with BEEP_ERR_LISTEN and the file is left alone', async (t) => {
  const path = join(socketDir(t), 'taken');
  writeFileSync(path, 'not a socket');
  const server = createServer();
  const err = await t.throwsAsync(server.listen({ path }));
  t.is((err as { code?: string }).code, ErrorCodes.LISTEN);
  t.true(err?.message.includes(`unix:${path}`), err?.message);
  t.true(lstatSync(path).isFile(), 'the existing file is untouched');
  // A second listener on a live socket path is refused the same way.
  const live = join(socketDir(t), 'live.sock');
  const first = createServer();
  await first.listen({ path: live });
  t.teardown(() => first.close(200));
  const second = createServer();
  await t.throwsAsync(second.listen({ path: live }), { code: ErrorCodes.LISTEN });
  t.true(lstatSync(live).isSocket(), 'the first listener keeps its socket');
});

test('connect({ path }) to nothing rejects with BEEP_ERR_TRANSPORT naming the path', async (t) => {
  const path = join(socketDir(t), 'nobody.sock');
  const err = await t.throwsAsync(connect({ path, timeout: 10_000 }), { code: ErrorCodes.TRANSPORT });
  t.true(err?.message.includes(`unix:${path}`), err?.message);
});

test('a socket path too long, empty or with NUL is refused with BEEP_ERR_INVALID_ARGUMENT', async (t) => {
  const long = join(socketDir(t), 'x'.repeat(MAX_UNIX_PATH));
  await t.throwsAsync(createServer().listen({ path: long }), { code: ErrorCodes.INVALID_ARGUMENT });
  await t.throwsAsync(connect({ path: long }), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => dial({ path: '' }), { code: ErrorCodes.INVALID_ARGUMENT });
  t.throws(() => dial({ path: 'a\0b' }), { code: ErrorCodes.INVALID_ARGUMENT });
});

test('TCP sessions describe themselves as tcp with host:port ends', async (t) => {
  const server = createServer({ profiles: [echoProfile] });
  const { port } = await server.listen(0, '127.0.0.1');
  const accepted = new Promise<Session>((r) => server.once('session', r));
  const client = await connect({ port });
  t.teardown(async () => {
    client.destroy();
    await server.close(200);
  });
  const peer = await accepted;
  t.is(client.transport?.kind, 'tcp');
  t.is(client.transport?.remote, `127.0.0.1:${port}`);
  t.is(client.transport?.remoteAddress, '127.0.0.1');
  t.is(peer.transport?.local, `127.0.0.1:${port}`);
  t.is(peer.handle.remote, client.transport?.local, "the listener's remote is the client's local end");
  t.is(formatTarget({ host: '::1', port: 7 }), '[::1]:7');
  t.is(formatTarget({ path: '/run/b.sock' }), 'unix:/run/b.sock');
  t.is(describeTransport(new (await import('node:stream')).PassThrough()), undefined, 'a stream that is no socket has no description');
});

test('CLI: listen --unix PATH prints "listening on unix:PATH"; connect unix:PATH echoes; SIGTERM removes the socket file', async (t) => {
  const path = join(socketDir(t), 'cli.sock');
  const { child, firstLine } = await startListener(['--unix', path]);
  try {
    t.is(firstLine, `listening on unix:${path}`);
    t.true(lstatSync(path).isSocket());
    const r = await run(['connect', `unix:${path}`, '--profile', ECHO_URI, '--message', 'hello unix', '--count', '2']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.trim().split('\n').filter((l) => l === 'RPY: hello unix').length, 2);
  } finally {
    t.is(await stop(child), 0);
  }
  t.false(existsSync(path), 'the listener removed its socket file on exit');
  const bad = await run(['connect', 'unix:', '--profile', ECHO_URI, '--message', 'x']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /expected unix:PATH/);
});
