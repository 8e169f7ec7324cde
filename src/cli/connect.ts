/**
 * `beepstream connect`: start a channel on a peer and send messages.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { Buffer } from 'node:buffer';
import { connect, type IncomingMessage } from '../channels/index.js';
import { BeepError } from '../errors.js';
import { printError } from './errors.js';
import { parsePositiveInt, parseTarget, UsageError } from './address.js';
import { clientTuning, type ConnectSecurityOptions } from './security.js';
import { parseTraceOctets, startTrace } from './trace.js';
import { Progress } from './progress.js';

/** Options of `connect`, as given on the command line. */
export interface ConnectCliOptions extends ConnectSecurityOptions {
  profile: string;
  message?: string;
  file?: string;
  count: string;
  contentType?: string;
  timeout: string;
  /** `--trace`: every frame of the session on stderr; `--trace-octets`: payload octets shown per frame. */
  trace?: boolean;
  traceOctets?: string;
  /** `--quiet`: no progress bar. */
  quiet?: boolean;
}

const SHOW_TEXT = 64 * 1024;

/** Render a reply body: as text when short and printable, else its size and SHA-256. */
async function describe(msg: IncomingMessage): Promise<string> {
  const hash = createHash('sha256');
  const head: Buffer[] = [];
  let n = 0;
  for await (const chunk of msg) {
    const b = chunk as Buffer;
    hash.update(b);
    if (n < SHOW_TEXT) head.push(b);
    n += b.length;
  }
  if (n <= SHOW_TEXT) {
    const buf = Buffer.concat(head, n);
    const text = buf.toString('utf8');
    // eslint-disable-next-line no-control-regex
    if (Buffer.from(text, 'utf8').equals(buf) && !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(text)) return text;
  }
  return `(${n} octets, sha256 ${hash.digest('hex')})`;
}

/** `--file -`, `/dev/stdin` and `/dev/fd/0` name standard input. */
function isStdin(file: string): boolean {
  return file === '-' || file === '/dev/stdin' || file === '/dev/fd/0' || file === '/proc/self/fd/0';
}

/** Run `connect`; resolves with the exit code. */
export async function runConnect(address: string, opts: ConnectCliOptions): Promise<number> {
  const target = parseTarget(address);
  const count = parsePositiveInt('--count', opts.count, 1_000_000);
  const timeout = parsePositiveInt('--timeout', opts.timeout);
  const traceOctets = opts.traceOctets === undefined ? undefined : parseTraceOctets(opts.traceOctets);
  // The body: --message, or --file (a regular file, or standard input as "-",
  // /dev/stdin or any pipe). Nothing to send is a usage error, not a silent success.
  const stdin = opts.file !== undefined && isStdin(opts.file);
  let fileSize: number | undefined;
  if (opts.file !== undefined && !stdin) {
    let st;
    try {
      st = statSync(opts.file);
    } catch {
      throw new UsageError(`cannot read --file ${JSON.stringify(opts.file)}: no such file`);
    }
    if (st.isFile()) fileSize = st.size;
    else if (!st.isFIFO() && !st.isCharacterDevice() && !st.isSocket()) throw new UsageError(`--file ${JSON.stringify(opts.file)} is not a regular file, a pipe or a device`);
    if (!st.isFile() && count > 1) throw new UsageError(`--file ${JSON.stringify(opts.file)} can be read only once: --count must be 1`);
  }
  if (stdin && count > 1) throw new UsageError('standard input can be read only once: --count must be 1 with --file -');
  const tune = clientTuning(opts);
  if (opts.message === undefined && opts.file === undefined) {
    throw new UsageError('nothing to send: give --message TEXT, --file PATH, or --file - to send standard input');
  }
  // The first session this process opens is ours: trace it from its greeting on.
  if (opts.trace) startTrace({ localRole: 'initiator', sessions: 'first', ...(traceOctets !== undefined ? { maxOctets: traceOctets } : {}) });
  const out = (line: string): void => void process.stdout.write(line + '\n');
  const session = await connect({ ...target, timeout });
  try {
    out('greeting:');
    for (const p of session.peerProfiles) out(`  profile ${p}`);
    const g = session.peerGreeting;
    if (g && g.features.length) out(`  features ${g.features.join(' ')}`);
    if (g && g.localize.length) out(`  localize ${g.localize.join(' ')}`);
    try {
      await tune(session, out);
    } catch (err) {
      // A failed handshake has already ended the session; a refusal has not.
      if (session.handle.isClosed || !(err instanceof BeepError)) {
        printError(err);
        session.destroy();
        return 1;
      }
      throw err;
    }
    const ch = await session.startChannel(opts.profile);
    out(`channel ${ch.number} started: ${ch.profile}`);
    {
      for (let i = 1; i <= count; i++) {
        let body: string | Readable = opts.message as string;
        let progress: Progress | null = null;
        if (stdin) {
          body = process.stdin;
        } else if (opts.file !== undefined) {
          body = createReadStream(opts.file);
          // A progress bar on a terminal only (and not with --quiet), for a file of known size.
          if (fileSize !== undefined) {
            progress = new Progress(fileSize, { quiet: opts.quiet === true, ...(count > 1 ? { label: `${i}/${count}` } : {}) });
            if (progress.enabled) body = pipeline(body, progress.counter(), () => undefined);
          }
        }
        const headers = opts.contentType === undefined ? {} : { contentType: opts.contentType };
        let answers = false;
        try {
          for await (const m of ch.requestAnswers(body, headers)) {
            const text = await describe(m);
            progress?.finish();
            answers ||= m.type === 'ANS';
            out(`${m.type}${m.ansno === undefined ? '' : ' ' + m.ansno}: ${text}`);
          }
        } finally {
          progress?.finish();
        }
        if (answers) out('NUL');
      }
    }
    await session.close();
    return 0;
  } catch (err) {
    if (err instanceof BeepError) printError(err);
    else throw err;
    // A refusal leaves the session healthy: release it properly.
    await session.close().catch(() => session.destroy());
    return 1;
  }
}
