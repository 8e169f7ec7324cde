/**
 * The S2S requirements about the pipeline itself, over real TLS + SCRAM on
 * 127.0.0.1: an event modified on the way cannot be stored (TLS notices the
 * change: a man in the middle flipping one bit of a record ends the session
 * and nothing is stored), and a source cannot be impersonated (a wrong
 * password, an unknown user or an authorization identity not one's own is
 * refused before any flows request is served).
 */
import test from 'ava';
import { createServer as netServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { scramSha256Client } from '../../src/index.js';
import { connectFlows, FlowsError, type FlowsClient } from '../../src/flows/index.js';
import { NS, PASSWORD, fnua, pki, startFnaa } from './harness.js';

/** A TCP relay on 127.0.0.1 in front of `port`: once `tamper` is set, it flips one bit of the next client-to-server chunk. */
class TamperProxy {
  tamper = false;
  flipped = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(readonly server: Server, readonly port: number) {}

  static async start(target: number): Promise<TamperProxy> {
    let self!: TamperProxy;
    const server = netServer((client) => {
      const upstream = tcpConnect(target, '127.0.0.1');
      self.sockets.add(client).add(upstream);
      client.on('data', (chunk: Buffer) => {
        if (self.tamper && self.flipped === 0) {
          // Past the 5-octet record header: inside the ciphertext (or its tag, for a short record).
          const at = Math.min(chunk.length - 1, 20);
          chunk[at] = (chunk[at] as number) ^ 0x01;
          self.flipped++;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      for (const s of [client, upstream]) {
        s.on('error', end);
        s.on('close', end);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new TamperProxy(server, (server.address() as { port: number }).port);
    return self;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

test('S2S modified event impossible under TLS: a bit flipped on the way by a man in the middle ends the session (the TLS record fails its integrity check); the modified publish is not stored, nothing is acknowledged', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const proxy = await TamperProxy.start(port);
  t.teardown(() => proxy.close());
  const owner = await fnua(t, port);
  await owner.create('wire', { acl: { publish: ['alice'], subscribe: ['alice'] } });

  const c: FlowsClient = await connectFlows({ port: proxy.port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: 'alice', password: PASSWORD }) });
  t.teardown(() => c.close());
  // Through the relay, untouched: stored.
  t.deepEqual((await c.publish('wire', 'p', [{ seq: 1, id: 'e1', type: `{${NS}}pay`, source: 'alice', data: 'amount=10' }])).offsets, [1]);

  proxy.tamper = true;
  const err = await t.throwsAsync(c.publish('wire', 'p', [{ seq: 2, id: 'e2', type: `{${NS}}pay`, source: 'alice', data: 'amount=20' }]));
  t.is(proxy.flipped, 1, 'one bit of the publish was flipped on the way');
  t.true(err instanceof FlowsError, `the publish fails with a FlowsError, got ${String(err)}`);
  t.true((err as FlowsError).flowsCode === 'UNAVAILABLE', `UNAVAILABLE (the session ended), got ${(err as FlowsError).flowsCode}`);

  // Nothing of the modified request reached the store, in any form.
  const info = await owner.describe('wire');
  t.is(info.events, 1, 'only the untouched event is stored');
  t.is(await owner.lastSeq('wire', 'p'), 1);
  const sub = await owner.subscribe('wire', { from: 'start', follow: false });
  const got = [];
  for await (const e of sub) got.push(e);
  t.deepEqual(got.map((e) => [e.seq, e.data]), [[1, 'amount=10']]);
  // The producer, reconnected, sends event 2 again: stored once, unmodified.
  const again = await fnua(t, port);
  t.deepEqual((await again.publish('wire', 'p', [{ seq: 2, id: 'e2', type: `{${NS}}pay`, source: 'alice', data: 'amount=20' }])).offsets, [2]);
});

test('S2S source impersonation refused: a wrong password, an unknown user and an authorization identity other than one\'s own are refused at authentication (NOT_AUTHORIZED, 535); nothing is served to them', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const owner = await fnua(t, port);
  await owner.create('imp', { acl: { publish: ['alice', 'bob'] } });
  const attempt = (username: string, password: string, authzid?: string): Promise<FlowsClient> =>
    connectFlows({ port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username, password, ...(authzid !== undefined ? { authzid } : {}) }) });
  for (const [what, p] of [
    ['wrong password', attempt('bob', `${PASSWORD}!`)],
    ['unknown user', attempt('mallory', PASSWORD)],
    ['bob acting as alice', attempt('bob', PASSWORD, 'alice')],
  ] as const) {
    const err = await t.throwsAsync(p, undefined, what);
    t.true(err instanceof FlowsError, `${what}: a FlowsError, got ${String(err)}`);
    t.is((err as FlowsError).flowsCode, 'NOT_AUTHORIZED', what);
    t.is((err as FlowsError).replyCode, 535, `${what}: 535 authentication failure`);
  }
  // bob as himself may publish, but only as himself: the stored publisher is the authenticated identity.
  const bob = await fnua(t, port, 'bob');
  await bob.publish('imp', 'b', [{ seq: 1, type: `{${NS}}tick`, source: 'bob', data: 'x' }]);
  const sub = await owner.subscribe('imp', { from: 'start', follow: false });
  const got = [];
  for await (const e of sub) got.push(e);
  t.deepEqual(got.map((e) => e.publisher), ['bob']);
  t.is((await owner.describe('imp')).events, 1, 'nothing from the refused attempts');
});
