#!/usr/bin/env node
/**
 * `npm test`'s system dependencies, checked (and installed where we can) before the suite runs.
 *
 * Two test files drive programs that npm cannot install:
 *   - test/profiles/sasl/gsasl.test.ts runs GNU SASL's `gsasl` (Debian package `gsasl`) as an
 *     independent SCRAM/PLAIN implementation;
 *   - test/ops/status.test.ts loads the status page in Chromium (Debian package `chromium`)
 *     through playwright-core;
 *   - test/cli/cli-usability.test.ts types a password at a pseudo-terminal made by util-linux's
 *     `script` (Debian package `bsdutils`, normally always installed);
 *   - test/flows/jetstream-*.test.ts and test/decade/*jetstream*.test.ts
 *     run NATS JetStream servers (Debian package `nats-server`).
 * When one is missing and we run as root with apt-get available, this installs it
 * (`apt-get update`, then `apt-get install`) and says so on stderr. Otherwise it says on stderr
 * what is missing and how to install it, and those tests fail naming it (they never skip).
 * BEEPSTREAM_TEST_NO_INSTALL=1 turns the installing off; BEEPSTREAM_CHROMIUM names another
 * Chromium executable.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const say = (line) => process.stderr.write(`test-deps: ${line}\n`);

function onPath(cmd) {
  const r = spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium the status test will launch, if any (same order as test/helpers/chromium.ts). */
function chromium() {
  const candidates = [process.env.BEEPSTREAM_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p) => p !== undefined && p !== '' && executable(p));
}

const wanted = [
  { pkg: 'gsasl', present: () => onPath('gsasl') !== undefined, tests: 'test/profiles/sasl/gsasl.test.ts' },
  { pkg: 'chromium', present: () => chromium() !== undefined, tests: 'test/ops/status.test.ts' },
  // util-linux `script` (a pseudo-terminal for the password prompt test); Essential on Debian.
  { pkg: 'bsdutils', present: () => onPath('script') !== undefined, tests: 'test/cli/cli-usability.test.ts' },
  // NATS JetStream servers (one node and a 3-node cluster) behind the flows and DECADE JetStream stores.
  { pkg: 'nats-server', present: () => onPath('nats-server') !== undefined || executable('/usr/sbin/nats-server'), tests: 'test/flows/jetstream-*.test.ts, test/decade/*jetstream*.test.ts' },
];

const missing = wanted.filter((w) => !w.present());
if (missing.length === 0) process.exit(0);

const names = missing.map((m) => m.pkg);
const why = missing.map((m) => `${m.pkg} (for ${m.tests})`).join(', ');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const apt = onPath('apt-get');

if (process.env.BEEPSTREAM_TEST_NO_INSTALL === '1' || !isRoot || apt === undefined) {
  const reason = process.env.BEEPSTREAM_TEST_NO_INSTALL === '1'
    ? 'BEEPSTREAM_TEST_NO_INSTALL=1'
    : !isRoot ? 'not running as root' : 'no apt-get';
  say(`missing ${why}; not installing (${reason}).`);
  say(`install with: sudo apt-get install -y ${names.join(' ')}  — until then those tests FAIL, naming what is missing.`);
  process.exit(0);
}

say(`missing ${why}; installing with apt-get (apt-get update, then apt-get install -y ${names.join(' ')}) — this takes a minute or two once.`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// Another apt-get (another checkout's test run) may hold the lock: wait for it, bounded.
const lock = ['-o', 'DPkg::Lock::Timeout=600'];
const steps = [
  ['apt-get', [...lock, 'update', '-qq']],
  ['apt-get', [...lock, 'install', '-y', '-qq', ...names]],
];
for (const [cmd, args] of steps) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 900_000 });
  if (r.status !== 0) {
    say(`${cmd} ${args.filter((a) => !lock.includes(a)).join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}); the tests needing ${names.join(', ')} will FAIL.`);
    process.exit(0);
  }
}
const still = missing.filter((m) => !m.present());
if (still.length > 0) say(`still missing after installing: ${still.map((m) => m.pkg).join(', ')}; those tests will FAIL.`);
else say(`installed ${names.join(', ')}.`);
