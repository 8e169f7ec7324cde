/**
 * The middle of the `scistream-*` cases: what sits between the consumer
 * application (the client worker) and the producer application (the server
 * worker). Run by the runner (`run.ts`), one tunnel per measurement:
 *
 * - `beepstream`: two S2DS worker processes (`worker.ts`, role `s2ds`), one per
 *   facility — the outbound sender (consumer side) and the inbound receiver
 *   (producer side) — speaking BEEP over TLS-PSK, as `createDataServer` ships
 *   them (TLS 1.3 PSK, the key derived from the session uid);
 * - `node-tls`: the ceiling, two Node processes that only move each
 *   application connection's octets into a node:tls socket (TLS 1.3 PSK,
 *   TLS_AES_128_GCM_SHA256, the same uid-derived key) and out again with the
 *   S2DS's pump (`tlsrelay.ts`): the Node TLS socket alone, no BEEP;
 * - `stunnel`: the SciStream reference implementation's data plane, two
 *   stunnel processes (client mode on the consumer side, server mode on the
 *   producer side) with TLS 1.2 PSK-AES128-GCM-SHA256 and the same
 *   uid-derived identity and key, their configuration files in a fresh
 *   temporary directory.
 *
 * Every process is started here, tracked by PID, and killed by PID in
 * {@link Tunnel.stop} (SIGTERM, then SIGKILL); every port is on 127.0.0.1.
 *
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { delimiter, join } from 'node:path';
import { derivePsk } from '../../src/scistream/data/psk.js';
import type { GcCounts } from './gcmeter.js';
import type { FromWorker, InitS2ds, ToWorker } from './ipc.js';

/** Tunnels (implementations of the `scistream-*` cases that are not application implementations). */
export const TUNNEL_NAMES = ['stunnel', 'node-tls'] as const;

/** The cipher suite and protocol of the stunnel chain. */
export const STUNNEL_CIPHER = 'PSK-AES128-GCM-SHA256';
export const STUNNEL_VERSION = 'TLSv1.2';

/** A tunnel between the two applications. */
export interface Tunnel {
  /** Start it in front of the producer application on `targetPort`; resolves with the port the consumer connects to. */
  start(targetPort: number): Promise<number>;
  /** What was negotiated or configured, for the progress line. */
  readonly info: string;
  /** CPU seconds (user + system) used so far by every process of the tunnel (Linux /proc; 0 elsewhere). */
  cpuSeconds(): number;
  /**
   * Per end — `out`: the consumer facility's process, `in`: the producer
   * facility's — CPU seconds and read/write system calls so far (Linux /proc).
   */
  sample(): TunnelSample;
  /**
   * Node tunnel processes (S2DS, node-tls relays): start counting their
   * collections now (`mark`), or read the counts since (`report`); null for
   * an end that cannot tell (stunnel is not Node).
   */
  gc(cmd: 'mark' | 'report'): Promise<{ out: GcCounts | null; in: GcCounts | null }>;
  /** Kill every process it started (by PID) and remove its files. Never rejects. */
  stop(): Promise<void>;
}

/** CPU seconds and system calls of one tunnel process so far (all its threads). */
export interface ProcSample {
  cpu: number;
  /** The system (kernel) part of {@link cpu} (`stime`). */
  sys: number;
  /** read-like and write-like system calls (`syscr`, `syscw` of /proc/PID/io: read/readv/write/writev and kin). */
  syscr: number;
  syscw: number;
}

/** {@link ProcSample}s of both ends of a tunnel. */
export interface TunnelSample {
  out: ProcSample;
  in: ProcSample;
}

/** How the runner forks an S2DS worker (so it can add CPU-profiling flags and track the PID). */
export type SpawnWorker = (role: 's2ds-inbound' | 's2ds-outbound') => ChildProcess;

/** Settings of a tunnel. */
export interface TunnelOptions {
  /** Application connections the path must allow at once (num_conn). */
  numConn: number;
  /** BEEP limits for the S2DS (over `DATA_LIMITS`). */
  limits: Record<string, number>;
  spawnWorker: SpawnWorker;
  /** Path of the stunnel binary. */
  stunnel: string | null;
  /** Every process spawned is reported here at once (the runner kills leftovers on exit). */
  track: (child: ChildProcess) => void;
}

// ------------------------------------------------------------------ processes

/** Temporary directories (stunnel configuration, PSK file) not yet removed. */
const tempDirs = new Set<string>();

/** Remove every temporary directory a tunnel still holds (for the runner's exit handler; synchronous). */
export function removeTempDirs(): void {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (user + system, all threads) of a live process from /proc/PID/stat; null if unknown. */
export function procCpuSeconds(pid: number | undefined): number | null {
  return procCpu(pid)?.cpu ?? null;
}

/** CPU seconds of a live process (all threads): user + system, and system alone (`utime`, `stime` of /proc/PID/stat); null if unknown. */
export function procCpu(pid: number | undefined): { cpu: number; sys: number } | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start with field 3, the state.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const sys = Number(rest[12]) / ticksPerSecond();
    return { cpu: Number(rest[11]) / ticksPerSecond() + sys, sys };
  } catch {
    return null;
  }
}

/** `syscr` and `syscw` of a live process from /proc/PID/io (the whole thread group); null if unknown. */
export function procSyscalls(pid: number | undefined): { syscr: number; syscw: number } | null {
  if (pid === undefined) return null;
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const r = /syscr:\s*(\d+)/.exec(io);
    const w = /syscw:\s*(\d+)/.exec(io);
    return r && w ? { syscr: Number(r[1]), syscw: Number(w[1]) } : null;
  } catch {
    return null;
  }
}

/** One process's sample; a process that is gone (or no /proc) keeps `last`. */
function sampleProc(p: ChildProcess | undefined, last: ProcSample): ProcSample {
  const cpu = procCpu(p?.pid);
  const io = procSyscalls(p?.pid);
  return { cpu: cpu?.cpu ?? last.cpu, sys: cpu?.sys ?? last.sys, syscr: io?.syscr ?? last.syscr, syscw: io?.syscw ?? last.syscw };
}

/** Samples the two ends of a tunnel (see {@link Tunnel.sample}). */
class EndMeter {
  private last: TunnelSample = { out: { cpu: 0, sys: 0, syscr: 0, syscw: 0 }, in: { cpu: 0, sys: 0, syscr: 0, syscw: 0 } };

  constructor(private readonly ends: () => { out?: ChildProcess; in?: ChildProcess }) {}

  read(): TunnelSample {
    const e = this.ends();
    this.last = { out: sampleProc(e.out, this.last.out), in: sampleProc(e.in, this.last.in) };
    return this.last;
  }
}

/** CPU seconds of a set of processes; a process that is gone keeps its last reading. */
class CpuMeter {
  private readonly last = new Map<number, number>();

  constructor(private readonly procs: () => readonly ChildProcess[]) {}

  read(): number {
    for (const p of this.procs()) {
      if (p.pid === undefined) continue;
      const s = procCpuSeconds(p.pid);
      if (s !== null) this.last.set(p.pid, s);
    }
    let sum = 0;
    for (const v of this.last.values()) sum += v;
    return sum;
  }
}

/** Kill a child by its PID: SIGTERM (or a polite `exit` first, for a worker), SIGKILL after `ms`. */
export function killByPid(child: ChildProcess, ms = 5000, polite?: () => void): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      if (polite) polite();
      else process.kill(pid, 'SIGTERM');
    } catch {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  });
}

/** The stunnel binary on PATH (`stunnel4`, as Debian names it, or `stunnel`), or null. */
export function findStunnel(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const name of ['stunnel4', 'stunnel']) {
      const f = join(dir, name);
      try {
        accessSync(f, constants.X_OK);
        return f;
      } catch {
        /* not here */
      }
    }
  }
  return null;
}

/** The version line of `stunnel -version` (e.g. "stunnel 5.68 on x86_64-pc-linux-gnu platform"), or "". */
export function stunnelVersion(bin: string): string {
  // It prints to stderr (and, depending on the version, exits non-zero).
  const r = spawnSync(bin, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
  return /stunnel \S+ on \S+/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[0] ?? '';
}

/** A port that was free a moment ago on 127.0.0.1 (for stunnel's `accept`). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** True when something listens on 127.0.0.1:`port` (from /proc/net/tcp, so no connection is made); null if unknown. */
function listening(port: number): boolean | null {
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return null;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === local && f[3] === '0A';
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let nextAsk = 1;

/** Send a worker `mark` or `report` and wait (at most 5 s) for its answer; null if it cannot answer. */
function ask(child: ChildProcess | undefined, cmd: 'mark' | 'report'): Promise<unknown> {
  if (!child?.connected) return Promise.resolve(null);
  const id = 1_000_000 + nextAsk++;
  return new Promise((resolve) => {
    const done = (v: unknown): void => {
      clearTimeout(t);
      child.off('message', onMsg);
      resolve(v);
    };
    const onMsg = (m: FromWorker): void => {
      if (m.type === 'reply' && m.id === id) done(m.error === undefined ? (m.result ?? null) : null);
    };
    const t = setTimeout(() => done(null), 5000);
    child.on('message', onMsg);
    child.send({ type: 'cmd', id, cmd } satisfies ToWorker);
  });
}

// ------------------------------------------------------------------ beepstream

/**
 * Two S2DS worker processes: outbound sender ⇄ BEEP over TLS-PSK ⇄ inbound
 * receiver; or, with `relay`, two workers running the node:tls ceiling relay
 * in their place (`tlsrelay.ts`).
 */
class BeepTunnel implements Tunnel {
  info = '';
  private readonly procs: ChildProcess[] = [];
  private readonly meter = new CpuMeter(() => this.procs);
  private readonly ends: { out?: ChildProcess; in?: ChildProcess } = {};
  private readonly endMeter = new EndMeter(() => this.ends);
  private readonly uid = randomBytes(16).toString('hex');

  constructor(
    private readonly o: TunnelOptions,
    private readonly relay?: 'node-tls',
  ) {}

  private async s2ds(side: 'inbound' | 'outbound', peers: string[]): Promise<Extract<FromWorker, { type: 'ready' }>> {
    const child = this.o.spawnWorker(side === 'inbound' ? 's2ds-inbound' : 's2ds-outbound');
    this.o.track(child);
    this.procs.push(child);
    this.ends[side === 'inbound' ? 'in' : 'out'] = child;
    const ready = new Promise<Extract<FromWorker, { type: 'ready' }>>((resolve, reject) => {
      const onMsg = (m: FromWorker): void => {
        if (m.type === 'ready') resolve(m);
        else if (m.type === 'error') reject(new Error(`${side} S2DS: ${m.message.split('\n')[0]}`));
      };
      child.on('message', onMsg);
      child.once('exit', (code) => reject(new Error(`${side} S2DS exited (${code}) before it was ready`)));
    });
    child.send({ type: 'init', role: 's2ds', side, uid: this.uid, peers, numConn: this.o.numConn, limits: this.o.limits, ...(this.relay ? { relay: this.relay } : {}) } satisfies InitS2ds);
    return ready;
  }

  async start(targetPort: number): Promise<number> {
    const inbound = await this.s2ds('inbound', [`127.0.0.1:${targetPort}`]);
    const outbound = await this.s2ds('outbound', inbound.listeners ?? []);
    this.info = this.relay ? (outbound.info ?? '') : `beepstream S2DS ⇄ S2DS: ${outbound.info ?? ''}`;
    return outbound.port;
  }

  cpuSeconds(): number {
    return this.meter.read();
  }

  sample(): TunnelSample {
    return this.endMeter.read();
  }

  async gc(cmd: 'mark' | 'report'): Promise<{ out: GcCounts | null; in: GcCounts | null }> {
    const [o, i] = await Promise.all([ask(this.ends.out, cmd), ask(this.ends.in, cmd)]);
    return { out: o as GcCounts | null, in: i as GcCounts | null };
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map((p) =>
        killByPid(p, 5000, () => {
          if (!p.connected) throw new Error('no IPC');
          p.send({ type: 'cmd', id: 0, cmd: 'exit' } satisfies ToWorker);
        }),
      ),
    );
  }
}

// ------------------------------------------------------------------ stunnel

/**
 * stunnel client (consumer side) ⇄ TLS 1.2 PSK-AES128-GCM-SHA256 ⇄ stunnel
 * server (producer side), as the SciStream reference S2DS runs it (one
 * stunnel process per facility, one TLS connection and one thread per
 * application connection), with a real cipher and the uid-derived key.
 */
class StunnelTunnel implements Tunnel {
  info = '';
  private readonly procs: ChildProcess[] = [];
  private readonly logs = new Map<ChildProcess, string>();
  private readonly meter = new CpuMeter(() => this.procs);
  private readonly ends: { out?: ChildProcess; in?: ChildProcess } = {};
  private readonly endMeter = new EndMeter(() => this.ends);
  /** Configuration files and the PSK file (mode 0600), removed by {@link stop}. */
  private dir: string | null = null;
  private readonly bin: string;
  private readonly track: (child: ChildProcess) => void;

  constructor(o: TunnelOptions) {
    if (!o.stunnel) throw new Error('stunnel is not installed');
    this.bin = o.stunnel;
    this.track = o.track;
  }

  private file(name: string, text: string): string {
    if (this.dir === null) {
      this.dir = mkdtempSync(join(os.tmpdir(), 'beepstream-bench-stunnel-'));
      tempDirs.add(this.dir);
    }
    const file = join(this.dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  }

  private config(name: string, lines: string[]): string {
    return this.file(`${name}.conf`, `${lines.join('\n')}\n`);
  }

  /** Start one stunnel and wait until it listens on `port`. */
  private async launch(name: string, conf: string, port: number): Promise<void> {
    const child = spawn(this.bin, [conf], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    this.track(child);
    this.procs.push(child);
    this.ends[name === 'server' ? 'in' : 'out'] = child;
    this.logs.set(child, '');
    // Keep the tail of its log (stderr, foreground mode) for error messages; always drain the pipe.
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => this.logs.set(child, ((this.logs.get(child) ?? '') + d).slice(-4000)));
    let failed: Error | null = null;
    child.once('error', (e) => (failed = e));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (failed) throw new Error(`stunnel ${name}: ${(failed as Error).message}`);
      if (child.exitCode !== null || child.signalCode !== null || /Binding service \[[^\]]*\] failed|Configuration failed/.test(this.logs.get(child) ?? '')) {
        throw new Error(`stunnel ${name} did not start: ${this.lastLines(child)}`);
      }
      const up = listening(port);
      if (up === true) return;
      if (up === null && /Configuration successful/.test(this.logs.get(child) ?? '')) {
        await sleep(300); // no /proc/net/tcp: give it a moment to bind
        return;
      }
      if (Date.now() > deadline) throw new Error(`stunnel ${name} not listening on 127.0.0.1:${port} after 10 s: ${this.lastLines(child)}`);
      await sleep(20);
    }
  }

  private lastLines(child: ChildProcess): string {
    return (this.logs.get(child) ?? '').trim().split('\n').slice(-3).join(' | ') || '(no output)';
  }

  async start(targetPort: number): Promise<number> {
    const uid = randomBytes(16).toString('hex');
    const { identity, key } = derivePsk(uid);
    // IDENTITY:KEY — a hex key is converted to binary by stunnel: the same 32 octets beepstream uses.
    const secrets = this.file('psk.txt', `${identity}:${key.toString('hex')}\n`);
    const common = ['foreground = yes', 'pid =', 'syslog = no', 'debug = notice'];
    const tls = [`PSKsecrets = ${secrets}`, `ciphers = ${STUNNEL_CIPHER}`, `sslVersion = ${STUNNEL_VERSION}`];
    // Producer facility: TLS in, plain TCP to the producer application.
    const serverPort = await freePort();
    const server = this.config('server', [...common, '[scistream-data]', `accept = 127.0.0.1:${serverPort}`, `connect = 127.0.0.1:${targetPort}`, ...tls]);
    await this.launch('server', server, serverPort);
    // Consumer facility: plain TCP from the consumer application, TLS out.
    const clientPort = await freePort();
    const client = this.config('client', [
      ...common,
      '[scistream-data]',
      'client = yes',
      `accept = 127.0.0.1:${clientPort}`,
      `connect = 127.0.0.1:${serverPort}`,
      `PSKidentity = ${identity}`,
      ...tls,
    ]);
    await this.launch('client', client, clientPort);
    this.info = `stunnel ⇄ stunnel: ${STUNNEL_VERSION} ${STUNNEL_CIPHER}`;
    return clientPort;
  }

  cpuSeconds(): number {
    return this.meter.read();
  }

  sample(): TunnelSample {
    return this.endMeter.read();
  }

  gc(): Promise<{ out: GcCounts | null; in: GcCounts | null }> {
    return Promise.resolve({ out: null, in: null });
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => killByPid(p, 3000)));
    if (this.dir) {
      rmSync(this.dir, { recursive: true, force: true });
      tempDirs.delete(this.dir);
    }
  }
}

/** The tunnel of implementation `impl` (`beepstream`, `node-tls` or `stunnel`). */
export function createTunnel(impl: string, o: TunnelOptions): Tunnel {
  switch (impl) {
    case 'beepstream':
      return new BeepTunnel(o);
    case 'node-tls':
      return new BeepTunnel(o, 'node-tls');
    case 'stunnel':
      return new StunnelTunnel(o);
    default:
      throw new Error(`no tunnel for ${JSON.stringify(impl)}`);
  }
}
