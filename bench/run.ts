/**
 * The benchmark runner: `npm run bench [-- options]`.
 *
 * For each round, each case and each implementation it forks a server worker
 * and a client worker (separate processes: each gets a core, loopback is
 * real), relays their commands, and collects the client's metrics. Then it
 * takes medians over the rounds, checks the targets against the baselines
 * measured in the same run, prints a markdown table and writes
 * `bench/results/latest.json`.
 *
 * @module
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CASES, type CaseDef, type Metrics } from './cases.js';
import type { ImplOptions } from './lib/adapter.js';
import type { FromWorker, ToWorker } from './lib/ipc.js';
import { IMPL_NAMES } from './impl/index.js';
import { createTunnel, findStunnel, removeTempDirs, stunnelVersion, TUNNEL_NAMES, type Tunnel } from './lib/tunnel.js';
import { tunnelMeter, type TunnelReport } from './lib/tunnelmeter.js';
import { formatProfile } from './profile.js';
import { buildRows, markdownTable, targetsTable, type Medians } from './report.js';
import { fmt, median, MiB } from './lib/stats.js';
import { addFasterBaseline, DECADE_CASE_IDS, runDecadeGroup } from './decade/group.js';
import { FLOWS_SCENARIOS, runFlowsBench } from './flows.js';

const HELP = `npm run bench [-- OPTIONS]

  --quick              one round, smaller sizes (under a minute)
  --rounds N           rounds per case (default 3; medians are reported)
  --only CASES         comma-separated case ids or prefixes (${[...CASES.map((c) => c.id), ...DECADE_CASE_IDS, ...FLOWS_SCENARIOS].join(', ')})
  --impl NAMES         comma-separated implementations (${[...IMPL_NAMES, ...TUNNEL_NAMES].join(', ')})
  --window OCTETS      beepstream receiveWindow, the initial per-channel window (default 4194304)
  --frame OCTETS       beepstream maxSendFrame (default 262144)
  --max-window OCTETS  beepstream maxReceiveWindow, the auto-tuning ceiling (default: the library's)
  --limit KEY=VALUE    any other beepstream limit (repeatable), e.g. --limit sendHighWaterMark=1048576
  --defaults           start from beepstream's own default limits instead of the bench's
                       (--window/--frame/--max-window/--limit still apply when given)
                       (the scistream-* cases run the S2DS with the data plane's DATA_LIMITS;
                       only --window/--frame/--max-window/--limit given here override them)
  --cpu-prof           write V8 CPU profiles of the beepstream workers and summarise them
  --node-flag FLAG     extra Node/V8 flag for the beepstream workers (repeatable), e.g. --node-flag=--trace-gc
  --out FILE           results JSON (default bench/results/latest.json)
  --help`;

// dist/bench/run.js → the repository root is two levels up.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST = fileURLToPath(new URL('../', import.meta.url));

/**
 * Workers run from a private copy of the compiled code, so a rebuild of
 * `dist/` during a run (`npm test` builds) cannot change or break them midway.
 * It lives under node_modules/.cache so that packages still resolve from it.
 */
function snapshotDist(): { worker: string; remove: () => void } {
  const dir = join(ROOT, 'node_modules/.cache/beepstream-bench', String(process.pid));
  rmSync(dir, { recursive: true, force: true });
  for (const sub of ['src', 'bench']) cpSync(join(DIST, sub), join(dir, 'dist', sub), { recursive: true, filter: (f) => !f.endsWith('.map') && !f.endsWith('.d.ts') });
  writeFileSync(join(dir, 'package.json'), '{"type":"module","private":true}\n');
  const remove = (): void => {
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync(join(dir, '..')); // only if no other run is using it
    } catch {
      /* not empty */
    }
  };
  return { worker: join(dir, 'dist/bench/worker.js'), remove };
}

let WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

interface Settings {
  quick: boolean;
  rounds: number;
  cases: CaseDef[];
  /** Selected cases of the DECADE group (bench/decade/group.ts). */
  decade: string[];
  impls: Set<string>;
  limits: Record<string, number>;
  /** Limits given on the command line: the S2DS of the scistream-* cases run DATA_LIMITS under these. */
  dataLimits: Record<string, number>;
  /** The stunnel binary (null: not installed; the stunnel baseline is skipped). */
  stunnel: string | null;
  cpuProf: string | null;
  nodeFlags: string[];
  out: string;
  /** The flows scenarios selected (bench/flows.ts). */
  flows: string[];
}

function parse(): Settings {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      impl: { type: 'string' },
      window: { type: 'string' },
      frame: { type: 'string' },
      'max-window': { type: 'string' },
      defaults: { type: 'boolean', default: false },
      limit: { type: 'string', multiple: true, default: [] },
      'cpu-prof': { type: 'boolean', default: false },
      'node-flag': { type: 'string', multiple: true, default: [] },
      out: { type: 'string', default: join(ROOT, 'bench/results/latest.json') },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const num = (s: string, what: string): number => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer, got ${JSON.stringify(s)}`);
    return n;
  };
  const limits: Record<string, number> = values.defaults ? {} : { receiveWindow: 4 * MiB, maxSendFrame: 256 * 1024 };
  const given: Record<string, number> = {};
  if (values.window !== undefined) given.receiveWindow = num(values.window, '--window');
  if (values.frame !== undefined) given.maxSendFrame = num(values.frame, '--frame');
  if (values['max-window'] !== undefined) given.maxReceiveWindow = num(values['max-window'], '--max-window');
  for (const kv of values.limit) {
    const m = /^(\w+)=(\d+)$/.exec(kv);
    if (!m) throw new Error(`--limit takes KEY=VALUE, got ${JSON.stringify(kv)}`);
    given[m[1] as string] = num(m[2] as string, `--limit ${m[1]}`);
  }
  Object.assign(limits, given);
  const dataLimits = { ...given };
  if ((dataLimits.maxSendFrame ?? 0) > (dataLimits.maxFrameSize ?? 8 * MiB)) dataLimits.maxFrameSize = dataLimits.maxSendFrame as number;
  // An inbound frame may be as large as our own frames (both sides use the same limits).
  if ((limits.maxSendFrame ?? 0) > (limits.maxFrameSize ?? 8 * MiB)) limits.maxFrameSize = limits.maxSendFrame as number;
  let cases = [...CASES];
  let decade: string[] = [...DECADE_CASE_IDS];
  let flows: string[] = [...FLOWS_SCENARIOS];
  if (values.only) {
    const want = values.only.split(',').map((s) => s.trim()).filter(Boolean);
    cases = cases.filter((c) => want.some((w) => c.id === w || c.id.startsWith(w)));
    decade = decade.filter((id) => want.some((w) => id === w || id.startsWith(w)));
    flows = flows.filter((c) => want.some((w) => c === w || c.startsWith(w)));
    if (cases.length === 0 && decade.length === 0 && flows.length === 0) throw new Error(`--only ${values.only} matches no case`);
  }
  const known: readonly string[] = [...IMPL_NAMES, ...TUNNEL_NAMES];
  const impls = new Set<string>(values.impl ? values.impl.split(',').map((s) => s.trim()) : known);
  for (const i of impls) if (!known.includes(i)) throw new Error(`unknown implementation ${i}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    quick: values.quick,
    rounds: values.rounds ? num(values.rounds, '--rounds') : values.quick ? 1 : 3,
    cases,
    decade,
    impls,
    limits,
    dataLimits,
    stunnel: null,
    cpuProf: values['cpu-prof'] ? join(ROOT, 'bench/results/profiles', stamp) : null,
    nodeFlags: values['node-flag'],
    out: values.out,
    flows,
  };
}

/** A throwaway ECDSA P-256 certificate for 127.0.0.1 and a random PSK. */
function makeTlsMaterial(): { key: string; cert: string; psk: string } {
  const dir = mkdtempSync(join(os.tmpdir(), 'beepstream-bench-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), psk: randomBytes(32).toString('hex') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every process this run started and that may still be alive; killed by PID if the runner exits early. */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

function killLeftovers(): void {
  for (const c of children) {
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function spawnWorker(execArgv: string[]): ChildProcess {
  const child = fork(WORKER, [], { execArgv: ['--expose-gc', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  track(child);
  return child;
}

function waitFor<T extends FromWorker['type']>(child: ChildProcess, type: T): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: FromWorker): void => {
      if (m.type === type) {
        cleanup();
        resolve(m as Extract<FromWorker, { type: T }>);
      } else if (m.type === 'error') {
        cleanup();
        reject(new Error(m.message));
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`worker exited (${code}) before ${type}`));
    };
    const cleanup = (): void => {
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Tunnel descriptions already printed (once per implementation). */
const described = new Set<string>();

/**
 * One measurement: a server worker and a client worker for one case and
 * implementation. In a `tunnel` case (scistream-*) the workers are the
 * producer and consumer applications (raw-tcp) and `impl` is the tunnel
 * between them: two more processes (lib/tunnel.ts), started after the
 * producer listens and stopped (killed by PID) at the end.
 */
async function measure(def: CaseDef, impl: string, s: Settings, options: ImplOptions, round: number): Promise<Metrics> {
  const params = def.params(s.quick);
  const variant = def.variants?.[impl];
  const appImpl = def.tunnel ? 'raw-tcp' : (variant?.impl ?? impl);
  if (variant) options = { ...options, limits: variant.limits };
  // In a tunnel case only the two Node processes in the middle (S2DS, or the node-tls relays) are
  // profiled; the applications are plain node:net, stunnel is not Node.
  const profiled = (role: string): boolean => (def.tunnel ? impl !== 'stunnel' && role.startsWith('s2ds') : appImpl === 'beepstream');
  const prof = (role: string): string[] =>
    !profiled(role)
      ? []
      : [...s.nodeFlags, ...(s.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', s.cpuProf, '--cpu-prof-name', `${def.id}-${impl}-r${round}-${role}.cpuprofile`] : [])];
  const budget = ((params.capSeconds ?? 0) + (params.seconds ?? 0) + (s.quick ? 40 : 90)) * 1000;
  const server = spawnWorker(prof('server'));
  let client: ChildProcess | null = null;
  let tunnel: Tunnel | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    if (def.tunnel) {
      // One more connection than the case opens at once: the warm-up connection's slot may be freed a moment late.
      tunnel = createTunnel(impl, { numConn: (params.channels ?? 1) + 1, limits: s.dataLimits, stunnel: s.stunnel, track, spawnWorker: (role) => spawnWorker(prof(role)) });
    }
    const work = (async (): Promise<Metrics> => {
      const ready = waitFor(server, 'ready');
      server.send({ type: 'init', role: 'server', impl: appImpl, options } satisfies ToWorker);
      let { port } = await ready;
      if (tunnel) {
        port = await tunnel.start(port);
        if (!described.has(impl)) {
          described.add(impl);
          console.error(`  ${def.id} ${impl}: ${tunnel.info}`);
        }
      }
      const c = spawnWorker(prof('client'));
      client = c;
      // Relay the client's commands to the server, and the answers back. In a
      // tunnel case what the tunnel's processes did between `mark` and
      // `report` (CPU, system calls, collections) rides along in the report.
      let nextId = 1;
      const meter = tunnel ? tunnelMeter(tunnel) : null;
      const pending = new Map<number, { clientId: number; extra: Promise<TunnelReport | null> }>();
      server.on('message', (m: FromWorker) => {
        if (m.type !== 'reply') return;
        const p = pending.get(m.id);
        if (p === undefined) return;
        pending.delete(m.id);
        void p.extra.then((extra) => {
          const result = extra && m.result !== null && typeof m.result === 'object' ? { ...m.result, ...extra } : m.result;
          if (c.connected) c.send({ ...m, id: p.clientId, result } satisfies ToWorker);
        });
      });
      c.on('message', (m: FromWorker) => {
        if (m.type !== 'server-cmd') return;
        const id = nextId++;
        const extra = !meter ? Promise.resolve(null) : m.cmd === 'mark' ? meter.mark().then(() => null) : meter.report();
        pending.set(id, { clientId: m.id, extra });
        server.send({ type: 'cmd', id, cmd: m.cmd, arg: m.arg } satisfies ToWorker);
      });
      const result = waitFor(c, 'result');
      c.send({ type: 'init', role: 'client', impl: appImpl, options, caseId: def.id, params, port } satisfies ToWorker);
      return (await result).metrics;
    })();
    work.catch(() => undefined); // settles after a timeout too; never unhandled
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${budget / 1000} s`)), budget);
    });
    // A server that fails or dies mid-measurement fails it at once.
    const serverDied = new Promise<never>((_, reject) => {
      server.on('message', (m: FromWorker) => {
        if (m.type === 'error') reject(new Error(`server: ${m.message}`));
      });
      server.once('exit', (code) => reject(new Error(`server worker exited (${code})`)));
    });
    serverDied.catch(() => undefined);
    return await Promise.race([work, timeout, serverDied]);
  } finally {
    clearTimeout(timer);
    if (server.connected) server.send({ type: 'cmd', id: 0, cmd: 'exit' } satisfies ToWorker);
    const c = client as ChildProcess | null;
    const t = tunnel as Tunnel | null;
    await Promise.all([exited(server, 5000), c ? exited(c, 5000) : Promise.resolve(), t ? t.stop() : Promise.resolve()]);
  }
}

function describe(m: Metrics): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(' ');
}

async function main(): Promise<void> {
  const s = parse();
  const started = Date.now();
  const snap = snapshotDist();
  WORKER = snap.worker;
  process.once('exit', snap.remove);
  process.once('exit', killLeftovers);
  process.once('exit', removeTempDirs);
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
  const busy = os.loadavg()[0] as number;
  if (busy > os.cpus().length * 0.5) {
    console.error(`warning: load average ${busy.toFixed(1)} on ${os.cpus().length} CPUs — other work will skew these numbers`);
  }
  // Load averages seen before each measurement (the bench's own two workers add about 2).
  const loads: number[] = [];
  const wants = (impl: string): boolean => s.impls.has(impl) && s.cases.some((c) => c.impls.includes(impl));
  const fixed = s.cases.filter((c) => c.variants).map((c) => c.id);
  const tls = wants('tls1.3-aes128gcm') || wants('tls1.2-psk-aes128gcm') ? makeTlsMaterial() : undefined;
  // The stunnel baseline of the scistream-* cases needs stunnel 4/5 (Debian: apt-get install stunnel4).
  const skipped: string[] = [];
  const stunnelCases = s.cases.filter((c) => c.tunnel && c.impls.includes('stunnel')).map((c) => c.id);
  let stunnelText = '';
  if (stunnelCases.length && s.impls.has('stunnel')) {
    s.stunnel = findStunnel();
    if (s.stunnel === null) {
      s.impls.delete('stunnel');
      const msg = `stunnel is not installed (no stunnel4 or stunnel on PATH; Debian/Ubuntu: apt-get install stunnel4): the stunnel baseline of ${stunnelCases.join(', ')} is skipped`;
      skipped.push(msg);
      console.error(`note: ${msg}`);
    } else {
      stunnelText = `${stunnelVersion(s.stunnel) || s.stunnel}`;
    }
  }
  if (s.cpuProf) mkdirSync(s.cpuProf, { recursive: true });
  const raw: Record<string, Record<string, Metrics[]>> = {};
  const errors: string[] = [];
  const limitsText =
    Object.entries(s.limits)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'library defaults';
  console.error(`beepstream bench: ${s.quick ? 'quick, ' : ''}${s.rounds} round(s); beepstream limits: ${limitsText}`);
  for (let round = 1; round <= s.rounds; round++) {
    for (const def of s.cases) {
      // Rotate the order each round, so no implementation always runs first (or right after another).
      const order = def.impls.filter((i) => s.impls.has(def.variants?.[i]?.impl ?? i));
      const k = (round - 1) % Math.max(1, order.length);
      for (const impl of [...order.slice(k), ...order.slice(0, k)]) {
        const options: ImplOptions = { limits: s.limits, manyStreams: def.manyStreams ?? false, ...(tls ? { tls } : {}) };
        const t0 = Date.now();
        loads.push(os.loadavg()[0] as number);
        try {
          const m = await measure(def, impl, s, options, round);
          ((raw[def.id] ??= {})[impl] ??= []).push(m);
          console.error(`[${round}/${s.rounds}] ${def.id.padEnd(14)} ${impl.padEnd(20)} ${describe(m)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        } catch (err) {
          const msg = `[${round}/${s.rounds}] ${def.id} ${impl}: ${(err as Error).message.split('\n')[0]}`;
          errors.push(msg);
          console.error(`${msg} — FAILED`);
        }
      }
    }
  }
  const decadeHeader: string[] = [];
  const decadeNotes: string[] = [];
  if (s.decade.length) {
    const d = await runDecadeGroup({ quick: s.quick, rounds: s.rounds, ids: s.decade, track, worker: join(WORKER, '../decade/worker.js'), forkProcess: (path) => {
      const child = fork(path, [], { execArgv: s.nodeFlags, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
      track(child);
      return child;
    } });
    Object.assign(raw, d.raw);
    errors.push(...d.errors);
    decadeHeader.push(...d.header);
    decadeNotes.push(...d.notes.map((n) => `- ${n}`));
  }
  const medians: Medians = {};
  for (const [caseId, byImpl] of Object.entries(raw)) {
    const out: Record<string, Record<string, number>> = {};
    for (const [impl, runs] of Object.entries(byImpl)) {
      const keys = new Set(runs.flatMap((r) => Object.keys(r)));
      const med: Record<string, number> = {};
      for (const k of keys) med[k] = median(runs.map((r) => r[k]).filter((v): v is number => typeof v === 'number'));
      out[impl] = med;
    }
    medians[caseId] = out;
  }
  decadeNotes.push(...addFasterBaseline(medians));
  const rows = buildRows(medians);
  const header = [
    `beepstream benchmarks — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, loopback`,
    `${s.quick ? 'QUICK run (1 round, smaller sizes: indicative only)' : `medians of ${s.rounds} rounds`}; beepstream limits: ${limitsText}`,
    `http2: ${4} MiB stream / ${64} MiB connection window; yamux: library defaults; ratio = beepstream ÷ baseline`,
    ...(s.cases.some((c) => c.tunnel)
      ? [
          `scistream-*: S2DS limits DATA_LIMITS${Object.keys(s.dataLimits).length ? ` overridden by ${Object.entries(s.dataLimits).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}, TLS 1.3 PSK; ` +
            (s.stunnel ? `stunnel: ${stunnelText}, TLSv1.2 PSK-AES128-GCM-SHA256; ` : '') +
            'node-tls (the ceiling): node:tls TLS 1.3 PSK TLS_AES_128_GCM_SHA256 relays, the S2DS pump, no BEEP; ' +
            'CPU = all four processes (both applications, both tunnel ends)',
        ]
      : []),
    ...(fixed.length ? [`${fixed.join(', ')}: limits fixed by the case (library defaults; beepstream-16MiB: receiveWindow = maxReceiveWindow = 16 MiB)`] : []),
    ...decadeHeader,
    ...(busy > os.cpus().length * 0.5 ? [`WARNING: 1-min load average was ${busy.toFixed(1)} before the run started — other work skews these numbers`] : []),
  ];
  const table = s.cases.length > 0 ? markdownTable(rows) : '';
  const flowsText = s.flows.length > 0 ? await runFlowsBench(s.flows, s.rounds, s.quick, (l) => console.error(l)) : '';
  const notes = Object.entries(raw)
    .map(([c, byImpl]) => {
      const capped = Object.entries(byImpl).filter(([, runs]) => runs.some((r) => r.capped === 1)).map(([i]) => i);
      return capped.length ? `- ${c}: hit its time cap for ${capped.join(', ')} (throughput from the octets the server counted)` : '';
    })
    .filter(Boolean);
  notes.push(...skipped.map((m) => `- ${m}`), ...decadeNotes);
  const text = [...header.map((h) => `> ${h}`), '', ...(s.cases.length > 0 || s.decade.length > 0 ? [targetsTable(rows), '', table] : []), ...(flowsText ? ['', flowsText] : []), ...(notes.length ? ['', ...notes] : []), ...(errors.length ? ['', 'Failures:', ...errors.map((e) => `- ${e}`)] : [])].join('\n');
  console.log(`\n${text}\n`);
  mkdirSync(join(s.out, '..'), { recursive: true });
  writeFileSync(s.out, `${JSON.stringify(rows, null, 2)}\n`);
  writeFileSync(s.out.replace(/\.json$/, '.md'), `${text}\n`);
  writeFileSync(s.out.replace(/\.json$/, '-raw.json'), `${JSON.stringify({ settings: { ...s, cases: s.cases.map((c) => c.id), impls: [...s.impls] }, loadAverages: loads, raw, medians }, null, 2)}\n`);
  console.error(`wrote ${s.out} (${rows.length} rows) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (s.cpuProf) {
    for (const f of readdirSync(s.cpuProf).filter((n) => n.endsWith('.cpuprofile')).sort()) {
      console.log(formatProfile(join(s.cpuProf, f), 15, true));
      console.log('');
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
