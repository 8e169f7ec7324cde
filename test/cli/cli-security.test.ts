/**
 * The CLI with TLS and SASL: listen with certificates, PSK and a users file;
 * connect tuning and authenticating; secrets never echoed.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO_URI } from '../../src/index.js';
import { testPki } from '../helpers/certs.js';
import { run, startListener, stop } from '../helpers/cli.js';

const pki = testPki();
const PASSWORD = 'correct horse battery';
const pskKey = randomBytes(32).toString('hex');
const usersFile = join(pki.dir, 'users.json');
const pskFile = join(pki.dir, 'psk.txt');
const pwFile = join(pki.dir, 'pw.txt');
writeFileSync(pskFile, `# test identities\nsite-a:${pskKey}\n`);
writeFileSync(pwFile, PASSWORD + '\n');

/** Run with extra environment variables (and standard input). */
function runEnv(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(args, 20000, input === undefined ? { env } : { env, input });
}

test.serial('users add reads the password from stdin and stores only salted keys, mode 0600', async (t) => {
  const r = await runEnv(['users', 'add', usersFile, 'alice', '--iterations', '4096'], {}, PASSWORD + '\n');
  t.is(r.code, 0, r.stderr);
  const text = readFileSync(usersFile, 'utf8');
  t.false(text.includes(PASSWORD), 'no plaintext password');
  const parsed = JSON.parse(text) as { 'scram-sha-256': Record<string, { salt: string; storedKey: string; serverKey: string; iterations: number }> };
  t.deepEqual(Object.keys(parsed['scram-sha-256']), ['alice']);
  t.is(parsed['scram-sha-256'].alice?.iterations, 4096);
  t.is(statSync(usersFile).mode & 0o777, 0o600);
  const listed = await run(['users', 'list', usersFile]);
  t.is(listed.stdout.trim(), 'alice');
  const bad = await run(['users', 'add', usersFile, 'bob', '--iterations', '100', '--password', `file:${pwFile}`]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--iterations must be at least 4096/);
});

test.serial('listen with TLS required and SCRAM: connect tunes, authenticates and echoes; secrets never printed', async (t) => {
  const { child, address } = await startListener(['--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--require-tls', '--sasl-users', usersFile, '--require-auth']);
  try {
    const plain = await run(['connect', address, '--profile', ECHO_URI, '--message', 'x']);
    t.is(plain.code, 1);
    t.regex(plain.stderr, /^beepstream: error 538: /);
    const ok = await runEnv(['connect', address, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--sasl', 'SCRAM-SHA-256', '--user', 'alice', '--password', 'env:BEEP_PW', '--profile', ECHO_URI, '--message', 'hello'], { BEEP_PW: PASSWORD });
    t.is(ok.code, 0, ok.stderr);
    t.regex(ok.stdout, /^tls: TLSv1\.3 /m);
    t.regex(ok.stdout, /authenticated with SCRAM-SHA-256 as alice/);
    t.regex(ok.stdout, /RPY: hello/);
    t.false(ok.stdout.includes(PASSWORD) || ok.stderr.includes(PASSWORD));
    t.false(ok.stderr.includes('warning'), 'no warning for env: secrets');
    const wrong = await runEnv(['connect', address, '--tls-ca', pki.paths.ca, '--sasl', 'SCRAM-SHA-256', '--user', 'alice', '--password', 'file:/dev/null', '--profile', ECHO_URI, '--message', 'x'], {});
    t.is(wrong.code, 2, 'an empty password file is a usage error');
    t.regex(wrong.stderr, /--password: "\/dev\/null" is empty/);
    const bad = await runEnv(['connect', address, '--tls-ca', pki.paths.ca, '--sasl', 'SCRAM-SHA-256', '--user', 'alice', '--password', 'env:BEEP_PW', '--profile', ECHO_URI, '--message', 'x'], { BEEP_PW: 'not the password' });
    t.is(bad.code, 1);
    t.regex(bad.stderr, /^beepstream: error 535: /);
    t.false(bad.stderr.includes('not the password'));
    const noAuth = await run(['connect', address, '--tls-ca', pki.paths.ca, '--profile', ECHO_URI, '--message', 'x']);
    t.is(noAuth.code, 1);
    t.regex(noAuth.stderr, /^beepstream: error 530: /);
  } finally {
    t.is(await stop(child), 0);
  }
});

test.serial('TLS-PSK from the CLI: the right key works, a wrong key fails the handshake; a literal key draws a warning', async (t) => {
  const { child, address } = await startListener(['--tls-psk-file', pskFile, '--require-tls']);
  try {
    const ok = await runEnv(['connect', address, '--psk-identity', 'site-a', '--psk-key', 'env:K', '--profile', ECHO_URI, '--message', 'psk'], { K: pskKey });
    t.is(ok.code, 0, ok.stderr);
    t.regex(ok.stdout, /tls: TLSv1\.3 \S+ psk site-a/);
    t.regex(ok.stdout, /RPY: psk/);
    const literal = await run(['connect', address, '--psk-identity', 'site-a', '--psk-key', randomBytes(32).toString('hex'), '--profile', ECHO_URI, '--message', 'x']);
    t.is(literal.code, 1);
    t.regex(literal.stderr, /warning: --psk-key given literally is visible in the process listing/);
    t.regex(literal.stderr, /TLS handshake failed/);
  } finally {
    await stop(child);
  }
});

test('bad security arguments print what is wrong and exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['listen', '--port', '0', '--tls-cert', pki.paths.serverCert], /--tls-cert and --tls-key go together/],
    [['listen', '--port', '0', '--require-tls'], /--require-tls needs/],
    [['listen', '--port', '0', '--jwks', '/nonexistent.json'], /--jwks needs --issuer and --audience/],
    [['listen', '--port', '0', '--sasl-users', '/nonexistent/users.json'], /--sasl-users/],
    [['listen', '--port', '0', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], /cannot read/],
    [['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--sasl', 'MD5'], /--sasl: expected one of/],
    [['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--sasl', 'PLAIN', '--user', 'a'], /needs --user and --password/],
    [['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--psk-identity', 'a'], /go together/],
    [['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--psk-identity', 'a', '--psk-key', 'env:NOPE_NOT_SET'], /NOPE_NOT_SET is not set/],
    [['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--psk-identity', 'a', '--psk-key', 'file:/nonexistent'], /cannot read/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, pattern, args.join(' '));
  }
});
