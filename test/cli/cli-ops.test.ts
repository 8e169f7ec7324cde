/**
 * The operator flags of the long-running commands, across real processes:
 * `s2cs --metrics HOST:PORT --status HOST:PORT` and `listen --metrics
 * HOST:PORT` (port 0: the bound address is printed on stderr after the
 * first stdout line) serve their endpoints and stop with the command.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { testPki } from '../helpers/certs.js';
import { BIN, run, startListener, stop } from '../helpers/cli.js';

const pki = testPki();
const usersFile = join(pki.dir, 'ops-users.json');
writeFileSync(usersFile, serializeUsersFile(new Map([['alice', await createUserEntry('ops test password', 4096)]])), { mode: 0o600 });

/** Lines of a child's stream, collected; `waitFor` resolves with the first line matching (bounded). */
function lines(stream: NodeJS.ReadableStream): { all: string[]; waitFor(re: RegExp, ms?: number): Promise<string> } {
  const all: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  createInterface({ input: stream }).on('line', (l) => {
    all.push(l);
    for (const w of [...waiters]) if (w.re.test(l)) w.resolve(l);
  });
  return {
    all,
    waitFor(re, ms = 60_000) {
      const found = all.find((l) => re.test(l));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; got ${JSON.stringify(all)}`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

test.serial('s2cs --metrics 127.0.0.1:0 --status 127.0.0.1:0 serves both, prints their addresses after the first line, and stops with it', async (t) => {
  t.timeout(120_000);
  const child: ChildProcess = spawn(process.execPath, [BIN, 's2cs', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--users', usersFile,
    '--metrics', '127.0.0.1:0', '--status', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  const out = lines(child.stdout!);
  const err = lines(child.stderr!);
  t.regex(await out.waitFor(/./), /^listening on 127\.0\.0\.1:[1-9][0-9]*$/, 'the first stdout line is the contract');
  const metricsUrl = (await err.waitFor(/^metrics on /)).replace(/^metrics on /, '');
  const statusUrl = (await err.waitFor(/^status page on /)).replace(/^status page on /, '');
  t.regex(metricsUrl, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*\/metrics$/);
  t.regex(statusUrl, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*\/$/);

  const m = await fetch(metricsUrl);
  t.is(m.status, 200);
  const text = await m.text();
  t.regex(text, /^beepstream_scistream_sessions\{state="active"\} 0$/m);
  t.regex(text, /^beepstream_sessions_open\{server="scistream-control",role="listener"\} 0$/m);
  t.regex(text, /^process_cpu_user_seconds_total /m);

  const page = await fetch(statusUrl);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  t.regex(await page.text(), /<canvas|<main id="sessions">/);
  const api = (await (await fetch(statusUrl + 'api/sessions')).json()) as { sessions: unknown[]; server: string };
  t.deepEqual(api.sessions, []);

  t.is(await stop(child), 0);
  await t.throwsAsync(fetch(metricsUrl), undefined, 'the metrics endpoint is gone with the process');
});

test.serial('listen --metrics 127.0.0.1:0 serves BEEP metrics; a bad --metrics value is a usage error', async (t) => {
  t.timeout(120_000);
  const { child, firstLine } = await startListener(['--metrics', '127.0.0.1:0']);
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  t.regex(firstLine, /^listening on 127\.0\.0\.1:[1-9][0-9]*$/);
  const err = lines(child.stderr!);
  const url = (await err.waitFor(/^metrics on /)).replace(/^metrics on /, '');
  const text = await (await fetch(url)).text();
  t.regex(text, /^beepstream_sessions_open\{server="listen",role="listener"\} 0$/m);
  t.regex(text, /^# TYPE beepstream_octets_total counter$/m);
  t.is(await stop(child), 0);

  const bad = await run(['listen', '--port', '0', '--metrics', 'nonsense']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /invalid address/);
});
