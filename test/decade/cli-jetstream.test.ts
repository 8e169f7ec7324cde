/**
 * `beepstream decade serve --config FILE` on the NATS JetStream object store,
 * as a real process against a real nats-server: put and get through the CLI
 * with the object checked in the bucket through @nats-io/obj; kill -9 in the
 * middle of a PUT leaves no object and, after a restart, no chunk in the
 * bucket; a wrong store configuration exits 2, an unreachable NATS exits 1.
 */
import test, { type ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { createToken, nameOf } from '../../src/decade/index.js';
import { run, stop } from '../helpers/cli.js';
import { startNats, type NatsCluster } from '../helpers/nats.js';
import { freePort } from '../helpers/ports.js';
import { accountsFile, connectClient, heldPut, killNine, octets, rejectsWith, serveProcess, sha, until } from '../helpers/decade.js';

let nats: NatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;
const cleanups: (() => Promise<void>)[] = [];
test.before(async () => {
  nats = await startNats((fn) => cleanups.push(fn), 1);
  nc = await connect({ servers: nats.servers });
  jsm = await jetstreamManager(nc);
});
test.after.always(async () => {
  await nc?.close();
  for (const fn of cleanups) await fn();
});

/** A directory with an accounts file, and a config file for `serve` on bucket `bucket`. */
async function setup(t: ExecutionContext, bucket: string) {
  const { dir, key } = await accountsFile(t);
  const config = join(dir, 'serve.yaml');
  // accounts: relative to the config file's directory.
  await writeFile(config, `store: jetstream\nnats: ${nats.servers.join(',')}\nbucket: ${bucket}\naccounts: accounts.json\nport: 0\n`);
  return { dir, key, config };
}

async function chunkMessages(bucket: string): Promise<{ messages: number; bytes: number }> {
  const si = await jsm.streams.info(`OBJ_${bucket}`, { subjects_filter: `$O.${bucket}.C.>` });
  return { messages: Object.values(si.state.subjects ?? {}).reduce((a, n) => a + n, 0), bytes: si.state.bytes };
}

test('decade serve --config with store: jetstream: put and get through the CLI; the object is in the bucket under its digest', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const bucket = `cli${process.pid}a`;
  const { dir, key, config } = await setup(t, bucket);
  const printed = await run(['decade', 'serve', '--config', config, '--print-config', 'json']);
  t.is(printed.code, 0, printed.stderr);
  t.like(JSON.parse(printed.stdout) as Record<string, unknown>, { store: 'jetstream', bucket, nats: nats.servers.join(',') });
  const s = await serveProcess(['--config', config]);
  t.teardown(() => stop(s.child));
  t.regex(s.lines[1] as string, new RegExp(`^store jetstream .* bucket ${bucket}: swept 0 interrupted uploads \\(0 octets\\) and 0 orphan objects$`));
  const tok = join(dir, 'tok');
  await writeFile(tok, await createToken({ account: 'alice', operations: ['put', 'get', 'stat'] }, key.privateJwk), { mode: 0o600 });
  const file = join(dir, 'data.bin');
  const data = octets(1_300_000, 8);
  await writeFile(file, data);
  const put = await run(['decade', 'put', s.address, file, '--token', `file:${tok}`, '--json']);
  t.is(put.code, 0, put.stderr);
  t.like(JSON.parse(put.stdout) as Record<string, unknown>, { name: nameOf(data).name, size: data.length, new: true });
  const back = join(dir, 'back.bin');
  const get = await run(['decade', 'get', s.address, nameOf(data).name, '--out', back, '--token', `file:${tok}`]);
  t.is(get.code, 0, get.stderr);
  t.is(sha(await readFile(back)), sha(data));
  const os = await new Objm(nc).open(bucket);
  t.is(sha((await os.getBlob(nameOf(data).hex)) as Uint8Array), sha(data), 'the bucket holds it, its digest checked by @nats-io/obj');
});

test('decade serve on jetstream: kill -9 in the middle of a PUT leaves no object; after a restart no chunk is left in the bucket', async (t) => {
  t.timeout(180_000);
  const bucket = `cli${process.pid}b`;
  const { key, config } = await setup(t, bucket);
  const first = await serveProcess(['--config', config]);
  t.teardown(() => stop(first.child));
  const token = await createToken({ account: 'alice', operations: ['put', 'get', 'stat'] }, key.privateJwk);
  const data = octets(4 * 1024 * 1024, 7);
  const { name } = nameOf(data);
  const c = await connectClient(t, { port: first.port });
  const { done: put } = heldPut(t, c, token, name, data, 1024 * 1024);
  await until('the first MiB in the bucket', async () => (await chunkMessages(bucket)).messages >= 4);
  await killNine(first.child);
  t.is(first.child.signalCode, 'SIGKILL');
  await t.throwsAsync(put);
  const left = await chunkMessages(bucket);
  t.is(left.messages, 4, 'before the restart the interrupted upload\'s chunks are there, under no name');
  t.deepEqual((await (await new Objm(nc).open(bucket)).list()).map((i) => i.name), [], 'no object visible');
  const second = await serveProcess(['--config', config]);
  t.teardown(() => stop(second.child));
  const swept = /swept 1 interrupted uploads \((\d+) octets\) and 0 orphan objects$/.exec(second.lines[1] as string);
  t.truthy(swept, second.lines[1]);
  t.true(Number(swept?.[1]) >= 1024 * 1024, 'the space the chunks held was given back');
  t.deepEqual(await chunkMessages(bucket), { messages: 0, bytes: 0 });
  const c2 = await connectClient(t, { port: second.port });
  await rejectsWith(t, c2.get(token, name), 'NOT_FOUND');
  t.true((await c2.put(token, data)).fresh, 'the store works: the same PUT, whole, goes through');
});

test('decade serve store configuration errors exit 2; an unreachable NATS exits 1 with NOT_AVAILABLE', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { dir } = await setup(t, 'unused');
  const accounts = join(dir, 'accounts.json');
  const cases: [string[], RegExp][] = [
    [['--accounts', accounts, '--store', 'jetstream'], /--store jetstream needs --nats/],
    [['--accounts', accounts, '--store', 's3'], /--store must be file or jetstream, not "s3"/],
    [['--accounts', accounts], /--store file needs --dir/],
    [['--accounts', accounts, '--store', 'jetstream', '--nats', '127.0.0.1:4222', '--dir', dir], /--dir goes with --store file/],
    [['--accounts', accounts, '--store', 'jetstream', '--nats', '127.0.0.1:4222', '--bucket', 'a.b'], /bucket name/],
    [['--accounts', accounts, '--store', 'jetstream', '--nats', '127.0.0.1:4222', '--replicas', '2'], /replicas must be 1, 3 or 5/],
    [['--dir', dir, '--store', 'file'], /--accounts is required/],
  ];
  for (const [args, message] of cases) {
    const r = await run(['decade', 'serve', '--port', '0', ...args]);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
  }
  const port = await freePort();
  const r = await run(['decade', 'serve', '--port', '0', '--accounts', accounts, '--store', 'jetstream', '--nats', `127.0.0.1:${port}`]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /NOT_AVAILABLE: cannot open the store \(jetstream 127\.0\.0\.1:\d+ bucket decade\): cannot connect to NATS/);
});
