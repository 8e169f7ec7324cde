/**
 * The memory budgets of issue 17 in process: what sessions hold is charged to
 * the listener's pool while they run, stays within the configured budgets
 * under the internal-data-buffering attack (CVE-2019-9517's BEEP form), and
 * is all given back when the sessions end (no drift in the accounting).
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { connect, createServer, echoProfile, answersProfile } from '../../src/index.js';
import { MESSAGE_COST } from '../../src/channels/flow.js';
import { Attacker, ECHO, MiB, probe, sleep } from '../helpers/hostile.js';

test('budgets: ordinary echo traffic is charged while it runs and fully released after', async (t) => {
  const server = createServer({ profiles: [echoProfile, answersProfile] });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const s = await connect({ port });
  const chans = await Promise.all(Array.from({ length: 8 }, () => s.startChannel(ECHO)));
  const body = Buffer.alloc(512 * 1024, 0x63);
  const echoed = await Promise.all(chans.map(async (ch) => (await (await ch.request(body)).bytes()).length));
  t.deepEqual(echoed, chans.map(() => body.length));
  t.true(server.memory.used > 0, 'windows granted are charged');
  await s.close();
  await sleep(200);
  t.is(server.memory.used, 0, 'everything given back');
});

test('budgets: an attacker filling 300 echo windows without reading stays within a 4 MiB session budget and a 6 MiB pool', async (t) => {
  t.timeout(60_000);
  const sessionMemoryBudget = 4 * MiB;
  const server = createServer({ profiles: [echoProfile], memoryBudget: 6 * MiB, limits: { sessionMemoryBudget } });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const attackers = await Promise.all([0, 1].map(() => Attacker.open(port)));
  const chans = await Promise.all(attackers.map((a) => a.startChannels(1, 300)));
  const body = Buffer.alloc(4096, 0x62);
  let peak = 0;
  const end = Date.now() + 2000;
  while (Date.now() < end) {
    attackers.forEach((a, i) => {
      for (const ch of chans[i] as number[]) while (!a.closed && a.windowLeft(ch) >= body.length) a.frame('MSG', ch, (a.received.get(ch) ?? 0) + Math.floor(Math.random() * 1e9), body);
    });
    peak = Math.max(peak, server.memory.used);
    await sleep(20);
  }
  // Floors: RFC 3081's 4096-octet initial window of every channel, granted before any budget applies.
  const floors = 2 * 301 * 4096;
  t.log(`pool peak ${(peak / MiB).toFixed(2)} MiB of 6 MiB (+ ${(floors / MiB).toFixed(2)} MiB of initial windows); attackers ended: ${attackers.map((a) => a.closed).join(', ')}`);
  // By construction: the pool, the initial windows, and MESSAGE_COST per MSG waiting (≤ maxSessionInbound per session).
  t.true(peak <= 6 * MiB + floors + 2 * 4096 * MESSAGE_COST, `pool peak ${peak}`);
  t.true(await probe(port), 'another session is served while the pool is spent');
  for (const a of attackers) a.destroy();
  await sleep(300);
  t.is(server.memory.used, 0, 'everything given back');
});
