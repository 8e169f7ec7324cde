/**
 * Structured logs of `listen` and `s2cs`: the `listening on` line first, then
 * JSON records with the documented fields (docs/logging.md) — sessions,
 * tuning, channels, authentication outcomes, limits, errors with their codes,
 * SciStream events — and never a password, token, key or uid, even with a
 * failed authentication in the run.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ECHO_URI, connect, createUserEntry, BeepReplyError } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { parseEndpoint } from '../../src/cli/address.js';
import { createLogger, logSciStreamEvent, scrub, REDACT_PATHS } from '../../src/cli/log.js';
import { testPki } from '../helpers/certs.js';
import { run } from '../helpers/cli.js';
import { logRecords, startServer } from '../helpers/ops-server.js';

const pki = testPki();
const PASSWORD = 'ops-log-password-91731';
const WRONG = 'ops-log-wrong-password-55';
const usersFile = join(pki.dir, 'ops-log-users.json');
writeFileSync(usersFile, serializeUsersFile(new Map([['alice', await createUserEntry(PASSWORD, 4096)]])), { mode: 0o600 });
const TLS_AUTH = ['--tls-ca', pki.paths.ca, '--server-name', 'localhost'];

/** Every way a secret could show: as is, and base64 (PLAIN carries it so). */
function leaks(text: string, secrets: string[]): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    for (const form of [s, Buffer.from(s).toString('base64').slice(0, 12), Buffer.from(`\0alice\0${s}`).toString('base64').slice(0, 16)]) {
      if (text.includes(form)) found.push(form);
    }
  }
  return found;
}

function only(records: Record<string, unknown>[], event: string): Record<string, unknown>[] {
  return records.filter((r) => r.event === event);
}

test.serial('listen logs sessions, TLS, channels and authentication outcomes as JSON lines; no password anywhere', async (t) => {
  const server = await startServer(['listen', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--require-tls', '--sasl-users', usersFile, '--require-auth', '--log-level', 'debug']);
  const outputs: string[] = [];
  try {
    t.regex(server.firstLine, /^listening on 127\.0\.0\.1:\d+$/);
    const env = { PW: PASSWORD, BAD: WRONG };
    const ok = await run(['connect', server.address, ...TLS_AUTH, '--sasl', 'SCRAM-SHA-256', '--user', 'alice', '--password', 'env:PW', '--profile', ECHO_URI, '--message', 'hello'], 60_000, { env });
    t.is(ok.code, 0, ok.stderr);
    const bad = await run(['connect', server.address, ...TLS_AUTH, '--sasl', 'SCRAM-SHA-256', '--user', 'alice', '--password', 'env:BAD', '--profile', ECHO_URI, '--message', 'x'], 60_000, { env });
    t.is(bad.code, 1);
    const plain = await run(['connect', server.address, ...TLS_AUTH, '--sasl', 'PLAIN', '--user', 'alice', '--password', 'env:PW', '--profile', ECHO_URI, '--message', 'plain'], 60_000, { env });
    t.is(plain.code, 0, plain.stderr);
    const plainBad = await run(['connect', server.address, ...TLS_AUTH, '--sasl', 'PLAIN', '--user', 'alice', '--password', 'env:BAD', '--profile', ECHO_URI, '--message', 'x'], 60_000, { env });
    t.is(plainBad.code, 1);
    for (const r of [ok, bad, plain, plainBad]) outputs.push(r.stdout, r.stderr);
  } finally {
    t.is(await server.stop(), 0);
  }
  const stdout = server.stdout();
  outputs.push(stdout, server.stderr());
  t.deepEqual(leaks(outputs.join('\n'), [PASSWORD, WRONG]), [], 'no password, in any form, in any output');

  const records = logRecords(stdout);
  for (const r of records) {
    for (const k of ['level', 'time', 'pid', 'hostname', 'msg', 'event']) t.true(k in r, `${k} in ${JSON.stringify(r)}`);
    t.regex(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  const listen = only(records, 'listen')[0];
  t.like(listen, { level: 'info', name: 'listen', address: server.address, requireAuth: true });
  t.deepEqual(listen?.security, ['tls certificate required', 'sasl SCRAM-SHA-256 PLAIN']);

  const opened = only(records, 'session.open');
  t.is(opened.length, 4);
  for (const o of opened) {
    t.is(o.role, 'listener');
    t.regex(String(o.remote), /^127\.0\.0\.1:\d+$/);
    t.is(o.local, server.address);
    t.is(typeof o.sessionId, 'number');
  }
  const tuned = only(records, 'session.tuned');
  t.is(tuned.length, 4);
  for (const x of tuned) t.like(x, { tls: true, tlsVersion: 'TLSv1.3' });
  t.regex(String(tuned[0]?.cipher), /^TLS_/);

  const auth = only(records, 'auth');
  t.deepEqual(
    auth.map((a) => [a.mechanism, a.outcome, a.identity ?? null, a.replyCode ?? null]),
    [
      ['SCRAM-SHA-256', 'success', 'alice', null],
      ['SCRAM-SHA-256', 'failure', null, 535],
      ['PLAIN', 'success', 'alice', null],
      ['PLAIN', 'failure', null, 535],
    ],
  );
  t.like(auth[1], { level: 'warn', reason: 'authentication failed' });
  for (const a of auth) t.is(a.remote, opened.find((o) => o.sessionId === a.sessionId)?.remote);

  const channels = only(records, 'channel.open');
  t.true(channels.some((c) => c.profile === ECHO_URI && c.startedBy === 'peer' && c.channel === 3));
  t.true(channels.some((c) => c.profile === 'http://iana.org/beep/SASL/SCRAM-SHA-256'));
  t.true(only(records, 'channel.close').some((c) => c.profile === ECHO_URI && c.level === 'info'));

  const closed = only(records, 'session.close');
  t.is(closed.length, 4);
  for (const c of closed) {
    t.is(c.outcome, 'released');
    t.true((c.octetsIn as number) > 0 && (c.octetsOut as number) > 0);
    t.true((c.framesIn as number) > 0 && (c.framesOut as number) > 0);
    t.is(typeof c.durationMs, 'number');
  }
  t.truthy(only(records, 'shutdown')[0]);
  t.truthy(only(records, 'stopped')[0]);
});

test.serial('listen logs limits hit and sessions terminated with their error codes; --log-level filters', async (t) => {
  const server = await startServer(['listen', '--port', '0', '--max-channels', '1']);
  try {
    const { host, port } = parseEndpoint(server.address);
    const session = await connect({ host, port });
    await session.startChannel(ECHO_URI);
    const refused = await session.startChannel(ECHO_URI).then(
      () => null,
      (e: unknown) => e,
    );
    t.true(refused instanceof BeepReplyError && refused.replyCode === 550);
    await session.close();
    // A poorly-formed frame: the listener terminates that session (RFC 3080 §2.2.1.1).
    const raw = net.connect({ host, port });
    raw.on('error', () => undefined);
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    raw.write('BOGUS 0 0 . 0 0\r\nEND\r\n');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      raw.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    await server.stop();
  }
  const records = logRecords(server.stdout());
  const limit = only(records, 'limit')[0];
  t.like(limit, { level: 'warn', limit: 'maxChannels', action: 'refused', replyCode: 550 });
  t.regex(String(limit?.detail), /too many channels/);
  const terminated = only(records, 'session.close').find((c) => c.outcome === 'terminated');
  t.like(terminated, { level: 'warn', errorCode: 'BEEP_ERR_FRAME_SYNTAX' });
  t.is(typeof terminated?.error, 'string');

  // warn: the limit and the termination are there, the info records are not.
  const quiet = await startServer(['listen', '--port', '0', '--log-level', 'warn']);
  const r = await run(['connect', quiet.address, '--profile', ECHO_URI, '--message', 'x']);
  t.is(r.code, 0);
  await quiet.stop();
  t.deepEqual(logRecords(quiet.stdout()), []);
  // silent: nothing but the first line.
  const silent = await startServer(['listen', '--port', '0', '--log-level', 'silent']);
  await run(['connect', silent.address, '--profile', ECHO_URI, '--message', 'x']);
  await silent.stop();
  t.is(silent.stdout(), `${silent.firstLine}\n`);
});

test('--log-level and --log-format: bad values are usage errors; pretty writes human lines after the first', async (t) => {
  for (const args of [['listen', '--port', '0', '--log-level', 'loud'], ['s2cs', '--port', '0', '--log-level', 'verbose'], ['listen', '--port', '0', '--log-format', 'xml']]) {
    const r = await run(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, /argument '(loud|verbose|xml)' is invalid\. Allowed choices are/);
  }
  const env = await run(['listen', '--port', '0'], 60_000, { env: { BEEPSTREAM_LISTEN_LOG_LEVEL: 'loud' } });
  t.is(env.code, 2);
  t.regex(env.stderr, /environment variable BEEPSTREAM_LISTEN_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/);
  const server = await startServer(['listen', '--port', '0', '--log-format', 'pretty']);
  await run(['connect', server.address, '--profile', ECHO_URI, '--message', 'x']);
  await server.stop();
  const lines = server.stdout().split('\n').filter(Boolean);
  t.regex(lines[0] as string, /^listening on /);
  t.regex(lines[1] as string, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: listening on /);
  t.true(lines.slice(1).every((l) => !l.startsWith('{')));
  t.true(lines.some((l) => /session \d+ released/.test(l)));
  // docs/logging.md shows this form (regenerated from a real run): both match one pattern.
  const FORM = /^\[\d\d:\d\d:\d\d\.\d{3}\] (?:INFO|WARN|DEBUG|ERROR): .+ \{"event":"[a-z.]+".*\}$|^ {4}error: ".*"$/;
  t.deepEqual(lines.slice(1).filter((l) => !FORM.test(l)), []);
  const doc = readFileSync(new URL('../../../docs/logging.md', import.meta.url), 'utf8');
  const sample = /```\n {2}listening on [^\n]*\n([\s\S]*?)\n {2}```/.exec(doc)?.[1]?.split('\n').map((l) => l.slice(2)) ?? [];
  t.true(sample.length >= 3, 'docs/logging.md has a pretty sample');
  t.deepEqual(sample.filter((l) => !FORM.test(l)), []);
});

test('the logger redacts secret-named fields and scrubs uid-like runs from free text', (t) => {
  let out = '';
  const log = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void (out += s) } });
  const uid = '0123456789abcdef0123456789abcdef';
  log.info({ event: 'x', password: 'p1', token: 't1', key: 'k1', uid, nested: { password: 'p2', pskKey: 'k2' } }, 'hello');
  const rec = JSON.parse(out) as Record<string, unknown>;
  t.like(rec, { password: '[redacted]', token: '[redacted]', key: '[redacted]', uid: '[redacted]', nested: { password: '[redacted]', pskKey: '[redacted]' } });
  for (const s of ['p1', 't1', 'k1', 'p2', 'k2', uid]) t.false(out.includes(`"${s}"`));
  t.true(REDACT_PATHS.includes('*.password'));
  t.is(scrub(`no session ${uid} here`), 'no session [redacted] here');
  // SciStream events: the tag, never the uid; failures with their §8 code.
  out = '';
  logSciStreamEvent(log)({ type: 'requested', tag: 'ab12cd34', identity: 'alice', role: 'PROD' });
  t.like(JSON.parse(out), { level: 'info', event: 'scistream.requested', tag: 'ab12cd34', identity: 'alice', role: 'PROD' });
});

const SS_PASSWORD = 'ops-log-scistream-pw-3301';

test.serial('s2cs logs SciStream events and authentication outcomes, never the uid or a password', async (t) => {
  t.timeout(180_000);
  const users = join(pki.dir, 'ops-log-s2cs-users.json');
  writeFileSync(users, serializeUsersFile(new Map([['alice', await createUserEntry(SS_PASSWORD, 4096)]])), { mode: 0o600 });
  const s2cs = await startServer(['s2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', users]);
  const app = net.createServer((c) => c.end());
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  const uid = 'c0ffee00' + '1234567890abcdef12345678';
  const auth = [...TLS_AUTH, '--user', 'alice', '--password', 'env:SS_PW'];
  const env = { SS_PW: SS_PASSWORD, SS_BAD: WRONG, SS_UID: uid };
  const outputs: string[] = [];
  try {
    const inbound = run(['s2uc', 'inbound-request', '--server', s2cs.address, ...auth, '--uid', 'env:SS_UID', '--json'], 60_000, { env });
    const hello = await run(['appctrl', 'hello', '--server', s2cs.address, ...auth, '--uid', 'env:SS_UID', '--prod-listener', `127.0.0.1:${appPort}`], 60_000, { env });
    t.is(hello.code, 0, hello.stderr);
    const inb = await inbound;
    t.is(inb.code, 0, inb.stderr);
    const rel = await run(['s2uc', 'release', '--server', s2cs.address, ...auth, '--uid', 'env:SS_UID'], 60_000, { env });
    t.is(rel.code, 0, rel.stderr);
    const bad = await run(['s2uc', 'status', '--server', s2cs.address, ...TLS_AUTH, '--user', 'alice', '--password', 'env:SS_BAD', '--uid', 'env:SS_UID'], 60_000, { env });
    t.is(bad.code, 1);
    outputs.push(hello.stderr, inb.stderr, rel.stderr, bad.stderr);
  } finally {
    app.close();
    t.is(await s2cs.stop(), 0);
  }
  const stdout = s2cs.stdout();
  const all = [...outputs, stdout, s2cs.stderr()].join('\n');
  t.deepEqual(leaks(all, [SS_PASSWORD, WRONG]), []);
  t.false(stdout.includes(uid), 'no uid in the logs');
  t.false(stdout.includes(uid.slice(0, 8)), 'nor its prefix (the tag is a hash of it)');
  t.false(s2cs.stderr().includes(uid));

  const records = logRecords(stdout);
  t.like(only(records, 'listen')[0], { name: 's2cs', address: s2cs.address });
  const ss = records.filter((r) => String(r.event).startsWith('scistream.'));
  const types = ss.map((r) => r.event);
  for (const ev of ['scistream.requested', 'scistream.hello', 'scistream.released']) t.true(types.includes(ev), `${ev} in ${types.join(', ')}`);
  for (const r of ss) {
    t.is(typeof r.tag, 'string');
    t.false(String(r.tag).length >= 32);
  }
  t.like(ss.find((r) => r.event === 'scistream.requested'), { identity: 'alice', role: 'PROD' });
  const authRecs = only(records, 'auth');
  t.true(authRecs.some((a) => a.outcome === 'success' && a.identity === 'alice' && a.mechanism === 'SCRAM-SHA-256'));
  t.true(authRecs.some((a) => a.outcome === 'failure' && a.replyCode === 535));
  t.true(only(records, 'session.tuned').every((x) => x.tls === true));
});
