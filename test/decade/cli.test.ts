/**
 * `beepstream decade …` as real processes: the whole flow (keygen, token,
 * serve, put, get, stat, rm) with no token in any output; kill -9 in the
 * middle of a PUT leaves no object and no temporary space after a restart;
 * bad arguments exit 2 with a clear message.
 */
import test, { type ExecutionContext } from 'ava';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, stop } from '../helpers/cli.js';
import { createToken, nameOf } from '../../src/decade/index.js';
import { accountsFile, connectClient, heldPut, killNine, octets, rejectsWith, serveProcess, tempDir, until, type Serve } from '../helpers/decade.js';
import { testPki } from '../helpers/certs.js';

/** Start `decade serve` on a store directory; resolves once it printed its address and its store line. */
function serve(dir: string, accounts: string, extra: string[] = []): Promise<Serve> {
  return serveProcess(['--dir', dir, '--accounts', accounts, '--port', '0', ...extra]);
}

async function setup(t: ExecutionContext) {
  const a = await accountsFile(t, 64 * 1024 * 1024);
  return { ...a, store: join(a.dir, 'store') };
}

test('decade CLI: keygen, token, serve, put, get, stat --json, rm — and no token in any output', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const dir = await tempDir(t);
  const keyFile = join(dir, 'alice.key');
  const kg = await run(['decade', 'keygen', '--account', 'alice', '--out', keyFile]);
  t.is(kg.code, 0, kg.stderr);
  const entry = JSON.parse(kg.stdout) as { id: string; publicKey: { kty: string } };
  t.is(entry.id, 'alice');
  t.is(entry.publicKey.kty, 'OKP');
  t.is((await stat(keyFile)).mode & 0o777, 0o600);
  t.false(kg.stdout.includes('"d"'), 'the private key is not printed');
  await writeFile(join(dir, 'accounts.json'), JSON.stringify({ accounts: [entry] }));
  const tokFile = join(dir, 'tok');
  const tk = await run(['decade', 'token', '--key', keyFile, '--ops', 'put,get,stat,rm', '--out', tokFile, '--expires', '600']);
  t.is(tk.code, 0, tk.stderr);
  const token = (await readFile(tokFile, 'utf8')).trim();
  t.regex(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const s = await serve(join(dir, 'store'), join(dir, 'accounts.json'));
  t.teardown(() => stop(s.child));
  t.regex(s.lines[0] as string, /^listening on 127\.0\.0\.1:\d+$/);
  const file = join(dir, 'data.bin');
  const data = octets(700_000, 5);
  await writeFile(file, data);
  const put = await run(['decade', 'put', s.address, file, '--token', `file:${tokFile}`, '--json', '--type', 'application/x-test']);
  t.is(put.code, 0, put.stderr);
  const { name, size } = JSON.parse(put.stdout) as { name: string; size: number };
  t.is(name, nameOf(data).name);
  t.is(size, data.length);
  const outFile = join(dir, 'back.bin');
  const get = await run(['decade', 'get', s.address, name, '--out', outFile, '--token', 'env:DECADE_TOKEN'], undefined, { env: { DECADE_TOKEN: token } });
  t.is(get.code, 0, get.stderr);
  t.true((await readFile(outFile)).equals(data));
  const st = await run(['decade', 'stat', s.address, '--token', `file:${tokFile}`, '--json']);
  t.is(st.code, 0, st.stderr);
  const status = JSON.parse(st.stdout) as { used: number; objects: { name: string; type: string; gets: number }[] };
  t.is(status.used, data.length);
  t.deepEqual(status.objects.map((o) => [o.name, o.type, o.gets]), [[name, 'application/x-test', 1]]);
  const rm = await run(['decade', 'rm', s.address, name, '--token', `file:${tokFile}`]);
  t.is(rm.code, 0, rm.stderr);
  const gone = await run(['decade', 'get', s.address, name, '--out', outFile, '--token', `file:${tokFile}`]);
  t.is(gone.code, 1);
  t.is(gone.stderr.trim(), 'beepstream: error 550: NOT_FOUND: no such object in this account');
  // A refusal: a token that does not permit the operation.
  const getOnly = join(dir, 'get-only');
  t.is((await run(['decade', 'token', '--key', keyFile, '--ops', 'get', '--out', getOnly])).code, 0);
  const refused = await run(['decade', 'put', s.address, file, '--token', `file:${getOnly}`]);
  t.is(refused.code, 1);
  t.is(refused.stderr.trim(), 'beepstream: error 537: TOKEN_OPERATION: the token does not permit put');
  const tokens = [token, (await readFile(getOnly, 'utf8')).trim()];
  const everything = [kg, tk, put, get, st, rm, gone, refused].map((r) => r.stdout + r.stderr).join('\n') + s.output();
  t.true(s.lines.length >= 2);
  for (const tok of tokens) t.false(everything.includes(tok) || everything.includes(tok.split('.')[2] as string), 'a token was printed');
});

test('kill -9 in the middle of a PUT: after a restart no object is visible and no temporary space is left', async (t) => {
  t.timeout(180_000);
  const { key, accounts, store } = await setup(t);
  const first = await serve(store, accounts);
  t.teardown(() => stop(first.child));
  const token = await createToken({ account: 'alice', operations: ['put', 'get', 'stat'] }, key.privateJwk);
  const data = octets(4 * 1024 * 1024, 7);
  const { name } = nameOf(data);
  const c = await connectClient(t, { port: first.port });
  // Send the first MiB, then hold the rest back: the server sits mid-PUT.
  const { done: put } = heldPut(t, c, token, name, data, 1024 * 1024);
  // Wait (bounded) until the temporary file holds that MiB.
  const tmp = join(store, 'tmp');
  let inTmp = 0;
  await until('1 MiB in temporary space', async () => {
    inTmp = 0;
    for (const f of await readdir(tmp)) inTmp += (await stat(join(tmp, f)).catch(() => ({ size: 0 }))).size;
    return inTmp >= 1024 * 1024;
  });
  t.is(inTmp, 1024 * 1024, 'the server is mid-PUT with 1 MiB in temporary space');
  await killNine(first.child);
  t.is(first.child.signalCode, 'SIGKILL');
  await t.throwsAsync(put);
  t.is((await readdir(tmp)).length, 1, 'before the restart the interrupted write is still there');
  // Restart on the same directory.
  const second = await serve(store, accounts);
  t.teardown(() => stop(second.child));
  t.regex(second.lines[1] as string, /swept 1 temporary files \(1048576 octets\) and 0 orphan blobs/);
  t.deepEqual(await readdir(tmp), []);
  const blobs = await readdir(join(store, 'blobs'));
  for (const shard of blobs) t.deepEqual(await readdir(join(store, 'blobs', shard)), []);
  const c2 = await connectClient(t, { port: second.port });
  await rejectsWith(t, c2.get(token, name), 'NOT_FOUND');
  const s = await c2.status(token);
  t.is(s.used, 0);
  t.deepEqual(s.objects, []);
  // And the store works: the same PUT, whole, goes through.
  t.true((await c2.put(token, data)).fresh);
});

test('decade CLI usage errors exit 2 with a clear message', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { dir, accounts } = await setup(t);
  const key = join(dir, 'k');
  t.is((await run(['decade', 'keygen', '--account', 'alice', '--out', key])).code, 0);
  const cases: [string[], RegExp][] = [
    [['decade', 'put'], /missing required argument 'address'/],
    [['decade', 'put', '127.0.0.1:1', join(dir, 'nope')], /--token env:NAME or --token file:PATH is required/],
    [['decade', 'put', '127.0.0.1:1', join(dir, 'nope'), '--token', 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'], /--token takes env:NAME or file:PATH/],
    [['decade', 'get', '127.0.0.1:1', 'ni:///sha-256;nope', '--out', join(dir, 'o'), '--token', 'env:HOME'], /invalid content name/],
    [['decade', 'get', 'localhost', nameOf('x').name, '--out', join(dir, 'o'), '--token', 'env:HOME'], /expected HOST:PORT/],
    [['decade', 'stat', '127.0.0.1:1', '--token', 'env:BEEPSTREAM_NO_SUCH_VARIABLE'], /environment variable BEEPSTREAM_NO_SUCH_VARIABLE is not set/],
    [['decade', 'rm', '127.0.0.1:1', nameOf('x').name, '--token', `file:${join(dir, 'missing')}`], /cannot read/],
    [['decade', 'serve', '--dir', join(dir, 's'), '--accounts', join(dir, 'missing.json')], /--accounts: cannot read/],
    [['decade', 'serve', '--dir', join(dir, 's'), '--accounts', accounts, '--port', '70000'], /--port must be a whole number/],
    [['decade', 'token', '--key', key, '--ops', 'fly'], /--ops: "fly" is not one of/],
    [['decade', 'token', '--key', key, '--ops', 'get', '--weight', '65'], /--weight must be a whole number from 0 to 64/],
    [['decade', 'token', '--key', accounts, '--ops', 'get'], /is not a key file/],
    [['decade', 'keygen', '--account', 'alice', '--out', key], /exists; not overwritten/],
    [['decade', 'frobnicate'], /unknown command/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
    t.regex(r.stderr, /^beepstream: /);
    t.false(r.stderr.includes('c2lnbmF0dXJl'), 'a literal token is never echoed');
  }
});

test('decade CLI over TLS: serve --tls-cert/--tls-key, put and get with --tls-ca; without it the client is refused', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const pki = testPki();
  const { dir, key, accounts, store } = await setup(t);
  const s = await serve(store, accounts, ['--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey]);
  t.teardown(() => stop(s.child));
  t.false(s.output().includes('tokens travel in clear'));
  const tokFile = join(dir, 'tok');
  await writeFile(tokFile, await createToken({ account: 'alice', operations: ['put', 'get'] }, key.privateJwk), { mode: 0o600 });
  const file = join(dir, 'data.bin');
  const data = octets(100_000, 3);
  await writeFile(file, data);
  const tls = ['--tls-ca', pki.paths.ca, '--server-name', 'localhost'];
  const put = await run(['decade', 'put', s.address, file, '--token', `file:${tokFile}`, ...tls]);
  t.is(put.code, 0, put.stderr);
  const back = join(dir, 'back.bin');
  const get = await run(['decade', 'get', s.address, nameOf(data).name, '--out', back, '--token', `file:${tokFile}`, ...tls]);
  t.is(get.code, 0, get.stderr);
  t.true((await readFile(back)).equals(data));
  const plain = await run(['decade', 'get', s.address, nameOf(data).name, '--out', back, '--token', `file:${tokFile}`]);
  t.is(plain.code, 1);
  t.regex(plain.stderr, /NOT_AVAILABLE: the peer does not offer the DECADE profiles/);
});

test('decade CLI server to server: serve --relay-allow, get --source through it, serve --metrics counts it; no token in any output', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const dir = await tempDir(t);
  // One account, one key, configured on both servers (each checks its own token).
  const keyFile = join(dir, 'alice.key');
  const kg = await run(['decade', 'keygen', '--account', 'alice', '--out', keyFile]);
  t.is(kg.code, 0, kg.stderr);
  await writeFile(join(dir, 'accounts.json'), JSON.stringify({ accounts: [JSON.parse(kg.stdout)] }));
  const origin = await serve(join(dir, 'origin'), join(dir, 'accounts.json'));
  t.teardown(() => stop(origin.child));
  const relay = await serve(join(dir, 'relay'), join(dir, 'accounts.json'), ['--relay-allow', origin.address, '--metrics', '127.0.0.1:0']);
  t.teardown(() => stop(relay.child));
  await until('the metrics line', () => relay.lines.length >= 3);
  const metricsUrl = /^metrics on (http:\S+)$/.exec(relay.lines[2] as string)?.[1];
  t.truthy(metricsUrl, relay.lines[2]);
  const originTok = join(dir, 'origin-tok');
  const relayTok = join(dir, 'relay-tok');
  t.is((await run(['decade', 'token', '--key', keyFile, '--ops', 'put,get', '--out', originTok])).code, 0);
  t.is((await run(['decade', 'token', '--key', keyFile, '--ops', 'get,put', '--out', relayTok])).code, 0);
  const file = join(dir, 'data.bin');
  const data = octets(1_500_000, 9);
  await writeFile(file, data);
  const put = await run(['decade', 'put', origin.address, file, '--token', `file:${originTok}`, '--json']);
  t.is(put.code, 0, put.stderr);
  const { name } = JSON.parse(put.stdout) as { name: string };
  const out = join(dir, 'back.bin');
  const get = await run(['decade', 'get', relay.address, name, '--out', out, '--token', `file:${relayTok}`, '--source', origin.address, '--source-token', `file:${originTok}`]);
  t.is(get.code, 0, get.stderr);
  t.true((await readFile(out)).equals(data));
  // --source without --source-token is a usage error.
  const bad = await run(['decade', 'get', relay.address, name, '--out', out, '--token', `file:${relayTok}`, '--source', origin.address]);
  t.is(bad.code, 2);
  await until('the fetch to be counted', async () => (await (await fetch(metricsUrl as string)).text()).includes('via="origin"'));
  const metrics = await (await fetch(metricsUrl as string)).text();
  t.regex(metrics, /beepstream_decade_operations_total\{op="put",outcome="CREATED",via="origin"\} 1\n/);
  t.regex(metrics, /beepstream_decade_operations_total\{op="get",outcome="OK",via="client"\} 1\n/);
  t.regex(metrics, /beepstream_decade_octets_total\{op="put",via="origin"\} 1500000\n/);
  const tokens = [(await readFile(originTok, 'utf8')).trim(), (await readFile(relayTok, 'utf8')).trim()];
  const everything = [put, get, bad].map((r) => r.stdout + r.stderr).join('\n') + origin.output() + relay.output() + metrics;
  for (const tok of tokens) t.false(everything.includes(tok.split('.')[2] as string), 'a token was printed');
});
