/**
 * Full stack, real components: striping turned on from the S2CS
 * configuration (`startS2cs({ data: { connections } })`) — the consumer
 * facility's control server opens its outbound path over that many TLS-PSK
 * BEEP connections, and every byte of every application connection arrives.
 */
import test from 'ava';
import { newUid } from '../../src/scistream/control/index.js';
import type { OutboundPath } from '../../src/scistream/data/index.js';
import { MiB, checkStream, consumerStream, login, openSession, producerApp, producerEnd, startFacilities, within } from './roles-harness.js';

test.serial('S2CS data option connections 4: a num_conn 4 session runs on 4 TCP connections, one stream each, every byte checked both ways', async (t) => {
  t.timeout(90_000);
  const perStream = 4 * MiB;
  const numConn = 4;
  const { prod, cons } = await startFacilities(t, { data: { connections: 4 } });
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  const producer = await producerApp(t, perStream);
  const uid = newUid();
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn, producer: producer.address }), 30_000, 'session set up');

  const outbound = cons.data.paths[0] as OutboundPath;
  t.is(cons.data.paths.length, 1);
  t.is(outbound.links().length, 4, 'the consumer S2DS opened 4 BEEP connections');

  const consumers = await Promise.all(s.listeners.map((l, j) => consumerStream(t, l, 0, j, perStream)));
  const producers = await Promise.all(s.listeners.map((_, j) => producerEnd(producer, 0, j)));
  await within(Promise.all([...consumers, ...producers].map((e) => e.closed)), 60_000, 'transfer');
  consumers.forEach((c, j) => checkStream(t, c, producers[j], perStream, perStream));
  t.deepEqual(outbound.links().map((l) => l.opened), [1, 1, 1, 1], 'one application connection per TCP connection');
  for (const l of outbound.links()) t.is(l.protocol, 'TLSv1.3');

  t.is((await consU.release(uid)).state, 'closed');
  t.is((await prodU.release(uid)).state, 'closed');
});
