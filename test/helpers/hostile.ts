/**
 * Helpers of the hostile-peer tests (test/hostile/, issue 17): a raw BEEP
 * attacker that follows the protocol and abuses it, a `beepstream listen`
 * child whose memory, CPU and log lines are measured from /proc, and a
 * well-behaved probe session from another loopback address.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import type { ChildProcess } from 'node:child_process';
import { Session } from '../../src/index.js';
import { startListener, stop } from './cli.js';

export const ECHO = 'http://xml.resource.org/profiles/NULL/ECHO';
export const ANSWERS = 'urn:beepstream:profiles:answers';
const XML_HEAD = 'Content-Type: application/beep+xml\r\n\r\n';

/** A raw attacker session: frames written by hand, windows tracked, nothing answered unless asked. */
export class Attacker {
  readonly socket: net.Socket;
  /** Send state per channel: next seqno and the edge the listener advertised. */
  private readonly sendSeq = new Map<number, number>();
  private readonly sendEdge = new Map<number, number>();
  /** Octets received per channel. */
  readonly received = new Map<number, number>();
  /** Channel-0 replies by msgno: 'RPY' or 'ERR'. */
  readonly ch0 = new Map<number, 'RPY' | 'ERR'>();
  framesIn = 0;
  closed = false;
  private buf: Buffer = Buffer.alloc(0);
  private nextMsg0 = 1;
  private waiters: (() => void)[] = [];
  /** SEQ channel 0 as its replies arrive (needed to read start replies). */
  autoSeq0 = true;
  /** SEQ every other channel as its data arrives, like a reader that keeps up (default off: attackers do not read). */
  autoSeqAll = false;
  /** Smallest payload of a non-final data frame received on a channel other than 0 (Infinity: none). */
  minIntermediate = Infinity;
  /** Non-final data frames on channels other than 0 whose payload is below 512 octets. */
  smallIntermediate = 0;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connect (from `localAddress` when given) and greet. */
  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<Attacker> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => {
        const a = new Attacker(s);
        const g = `${XML_HEAD}<greeting />\r\n`;
        s.write(`RPY 0 0 . 0 ${Buffer.byteLength(g)}\r\n${g}END\r\n`);
        a.sendSeq.set(0, Buffer.byteLength(g));
        resolve(a);
      });
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolve once `test()` holds, or reject after `ms`. */
  until(test: () => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      const check = (): void => {
        if (test()) {
          clearTimeout(t);
          resolve();
        } else if (this.closed) {
          clearTimeout(t);
          reject(new Error(`closed while waiting: ${what}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  private onData(c: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
    for (;;) {
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) break;
      const line = this.buf.subarray(0, eol).toString('latin1');
      const p = line.split(' ');
      if (p[0] === 'SEQ') {
        this.buf = this.buf.subarray(eol + 2);
        this.sendEdge.set(Number(p[1]), (Number(p[2]) + Number(p[3])) >>> 0);
        continue;
      }
      const size = Number(p[5]);
      if (this.buf.length < eol + 2 + size + 5) break;
      const ch = Number(p[1]);
      const payload = this.buf.subarray(eol + 2, eol + 2 + size);
      this.buf = this.buf.subarray(eol + 2 + size + 5);
      this.framesIn++;
      const got = (this.received.get(ch) ?? 0) + size;
      this.received.set(ch, got);
      if (ch === 0 && p[3] === '.' && Number(p[2]) > 0 && (p[0] === 'RPY' || p[0] === 'ERR')) this.ch0.set(Number(p[2]), p[0]);
      if (ch === 0 && this.autoSeq0 && size > 0) this.socket.write(`SEQ 0 ${got >>> 0} 4096\r\n`);
      if (ch !== 0 && this.autoSeqAll && size > 0 && !this.closed) this.socket.write(`SEQ ${ch} ${got >>> 0} 65536\r\n`);
      if (ch !== 0 && p[3] === '*' && size < this.minIntermediate) this.minIntermediate = size;
      if (ch !== 0 && p[3] === '*' && size < 512) this.smallIntermediate++;
      void payload;
    }
    this.wake();
  }

  /** Octets the listener's window lets us send on `ch` now. */
  windowLeft(ch: number): number {
    const d = ((this.sendEdge.get(ch) ?? 4096) - (this.sendSeq.get(ch) ?? 0)) >>> 0;
    return d < 0x80000000 ? d : 0;
  }

  /** Write a data frame (seqno tracked). Returns false, writing nothing, when the window does not allow it. */
  frame(type: 'MSG' | 'RPY', ch: number, msgno: number, payload: Buffer | string, more = false): boolean {
    const b = typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (b.length > this.windowLeft(ch)) return false;
    const seq = this.sendSeq.get(ch) ?? 0;
    this.socket.write(`${type} ${ch} ${msgno} ${more ? '*' : '.'} ${seq} ${b.length}\r\n`);
    if (b.length) this.socket.write(b);
    this.socket.write('END\r\n');
    this.sendSeq.set(ch, (seq + b.length) >>> 0);
    return true;
  }

  /** Send a channel-0 MSG (waits for window); returns its msgno. */
  async mgmt(xml: string): Promise<number> {
    const body = `${XML_HEAD}${xml}`;
    await this.until(() => this.windowLeft(0) >= Buffer.byteLength(body), 5000, 'channel-0 window');
    const n = this.nextMsg0++;
    this.frame('MSG', 0, n, body);
    return n;
  }

  /** Start channels `first, first+2, …` (`count` of them) with `uri`, `batch` at a time; resolves with those accepted. */
  async startChannels(first: number, count: number, uri = ECHO, batch = 100): Promise<number[]> {
    const ok: number[] = [];
    for (let i = 0; i < count; i += batch) {
      const pending: [number, number][] = [];
      for (let j = i; j < Math.min(count, i + batch); j++) {
        const ch = first + 2 * j;
        pending.push([ch, await this.mgmt(`<start number='${ch}'><profile uri='${uri}'/></start>`)]);
      }
      await this.until(() => pending.every(([, m]) => this.ch0.has(m)), 15000, 'start replies');
      for (const [ch, m] of pending) if (this.ch0.get(m) === 'RPY') ok.push(ch);
    }
    return ok;
  }

  /** Wait (bounded) until what we wrote has gone to the kernel, or the socket closed. */
  drained(ms: number): Promise<void> {
    if (this.closed || this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Wait (bounded) for the socket to close, the listener having ended the session. */
  async waitClosed(ms: number): Promise<boolean> {
    await this.until(() => this.closed, ms, 'session end').catch(() => undefined);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A `beepstream listen` child, measured from /proc. */
export class Listener {
  lines: string[] = [];
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    let rest = '';
    child.stdout?.on('data', (c: Buffer) => {
      const parts = (rest + c.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) if (l) this.lines.push(l);
    });
  }

  static async start(extra: string[] = []): Promise<Listener> {
    const { child, address } = await startListener(['--log-format', 'json', ...extra]);
    return new Listener(child, Number(address.split(':').pop()));
  }

  /** Resident set size (octets). */
  rss(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** CPU seconds used so far (user + system). */
  cpu(): number {
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  }

  /** Log lines that name session `id`. */
  linesOf(id: number): number {
    const needle = `"sessionId":${id},`;
    return this.lines.filter((l) => l.includes(needle) || l.endsWith(`"sessionId":${id}}`)).length;
  }

  /** Session ids of log records mentioning `remote` host:port prefix `host`. */
  sessionIdsFrom(host: string): number[] {
    const ids = new Set<number>();
    for (const l of this.lines) {
      if (!l.includes('"session.open"') || !l.includes(`"remote":"${host}:`)) continue;
      const m = /"sessionId":(\d+)/.exec(l);
      if (m) ids.add(Number(m[1]));
    }
    return [...ids];
  }

  stop(): Promise<unknown> {
    return stop(this.child);
  }
}

/** Sample a measure every `everyMs` while `during` runs; resolves with the largest value. */
export async function peakDuring(measure: () => number, during: Promise<unknown>, everyMs = 100): Promise<number> {
  let peak = measure();
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, measure());
    } catch {
      /* process gone */
    }
  }, everyMs);
  try {
    await during;
  } finally {
    clearInterval(t);
  }
  return Math.max(peak, measure());
}

/** A well-behaved session from another loopback address (127.0.0.2): an echo round trip works. */
export async function probe(port: number, localAddress = '127.0.0.2', timeoutMs = 10000): Promise<boolean> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const s = new Session(socket, 'initiator', {});
  const timer = setTimeout(() => s.destroy(), timeoutMs);
  try {
    const ch = await s.startChannel(ECHO);
    const body = 'x'.repeat(100_000);
    return (await (await ch.request(body)).text()) === body;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await s.close().catch(() => s.destroy());
  }
}

/** Sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export const MiB = 1024 * 1024;

/** What an attack did to the listener. */
export interface AttackReport {
  /** Peak RSS growth over the baseline (octets). */
  rssGrowth: number;
  /** Listener CPU over the attack, in cores (1 = one core busy). */
  cpuShare: number;
  /** Log lines written per attacking session. */
  linesPerSession: number[];
  /** The probe session from 127.0.0.2 was served during the attack. */
  served: boolean;
  /** Whether each attacking session had been ended by the listener. */
  ended: boolean[];
  /** Wall time of the attack (ms). */
  ms: number;
}

/**
 * Run `attack` from `sessions` attacking sessions against a fresh `beepstream
 * listen` for at most `ms`, probing from 127.0.0.2 halfway; measure the
 * listener's RSS (sampled), CPU (from /proc) and log lines per session.
 */
export async function runAttack(
  t: { log(...a: unknown[]): void; teardown(f: () => unknown): void },
  options: { sessions?: number; ms: number; setup?: (a: Attacker) => Promise<void>; attack: (a: Attacker, until: number) => Promise<void> },
): Promise<AttackReport> {
  const l = await Listener.start();
  t.teardown(() => l.stop());
  await sleep(300);
  const attackers = await Promise.all(Array.from({ length: options.sessions ?? 1 }, () => Attacker.open(l.port)));
  for (const a of attackers) await options.setup?.(a);
  const rss0 = l.rss();
  const cpu0 = l.cpu();
  const t0 = Date.now();
  const until = t0 + options.ms;
  const run = Promise.all(attackers.map((a) => options.attack(a, until).catch(() => undefined)));
  const served = sleep(options.ms / 2).then(() => probe(l.port));
  const peak = await peakDuring(() => l.rss(), Promise.all([run, served]));
  const ms = Date.now() - t0;
  const cpuShare = (l.cpu() - cpu0) / (ms / 1000);
  const ended = attackers.map((a) => a.closed);
  for (const a of attackers) a.destroy();
  await sleep(500);
  const ids = l.sessionIdsFrom('127.0.0.1');
  const report: AttackReport = { rssGrowth: peak - rss0, cpuShare, linesPerSession: ids.map((id) => l.linesOf(id)), served: await served, ended, ms };
  t.log(`RSS growth ${(report.rssGrowth / MiB).toFixed(1)} MiB; CPU ${(cpuShare * 100).toFixed(0)} % of a core over ${ms} ms; log lines per attacking session ${report.linesPerSession.join(', ')}; ended ${ended.join(', ')}; probe served ${report.served}`);
  return report;
}

/** Write `chunk` repeatedly, as fast as the socket takes it, until `until` or the session ends. */
export async function flood(a: Attacker, chunk: string | Buffer, until: number): Promise<void> {
  while (Date.now() < until && !a.closed) {
    a.socket.write(chunk);
    if (a.socket.writableLength > MiB) await a.drained(until - Date.now());
    else await new Promise((r) => setImmediate(r));
  }
}

/**
 * The check shared by the frame floods that carry no progress (SEQ, window
 * flapping, empty frames): one session on one channel floods `chunk` for 4 s;
 * the session must be ended, at ≤ 25 % of a core, ≤ 64 MiB RSS growth, ≤ 100
 * log lines, and a session from 127.0.0.2 still served.
 */
export async function floodEndsSession(
  t: Parameters<typeof runAttack>[0] & { true(v: boolean, m?: string): void; timeout(ms: number): void },
  chunk: string,
): Promise<void> {
  t.timeout(60_000);
  const r = await runAttack(t, {
    ms: 4000,
    setup: async (a) => void (await a.startChannels(1, 1)),
    attack: (a, until) => flood(a, chunk, until),
  });
  t.true(r.ended[0] === true, 'the session is ended');
  t.true(r.cpuShare <= 0.25, `CPU ${(r.cpuShare * 100).toFixed(0)} % ≤ 25 % of a core`);
  t.true(r.rssGrowth <= 64 * MiB);
  t.true(r.served);
  for (const n of r.linesPerSession) t.true(n <= 100, `${n} lines`);
}
