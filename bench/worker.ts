/**
 * A benchmark worker process (forked by `run.ts`, one per side of each
 * measurement, so server and client each get a core and loopback is real).
 *
 * As a server it listens on 127.0.0.1, says `ready` with its port, then
 * answers `mark` (note CPU time and memory now) and `report` (CPU time and
 * memory growth since `mark`, after waiting for the expected sessions or
 * streams to be open). As a client it runs one case's driver and sends the
 * metrics back. As an S2DS (the `scistream-*` cases) it runs one facility's
 * SciStream data server between the two application workers.
 *
 * @module
 */
import { CASES, type DriverContext, type ServerReport } from './cases.js';
import { gcMeter } from './lib/gcmeter.js';
import type { ServerImpl } from './lib/adapter.js';
import type { Command, FromWorker, InitClient, InitS2ds, InitServer, Reply, ToWorker } from './lib/ipc.js';
import { loadImpl } from './impl/index.js';

function send(msg: FromWorker, then?: () => void): void {
  if (!process.send) throw new Error('bench worker must be forked with an IPC channel');
  process.send(msg, undefined, {}, () => then?.());
}

function fail(err: unknown): void {
  const message = err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err);
  send({ type: 'error', message }, () => process.exit(1));
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ server

async function runServer(init: InitServer): Promise<void> {
  const impl = await loadImpl(init.impl);
  const srv: ServerImpl = await impl.server(init.options);
  let cpu0 = process.cpuUsage();
  let mem0 = process.memoryUsage();
  let received0 = 0;
  let wire0 = 0;
  let stats0: Record<string, number> = {};
  let meter = gcMeter();
  // From `mark` to `report`: peaks of the octets held unread (beepstream) and of RSS, sampled every 20 ms.
  let sampler: NodeJS.Timeout | undefined;
  let peakBuffered = 0;
  let bufferedSource: 'flow' | 'estimate' | undefined;
  let peakRss = 0;
  const sample = (): void => {
    const b = srv.counts().buffered;
    if (b) {
      peakBuffered = Math.max(peakBuffered, b.octets);
      bufferedSource = b.source;
    }
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  };
  const handle = async (c: Command): Promise<unknown> => {
    const arg = (c.arg ?? {}) as { gc?: boolean; sample?: boolean; expect?: { sessions?: number; streams?: number } };
    switch (c.cmd) {
      case 'mark':
        if (arg.gc) gcNow();
        mem0 = process.memoryUsage();
        received0 = srv.counts().received;
        wire0 = srv.counts().wire;
        stats0 = srv.counts().stats ?? {};
        peakBuffered = 0;
        peakRss = mem0.rss;
        clearInterval(sampler);
        // `sample: false`: no peaks wanted (e.g. churn), and none of their cost measured.
        if (arg.sample !== false) {
          sampler = setInterval(sample, 20);
          sampler.unref();
        }
        meter.read();
        meter = gcMeter();
        cpu0 = process.cpuUsage();
        return null;
      case 'report': {
        const cpu = process.cpuUsage(cpu0);
        const gc = meter.read();
        meter = gcMeter();
        sample();
        clearInterval(sampler);
        const received = srv.counts().received - received0;
        const wire = srv.counts().wire - wire0;
        const statsNow = srv.counts().stats;
        const stats = statsNow ? Object.fromEntries(Object.entries(statsNow).map(([k, v]) => [k, v - (stats0[k] ?? 0)])) : undefined;
        const want = arg.expect ?? {};
        const deadline = Date.now() + 30_000;
        for (;;) {
          const n = srv.counts();
          if ((want.sessions === undefined || n.sessions >= want.sessions) && (want.streams === undefined || n.streams >= want.streams)) break;
          if (Date.now() > deadline) throw new Error(`server saw ${JSON.stringify(n)}, expected ${JSON.stringify(want)}`);
          await sleep(20);
        }
        if (arg.gc) gcNow();
        const mem = process.memoryUsage();
        const report: ServerReport = {
          cpu: (cpu.user + cpu.system) / 1e6,
          heap: mem.heapUsed - mem0.heapUsed,
          rss: mem.rss - mem0.rss,
          external: mem.external - mem0.external,
          received,
          wire,
          counts: srv.counts(),
          ...(stats ? { stats } : {}),
          ...(bufferedSource ? { peakBuffered, bufferedSource } : {}),
          ...(srv.counts().slowPeakBuffered !== undefined ? { slowPeakBuffered: srv.counts().slowPeakBuffered } : {}),
          peakRss: peakRss - mem0.rss,
          gc,
        };
        return report;
      }
      case 'exit':
        setImmediate(() => process.exit(0));
        return null;
    }
  };
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'cmd') return;
    handle(m).then(
      (result) => send({ type: 'reply', id: m.id, result } satisfies Reply),
      (e: unknown) => send({ type: 'reply', id: m.id, error: e instanceof Error ? e.message : String(e) } satisfies Reply),
    );
  });
  send({ type: 'ready', port: srv.port });
}

// ------------------------------------------------------------------ S2DS

/** One facility's SciStream data server (BEEP over TLS-PSK), as `createDataServer` ships it. */
/**
 * A tunnel process's `mark` / `report`: its collections and page faults in
 * between (`report` answers {@link GcCounts}); any other command is left to
 * the caller.
 */
function meterCommands(): void {
  let meter: ReturnType<typeof gcMeter> | null = null;
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'cmd') return;
    if (m.cmd === 'mark') {
      meter = gcMeter();
      send({ type: 'reply', id: m.id, result: null } satisfies Reply);
    } else if (m.cmd === 'report') {
      const counts = meter?.read() ?? null;
      meter = null;
      send({ type: 'reply', id: m.id, result: counts } satisfies Reply);
    }
  });
}

async function runS2ds(init: InitS2ds): Promise<void> {
  meterCommands();
  if (init.relay === 'node-tls') return runTlsRelay(init);
  const { createDataServer, OutboundPath } = await import('../src/scistream/data/index.js');
  let diagnostics = 0;
  const ds = createDataServer({ host: '127.0.0.1', limits: init.limits, onError: () => void diagnostics++ });
  const path =
    init.side === 'inbound'
      ? await ds.openInbound({ uid: init.uid, targets: init.peers, numConn: init.numConn })
      : await ds.openOutbound({ uid: init.uid, remotes: init.peers, numConn: init.numConn });
  let info: string | undefined;
  if (path instanceof OutboundPath) {
    const link = path.links()[0];
    info = `${link?.protocol ?? '?'} ${link?.cipher ?? '?'}, ${path.links().length} BEEP connection(s)`;
  }
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'cmd' || m.cmd !== 'exit') return;
    // Close politely, but never wait long: the runner kills us by PID after 5 s anyway.
    void Promise.race([ds.close(), sleep(2000)]).then(() => send({ type: 'reply', id: m.id, result: { diagnostics } } satisfies Reply, () => process.exit(0)));
  });
  const first = path.listeners[0] ?? '';
  send({ type: 'ready', port: Number(first.slice(first.lastIndexOf(':') + 1)), listeners: [...path.listeners], ...(info ? { info } : {}) });
}

/** The ceiling of the scistream-* cases in an S2DS's place: node:tls alone (lib/tlsrelay.ts). */
async function runTlsRelay(init: InitS2ds): Promise<void> {
  const { startTlsRelay } = await import('./lib/tlsrelay.js');
  const relay = await startTlsRelay(init.side === 'inbound' ? 'server' : 'client', init.uid, init.peers[0] ?? '');
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'cmd' || m.cmd !== 'exit') return;
    relay.close();
    send({ type: 'reply', id: m.id, result: { diagnostics: relay.failures() } } satisfies Reply, () => process.exit(0));
  });
  send({ type: 'ready', port: relay.port, listeners: [`127.0.0.1:${relay.port}`], info: relay.info });
}

// ------------------------------------------------------------------ client

async function runClient(init: InitClient): Promise<void> {
  const def = CASES.find((c) => c.id === init.caseId);
  if (!def) throw new Error(`unknown case ${init.caseId}`);
  const impl = await loadImpl(init.impl);
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'reply') return;
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(`server: ${m.error}`));
    else w?.resolve(m.result);
  });
  const ctx = {
    client: impl.client(init.options),
    port: init.port,
    params: init.params,
    server(cmd: 'mark' | 'report', arg?: unknown): Promise<unknown> {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        send({ type: 'server-cmd', id, cmd, arg });
      });
    },
  } as DriverContext;
  const metrics = await def.drive(ctx);
  send({ type: 'result', metrics }, () => process.exit(0));
}

process.once('message', (m: ToWorker) => {
  if (m.type !== 'init') return fail(new Error(`expected init, got ${m.type}`));
  (m.role === 'server' ? runServer(m) : m.role === 's2ds' ? runS2ds(m) : runClient(m)).catch(fail);
});
