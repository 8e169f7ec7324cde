/**
 * `beepstream decade serve` on the JetStream store against a real
 * nats-server that requires a user and password: the password reaches the
 * server from an environment variable or a file (given as env:NAME /
 * file:PATH, or as the BEEPSTREAM_DECADE_NATS_PASSWORD variable), never from
 * the command line; it appears in no output line and not in the process
 * listing; a wrong or missing password is refused by NATS (exit 1), a
 * literal password flag or a malformed credentials file by serve (exit 2).
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { createToken, nameOf } from '../../src/decade/index.js';
import { run, stop } from '../helpers/cli.js';
import { startNats, type NatsCluster } from '../helpers/nats.js';
import { accountsFile, octets, serveProcess, sha } from '../helpers/decade.js';

const USER = 'decade-store';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

let nats: NatsCluster;
const cleanups: (() => Promise<void>)[] = [];
test.before(async () => {
  nats = await startNats((fn) => cleanups.push(fn), 1, { auth: { user: USER, password: PASSWORD } });
});
test.after.always(async () => {
  for (const fn of cleanups) await fn();
});

async function setup(t: ExecutionContext) {
  const { dir, key, accounts } = await accountsFile(t);
  const base = ['--port', '0', '--accounts', accounts, '--store', 'jetstream', '--nats', nats.servers.join(',')];
  return { dir, key, base };
}

/** The command line of a running process as `ps` shows it. */
async function cmdline(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
}

test('the nats-server requires its user: a client without credentials is refused (the test server really checks)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const err = await t.throwsAsync(connect({ servers: nats.servers, reconnect: false }));
  t.regex(String(err?.message), /authorization/i);
  const nc = await connect({ servers: nats.servers, user: USER, pass: PASSWORD, reconnect: false });
  await nc.close();
});

test('decade serve --nats-user with --nats-password env:NAME: put and get work; the password is in no output and not in the process listing', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { dir, key, base } = await setup(t);
  const s = await serveProcess([...base, '--bucket', `auth${process.pid}a`, '--nats-user', USER, '--nats-password', 'env:DECADE_NATS_PW'], { DECADE_NATS_PW: PASSWORD });
  t.teardown(() => stop(s.child));
  t.regex(s.lines[1] as string, new RegExp(`^store jetstream .* \\(user ${USER}\\): swept 0 interrupted uploads`));
  t.false((await cmdline(s.child.pid as number)).includes(PASSWORD), 'not in the process listing');
  const tok = join(dir, 'tok');
  await writeFile(tok, await createToken({ account: 'alice', operations: ['put', 'get', 'stat'] }, key.privateJwk), { mode: 0o600 });
  const data = octets(700_000, 3);
  const file = join(dir, 'data.bin');
  await writeFile(file, data);
  const put = await run(['decade', 'put', s.address, file, '--token', `file:${tok}`, '--json']);
  t.is(put.code, 0, put.stderr);
  const back = join(dir, 'back.bin');
  const get = await run(['decade', 'get', s.address, nameOf(data).name, '--out', back, '--token', `file:${tok}`]);
  t.is(get.code, 0, get.stderr);
  t.is(sha(await readFile(back)), sha(data));
  await stop(s.child);
  t.false(s.output().includes(PASSWORD), 'not in any line serve printed');
});

test('the password from a file (file:PATH in a config file) or as BEEPSTREAM_DECADE_NATS_PASSWORD; --print-config masks it', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { dir, base } = await setup(t);
  const pw = join(dir, 'nats-password');
  await writeFile(pw, `${PASSWORD}\n`, { mode: 0o600 });
  const config = join(dir, 'serve.yaml');
  await writeFile(config, `natsUser: ${USER}\nnatsPassword: file:nats-password\nbucket: auth${process.pid}b\n`);
  const a = await serveProcess([...base, '--config', config]);
  t.teardown(() => stop(a.child));
  t.regex(a.lines[1] as string, /\(user decade-store\): swept/);
  await stop(a.child);
  const b = await serveProcess([...base, '--bucket', `auth${process.pid}c`], { BEEPSTREAM_DECADE_NATS_USER: USER, BEEPSTREAM_DECADE_NATS_PASSWORD: PASSWORD });
  t.teardown(() => stop(b.child));
  t.regex(b.lines[1] as string, /\(user decade-store\): swept/);
  await stop(b.child);
  t.false(a.output().includes(PASSWORD) || b.output().includes(PASSWORD));
  const printed = await run(['decade', 'serve', ...base, '--print-config', 'json'], undefined, { env: { BEEPSTREAM_DECADE_NATS_USER: USER, BEEPSTREAM_DECADE_NATS_PASSWORD: PASSWORD } });
  t.is(printed.code, 0, printed.stderr);
  t.false(printed.stdout.includes(PASSWORD), 'masked');
  t.like(JSON.parse(printed.stdout) as Record<string, unknown>, { natsUser: USER, natsPassword: '***' });
});

test('a wrong or missing password: NATS refuses, serve exits 1 without showing the password; a literal --nats-password or a bad credentials file exits 2', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { dir, base } = await setup(t);
  const wrong = `wrong-${randomBytes(8).toString('hex')}`;
  const r1 = await run(['decade', 'serve', ...base, '--nats-user', USER, '--nats-password', 'env:DECADE_NATS_PW'], undefined, { env: { DECADE_NATS_PW: wrong } });
  t.is(r1.code, 1, r1.stderr);
  t.regex(r1.stderr, /cannot connect to NATS/);
  t.false(r1.stderr.includes(wrong) || r1.stdout.includes(wrong));
  const r2 = await run(['decade', 'serve', ...base]);
  t.is(r2.code, 1, r2.stderr);
  t.regex(r2.stderr, /cannot connect to NATS/);
  const r3 = await run(['decade', 'serve', ...base, '--nats-user', USER, '--nats-password', PASSWORD]);
  t.is(r3.code, 2, r3.stderr);
  t.regex(r3.stderr, /--nats-password: give env:NAME or file:PATH/);
  t.false(r3.stderr.includes(PASSWORD) || r3.stdout.includes(PASSWORD), 'the refusal does not repeat it');
  const r4 = await run(['decade', 'serve', ...base, '--nats-user', USER]);
  t.is(r4.code, 2);
  t.regex(r4.stderr, /--nats-user needs --nats-password/);
  const notCreds = join(dir, 'x.creds');
  await writeFile(notCreds, 'user: nobody\n');
  const r5 = await run(['decade', 'serve', ...base, '--nats-creds', notCreds]);
  t.is(r5.code, 2);
  t.regex(r5.stderr, /--nats-creds: .* is not a NATS credentials file/);
  const r6 = await run(['decade', 'serve', '--port', '0', '--accounts', join(dir, 'accounts.json'), '--dir', dir, '--nats-user', USER, '--nats-password', 'env:X']);
  t.is(r6.code, 2);
  t.regex(r6.stderr, /--nats-user goes with --store jetstream/);
});
