/**
 * SciStream under a data-plane fault: the BEEP connection between the
 * consumer-side S2DS (outbound sender) and the producer-side S2DS (inbound
 * receiver) runs through a FaultProxy (the consumer is told, by
 * UPDATETARGETS, to connect to the proxy instead of the producer's listener).
 *
 * Dropping that connection mid-transfer (RST, or a clean FIN — which a TLS
 * data session must not take for an end of data) must leave both S2CS
 * settled: every application socket reset (never a clean end), the consumer
 * facility's session ended by itself (STATUS says INVALID_UID) with its ports
 * free, the producer facility's streams closed and, after its RELEASE, its
 * ports free too. What each application received is a prefix of what the
 * other sent. Dropping it early (during the greeting, the TLS-PSK handshake or
 * the data-control start) makes the consumer's UPDATETARGETS fail and leaves
 * nothing held either.
 */
import net from 'node:net';
import { Buffer } from 'node:buffer';
import test, { type ExecutionContext } from 'ava';
import { SciStreamError, appctrlHello, newUid } from '../../src/scistream/control/index.js';
import { FaultProxy, createRng } from '../helpers/fault-proxy.js';
import { DataGenerator } from '../scistream/data/helpers.js';
import {
  MiB, consumerStream, hostPort, heldPorts, login, portsOf, producerApp, producerEnd, seedDown, seedUp, startFacilities, until, within,
  type StreamEnd,
} from '../scistream/roles-harness.js';

const BIG = 1024 * MiB;

/** Checks that what a socket receives is a prefix of the generated stream `seed`. */
class PrefixCheck {
  received = 0;
  error: string | undefined;
  private readonly gen: DataGenerator;
  private pending: Buffer = Buffer.alloc(0);
  constructor(readonly seed: string) {
    this.gen = new DataGenerator(seed, BIG);
  }

  push(d: Buffer): void {
    if (this.error) return;
    let off = 0;
    while (off < d.length) {
      if (this.pending.length === 0) {
        const next = this.gen.next(256 * 1024);
        if (!next) {
          this.error = `${this.seed}: more than generated`;
          return;
        }
        this.pending = next;
      }
      const n = Math.min(this.pending.length, d.length - off);
      if (!this.pending.subarray(0, n).equals(d.subarray(off, off + n))) {
        this.error = `${this.seed}: differs within octets ${this.received + off}…${this.received + off + n}`;
        return;
      }
      this.pending = this.pending.subarray(n);
      off += n;
    }
    this.received += d.length;
  }
}

/** Watch every producer-application connection: after its 8-octet header, a prefix of `seedUp(session, stream)`. */
function checkProducerSide(server: net.Server, checks: PrefixCheck[]): void {
  server.on('connection', (socket: net.Socket) => {
    let head = Buffer.alloc(0);
    let check: PrefixCheck | undefined;
    socket.on('data', (d: Buffer) => {
      if (check) return check.push(d);
      head = Buffer.concat([head, d]);
      if (head.length < 8) return;
      check = new PrefixCheck(seedUp(head.readUInt32BE(0), head.readUInt32BE(4)));
      checks.push(check);
      check.push(head.subarray(8));
    });
  });
}

/** Cut streams must have been reset: an end that got FIN and no error would take a cut stream for a complete one. */
const cleanEnds = (ends: readonly StreamEnd[]): string[] =>
  ends.filter((e) => e.gotEnd && e.error === undefined).map((e) => `stream ${e.session}/${e.stream} got FIN and no error after ${e.received} octets`);

async function rejectsWithCode(t: ExecutionContext, p: Promise<unknown>, code: string): Promise<void> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof SciStreamError, String(err));
  t.is((err as SciStreamError).code, code as SciStreamError['code'], (err as Error).message);
}

for (const mode of ['rst', 'fin'] as const) {
  test.serial(`SciStream: the data-plane BEEP connection dropped mid-transfer (${mode.toUpperCase()}): both S2CS settle, every application sees a reset and a prefix, every port is freed`, async (t) => {
    t.timeout(240_000);
    const { prod, cons } = await startFacilities(t);
    const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
    const producer = await producerApp(t, BIG);
    const upChecks: PrefixCheck[] = [];
    checkProducerSide(producer.server, upChecks);
    const uid = newUid();
    const NUM = 2;
    const [prodR, hello] = await within(
      Promise.all([prodU.request({ uid, role: 'PROD', numConn: NUM }), appctrlHello(appctrl.session, { uid, role: 'PROD', prodListeners: [producer.address] })]),
      20_000,
      'producer side set up',
    );
    t.is(prodR.state, 'active');
    t.deepEqual(hello.listeners, prodR.listeners);
    const proxy = new FaultProxy({ target: hostPort(prodR.listeners[0] as string), seed: mode === 'rst' ? 11 : 12 });
    await proxy.listen();
    t.teardown(() => proxy.close());
    const [consR, upd] = await within(
      Promise.all([consU.request({ uid, role: 'CONS', numConn: NUM }), consU.update({ uid, role: 'CONS', remoteListeners: [`127.0.0.1:${proxy.port}`] })]),
      20_000,
      'consumer side set up through the proxy',
    );
    t.is(consR.state, 'active');
    t.deepEqual(upd.listeners, consR.listeners);
    t.is(proxy.accepted, 1, 'the data connection goes through the proxy');
    const prodPorts = portsOf(prodR.listeners);
    const consPorts = portsOf(consR.listeners);

    const consumers = await Promise.all(consR.listeners.map((l, j) => consumerStream(t, l, 0, j, BIG)));
    const downChecks = consumers.map((c) => {
      const check = new PrefixCheck(seedDown(c.session, c.stream));
      c.socket.on('data', (d: Buffer) => check.push(d));
      return check;
    });
    const producers = await Promise.all(consumers.map((c) => producerEnd(producer, c.session, c.stream)));
    const total = (ends: readonly StreamEnd[]): number => ends.reduce((a, e) => a + e.received, 0);
    await until(() => consumers.every((e) => e.received >= 4 * MiB) && producers.every((e) => e.received >= 4 * MiB), 60_000, '4 MiB each way on every stream');
    const st = await prodU.status(uid);
    t.is(st.stats?.open, NUM, 'both streams open before the drop');

    const t0 = performance.now();
    proxy.dropAll(mode);
    const sockets = [...consumers, ...producers];
    await within(Promise.all(sockets.map((e) => e.closed)), 10_000, 'every application socket closed after the drop');
    const closedMs = Math.max(...sockets.map((e) => e.closedAt)) - t0;
    t.deepEqual(cleanEnds(sockets), [], 'no application took the cut stream for a complete one');
    t.true(total(consumers) < NUM * BIG && total(producers) < NUM * BIG, 'the transfers were cut');
    // Prefixes, octet for octet, both ways.
    for (const c of [...downChecks, ...upChecks]) t.is(c.error, undefined);
    t.is(upChecks.length, NUM);
    t.deepEqual(downChecks.map((c) => c.received), consumers.map((e) => e.received));

    // The consumer facility: the path closed by itself, the session is gone, its ports are free.
    t.true(await until(() => cons.data.paths.length === 0 && cons.control.registry.size === 0, 10_000, 'consumer facility settled').then(() => true, () => false), 'consumer facility settled');
    await rejectsWithCode(t, consU.status(uid), 'INVALID_UID');
    t.deepEqual(await heldPorts(consPorts), [], 'consumer-side ports free');

    // The producer facility: its streams closed; RELEASE frees the rest.
    const deadline = Date.now() + 10_000;
    let open = -1;
    while (Date.now() < deadline) {
      const s = await prodU.status(uid).catch(() => null);
      open = s?.stats?.open ?? 0;
      if (open === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    t.is(open, 0, 'the producer facility closed both streams');
    const rel = await prodU.release(uid).catch((e: unknown) => e);
    if (rel instanceof SciStreamError) t.is(rel.code, 'INVALID_UID', rel.message);
    t.true(await until(() => prod.data.paths.length === 0 && prod.control.registry.size === 0, 10_000, 'producer facility settled').then(() => true, () => false), 'producer facility settled');
    t.deepEqual(await heldPorts(prodPorts), [], 'producer-side ports free');
    t.true(await until(() => proxy.open.length === 0, 5000, 'proxy idle').then(() => true, () => false), 'the proxied connection is closed at both ends');
    t.log(
      `${mode}: dropped after ${(proxy.connections[0]?.readTotal ?? 0) / MiB | 0} MiB through the proxy; ` +
        `applications got ${(total(consumers) / MiB).toFixed(0)} MiB (consumers) / ${(total(producers) / MiB).toFixed(0)} MiB (producer); all sockets closed ${closedMs.toFixed(0)} ms after the drop`,
    );
  });
}

test.serial('SciStream: the data-plane connection dropped early (greeting, TLS-PSK handshake, data-control start) fails the consumer set-up cleanly and leaves nothing held', async (t) => {
  t.timeout(240_000);
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const producer = await producerApp(t, MiB);
  const rng = createRng(0x5c15);
  const outcomes: string[] = [];
  // First without a fault, to learn how many octets the data connection's set-up takes.
  let setupOctets = 0;
  const fractions = [-1, 0.02, 0.15, 0.35, 0.55, 0.75, 0.95];
  for (const [k, f] of fractions.entries()) {
    const uid = newUid();
    const [prodR] = await within(
      Promise.all([prodU.request({ uid, role: 'PROD', numConn: 1 }), appctrlHello(appctrl.session, { uid, role: 'PROD', prodListeners: [producer.address] })]),
      20_000,
      'producer side set up',
    );
    const dropMode = k % 2 === 0 ? 'rst' : 'fin';
    const dropAfter = f < 0 ? undefined : Math.floor(f * setupOctets) + rng.int(50);
    const proxy = new FaultProxy({ target: hostPort(prodR.listeners[0] as string), seed: k, plan: dropAfter === undefined ? {} : { dropAfter, dropMode, split: 0.5 } });
    await proxy.listen();
    const cons1 = consU.request({ uid, role: 'CONS', numConn: 1 });
    const upd = consU.update({ uid, role: 'CONS', remoteListeners: [`127.0.0.1:${proxy.port}`] });
    const results = await within(Promise.allSettled([cons1, upd]), 30_000, 'consumer side answered');
    const r = results.map((x) => (x.status === 'fulfilled' ? x.value.state : `${(x.reason as SciStreamError).code ?? String(x.reason)}`));
    if (dropAfter === undefined) {
      setupOctets = proxy.connections[0]?.readTotal ?? 0;
      outcomes.push(`no fault: ${r.join(', ')} after ${setupOctets} octets through the proxy`);
      t.deepEqual(r, ['active', 'active']);
      t.true(setupOctets > 1000);
      const rc = await consU.release(uid).catch((e: unknown) => e);
      if (rc instanceof SciStreamError) t.is(rc.code, 'INVALID_UID');
    } else {
      outcomes.push(`drop after ${dropAfter} B (${dropMode}): ${r.join(', ')}`);
      t.true(results.every((x) => x.status === 'rejected'), `the consumer set-up fails: ${r.join(', ')}`);
    }
    t.true(await until(() => cons.data.paths.length === 0 && cons.control.registry.size === 0, 10_000, 'consumer facility').then(() => true, () => false), 'consumer facility holds nothing');
    t.true(await until(() => proxy.open.length === 0, 5000, 'proxy idle').then(() => true, () => false), 'no data connection left open');
    const released = await prodU.release(uid).catch((e: unknown) => e);
    if (released instanceof SciStreamError) t.is(released.code, 'INVALID_UID', released.message);
    else t.is((released as { state: string }).state, 'closed');
    t.true(await until(() => prod.data.paths.length === 0 && prod.control.registry.size === 0, 10_000, 'producer facility').then(() => true, () => false), 'producer facility holds nothing');
    t.deepEqual(await heldPorts(portsOf(prodR.listeners)), []);
    await proxy.close();
  }
  t.log(outcomes.join('\n'));
});
