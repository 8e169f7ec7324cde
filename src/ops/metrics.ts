/**
 * Prometheus metrics of BEEP listeners and of an S2CS, built on the
 * `node:diagnostics_channel` events of the session layer
 * (`beepstream:session:close`, `beepstream:auth`, `beepstream:limit`) and
 * on live state read at scrape time (sessions, channels, counters, the
 * SciStream registry).
 *
 * Cardinality and secrecy: labels are server names, profile URIs (only
 * registered profiles can open), SASL mechanism names, limit names, session
 * states, roles and SciStream session *tags* (`sessionTag(uid)`, one-way) —
 * never a uid, an identity, a password, a token or a key.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DIAGNOSTICS_CHANNELS, subscribeAll, newSessionStats, type AuthEvent, type LimitEvent, type SessionCloseEvent, type SessionStats, type BeepServer, type Session } from '../channels/index.js';
import type { ControlSessionState, S2cs } from '../scistream/index.js';
import { listenHttp, pathOf, sendText, BASE_HEADERS, type OpsServer } from './http.js';
import { ThroughputSampler } from './sampler.js';
import { registerFlowsMetrics } from './flows-metrics.js';
import type { FlowsServer } from '../flows/index.js';

/** A BEEP listener and the name its metrics carry in the `server` label. */
export interface NamedServer {
  /** The `server` label value (e.g. `listen`). */
  name: string;
  /** The listener whose sessions are measured. */
  server: BeepServer;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** BEEP listeners whose sessions are measured (a bare server is named `beep`, or `beep1`, `beep2`… when there are several). */
  servers?: readonly (BeepServer | NamedServer)[];
  /** An S2CS: its control listener is measured as server `scistream-control`, and its SciStream sessions. */
  s2cs?: S2cs;
  /** Registry to register into (default: a fresh one). The names must not be registered there yet. */
  register?: Registry;
  /** Also collect prom-client's default Node.js process metrics (default true). */
  defaultMetrics?: boolean;
  /** Milliseconds between SciStream throughput readings (default 1000). */
  sampleMs?: number;
  /** A flows server (FNAA): events in/out per flow, duplicates, subscriptions and subscriber lag (`flows-metrics.ts`). */
  flows?: FlowsServer;
}

/** Metrics being collected. */
export interface Metrics {
  /** The registry to expose (`await register.metrics()`, `register.contentType`). */
  readonly register: Registry;
  /** Stop collecting: unsubscribe from every event, stop the sampler, unregister the beepstream metrics. */
  close(): void;
}

/** Prefix of every beepstream metric name. */
export const METRIC_PREFIX = 'beepstream_';

const STATES: readonly ControlSessionState[] = ['pending', 'setup', 'active', 'releasing', 'closed'];
const DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

/** A label value from a bounded vocabulary, or `other` (never an arbitrary string from the wire). */
function safeLabel(value: string, pattern: RegExp): string {
  return pattern.test(value) ? value : 'other';
}
const MECHANISM = /^[A-Za-z0-9_-]{1,20}$/; // RFC 4422 §3.1
const LIMIT = /^[A-Za-z0-9_]{1,64}$/;
const PROFILE = /^[\x21-\x7e]{1,256}$/;
const ERRNO = /^[A-Z][A-Z0-9_]{0,63}$|^other$/;

interface Tracked {
  server: string;
  session: Session;
}

/**
 * Collect metrics of `opts.servers` and `opts.s2cs` into a Prometheus
 * registry. Serve it with {@link startMetricsServer}.
 *
 * Octet, frame, stall and SEQ counters sum the live sessions' counters at
 * scrape time and add the final counters of every closed session, so they
 * only grow. Auth and limit counters count every BEEP session of the
 * process (the events carry no listener).
 */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const register = opts.register ?? new Registry();
  const servers: NamedServer[] = [];
  const bare = (opts.servers ?? []).filter((s) => !('name' in s && 'server' in s)).length;
  let n = 0;
  for (const s of opts.servers ?? []) {
    if ('name' in s && 'server' in s && typeof s.name === 'string') servers.push({ name: s.name, server: s.server });
    else servers.push({ name: bare > 1 ? `beep${++n}` : 'beep', server: s as BeepServer });
  }
  if (opts.s2cs) servers.push({ name: 'scistream-control', server: opts.s2cs.server });

  const tracked = new Map<number, Tracked>();
  const closed = new Map<string, SessionStats>();
  for (const { name } of servers) closed.set(name, newSessionStats());
  /** Live counters per server, plus the closed sessions' totals. */
  const totals = (): Map<string, SessionStats> => {
    const out = new Map<string, SessionStats>();
    for (const [name, c] of closed) out.set(name, { ...c });
    for (const { server, session } of tracked.values()) {
      const t = out.get(server);
      if (!t) continue;
      addStats(t, session.stats);
    }
    return out;
  };

  const names: string[] = [];
  /** Record a metric name (to unregister it on close). */
  const nm = (name: string): string => {
    names.push(name);
    return name;
  };
  const registers = [register];
  const p = METRIC_PREFIX;

  new Gauge({
    name: nm(`${p}sessions_open`), help: 'BEEP sessions open now, by listener and role.', labelNames: ['server', 'role'] as const, registers,
    collect() {
      this.reset();
      for (const { name } of servers) this.set({ server: name, role: 'listener' }, 0);
      for (const { server, session } of tracked.values()) this.inc({ server, role: session.role });
    },
  });
  const sessionsTotal = new Counter({
    name: nm(`${p}sessions_total`), help: 'BEEP sessions ended, by listener and outcome (released: clean release; terminated: an error or a limit).',
    labelNames: ['server', 'outcome'] as const, registers,
  });
  const duration = new Histogram({
    name: nm(`${p}session_duration_seconds`), help: 'Lifetime of ended BEEP sessions, from accept to transport close.',
    labelNames: ['server'] as const, buckets: DURATION_BUCKETS, registers,
  });
  for (const { name } of servers) for (const outcome of ['released', 'terminated']) sessionsTotal.inc({ server: name, outcome }, 0);
  new Gauge({
    name: nm(`${p}channels_open`), help: 'BEEP channels open now (channel 0 excluded), by listener and profile URI.', labelNames: ['server', 'profile'] as const, registers,
    collect() {
      this.reset();
      for (const { server, session } of tracked.values()) {
        for (const ch of session.channels.values()) {
          if (ch.number === 0 || ch.profile === '') continue;
          this.inc({ server, profile: safeLabel(ch.profile, PROFILE) });
        }
      }
    },
  });
  const fromTotals = (
    name: string, help: string, labelNames: readonly string[], fill: (c: Counter<string>, server: string, s: SessionStats) => void,
  ): void => {
    new Counter({
      name: nm(name), help, labelNames, registers,
      collect() {
        this.reset();
        for (const [server, s] of totals()) fill(this, server, s);
      },
    });
  };
  fromTotals(`${p}octets_total`, 'Octets read from / written to the transport by BEEP sessions (frames with headers), by listener and direction.', ['server', 'direction'], (c, server, s) => {
    c.inc({ server, direction: 'in' }, s.octetsIn);
    c.inc({ server, direction: 'out' }, s.octetsOut);
  });
  fromTotals(`${p}frames_total`, 'BEEP data frames (SEQ excluded) received / sent, by listener and direction.', ['server', 'direction'], (c, server, s) => {
    c.inc({ server, direction: 'in' }, s.framesIn);
    c.inc({ server, direction: 'out' }, s.framesOut);
  });
  fromTotals(`${p}seq_frames_sent_total`, 'SEQ frames sent (RFC 3081 §3.1.4: receive windows reopened), by listener.', ['server'], (c, server, s) => {
    c.inc({ server }, s.seqOut);
  });
  fromTotals(`${p}window_stalls_total`, 'Times a channel had octets to send and no window left, by listener.', ['server'], (c, server, s) => {
    c.inc({ server }, s.windowStalls);
  });
  fromTotals(`${p}peer_window_stalls_total`, 'Times a peer was held back by our receive window (a frame began exactly at an edge we advertised), by listener.', ['server'], (c, server, s) => {
    c.inc({ server }, s.peerWindowStalls);
  });
  fromTotals(`${p}peer_window_stalls_idle_total`, 'Of the peer window stalls, those after which nothing was queued for us (the SEQ round trip was the path\'s): the window held the transfer back, by listener.', ['server'], (c, server, s) => {
    c.inc({ server }, s.peerWindowStallsIdle);
  });
  fromTotals(`${p}window_resizes_total`, 'Receive windows resized by the flow policy (spec/flow-control.md), by listener and direction (grow|shrink).', ['server', 'direction'], (c, server, s) => {
    c.inc({ server, direction: 'grow' }, s.windowGrows);
    c.inc({ server, direction: 'shrink' }, s.windowShrinks);
  });
  const auth = new Counter({
    name: nm(`${p}auth_total`), help: 'SASL exchanges ended, by mechanism and outcome (success|failure); all BEEP sessions of the process.',
    labelNames: ['mechanism', 'outcome'] as const, registers,
  });
  const limits = new Counter({
    name: nm(`${p}limits_total`), help: 'Limits hit, by limit name and action (refused|terminated); all BEEP sessions of the process.',
    labelNames: ['limit', 'action'] as const, registers,
  });

  let sampler: ThroughputSampler | undefined;
  const s2cs = opts.s2cs;
  if (s2cs) {
    const registry = s2cs.control.registry;
    sampler = new ThroughputSampler(registry, opts.sampleMs === undefined ? {} : { sampleMs: opts.sampleMs }).start();
    const sm = sampler;
    new Gauge({
      name: nm(`${p}scistream_sessions`), help: 'SciStream sessions held by the S2CS, by state.', labelNames: ['state'] as const, registers,
      collect() {
        this.reset();
        for (const state of STATES) this.set({ state }, 0);
        for (const s of registry.list()) this.inc({ state: s.state });
      },
    });
    new Gauge({
      name: nm(`${p}scistream_session_octets`),
      help: 'Octets carried by a SciStream session\'s data path so far (grows like a counter while the session lives), by session tag, role and direction.',
      labelNames: ['tag', 'role', 'direction'] as const, registers,
      collect() {
        this.reset();
        for (const s of registry.list()) {
          if (!s.stats) continue;
          const role = s.role ?? 'none';
          this.set({ tag: s.tag, role, direction: 'to_producer' }, s.stats.bytesToProducer);
          this.set({ tag: s.tag, role, direction: 'to_consumer' }, s.stats.bytesToConsumer);
        }
      },
    });
    new Gauge({
      name: nm(`${p}scistream_session_throughput_octets_per_second`),
      help: 'Throughput of a SciStream session\'s data path over the last sample interval, by session tag, role and direction.',
      labelNames: ['tag', 'role', 'direction'] as const, registers,
      collect() {
        this.reset();
        for (const s of registry.list()) {
          if (!s.stats) continue;
          const role = s.role ?? 'none';
          const r = sm.throughput(s.tag);
          this.set({ tag: s.tag, role, direction: 'to_producer' }, r.toProducer);
          this.set({ tag: s.tag, role, direction: 'to_consumer' }, r.toConsumer);
        }
      },
    });
    new Gauge({
      name: nm(`${p}scistream_session_connections_open`), help: 'Application connections open now on a SciStream session\'s data path, by session tag and role.',
      labelNames: ['tag', 'role'] as const, registers,
      collect() {
        this.reset();
        for (const s of registry.list()) if (s.stats) this.set({ tag: s.tag, role: s.role ?? 'none' }, s.stats.open);
      },
    });
    const dataErrors = s2cs.dataErrors;
    new Counter({
      name: nm(`${p}scistream_data_errors_total`),
      help: 'Data-plane failures the S2DS reported (e.g. a producer application refusing a connection), by errno (ECONNREFUSED…, BEEP_ERR_…, or other).',
      labelNames: ['errno'] as const, registers,
      collect() {
        this.reset();
        for (const [errno, n] of dataErrors ?? []) this.inc({ errno: safeLabel(errno, ERRNO) }, n);
      },
    });
  }

  const closeFlows = opts.flows ? registerFlowsMetrics(register, opts.flows, p) : undefined;

  if (opts.defaultMetrics !== false && !register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register });

  // Events: subscribe first, then take the sessions already there.
  const onClose = (message: unknown): void => {
    const e = message as SessionCloseEvent;
    const t = tracked.get(e.sessionId);
    if (!t) return;
    tracked.delete(e.sessionId);
    const c = closed.get(t.server);
    if (c) {
      addStats(c, e.stats);
    }
    sessionsTotal.inc({ server: t.server, outcome: e.error ? 'terminated' : 'released' });
    duration.observe({ server: t.server }, Math.max(0, e.durationMs) / 1000);
  };
  const onAuth = (message: unknown): void => {
    const e = message as AuthEvent;
    auth.inc({ mechanism: safeLabel(String(e.mechanism), MECHANISM), outcome: e.outcome === 'success' ? 'success' : 'failure' });
  };
  const onLimit = (message: unknown): void => {
    const e = message as LimitEvent;
    limits.inc({ limit: safeLabel(String(e.limit), LIMIT), action: e.action === 'refused' ? 'refused' : 'terminated' });
  };
  const unsubscribe = subscribeAll([
    [DIAGNOSTICS_CHANNELS.sessionClose, onClose],
    [DIAGNOSTICS_CHANNELS.auth, onAuth],
    [DIAGNOSTICS_CHANNELS.limit, onLimit],
  ]);
  const listeners: (() => void)[] = [];
  for (const { name, server } of servers) {
    const onSession = (session: Session): void => void tracked.set(session.id, { server: name, session });
    for (const s of server.sessions) onSession(s);
    server.on('session', onSession);
    listeners.push(() => server.off('session', onSession));
  }

  let done = false;
  return {
    register,
    close() {
      if (done) return;
      done = true;
      unsubscribe();
      for (const off of listeners) off();
      sampler?.stop();
      closeFlows?.();
      tracked.clear();
      for (const name of names) register.removeSingleMetric(name);
    },
  };
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** Address to bind (only this one). */
  host: string;
  /** Port (0 picks a free one). */
  port: number;
  /** What to serve (from {@link createMetrics}, or any object with a prom-client registry). */
  metrics: Pick<Metrics, 'register'>;
}

/**
 * Serve `GET /metrics` (Prometheus text format, the registry's content
 * type) on `host:port`; every other path is 404, every other method 405.
 * `close()` stops it (the metrics themselves keep collecting until their
 * own `close()`).
 */
export function startMetricsServer(opts: MetricsServerOptions): Promise<OpsServer> {
  const { register } = opts.metrics;
  return listenHttp(opts.host, opts.port, '/metrics', async (req, res) => {
    if (pathOf(req) !== '/metrics') return sendText(res, 404, 'not found');
    const body = Buffer.from(await register.metrics(), 'utf8');
    res.writeHead(200, { ...BASE_HEADERS, 'Content-Type': register.contentType, 'Content-Length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

/** Add every counter of `s` to `into`. */
function addStats(into: SessionStats, s: SessionStats): void {
  for (const k of Object.keys(into) as (keyof SessionStats)[]) into[k] += s[k];
}
