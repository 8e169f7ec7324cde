/**
 * `flows serve` reloads on SIGHUP (`spec/flows.md` §5.2): a real server
 * process started from a `--config` file over TLS, a real SIGHUP, and FNUA
 * sessions that observe what changed — the users file, `creators`,
 * `sources` and `routes` apply to every later request; a change of a
 * setting that needs a restart is named in one log line and not applied; a
 * reload that fails changes nothing and the server keeps serving.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createUserEntry, scramSha256Client, serializeUsersFile, type ScramCredentials } from '../../src/profiles/index.js';
import { connectFlows, FlowsError, type FlowsClient } from '../../src/flows/index.js';
import { BIN, LISTEN_TIMEOUT_MS, STOP_TIMEOUT_MS } from '../helpers/cli.js';
import { NS, PASSWORD, pki, users } from './harness.js';

/** Lines the server writes on stderr, and a way to wait for the next one matching. */
class Lines {
  private readonly seen: string[] = [];
  private readonly waiters = new Set<{ re: RegExp; from: number; resolve: (l: string) => void }>();
  push(line: string): void {
    this.seen.push(line);
    for (const w of [...this.waiters]) {
      if (w.re.test(line)) {
        this.waiters.delete(w);
        w.resolve(line);
      }
    }
  }
  /** A mark: `next` only looks at lines after it. */
  get mark(): number {
    return this.seen.length;
  }
  next(re: RegExp, from: number, ms = 30_000): Promise<string> {
    const old = this.seen.slice(from).find((l) => re.test(l));
    if (old !== undefined) return Promise.resolve(old);
    return new Promise((resolve, reject) => {
      const w = { re, from, resolve: (l: string): void => (clearTimeout(timer), resolve(l)) };
      const timer = setTimeout(() => (this.waiters.delete(w), reject(new Error(`no line matching ${String(re)} within ${ms} ms; stderr so far:\n${this.seen.join('\n')}`))), ms);
      this.waiters.add(w);
    });
  }
  get all(): string {
    return this.seen.join('\n');
  }
}

async function client(t: import('ava').ExecutionContext, port: number, user: string): Promise<FlowsClient> {
  const c = await connectFlows({ port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: user, password: PASSWORD }) });
  t.teardown(() => c.close());
  return c;
}

test('flows serve reloads on SIGHUP: users, creators, sources and routes change for later requests; a setting needing a restart is named in one line and not applied; a failed reload changes nothing', async (t) => {
  t.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-reload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const usersFile = join(dir, 'users.json');
  const sourcesFile = join(dir, 'sources.yaml');
  const routesFile = join(dir, 'routes.yaml');
  const cfgFile = join(dir, 'flows.yaml');
  const dave = new Map<string, ScramCredentials>([...users, ['dave', await createUserEntry(PASSWORD, 4096)]]);
  const config = (creators: string, port: number): string =>
    [`port: ${port}`, `data: ${join(dir, 'flows.db')}`, `tlsCert: ${pki.paths.serverCert}`, `tlsKey: ${pki.paths.serverKey}`, 'users: users.json', `creators: ${creators}`, 'sources: sources.yaml', 'routes: routes.yaml', ''].join('\n');
  writeFileSync(usersFile, serializeUsersFile(users));
  writeFileSync(sourcesFile, 'bob: [bob]\n');
  writeFileSync(routesFile, 'alice: [carol]\n');
  writeFileSync(cfgFile, config('alice', 0));

  const child = spawn(process.execPath, [BIN, 'flows', 'serve', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }
  });
  const err = new Lines();
  createInterface({ input: child.stderr }).on('line', (l) => err.push(l));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line within ${LISTEN_TIMEOUT_MS} ms; stderr: ${err.all}`)), LISTEN_TIMEOUT_MS);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
      m ? resolve(Number(m[1])) : reject(new Error(`unexpected first line ${JSON.stringify(line)}`));
    });
  });
  await err.next(/SIGHUP reloads users, creators, sources, routes/, 0);

  // Before: bob may not create, may not claim relay.example; alice may not route to bob; dave is unknown.
  const alice = await client(t, port, 'alice');
  const bob = await client(t, port, 'bob');
  await alice.create('f', { acl: { publish: ['alice', 'bob'], subscribe: ['alice', 'bob'] } });
  const refused = async (p: Promise<unknown>, code: string): Promise<void> => {
    const e = await t.throwsAsync(p);
    t.true(e instanceof FlowsError && e.flowsCode === code, `${code} expected, got ${String(e)}`);
  };
  await refused(bob.create('by-bob'), 'NOT_AUTHORIZED');
  await refused(bob.publish('f', 'b', [{ seq: 1, type: `{${NS}}tick`, source: 'relay.example', data: 'x' }]), 'FORGED_SOURCE');
  await refused(alice.publish('f', 'a', [{ seq: 1, type: `{${NS}}tick`, source: 'alice', data: 'x', to: 'bob' }]), 'ROUTE_NOT_AUTHORIZED');
  await t.throwsAsync(client(t, port, 'dave'), undefined, 'dave is not a user yet');

  // Change every live setting and one that needs a restart (the port), then SIGHUP.
  writeFileSync(usersFile, serializeUsersFile(dave));
  writeFileSync(sourcesFile, 'bob: [bob, relay.example]\n');
  writeFileSync(routesFile, 'alice: [carol, bob]\n');
  writeFileSync(cfgFile, config('alice,bob', 1));
  let mark = err.mark;
  child.kill('SIGHUP');
  const reloaded = await err.next(/^flows: reloaded /, mark);
  t.regex(reloaded, /\(4 users\)/);
  t.regex(reloaded, /not applied until a restart: key "port" in --config/);
  t.false(/not applied until a restart:.*(users|creators|sources|routes)/.test(reloaded), 'live settings are not reported as needing a restart');

  // After: the same sessions (opened before the reload) see the new policy; dave can authenticate.
  t.is((await bob.create('by-bob')).name, 'by-bob');
  t.deepEqual((await bob.publish('f', 'b', [{ seq: 1, type: `{${NS}}tick`, source: 'relay.example', data: 'x' }])).offsets, [1]);
  t.deepEqual((await alice.publish('f', 'a', [{ seq: 1, type: `{${NS}}tick`, source: 'alice', data: 'x', to: 'bob' }])).offsets, [2]);
  const d = await client(t, port, 'dave');
  t.true(Array.isArray(await d.list()));
  // The port did not change: the server still answers where it listened.
  t.is((await alice.describe('f')).events, 2);

  // A reload that fails (a malformed users file) changes nothing: dave still authenticates, bob still creates.
  writeFileSync(usersFile, '{ not json');
  writeFileSync(cfgFile, config('alice', 0));
  mark = err.mark;
  child.kill('SIGHUP');
  const failed = await err.next(/^flows: reload (failed|ed)/, mark);
  t.regex(failed, /^flows: reload failed, settings unchanged: key "users" in --config .*users file .* is not valid JSON/);
  t.is((await bob.create('by-bob-2')).name, 'by-bob-2', 'creators unchanged by the failed reload');
  await client(t, port, 'dave');

  // A valid reload without dave: a new session of dave is refused; creators back to alice only.
  writeFileSync(usersFile, serializeUsersFile(users));
  mark = err.mark;
  child.kill('SIGHUP');
  t.regex(await err.next(/^flows: reload/, mark), /^flows: reloaded .*\(3 users\)$/);
  await t.throwsAsync(client(t, port, 'dave'), undefined, 'dave was removed');
  await refused(bob.create('by-bob-3'), 'NOT_AUTHORIZED');
  t.is(child.exitCode, null, 'the server kept running through every reload');
});
