/**
 * Fifty concurrent sessions on one S2CS, over several S2UC and controller
 * connections, PROD and CONS mixed, HELLOs and UPDATETARGETS before and after
 * their REQUESTs in shuffled order: each message gets its own session's
 * answer, every path gets its own port, and releasing them frees every port.
 */
import test from 'ava';
import { S2ucClient, appctrlHello, newUid, type ResponseMessage } from '../../../src/scistream/control/index.js';
import { portReleased, login, startS2cs } from './harness.js';

test('50 concurrent sessions with distinct uids never get one another\'s replies', async (t) => {
  t.timeout(180_000);
  const { port, ds, s2cs } = await startS2cs(t, { rendezvousTimeoutMs: 30_000 });
  const clients = await Promise.all(['alice', 'bob', 'alice', 'bob', 'alice'].map(async (u) => new S2ucClient(await login(t, port, u))));
  const controllers = await Promise.all([login(t, port, 'appctrl'), login(t, port, 'appctrl')]);

  const sessions = Array.from({ length: 50 }, (_v, i) => ({
    i,
    uid: newUid(),
    role: i % 2 === 0 ? ('PROD' as const) : ('CONS' as const),
    client: clients[i % clients.length]!,
    // Distinct per session, so a crossed reply would show.
    endpoint: `10.${Math.floor(i / 250)}.${i % 250}.1:${5000 + i}`,
    numConn: 1 + (i % 7),
  }));
  // Shuffle the order in which the second message of each pair goes out.
  const order = [...sessions].sort(() => Math.random() - 0.5);

  const requests = new Map<string, Promise<ResponseMessage>>();
  const seconds: Promise<unknown>[] = [];
  for (const [k, s] of order.entries()) {
    const second = (): Promise<unknown> => s.role === 'PROD'
      ? appctrlHello(controllers[k % 2]!, { uid: s.uid, role: 'PROD', prodListeners: [s.endpoint] })
      : s.client.update({ uid: s.uid, role: 'CONS', remoteListeners: [s.endpoint] });
    if (k % 3 === 0) seconds.push(second()); // before its REQUEST
    requests.set(s.uid, s.client.request({ uid: s.uid, role: s.role, numConn: s.numConn }));
    if (k % 3 !== 0) seconds.push(second());
  }
  const [responses, answers] = await Promise.all([Promise.all(sessions.map((s) => requests.get(s.uid)!)), Promise.all(seconds)]);

  const ports = new Set<number>();
  for (const [i, s] of sessions.entries()) {
    const r = responses[i]!;
    const path = ds.pathOf(s.uid)!;
    t.is(r.uid, s.uid);
    t.is(r.state, 'active');
    t.deepEqual(r.listeners, [...path.listeners]);
    t.deepEqual(r.prodListeners, s.role === 'PROD' ? [s.endpoint] : []);
    t.is(path.kind, s.role === 'PROD' ? 'inbound' : 'outbound');
    t.deepEqual(s.role === 'PROD' ? (path.spec as { targets: readonly string[] }).targets : (path.spec as { remotes: readonly string[] }).remotes, [s.endpoint]);
    t.is(path.spec.numConn, s.numConn);
    ports.add(path.port);
  }
  t.is(ports.size, 50, 'one port per session');
  for (const [k, s] of order.entries()) {
    const a = answers[k] as { uid: string; listeners: string[] };
    t.is(a.uid, s.uid);
    t.deepEqual(a.listeners, [...ds.pathOf(s.uid)!.listeners]);
  }
  t.is(s2cs.registry.size, 50);

  await Promise.all(sessions.map((s) => s.client.release(s.uid)));
  t.is(s2cs.registry.size, 0);
  t.is(ds.paths.size, 0);
  for (const p of ports) t.true(await portReleased(p), `port ${p} is free`);
});
