/**
 * `beepstream flows …` as a user runs it: usage errors exit 2 with one clear
 * line; a real `flows serve` over TLS with a publisher and two subscribers
 * (one filtered), JSON lines out; refusals exit 1 with the stable code.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/cli.js';
import { PASSWORD, pki } from './harness.js';
import { startServe, writeUsers } from './process.js';

function tmp(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const ENV = { FLOWS_PW: PASSWORD };

test('CLI usage errors: bad arguments exit 2 with one line naming what is wrong, before anything connects', async (t) => {
  const dir = tmp(t);
  const users = writeUsers(dir);
  const auth = ['--user', 'alice', '--password', 'env:FLOWS_PW', '--server', '127.0.0.1:9'];
  const cases: [string[], RegExp][] = [
    [['flows', 'serve', '--port', '0', '--users', users, '--data', join(dir, 'x.db')], /requires TLS: give --tls-cert and --tls-key/],
    [['flows', 'serve', '--port', '0', '--insecure', '--data', join(dir, 'x.db')], /--users is required/],
    [['flows', 'serve', '--port', 'nope', '--insecure', '--users', users], /invalid port "nope"/],
    [['flows', 'subscribe', 'f', '--from', 'yesterday', ...auth], /invalid --from "yesterday"/],
    [['flows', 'subscribe', 'f', '--from', 'acked', ...auth], /--from acked needs --consumer/],
    [['flows', 'subscribe', 'f', '--type', 'created', ...auth], /invalid --type "created"/],
    [['flows', 'subscribe', 'f', '--limit', '0', ...auth], /invalid --limit "0"/],
    [['flows', 'create', 'bad name!', ...auth], /invalid flow name "bad name!"/],
    [['flows', 'publish', 'f', '--producer', 'p', '--batch', '0', ...auth], /invalid --batch "0"/],
    [['flows', 'describe', 'f', '--server', '127.0.0.1:9'], /--user and --password are required/],
    [['flows', 'describe', 'f', '--server', 'nowhere', '--user', 'a', '--password', 'env:FLOWS_PW'], /invalid address "nowhere"/],
    [['flows', 'subscribe'], /missing required argument 'flow'/],
    [['flows', 'publish', 'f', ...auth], /required option '--producer <id>' not specified/],
    [['flows', 'acl', 'f', ...auth], /give at least one --set, --grant or --revoke/],
    [['flows', 'acl', 'f', '--grant', 'read=bob', ...auth], /--grant "read=bob": expected publish=IDS, subscribe=IDS or admin=IDS/],
    [['flows', 'acl', 'f', '--set', 'admin=', ...auth], /--set admin: expected a comma-separated list/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args, undefined, { env: ENV });
    t.is(r.code, 2, `${args.join(' ')} exits 2; stderr: ${r.stderr}`);
    t.regex(r.stderr, message, args.join(' '));
    t.regex(r.stderr, /^beepstream: /, 'one prefix');
    t.is(r.stdout, '');
  }
});

test('CLI: flows serve over TLS, a publisher from stdin, two subscribers (one filtered) printing JSON lines; a refusal exits 1 with its stable code', async (t) => {
  t.timeout(180_000);
  const dir = tmp(t);
  const serve = await startServe(t, dir, join(dir, 'data', 'flows.db'));
  const common = ['--server', `127.0.0.1:${serve.port}`, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--password', 'env:FLOWS_PW'];
  const as = (user: string): string[] => [...common, '--user', user];

  const created = await run(['flows', 'create', 'orders', '--description', 'commandes', '--subscribe', 'alice,bob', '--json', ...as('alice')], undefined, { env: ENV });
  t.is(created.code, 0, created.stderr);
  t.like(JSON.parse(created.stdout), { name: 'orders', description: 'commandes', events: 0, acl: { publish: ['alice'], subscribe: ['alice', 'bob'], admin: ['alice'] } });

  const lines = [
    JSON.stringify({ type: '{urn:example:shop}placed', data: 'commande n° 1 — 3 × café' , lang: 'fr' }),
    JSON.stringify({ type: '{urn:example:shop}paid', data64: Buffer.from([0, 1, 2, 255]).toString('base64') }),
    '',
    JSON.stringify({ type: '{urn:example:shop}placed', data: '注文 2' }),
  ].join('\n');
  const published = await run(['flows', 'publish', 'orders', '--producer', 'web-1', '--json', ...as('alice')], undefined, { env: ENV, input: lines });
  t.is(published.code, 0, published.stderr);
  t.like(JSON.parse(published.stdout), { events: 3, duplicates: 0, firstOffset: 1, lastOffset: 3, lastSeq: 3 });

  // From a file, the producer continues its numbering.
  const file = join(dir, 'more.jsonl');
  writeFileSync(file, `${JSON.stringify({ type: '{urn:example:shop}shipped', data: 'parcel' })}\n`);
  const more = await run(['flows', 'publish', 'orders', '--producer', 'web-1', '--file', file, ...as('alice')], undefined, { env: ENV });
  t.is(more.code, 0, more.stderr);
  t.regex(more.stdout, /^published 1 events to orders \(offsets 4–4\)/);

  const everything = await run(['flows', 'subscribe', 'orders', '--from', 'start', '--no-follow', ...as('bob')], undefined, { env: ENV });
  t.is(everything.code, 0, everything.stderr);
  const events = everything.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(events.map((e) => e.offset), [1, 2, 3, 4]);
  t.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4]);
  t.like(events[0], { type: '{urn:example:shop}placed', data: 'commande n° 1 — 3 × café', lang: 'fr', source: 'alice', publisher: 'alice', producer: 'web-1' });
  t.like(events[1], { data64: 'AAEC/w==', contentType: 'application/octet-stream' });

  const filtered = await run(['flows', 'subscribe', 'orders', '--from', '1', '--no-follow', '--type', '{urn:example:shop}placed', '--consumer', 'bob-1', ...as('bob')], undefined, { env: ENV });
  t.is(filtered.code, 0, filtered.stderr);
  t.deepEqual(filtered.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { data: string }).data), ['commande n° 1 — 3 × café', '注文 2']);
  // The consumer acknowledged what it printed: resuming gets nothing more, then --limit stops after one.
  const resumed = await run(['flows', 'subscribe', 'orders', '--from', 'acked', '--consumer', 'bob-1', '--no-follow', ...as('bob')], undefined, { env: ENV });
  t.is(resumed.code, 0, resumed.stderr);
  t.is(resumed.stdout, '');
  const limited = await run(['flows', 'subscribe', 'orders', '--from', 'start', '--limit', '1', ...as('bob')], undefined, { env: ENV });
  t.is(limited.code, 0, limited.stderr);
  t.is(limited.stdout.trim().split('\n').length, 1);

  // bob may subscribe but not publish: exit 1, the stable code on one line.
  const refused = await run(['flows', 'publish', 'orders', '--producer', 'b', ...as('bob')], undefined, { env: ENV, input: `${JSON.stringify({ type: '{urn:x}y', data: 'z' })}\n` });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^beepstream: error 537: NOT_AUTHORIZED: "bob" may not publish flow "orders"\n$/);
  // A malformed input line: exit 2, naming the line.
  const badLine = await run(['flows', 'publish', 'orders', '--producer', 'web-1', ...as('alice')], undefined, { env: ENV, input: `${JSON.stringify({ type: '{urn:x}y', data: 'ok' })}\n{oops\n` });
  t.is(badLine.code, 2);
  t.regex(badLine.stderr, /line 2: not valid JSON/);
  // A wrong password: exit 1, authentication failed.
  const wrong = await run(['flows', 'list', ...common, '--user', 'alice'], undefined, { env: { FLOWS_PW: 'wrong' } });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /error 535/);

  // The admin changes the ACL: bob may publish now, and is no longer a subscriber; bob (not an admin) may not change it.
  const changed = await run(['flows', 'acl', 'orders', '--grant', 'publish=bob', '--revoke', 'subscribe=bob', '--json', ...as('alice')], undefined, { env: ENV });
  t.is(changed.code, 0, changed.stderr);
  t.like(JSON.parse(changed.stdout), { name: 'orders', acl: { publish: ['alice', 'bob'], subscribe: ['alice'], admin: ['alice'] } });
  const byBob = await run(['flows', 'publish', 'orders', '--producer', 'b', ...as('bob')], undefined, { env: ENV, input: `${JSON.stringify({ type: '{urn:x}y', data: 'z' })}\n` });
  t.is(byBob.code, 0, byBob.stderr);
  const notAdmin = await run(['flows', 'acl', 'orders', '--set', 'admin=bob', ...as('bob')], undefined, { env: ENV });
  t.is(notAdmin.code, 1);
  t.regex(notAdmin.stderr, /^beepstream: error 537: NOT_AUTHORIZED/);
  const noAdminLeft = await run(['flows', 'acl', 'orders', '--revoke', 'admin=alice', ...as('alice')], undefined, { env: ENV });
  t.is(noAdminLeft.code, 1);
  t.regex(noAdminLeft.stderr, /^beepstream: error \d{3}: BAD_REQUEST: .*at least one admin/);

  const listed = await run(['flows', 'list', '--json', ...as('alice')], undefined, { env: ENV });
  t.is(listed.code, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((f) => f.name), ['orders']);
  const deleted = await run(['flows', 'delete', 'orders', ...as('alice')], undefined, { env: ENV });
  t.is(deleted.code, 0, deleted.stderr);
  const gone = await run(['flows', 'describe', 'orders', ...as('alice')], undefined, { env: ENV });
  t.is(gone.code, 1);
  t.regex(gone.stderr, /error 550: FLOW_NOT_FOUND/);
});

test('CLI: flows serve --config (YAML) sets every option, --print-config shows the effective values, an unknown key exits 2', async (t) => {
  t.timeout(180_000);
  const dir = tmp(t);
  const users = writeUsers(dir);
  const cfg = join(dir, 'flows.yaml');
  writeFileSync(cfg, `port: 0\ninsecure: true\nusers: ${users}\ndata: ${join(dir, 'cfg.db')}\ncreators: alice\n`);
  const printed = await run(['flows', 'serve', '--config', cfg, '--print-config', 'json']);
  t.is(printed.code, 0, printed.stderr);
  t.regex(printed.stdout, /"insecure"/);
  t.regex(printed.stdout, /cfg\.db/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'port: 0\nbogus: 1\n');
  const refused = await run(['flows', 'serve', '--config', bad]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /unknown key "bogus"/);

  // Served from the file alone: creators restricted to alice.
  const { spawn } = await import('node:child_process');
  const { createInterface } = await import('node:readline');
  const { BIN } = await import('../helpers/cli.js');
  const child = spawn(process.execPath, [BIN, 'flows', 'serve', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no listening line')), 60_000);
    createInterface({ input: child.stdout }).once('line', (l) => (clearTimeout(timer), resolve(l)));
  });
  const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
  t.truthy(m, line);
  const base = ['--server', `127.0.0.1:${m?.[1] ?? 0}`, '--insecure', '--password', 'env:FLOWS_PW'];
  const byBob = await run(['flows', 'create', 'x', ...base, '--user', 'bob'], undefined, { env: ENV });
  t.is(byBob.code, 1);
  t.regex(byBob.stderr, /error 537: NOT_AUTHORIZED: "bob" may not create flows/);
  const byAlice = await run(['flows', 'create', 'x', ...base, '--user', 'alice'], undefined, { env: ENV });
  t.is(byAlice.code, 0, byAlice.stderr);
});
