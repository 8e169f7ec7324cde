import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import {
  createUserEntry,
  loadUsersFile,
  parseUsersFile,
  saveUsersFile,
  scramSha256Client,
  scramSha256Server,
  serializeUsersFile,
  type ScramCredentials,
} from '../../../src/profiles/sasl/index.js';
import { runExchange } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'beepstream-users-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const invalid = { instanceOf: BeepError, code: ErrorCodes.INVALID_ARGUMENT };

test('round trip: save, load, authenticate; no password in the file; mode 0600', async (t) => {
  const users = new Map<string, ScramCredentials>([
    ['alice', await createUserEntry('correct horse battery', 4096)],
    ['bob', await createUserEntry('tr0ub4dor&3', 5000)],
  ]);
  const path = join(dir, 'users.json');
  await saveUsersFile(path, users);
  const text = readFileSync(path, 'utf8');
  t.false(text.includes('correct horse'));
  t.false(text.includes('tr0ub4dor'));
  t.is(statSync(path).mode & 0o777, 0o600);
  const data = JSON.parse(text);
  t.is(data.version, 1);
  t.deepEqual(Object.keys(data['scram-sha-256']), ['alice', 'bob']);
  t.deepEqual(Object.keys(data['scram-sha-256'].alice).sort(), ['iterations', 'salt', 'serverKey', 'storedKey']);
  const loaded = await loadUsersFile(path);
  t.deepEqual(loaded, users);
  const r = await runExchange(
    scramSha256Client({ username: 'bob', password: 'tr0ub4dor&3' }).create({ tls: false }),
    scramSha256Server({ store: loaded }).create({ tls: false }),
  );
  t.is(r.server.status, 'success');
  // Saving again replaces the file atomically.
  users.delete('bob');
  await saveUsersFile(path, users);
  t.deepEqual([...(await loadUsersFile(path)).keys()], ['alice']);
});

test('an entry made by gsasl --mkpasswd loads and matches createUserEntry', async (t) => {
  let line: string;
  try {
    line = execFileSync('gsasl', ['--mkpasswd', '--mechanism', 'SCRAM-SHA-256', '--password', 'pencil', '--iteration-count', '4096', '--salt', 'W22ZaJ0SNY7soEsUEjb6gQ=='], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch (err) {
    t.fail(`gsasl is required ("npm test" installs it when run as root; else apt-get install -y gsasl): ${String(err)}`);
    return;
  }
  const m = /^\{SCRAM-SHA-256\}(\d+),([^,]+),([^,]+),([^,]+)$/.exec(line);
  if (m === null) return t.fail(line);
  const users = parseUsersFile({ version: 1, 'scram-sha-256': { user: { iterations: Number(m[1]), salt: m[2], storedKey: m[3], serverKey: m[4] } } });
  t.deepEqual(users.get('user'), await createUserEntry('pencil', 4096, { salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64') }));
});

test('validation errors name the bad key and never a value', async (t) => {
  const good = await createUserEntry('pw', 4096);
  const entry = {
    salt: good.salt.toString('base64'),
    iterations: 4096,
    storedKey: good.storedKey.toString('base64'),
    serverKey: good.serverKey.toString('base64'),
  };
  const file = (users: unknown, extra: object = {}) => ({ version: 1, 'scram-sha-256': users, ...extra });
  const cases: [unknown, RegExp][] = [
    [[], /top level must be a JSON object/],
    [{ 'scram-sha-256': {} }, /"version" must be 1/],
    [{ version: 2, 'scram-sha-256': {} }, /"version" must be 1/],
    [file({}, { extra: 1 }), /"extra" is not a known member/],
    [file([]), /"scram-sha-256" must be an object/],
    [file({ alice: 'x' }), /"scram-sha-256"\."alice" must be an object/],
    [file({ alice: { ...entry, password: 'hunter2' } }), /"scram-sha-256"\."alice"\."password" is not a known field/],
    [file({ alice: { ...entry, iterations: 100 } }), /"scram-sha-256"\."alice"\.iterations must be an integer/],
    [file({ alice: { ...entry, iterations: '4096' } }), /"alice"\.iterations must be an integer/],
    [file({ alice: { ...entry, iterations: undefined } }), /"alice"\.iterations must be an integer/],
    [file({ alice: { ...entry, salt: 'not base64!' } }), /"alice"\.salt must be a base64 string/],
    [file({ alice: { ...entry, salt: '' } }), /"alice"\.salt must not be empty/],
    [file({ alice: { ...entry, storedKey: 'QUJD' } }), /"alice"\.storedKey must decode to 32 octets/],
    [file({ alice: { ...entry, serverKey: undefined } }), /"alice"\.serverKey must be a base64 string/],
    [file({ 'I\u00ADX': entry }), /"I\u00adX" is not a SASLprep-normalised user name/i],
    [file({ '': entry }), /"" is not a SASLprep-normalised user name/],
  ];
  for (const [data, re] of cases) {
    const err = t.throws(() => parseUsersFile(data, 'users.json'), invalid, String(re));
    t.regex(err?.message ?? '', re);
    t.regex(err?.message ?? '', /^users file users\.json: /);
    for (const v of [entry.salt, entry.storedKey, entry.serverKey, 'hunter2']) t.false(err?.message.includes(v) ?? true);
  }
});

test('loadUsersFile: unreadable and non-JSON files name the path', async (t) => {
  const missing = join(dir, 'missing.json');
  t.regex((await t.throwsAsync(loadUsersFile(missing), invalid))?.message ?? '', /missing\.json: cannot be read/);
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{ "version": 1,');
  t.regex((await t.throwsAsync(loadUsersFile(broken), invalid))?.message ?? '', /broken\.json: is not valid JSON/);
  const ok = join(dir, 'empty-users.json');
  writeFileSync(ok, '{ "version": 1 }');
  t.is((await loadUsersFile(ok)).size, 0);
});

test('serializeUsersFile normalises names and refuses collisions', async (t) => {
  const e = await createUserEntry('pw', 4096);
  const text = serializeUsersFile(new Map([['I\u00ADX', e]]));
  t.deepEqual([...parseUsersFile(JSON.parse(text)).keys()], ['IX']);
  t.throws(() => serializeUsersFile(new Map([['IX', e], ['I\u00ADX', e]])), invalid);
  t.throws(() => serializeUsersFile(new Map([['\u0007', e]])), invalid);
  t.throws(() => serializeUsersFile(new Map([['bad', { ...e, iterations: 1 }]])), invalid);
  await t.throwsAsync(saveUsersFile(join(dir, 'no-such-dir', 'u.json'), new Map([['a', e]])), invalid);
});
