/**
 * Interoperability with an independent implementation: GNU SASL's `gsasl` command
 * (Debian package `gsasl`; `npm test`'s pretest step, scripts/test-deps.mjs, installs it when
 * missing and it can). Without `--connect`, gsasl talks
 * on stdin/stdout: it prints the mechanism name, then one base64 line per message it
 * sends, and reads one base64 line per message it receives (prompts go to stderr).
 * We bridge those lines to our mechanisms, in both directions.
 *
 * If gsasl is missing these tests FAIL (they do not skip), naming what to install.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import {
  SaslReasons,
  anonymousServer,
  createUserEntry,
  plainClient,
  plainServer,
  scramSha256Client,
  scramSha256Server,
  type SaslClientMechanism,
  type SaslContext,
  type SaslServerStep,
  type ScramCredentials,
} from '../../../src/profiles/sasl/index.js';
import { assertFailure } from './helpers.js';

const LINE_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 30_000;

const probe = spawnSync('gsasl', ['--version'], { encoding: 'utf8', timeout: 10_000 });
const missing =
  probe.error !== undefined || probe.status !== 0
    ? `gsasl is not installed or does not run (${probe.error?.message ?? `exit ${probe.status}`}): ` +
      'install the Debian package "gsasl" (apt-get install -y gsasl); `npm test` does this itself when run as root'
    : undefined;

/** What gsasl did after printing a data line. */
type GsaslState = 'more' | 'finished' | 'exited';

/**
 * One gsasl process. gsasl's loop (src/gsasl.c) prints each message as a stdout
 * line and then, on stderr, either the prompt "Enter base64 authentication data
 * from …" (it wants another line) or "… authentication finished (… trusted)"; so
 * counting prompts tells us, without any timing guess, what each line means.
 */
class Gsasl {
  readonly args: string[];
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private dataLinesRead = 0;
  private notify: (() => void) | undefined;
  private stderrText = '';
  private exitInfo: { code: number | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(args: string[]) {
    this.args = args;
    this.proc = spawn('gsasl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d: string) => {
      this.stderrText += d;
      this.notify?.();
    });
    this.proc.stdin.on('error', () => undefined); // EPIPE if gsasl already quit
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      // gsasl prints its channel-binding prompt on stdout, in front of the next data line.
      this.lines.push(line.replace(/^Enter base64 encoded [a-z-]+ channel binding: /, ''));
      this.notify?.();
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('error', (err) => {
        this.stderrText += `spawn error: ${err.message}`;
        this.exitInfo = { code: null };
        resolve();
        this.notify?.();
      });
      this.proc.on('close', (code) => {
        this.exitInfo = { code };
        resolve();
        this.notify?.();
      });
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  private get prompts(): number {
    return this.stderrText.split('Enter base64 authentication data from').length - 1;
  }

  private get finished(): boolean {
    return /authentication finished/.test(this.stderrText);
  }

  /** Waits (bounded) until `ready()` returns a value. */
  private async until<T>(what: string, ready: () => T | undefined, timeoutMs = LINE_TIMEOUT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = ready();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.proc.kill('SIGKILL');
        throw new Error(`timed out waiting for ${what} from gsasl ${this.args.join(' ')}; stderr:\n${this.stderrText}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.notify = () => {
          clearTimeout(timer);
          this.notify = undefined;
          resolve();
        };
      });
    }
  }

  /** The first stdout line: the mechanism name. */
  async mechanism(): Promise<string | undefined> {
    return this.until('the mechanism name', () => (this.lines.length > 0 ? [this.lines.shift()] : this.exitInfo ? [undefined] : undefined)).then(([v]) => v);
  }

  /** The next data line and what gsasl does after it; no line if it finished or exited without one. */
  async next(): Promise<{ line?: string; state: GsaslState }> {
    return this.until('a data line', () => {
      const done: GsaslState | undefined = this.finished ? 'finished' : this.exitInfo ? 'exited' : undefined;
      if (this.lines.length > 0) {
        const state: GsaslState | undefined = this.prompts > this.dataLinesRead ? 'more' : done;
        if (state === undefined) return undefined; // the line is there, its prompt not yet
        this.dataLinesRead++;
        return { line: this.lines.shift() as string, state };
      }
      return done === undefined ? undefined : { state: done };
    });
  }

  /** Sends one line. */
  write(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  /** Closes stdin (ends gsasl's application-data phase) and waits (bounded) for the exit. */
  async finish(timeoutMs = EXIT_TIMEOUT_MS): Promise<{ code: number | null; stderr: string }> {
    this.proc.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.proc.kill('SIGKILL');
      throw new Error(`gsasl ${this.args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${this.stderrText}`);
    }
    return { code: this.exitInfo?.code ?? null, stderr: this.stderrText };
  }

  /** Kills the process if it is still running (test cleanup). */
  kill(): void {
    if (this.exitInfo === undefined) this.proc.kill('SIGKILL');
  }
}

/** Starts gsasl; the test's teardown kills it if it is still running. */
function gsasl(t: ExecutionContext, ...args: string[]): Gsasl {
  if (missing !== undefined) throw new Error(missing);
  const g = new Gsasl(args);
  t.teardown(() => g.kill());
  return g;
}

test.before(() => {
  if (missing !== undefined) throw new Error(missing);
});

const decode = (line: string | undefined): Buffer => Buffer.from(line ?? '', 'base64');
const encode = (b: Buffer | undefined): string => (b ?? Buffer.alloc(0)).toString('base64');
const cbData = Buffer.alloc(32, 0xab);
const tls: SaslContext = { tls: true };

let users: Map<string, ScramCredentials>;
test.before(async () => {
  users = new Map([
    ['user', await createUserEntry('pencil', 4096)],
    ['IX', await createUserEntry('IX', 4096)],
  ]);
});

/**
 * gsasl as the client, our server mechanism as the server. Returns our server's
 * final step and how gsasl ended. `tamper` alters the server-final data we send.
 */
async function gsaslClientAgainstUs(
  t: ExecutionContext,
  mechanism: string,
  args: string[],
  server: { step(input: Buffer | undefined): Promise<SaslServerStep> },
  options: { channelBinding?: Buffer; tamper?: (b: Buffer) => Buffer } = {},
): Promise<{ outcome: SaslServerStep; code: number | null; stderr: string }> {
  const g = gsasl(t, '--client', '--no-starttls', ...(options.channelBinding ? [] : ['--no-cb']), '--mechanism', mechanism, ...args);
  if (options.channelBinding) g.write(encode(options.channelBinding)); // answers the tls-exporter prompt
  const name = await g.mechanism();
  if (name !== mechanism) throw new Error(`gsasl printed ${JSON.stringify(name)}; stderr:\n${g.stderr}`);
  let outcome: SaslServerStep | undefined;
  for (let round = 0; round < 8; round++) {
    const n = await g.next();
    if (n.line === undefined || n.state !== 'more') break;
    if (outcome !== undefined && outcome.status === 'success') {
      // We are done; gsasl's CLI still reads one (empty) line before it reports the outcome.
      g.write('');
      continue;
    }
    outcome = await server.step(decode(n.line));
    if (outcome.status === 'continue') g.write(encode(outcome.challenge));
    else if (outcome.status === 'success') {
      const data = outcome.additional ?? Buffer.alloc(0);
      g.write(encode(options.tamper ? options.tamper(data) : data));
    } else break; // failure: closing stdin makes gsasl give up
  }
  if (outcome === undefined) throw new Error(`gsasl sent nothing; stderr:\n${g.stderr}`);
  return { outcome, ...(await g.finish()) };
}

test('gsasl client → our SCRAM-SHA-256 server: success, and gsasl trusts our server signature', async (t) => {
  const r = await gsaslClientAgainstUs(
    t,
    'SCRAM-SHA-256',
    ['--authentication-id', 'user', '--password', 'pencil'],
    scramSha256Server({ store: users }).create(tls),
  );
  t.is(r.outcome.status, 'success', r.stderr);
  if (r.outcome.status === 'success') t.deepEqual(r.outcome.identity, { authcid: 'user', mechanism: 'SCRAM-SHA-256' });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Client authentication finished \(server trusted\)/);
});

test('gsasl client → our server: a tampered server signature makes gsasl fail (it really checks)', async (t) => {
  const r = await gsaslClientAgainstUs(
    t,
    'SCRAM-SHA-256',
    ['--authentication-id', 'user', '--password', 'pencil'],
    scramSha256Server({ store: users }).create(tls),
    { tamper: () => Buffer.from(`v=${Buffer.alloc(32, 1).toString('base64')}`) },
  );
  t.is(r.outcome.status, 'success');
  t.not(r.code, 0);
  t.notRegex(r.stderr, /server trusted/);
});

test('gsasl client → our server: a wrong password fails with 535 at the proof', async (t) => {
  const r = await gsaslClientAgainstUs(
    t,
    'SCRAM-SHA-256',
    ['--authentication-id', 'user', '--password', 'not-pencil'],
    scramSha256Server({ store: users }).create(tls),
  );
  assertFailure(t, r.outcome, 535, SaslReasons.AUTH_FAILED);
  t.not(r.code, 0);
  t.notRegex(r.stderr, /server trusted/);
});

test('gsasl client → our server: SASLprep agrees ("I\\u00ADX" is "IX")', async (t) => {
  const r = await gsaslClientAgainstUs(
    t,
    'SCRAM-SHA-256',
    ['--authentication-id', 'I\u00ADX', '--password', 'I\u00ADX'],
    scramSha256Server({ store: users }).create(tls),
  );
  t.is(r.outcome.status, 'success', r.stderr);
  if (r.outcome.status === 'success') t.is(r.outcome.identity.authcid, 'IX');
  t.is(r.code, 0, r.stderr);
});

test('gsasl client → our server: an authorization identity (-z) reaches authorize', async (t) => {
  const seen: string[] = [];
  const server = scramSha256Server({ store: users, authorize: (c, z) => (seen.push(`${c}->${z}`), z === 'admin') });
  const r = await gsaslClientAgainstUs(t, 'SCRAM-SHA-256', ['--authentication-id', 'user', '--authorization-id', 'admin', '--password', 'pencil'], server.create(tls));
  t.is(r.outcome.status, 'success', r.stderr);
  if (r.outcome.status === 'success') t.is(r.outcome.identity.authzid, 'admin');
  t.deepEqual(seen, ['user->admin']);
  t.is(r.code, 0, r.stderr);
});

test('gsasl client → our SCRAM-SHA-256-PLUS server with tls-exporter channel binding', async (t) => {
  const ctx: SaslContext = { tls: true, channelBinding: { type: 'tls-exporter', data: cbData } };
  const ok = await gsaslClientAgainstUs(
    t,
    'SCRAM-SHA-256-PLUS',
    ['--authentication-id', 'user', '--password', 'pencil'],
    scramSha256Server({ store: users, plus: true }).create(ctx),
    { channelBinding: cbData },
  );
  t.is(ok.outcome.status, 'success', ok.stderr);
  t.is(ok.code, 0, ok.stderr);
  // The client is bound to another channel (a man in the middle): refused.
  const mitm = await gsaslClientAgainstUs(
    t,
    'SCRAM-SHA-256-PLUS',
    ['--authentication-id', 'user', '--password', 'pencil'],
    scramSha256Server({ store: users, plus: true }).create(ctx),
    { channelBinding: Buffer.alloc(32, 0xcd) },
  );
  assertFailure(t, mitm.outcome, 535, SaslReasons.CHANNEL_BINDING);
  t.not(mitm.code, 0);
});

test('gsasl client → our PLAIN and ANONYMOUS servers', async (t) => {
  const plain = await gsaslClientAgainstUs(t, 'PLAIN', ['--authentication-id', 'user', '--password', 'pencil'], plainServer({ store: users }).create(tls));
  t.is(plain.outcome.status, 'success', plain.stderr);
  t.is(plain.code, 0, plain.stderr);
  const wrong = await gsaslClientAgainstUs(t, 'PLAIN', ['--authentication-id', 'user', '--password', 'nope'], plainServer({ store: users }).create(tls));
  assertFailure(t, wrong.outcome, 535, SaslReasons.AUTH_FAILED);
  const anon = await gsaslClientAgainstUs(t, 'ANONYMOUS', ['--anonymous-token', 'trace@example.com'], anonymousServer({ enabled: true }).create(tls));
  t.is(anon.outcome.status, 'success', anon.stderr);
  if (anon.outcome.status === 'success') t.deepEqual(anon.outcome.identity, { authcid: 'anonymous', mechanism: 'ANONYMOUS', trace: 'trace@example.com' });
  t.is(anon.code, 0, anon.stderr);
});

/**
 * Our client mechanism against gsasl as the server. gsasl prints the mechanism
 * name and an empty initial challenge, then answers each of our lines; its final
 * line (SCRAM: the server signature) comes with "authentication finished".
 */
async function usAgainstGsaslServer(
  t: ExecutionContext,
  mechanism: string,
  args: string[],
  client: SaslClientMechanism,
  options: { channelBinding?: Buffer } = {},
): Promise<{ verdict: string; code: number | null; stderr: string }> {
  const g = gsasl(t, '--server', ...(options.channelBinding ? [] : ['--no-cb']), '--mechanism', mechanism, ...args);
  const name = await g.mechanism();
  if (name !== mechanism) throw new Error(`gsasl printed ${JSON.stringify(name)}; stderr:\n${g.stderr}`);
  const first = await g.next();
  if (first.line !== '' || first.state !== 'more') throw new Error(`expected an empty initial challenge, got ${JSON.stringify(first)}`);
  g.write(encode(await client.initial()));
  if (options.channelBinding) g.write(encode(options.channelBinding)); // answers gsasl's tls-exporter prompt
  let verdict = 'refused by gsasl';
  for (let round = 0; round < 8; round++) {
    const n = await g.next();
    if (n.state === 'exited') break;
    if (n.state === 'finished') {
      verdict = (await client.finish(n.line === undefined || n.line === '' ? undefined : decode(n.line))).status;
      break;
    }
    if (n.line === '') {
      // gsasl's mechanism produced no data but its CLI wants a line (PLAIN does this): nothing to say.
      g.write('');
      continue;
    }
    const r = await client.step(decode(n.line));
    if (r.status === 'failure') {
      verdict = `client failure: ${r.reason}`;
      break;
    }
    g.write(encode(r.response));
  }
  return { verdict, ...(await g.finish()) };
}

test('our SCRAM-SHA-256 client → gsasl server: success, and we verify gsasl\'s server signature', async (t) => {
  const client = scramSha256Client({ username: 'user', password: 'pencil' }).create(tls);
  const r = await usAgainstGsaslServer(t, 'SCRAM-SHA-256', ['--password', 'pencil', '--iteration-count', '4096'], client);
  t.is(r.verdict, 'success', r.stderr);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /Server authentication finished \(client trusted\)/);
});

test('our SCRAM-SHA-256 client → gsasl server with its default 65536 iterations', async (t) => {
  const client = scramSha256Client({ username: 'user', password: 'pencil' }).create(tls);
  const r = await usAgainstGsaslServer(t, 'SCRAM-SHA-256', ['--password', 'pencil'], client);
  t.is(r.verdict, 'success', r.stderr);
  t.is(r.code, 0, r.stderr);
});

test('our SCRAM-SHA-256 client → gsasl server: a wrong password is refused by gsasl', async (t) => {
  const client = scramSha256Client({ username: 'user', password: 'wrong' }).create(tls);
  const r = await usAgainstGsaslServer(t, 'SCRAM-SHA-256', ['--password', 'pencil', '--iteration-count', '4096'], client);
  t.not(r.verdict, 'success');
  t.not(r.code, 0);
  t.notRegex(r.stderr, /client trusted/);
});

test('our SCRAM-SHA-256-PLUS client → gsasl server with tls-exporter channel binding', async (t) => {
  const ctx: SaslContext = { tls: true, channelBinding: { type: 'tls-exporter', data: cbData } };
  const client = scramSha256Client({ username: 'user', password: 'pencil', plus: true }).create(ctx);
  const r = await usAgainstGsaslServer(t, 'SCRAM-SHA-256-PLUS', ['--password', 'pencil', '--iteration-count', '4096'], client, { channelBinding: cbData });
  t.is(r.verdict, 'success', r.stderr);
  t.is(r.code, 0, r.stderr);
  const mitm = scramSha256Client({ username: 'user', password: 'pencil', plus: true }).create(ctx);
  const bad = await usAgainstGsaslServer(t, 'SCRAM-SHA-256-PLUS', ['--password', 'pencil', '--iteration-count', '4096'], mitm, { channelBinding: Buffer.alloc(32, 0xcd) });
  t.not(bad.verdict, 'success');
  t.not(bad.code, 0);
});

test('our PLAIN client → gsasl server', async (t) => {
  const ok = await usAgainstGsaslServer(t, 'PLAIN', ['--password', 'pencil'], plainClient({ username: 'user', password: 'pencil' }).create(tls));
  t.is(ok.verdict, 'success', ok.stderr);
  t.is(ok.code, 0, ok.stderr);
  const bad = await usAgainstGsaslServer(t, 'PLAIN', ['--password', 'pencil'], plainClient({ username: 'user', password: 'nope' }).create(tls));
  t.not(bad.code, 0);
  t.regex(bad.stderr, /Error authenticating user/);
});
