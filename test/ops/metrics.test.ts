/**
 * Prometheus metrics over real sockets: a BEEP listener with echo and SASL
 * (traffic, a refused channel start, a failed and a successful SCRAM
 * exchange, a release), and a real S2CS pair carrying a SciStream session;
 * every scrape goes over HTTP and through a strict exposition parser, and no
 * label or value ever carries the uid or a password.
 */
import test from 'ava';
import dc from 'node:diagnostics_channel';
import { randomBytes } from 'node:crypto';
import { BeepReplyError, ECHO_URI, authenticate, connect, createServer, createUserEntry, echoProfile, saslProfiles, scramSha256Client, scramSha256Server, type Session } from '../../src/index.js';
import { type ScramCredentials } from '../../src/profiles/index.js';
import { DIAGNOSTICS_CHANNELS } from '../../src/channels/diagnostics.js';
import { newUid, sessionTag } from '../../src/scistream/control/index.js';
import { createMetrics, startMetricsServer, type Metrics } from '../../src/ops/index.js';
import type { OpsServer } from '../../src/ops/http.js';
import { parseExposition, samples, total, value, type Family } from './prom-text.js';
import {
  MiB, PASSWORD, checkStream, consumerStream, login, openSession, producerApp, producerEnd, startFacilities, until, within,
} from '../scistream/roles-harness.js';

const SECRET = randomBytes(12).toString('base64url');
const WRONG = randomBytes(12).toString('base64url');
const users = new Map<string, ScramCredentials>([['alice', await createUserEntry(SECRET, 4096)]]);

async function scrape(server: OpsServer): Promise<{ text: string; families: Map<string, Family>; contentType: string | null }> {
  const res = await fetch(server.url);
  if (res.status !== 200) throw new Error(`scrape: HTTP ${res.status}`);
  const text = await res.text();
  return { text, families: parseExposition(text), contentType: res.headers.get('content-type') };
}

/** Every label value and the raw text are free of `secrets` (and of 8-character pieces of them). */
function assertClean(t: import('ava').ExecutionContext, text: string, families: Map<string, Family>, secrets: readonly string[]): void {
  for (const s of secrets) t.false(text.includes(s), 'a secret appears in the exposition');
  const pieces = secrets.flatMap((s) => Array.from({ length: Math.max(0, s.length - 7) }, (_, i) => s.slice(i, i + 8)));
  for (const f of families.values()) {
    for (const sample of f.samples) {
      for (const v of Object.values(sample.labels)) t.false(pieces.some((p) => v.includes(p)), `label value ${JSON.stringify(v)} carries a secret`);
    }
  }
}

async function serve(t: import('ava').ExecutionContext, metrics: Metrics): Promise<OpsServer> {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, metrics });
  t.teardown(async () => {
    await server.close();
    metrics.close();
  });
  return server;
}

test.serial('a BEEP listener: sessions, channels by profile, octets, frames, SEQ, a refused start, SASL outcomes, release — over HTTP', async (t) => {
  t.timeout(120_000);
  const server = createServer({ profiles: [echoProfile, ...saslProfiles({ mechanisms: [scramSha256Server({ store: users })] })], limits: { maxChannels: 2 } });
  await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(500));
  const http = await serve(t, createMetrics({ servers: [{ name: 'test', server }] }));
  const port = server.address()!.port;
  const clients: Session[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));

  const a = await connect({ host: '127.0.0.1', port });
  clients.push(a);
  const [ch1] = await Promise.all([a.startChannel(ECHO_URI), a.startChannel(ECHO_URI)]);
  const body = randomBytes(200 * 1024);
  const reply = await ch1.request(body);
  t.is((await reply.bytes()).length, body.length);
  const refused = await t.throwsAsync(a.startChannel(ECHO_URI));
  t.true(refused instanceof BeepReplyError && refused.replyCode === 550, 'the third channel is refused by maxChannels');

  const b = await connect({ host: '127.0.0.1', port });
  clients.push(b);
  await t.throwsAsync(authenticate(b, scramSha256Client({ username: 'alice', password: WRONG })));
  const c = await connect({ host: '127.0.0.1', port });
  clients.push(c);
  await authenticate(c, scramSha256Client({ username: 'alice', password: SECRET }));

  const first = await scrape(http);
  t.regex(first.contentType ?? '', /^text\/plain; version=0\.0\.4/);
  const f = first.families;
  for (const fam of f.values()) if (fam.name.startsWith('beepstream_')) t.truthy(fam.help, `${fam.name} has HELP text`);
  t.is(value(f, 'beepstream_sessions_open', { server: 'test', role: 'listener' }), 3);
  t.is(value(f, 'beepstream_channels_open', { server: 'test', profile: ECHO_URI }), 2);
  t.true(value(f, 'beepstream_octets_total', { server: 'test', direction: 'in' }) >= body.length, 'octets in ≥ the body sent');
  t.true(value(f, 'beepstream_octets_total', { server: 'test', direction: 'out' }) >= body.length, 'octets out ≥ the body echoed');
  t.true(value(f, 'beepstream_frames_total', { server: 'test', direction: 'in' }) >= 4, 'frames in');
  t.true(value(f, 'beepstream_seq_frames_sent_total', { server: 'test' }) >= 1, 'SEQ frames reopened the window');
  t.true(value(f, 'beepstream_window_stalls_total', { server: 'test' }) >= 0);
  t.true(value(f, 'beepstream_peer_window_stalls_idle_total', { server: 'test' }) <= value(f, 'beepstream_peer_window_stalls_total', { server: 'test' }), 'idle stalls are some of the peer stalls');
  t.is(value(f, 'beepstream_limits_total', { limit: 'maxChannels', action: 'refused' }), 1);
  t.is(value(f, 'beepstream_auth_total', { mechanism: 'SCRAM-SHA-256', outcome: 'failure' }), 1);
  t.is(value(f, 'beepstream_auth_total', { mechanism: 'SCRAM-SHA-256', outcome: 'success' }), 1);
  t.is(value(f, 'beepstream_sessions_total', { server: 'test', outcome: 'released' }), 0);
  t.true(samples(f, 'process_cpu_user_seconds_total').length === 1, 'default process metrics');
  t.true(samples(f, 'nodejs_heap_size_used_bytes').length === 1, 'default Node.js metrics');
  assertClean(t, first.text, f, [SECRET, WRONG]);

  // Release: the session's octets move to the closed totals (counters never go down).
  await a.close();
  await until(() => server.sessions.size === 2, 5000, 'the server saw the release');
  const second = (await scrape(http)).families;
  t.is(value(second, 'beepstream_sessions_total', { server: 'test', outcome: 'released' }), 1);
  t.is(value(second, 'beepstream_session_duration_seconds_count', { server: 'test' }), 1);
  t.is(value(second, 'beepstream_sessions_open', { server: 'test', role: 'listener' }), 2);
  t.is(samples(second, 'beepstream_channels_open', { profile: ECHO_URI }).length, 0);
  for (const dir of ['in', 'out']) {
    t.true(value(second, 'beepstream_octets_total', { server: 'test', direction: dir }) >= value(f, 'beepstream_octets_total', { server: 'test', direction: dir }), `octets ${dir} only grow`);
  }
  b.destroy();
  await until(() => server.sessions.size === 1, 5000, 'the server saw the reset');
  t.is(value((await scrape(http)).families, 'beepstream_sessions_total', { server: 'test', outcome: 'terminated' }), 1);

  const notFound = await fetch(http.url.replace('/metrics', '/other'));
  t.is(notFound.status, 404);
  await notFound.arrayBuffer();
});

test.serial('auth and limit events: label values come from a bounded vocabulary; identities are never labels', async (t) => {
  const http = await serve(t, createMetrics({ defaultMetrics: false }));
  dc.channel(DIAGNOSTICS_CHANNELS.auth).publish({ sessionId: 1, mechanism: 'PLAIN', outcome: 'success', identity: 'bob-the-identity' });
  dc.channel(DIAGNOSTICS_CHANNELS.auth).publish({ sessionId: 1, mechanism: 'X"}\n{evil', outcome: 'failure', code: 535, reason: 'nope' });
  dc.channel(DIAGNOSTICS_CHANNELS.limit).publish({ limit: 'maxSessions', action: 'refused', code: 421, detail: 'too many' });
  dc.channel(DIAGNOSTICS_CHANNELS.limit).publish({ limit: 'weird limit "name"', action: 'terminated', detail: 'x' });
  const { text, families } = await scrape(http);
  t.is(value(families, 'beepstream_auth_total', { mechanism: 'PLAIN', outcome: 'success' }), 1);
  t.is(value(families, 'beepstream_auth_total', { mechanism: 'other', outcome: 'failure' }), 1);
  t.is(value(families, 'beepstream_limits_total', { limit: 'maxSessions', action: 'refused' }), 1);
  t.is(value(families, 'beepstream_limits_total', { limit: 'other', action: 'terminated' }), 1);
  t.false(text.includes('bob-the-identity'));
  t.false(text.includes('evil'));
  t.is(samples(families, 'process_cpu_user_seconds_total').length, 0, 'defaultMetrics: false');
});

test.serial('an S2CS pair with a running SciStream session: sessions by state, per-session octets and throughput by tag, a failed login — never the uid', async (t) => {
  t.timeout(180_000);
  const { prod, cons } = await startFacilities(t);
  const http = await serve(t, createMetrics({ s2cs: prod, sampleMs: 100 }));
  const consHttp = await serve(t, createMetrics({ s2cs: cons, sampleMs: 100, defaultMetrics: false }));
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  await t.throwsAsync(login(t, prod, 'mallory', 'not the password'));
  const bytesUp = 3 * MiB;
  const bytesDown = 5 * MiB;
  const producer = await producerApp(t, bytesDown);
  const uid = newUid();
  const tag = sessionTag(uid);
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn: 1, producer: producer.address }), 30_000, 'session set up');
  const consumer = await consumerStream(t, s.listeners[0] as string, 0, 0, bytesUp);
  const prodEnd = await producerEnd(producer, 0, 0);
  await within(Promise.all([consumer.closed, prodEnd.closed]), 30_000, 'the transfer');
  checkStream(t, consumer, prodEnd, bytesUp, bytesDown);

  const { text, families: f } = await scrape(http);
  t.is(value(f, 'beepstream_scistream_sessions', { state: 'active' }), 1);
  t.is(value(f, 'beepstream_scistream_sessions', { state: 'pending' }), 0);
  t.is(value(f, 'beepstream_scistream_session_octets', { tag, role: 'PROD', direction: 'to_consumer' }), bytesDown);
  t.is(value(f, 'beepstream_scistream_session_octets', { tag, role: 'PROD', direction: 'to_producer' }), bytesUp + 8);
  t.true(value(f, 'beepstream_scistream_session_throughput_octets_per_second', { tag, role: 'PROD', direction: 'to_consumer' }) >= 0);
  t.is(value(f, 'beepstream_scistream_session_connections_open', { tag, role: 'PROD' }), 0);
  t.true(value(f, 'beepstream_sessions_open', { server: 'scistream-control', role: 'listener' }) >= 2, 'the S2UC and the controller are connected');
  t.true(value(f, 'beepstream_auth_total', { mechanism: 'SCRAM-SHA-256', outcome: 'success' }) >= 2);
  t.true(value(f, 'beepstream_auth_total', { mechanism: 'SCRAM-SHA-256', outcome: 'failure' }) >= 1, 'the failed login is counted');
  t.true(value(f, 'beepstream_octets_total', { server: 'scistream-control', direction: 'in' }) > 0);
  assertClean(t, text, f, [uid, PASSWORD, 'not the password']);

  const consSide = await scrape(consHttp);
  t.is(value(consSide.families, 'beepstream_scistream_session_octets', { tag, role: 'CONS', direction: 'to_consumer' }), bytesDown, 'the same tag at both facilities');
  assertClean(t, consSide.text, consSide.families, [uid, PASSWORD]);

  await consU.release(uid);
  await prodU.release(uid);
  const after = (await scrape(http)).families;
  t.is(value(after, 'beepstream_scistream_sessions', { state: 'active' }), 0);
  t.is(samples(after, 'beepstream_scistream_session_octets', { tag }).length, 0, 'an ended session leaves no series behind');
});

test.serial('throughput is sampled while data moves (octets per second over the last interval)', async (t) => {
  t.timeout(180_000);
  const { prod, cons } = await startFacilities(t);
  const http = await serve(t, createMetrics({ s2cs: prod, sampleMs: 200, defaultMetrics: false }));
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const rate = 2 * MiB;
  const producer = await producerApp(t, 4 * MiB);
  const uid = newUid();
  const tag = sessionTag(uid);
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn: 1, producer: producer.address, rate }), 30_000, 'session set up');
  const consumer = await consumerStream(t, s.listeners[0] as string, 0, 0, 1024);
  // Scrape every 250 ms; once data moves, one more second of readings, then the highest one
  // (the first non-zero interval may hold only the start of the transfer).
  const readings: number[] = [];
  let firstAt = 0;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && (firstAt === 0 || Date.now() - firstAt < 1000);) {
    await new Promise((r) => setTimeout(r, 250));
    const fam = (await scrape(http)).families;
    const v = total(fam, 'beepstream_scistream_session_throughput_octets_per_second', { tag, direction: 'to_consumer' });
    if (v > 0) {
      readings.push(v);
      firstAt ||= Date.now();
    }
  }
  const seen = Math.max(0, ...readings);
  t.log(`readings (B/s): ${readings.map((r) => Math.round(r)).join(', ')}`);
  t.true(seen > 0.5 * rate && seen < 3 * rate, `throughput ${Math.round(seen)} B/s at rate ${rate} B/s`);
  consumer.socket.destroy();
});
