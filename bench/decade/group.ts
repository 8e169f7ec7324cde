/**
 * The DECADE benchmark group (`npm run bench -- --only decade`): one object
 * PUT and then GET over TLS 1.3 on loopback, by a DECADE server (BEEP) and,
 * in the same run, by a plain node:https server and by nginx; and a GET
 * through a second DECADE server that fetches from the origin (server to
 * server) against the same GET straight from the origin.
 *
 * Every measurement forks its own processes: the server(s), and a client
 * process that connects, makes one small exchange, then tells the runner to
 * `mark` (the runner reads the servers' CPU time from /proc) and makes the
 * measured transfer. See bench/README.md, "DECADE".
 *
 * @module
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createToken, generateAccountKey, nameFromDigest } from '../../src/decade/index.js';
import { procCpuSeconds } from '../lib/tunnel.js';
import { GiB, MB, MiB } from '../lib/stats.js';
import type { Metrics } from '../cases.js';
import type { Medians } from '../report.js';
import { findNginx, nginxInfo, startNginx, type NginxServer } from './nginx.js';
import type { DecadeWorkerInit, DecadeWorkerMsg } from './worker.js';

/** The group's case ids (for `--only`; `--only decade` selects them all). */
export const DECADE_CASE_IDS = ['decade-put', 'decade-get', 'decade-relay', 'decade-weights'] as const;

/** Settings the runner passes on. */
export interface DecadeGroupSettings {
  quick: boolean;
  rounds: number;
  /** Selected case ids of this group. */
  ids: readonly string[];
  /** Fork a bench process (the runner tracks it and kills it by PID if it exits early). */
  forkProcess: (path: string) => ChildProcess;
  /** The compiled bench/decade/worker.js to fork (the runner's snapshot of it). */
  worker?: string;
  /** Record a process the group spawned itself (nginx). */
  track: (child: ChildProcess) => void;
}

/** What the group hands back. */
export interface DecadeGroupResult {
  raw: Record<string, Record<string, Metrics[]>>;
  header: string[];
  notes: string[];
  errors: string[];
}

const DEFAULT_WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
const ACCOUNT = 'bench';

function tlsMaterial(dir: string): { cert: string; key: string } {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

/** A file of `size` random octets, and its name. */
function makeObject(path: string, size: number): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 * MiB);
  const fd = openSync(path, 'w', 0o600);
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      h.update(buf.subarray(0, n));
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return nameFromDigest(h.digest()).name;
}

function message<T extends DecadeWorkerMsg['type']>(child: ChildProcess, type: T, ms: number): Promise<Extract<DecadeWorkerMsg, { type: T }>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`no ${type} within ${ms / 1000} s`)), ms);
    const onMsg = (m: DecadeWorkerMsg): void => {
      if (m.type === type) done(undefined, m as Extract<DecadeWorkerMsg, { type: T }>);
      else if (m.type === 'error') done(new Error(m.message.split('\n')[0]));
    };
    const onExit = (code: number | null): void => done(new Error(`process exited (${code}) before ${type}`));
    const done = (err?: Error, m?: Extract<DecadeWorkerMsg, { type: T }>): void => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m as Extract<DecadeWorkerMsg, { type: T }>);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

interface Server {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
}

const cpuOf = (pids: number[]): number => pids.reduce((a, p) => a + (procCpuSeconds(p) ?? 0), 0);

/**
 * Write `bytes` (and a quarter more) to a scratch file in `dir` and delete it at once (its dirty pages
 * are dropped, never written back). On this VM (`virtio_balloon` with free-page reporting) memory
 * that stays free for about 2 s goes back to the host, and the next write into the page cache
 * faults every page in again: 1 GiB then costs 1.3–2.6 CPU s instead of 0.17–0.25 s right after
 * other pages were freed (bench/README.md, "Why the PUT rows swing"). Done before every measured
 * PUT, every implementation, so none pays it by the luck of what ran before it.
 * `BENCH_DECADE_WARM_PAGES=0` turns it off.
 */
function warmFreePages(dir: string, bytes: number): void {
  const path = join(dir, `warm-${process.pid}`);
  const block = Buffer.alloc(MiB, 1);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes * 1.25; done += MiB) writeSync(fd, block, 0, MiB, done);
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}

/**
 * One measured transfer: a client process against `port`; the servers' CPU
 * time between the client's `mark` and its result.
 */
async function transfer(s: DecadeGroupSettings, init: Extract<DecadeWorkerInit, { role: 'client' | 'weights' }>, servers: Server[], budgetMs: number): Promise<Metrics> {
  // Dirty pages of an earlier step (nginx does not fsync its PUT) are written back before, not during.
  execFileSync('sync');
  const c = s.forkProcess(s.worker ?? DEFAULT_WORKER);
  try {
    const marked = message(c, 'mark', 30_000);
    c.send(init);
    await marked;
    const pids = servers.flatMap((x) => x.pids());
    const cpu0 = cpuOf(pids);
    // Each server's own CPU too (the relay row: origin, then relay).
    const each0 = servers.map((x) => cpuOf(x.pids()));
    // A PUT writes its object into new page-cache pages: give every implementation pages the
    // host still backs (see warmFreePages), just before it starts.
    if (init.role === 'client' && init.op === 'put' && process.env.BENCH_DECADE_WARM_PAGES !== '0') warmFreePages(dirname(init.file), init.size);
    const result = message(c, 'result', budgetMs);
    c.send({ go: true });
    const r = await result;
    const cpuServer = cpuOf(pids) - cpu0;
    const each = servers.map((x, i) => cpuOf(x.pids()) - (each0[i] as number));
    const m = r.metrics;
    const bytes = m.bytes as number;
    const seconds = m.seconds as number;
    return {
      mbps: bytes / MB / seconds,
      seconds,
      cpuPerGiB: ((m.cpuClient as number) + cpuServer) / (bytes / GiB),
      cpuServerPerGiB: cpuServer / (bytes / GiB),
      cpuClientPerGiB: (m.cpuClient as number) / (bytes / GiB),
      ...(servers.length === 2 ? { cpuOriginPerGiB: (each[0] as number) / (bytes / GiB), cpuRelayPerGiB: (each[1] as number) / (bytes / GiB) } : {}),
      ...(m.ttfb !== undefined ? { ttfbMs: m.ttfb * 1000 } : {}),
      ...(m.weightRatio !== undefined ? { weightRatio: m.weightRatio, shareErrorPct: m.shareErrorPct as number } : {}),
      bytes,
    };
  } finally {
    await stopChild(c);
  }
}

async function startWorkerServer(s: DecadeGroupSettings, init: DecadeWorkerInit): Promise<Server> {
  const child = s.forkProcess(s.worker ?? DEFAULT_WORKER);
  const ready = message(child, 'ready', 30_000);
  child.send(init);
  const { port } = await ready;
  return { port, pids: () => (child.pid === undefined ? [] : [child.pid]), stop: () => stopChild(child) };
}

/** Run the selected cases of the group, `rounds` times, implementations rotating. */
export async function runDecadeGroup(s: DecadeGroupSettings): Promise<DecadeGroupResult> {
  const size = s.quick ? 256 * MiB : GiB;
  const budgetMs = (s.quick ? 60 : 180) * 1000;
  const raw: DecadeGroupResult['raw'] = {};
  const errors: string[] = [];
  const notes: string[] = [];
  const root = mkdtempSync(join(process.env.BENCH_DECADE_TMP ?? '/var/tmp', 'beepstream-decade-bench-'));
  const cleanup = (): void => rmSync(root, { recursive: true, force: true });
  process.once('exit', cleanup);
  const header: string[] = [];
  try {
    const { cert, key } = tlsMaterial(root);
    console.error(`decade: writing a ${size / MiB} MiB object of random octets under ${root}`);
    const file = join(root, 'object.bin');
    const name = makeObject(file, size);
    const small = join(root, 'small.bin');
    const smallName = makeObject(small, 64 * 1024);
    const k = generateAccountKey();
    const token = await createToken({ account: ACCOUNT, operations: ['put', 'get', 'stat'], expiresIn: 6 * 3600 }, k.privateJwk);
    const wsize = s.quick ? 64 * MiB : 256 * MiB;
    const wfiles: { file: string; name: string }[] = [];
    const wf = (i: 0 | 1): { file: string; name: string } => wfiles[i] as { file: string; name: string };
    const wtokens: [string, string] = ['', ''];
    if (s.ids.includes('decade-weights')) {
      for (const i of [0, 1]) {
        const f = join(root, `weights-${i}.bin`);
        wfiles.push({ file: f, name: makeObject(f, wsize) });
      }
      wtokens[0] = await createToken({ account: ACCOUNT, operations: ['get', 'stat'], expiresIn: 6 * 3600, weight: 3 }, k.privateJwk);
      wtokens[1] = await createToken({ account: ACCOUNT, operations: ['get', 'stat'], expiresIn: 6 * 3600, weight: 1 }, k.privateJwk);
    }
    const wantsPutGet = s.ids.includes('decade-put') || s.ids.includes('decade-get');
    let impls: ('beepstream' | 'node-https' | 'nginx')[] = ['beepstream', 'node-https', 'nginx'];
    // Diagnostics only (profiling one side): BENCH_DECADE_IMPLS=beepstream leaves out the baselines (the targets then show —).
    const only = process.env.BENCH_DECADE_IMPLS?.split(',').map((x) => x.trim());
    if (only !== undefined) impls = impls.filter((i) => only.includes(i));
    // Equal client work (BENCH_DECADE_CLIENT_HASH=1): the baselines' GET clients verify SHA-256 too, as DECADE's always does.
    const clientHash = process.env.BENCH_DECADE_CLIENT_HASH === '1';
    const nginx = wantsPutGet ? findNginx() : null;
    if (wantsPutGet) {
      const info = nginx ? nginxInfo(nginx) : null;
      if (!nginx || !info?.dav) {
        const msg = nginx
          ? `nginx at ${nginx} lacks the dav module (http_dav_module): the nginx baseline of decade-put/decade-get is skipped`
          : 'nginx is not installed (Debian/Ubuntu: apt-get install nginx): the nginx baseline of decade-put/decade-get is SKIPPED';
        console.error(`note: ${msg}`);
        notes.push(msg);
        impls = impls.filter((i) => i !== 'nginx');
      } else header.push(`decade-put/decade-get: ${size / MiB} MiB object, TLS 1.3 TLS_AES_128_GCM_SHA256 on 127.0.0.1; ${info.version} (dav PUT, no fsync), node:https (fsync + rename), DECADE (SHA-256 + fsync + rename; the client verifies SHA-256 on GET; DECADE_LIMITS, not the limits above)${clientHash ? '; BENCH_DECADE_CLIENT_HASH=1: the node-https and nginx GET clients verify SHA-256 too' : ''}`);
    }
    const record = (caseId: string, impl: string, m: Metrics, round: number, t0: number): void => {
      ((raw[caseId] ??= {})[impl] ??= []).push(m);
      console.error(`[${round}/${s.rounds}] ${caseId.padEnd(14)} ${impl.padEnd(20)} ${Object.entries(m).map(([k2, v]) => `${k2}=${v.toFixed(2)}`).join(' ')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    };
    for (let round = 1; round <= s.rounds; round++) {
      if (wantsPutGet) {
        const k0 = (round - 1) % impls.length;
        for (const impl of [...impls.slice(k0), ...impls.slice(0, k0)]) {
          const dir = join(root, `${impl}-${round}`);
          mkdirSync(dir, { recursive: true });
          let server: Server | null = null;
          try {
            if (impl === 'beepstream') server = await startWorkerServer(s, { role: 'decade-server', dir, cert, key, account: ACCOUNT, publicJwk: k.publicJwk });
            else if (impl === 'node-https') server = await startWorkerServer(s, { role: 'https-server', dir, cert, key });
            else {
              const n: NginxServer = await startNginx(nginx as string, dir, cert, key);
              s.track(n.child);
              server = n;
            }
            const base = { role: 'client', impl, port: server.port, ca: cert, file, size, name, token, ...(clientHash ? { hash: true } : {}) } as const;
            // PUT first (it also puts the object in place for the GET), then GET.
            let t0 = Date.now();
            const put = await transfer(s, { ...base, op: 'put' }, [server], budgetMs);
            if (s.ids.includes('decade-put')) record('decade-put', impl, put, round, t0);
            t0 = Date.now();
            const get = await transfer(s, { ...base, op: 'get' }, [server], budgetMs);
            if (s.ids.includes('decade-get')) record('decade-get', impl, get, round, t0);
          } catch (err) {
            const msg = `[${round}/${s.rounds}] decade ${impl}: ${(err as Error).message.split('\n')[0]}`;
            errors.push(msg);
            console.error(`${msg} — FAILED`);
          } finally {
            await server?.stop();
            rmSync(dir, { recursive: true, force: true });
          }
        }
      }
      if (s.ids.includes('decade-relay')) {
        // Origin A holds the object; relay B may fetch from A. Direct: GET from A. Relay: GET from B,
        // which fetches from A while it answers (B's store empty each round: a cache miss).
        const order = round % 2 === 1 ? ['direct', 'beepstream'] : ['beepstream', 'direct'];
        const servers: Server[] = [];
        const dirA = join(root, `origin-${round}`);
        const dirB = join(root, `relay-${round}`);
        try {
          const a = await startWorkerServer(s, { role: 'decade-server', dir: dirA, cert, key, account: ACCOUNT, publicJwk: k.publicJwk });
          servers.push(a);
          const b = await startWorkerServer(s, { role: 'decade-server', dir: dirB, cert, key, account: ACCOUNT, publicJwk: k.publicJwk, relay: { allow: [`127.0.0.1:${a.port}`], ca: cert } });
          servers.push(b);
          const base = { role: 'client', impl: 'beepstream', ca: cert, token } as const;
          await transfer(s, { ...base, op: 'put', port: a.port, file, size, name }, [a], budgetMs);
          // Warm-up: B's session to A is set up by a first fetch (of a small object), as a running relay's would be.
          await transfer(s, { ...base, op: 'put', port: a.port, file: small, size: 64 * 1024, name: smallName }, [a], budgetMs);
          await transfer(s, { ...base, op: 'get', port: b.port, file: small, size: 64 * 1024, name: smallName, source: { origin: `127.0.0.1:${a.port}`, token } }, [a, b], budgetMs);
          for (const which of order) {
            const t0 = Date.now();
            const m =
              which === 'direct'
                ? await transfer(s, { ...base, op: 'get', port: a.port, file, size, name }, [a], budgetMs)
                : await transfer(s, { ...base, op: 'get', port: b.port, file, size, name, source: { origin: `127.0.0.1:${a.port}`, token } }, [a, b], budgetMs);
            record('decade-relay', which, m, round, t0);
          }
        } catch (err) {
          const msg = `[${round}/${s.rounds}] decade-relay: ${(err as Error).message.split('\n')[0]}`;
          errors.push(msg);
          console.error(`${msg} — FAILED`);
        } finally {
          for (const x of servers) await x.stop();
          rmSync(dirA, { recursive: true, force: true });
          rmSync(dirB, { recursive: true, force: true });
        }
      }
      if (s.ids.includes('decade-weights')) {
        // Two objects of the same size on one server; two GETs at once on one connection, tokens weighted 3 and 1.
        const dir = join(root, `weights-${round}`);
        let server: Server | null = null;
        try {
          server = await startWorkerServer(s, { role: 'decade-server', dir, cert, key, account: ACCOUNT, publicJwk: k.publicJwk });
          const base = { role: 'client', impl: 'beepstream', ca: cert, token, port: server.port, size: wsize } as const;
          await transfer(s, { ...base, op: 'put', file: wf(0).file, name: wf(0).name }, [server], budgetMs);
          await transfer(s, { ...base, op: 'put', file: wf(1).file, name: wf(1).name }, [server], budgetMs);
          const t0 = Date.now();
          const m = await transfer(s, { role: 'weights', port: server.port, ca: cert, names: [wf(0).name, wf(1).name], size: wsize, tokens: wtokens, weights: [3, 1] }, [server], budgetMs);
          record('decade-weights', 'beepstream', m, round, t0);
        } catch (err) {
          const msg = `[${round}/${s.rounds}] decade-weights: ${(err as Error).message.split('\n')[0]}`;
          errors.push(msg);
          console.error(`${msg} — FAILED`);
        } finally {
          await server?.stop();
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    if (s.ids.includes('decade-weights')) header.push(`decade-weights: two ${wsize / MiB} MiB objects GET at once on one TLS connection with tokens of weight 3 and 1; share = heavy octets ÷ light octets while the heavy one went from 10 % to 90 %`);
    if (s.ids.includes('decade-relay')) header.push(`decade-relay: ${size / MiB} MiB GET through a second DECADE server fetching from the origin (its session to the origin set up by a warm-up fetch; its store empty) vs the GET straight from the origin; CPU = client + both servers`);
  } finally {
    cleanup();
    process.off('exit', cleanup);
  }
  return { raw, header, notes, errors };
}

/**
 * Add the pseudo-implementation `faster-baseline` to the medians of
 * decade-put and decade-get: whichever of node-https and nginx had the higher
 * median throughput (the issue's target is against the faster of them).
 */
export function addFasterBaseline(medians: Medians): string[] {
  const out: string[] = [];
  for (const id of ['decade-put', 'decade-get']) {
    const byImpl = medians[id];
    if (!byImpl) continue;
    const cands = ['node-https', 'nginx'].filter((i) => byImpl[i]?.mbps !== undefined);
    if (cands.length === 0) continue;
    const best = cands.reduce((a, b) => ((byImpl[b]?.mbps ?? 0) > (byImpl[a]?.mbps ?? 0) ? b : a));
    byImpl['faster-baseline'] = { ...(byImpl[best] as Record<string, number>) };
    out.push(`- ${id}: the faster baseline was ${best}`);
  }
  return out;
}
