/**
 * An application that reconnects the moment its previous stream ended cleanly
 * (num_conn 1) gets the slot as soon as the old stream's channel has closed —
 * it waits briefly instead of being reset.
 */
import test from 'ava';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { createDataServer } from '../../../src/scistream/data/index.js';

test('back-to-back reconnects after a clean close are served, not reset (num_conn 1)', async (t) => {
  t.timeout(180_000);
  const size = 1_000_000;
  const uid = randomBytes(16).toString('hex');
  const producer = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.resume();
    s.end(Buffer.alloc(size, 7));
  });
  await new Promise<void>((r) => producer.listen(0, '127.0.0.1', r));
  const ds1 = createDataServer({ host: '127.0.0.1' });
  const ds2 = createDataServer({ host: '127.0.0.1' });
  t.teardown(async () => {
    await ds1.close();
    await ds2.close();
    producer.close();
  });
  const inbound = await ds1.openInbound({ uid, targets: [`127.0.0.1:${(producer.address() as net.AddressInfo).port}`], numConn: 1 });
  const outbound = await ds2.openOutbound({ uid, remotes: inbound.listeners, numConn: 1 });
  const [host, port] = (outbound.listeners[0] as string).split(':') as [string, string];
  const once = (): Promise<{ got: number; err: string | null }> =>
    new Promise((resolve) => {
      const c = net.connect({ host, port: Number(port), allowHalfOpen: true });
      let got = 0;
      let err: string | null = null;
      c.on('data', (d: Buffer) => (got += d.length));
      c.on('error', (e: NodeJS.ErrnoException) => (err = e.code ?? 'error'));
      c.on('connect', () => c.end(Buffer.alloc(size, 1)));
      c.on('close', () => resolve({ got, err }));
    });
  for (let i = 0; i < 15; i++) {
    const r = await once();
    t.is(r.err, null, `connection ${i} was reset`);
    t.is(r.got, size, `connection ${i} received everything`);
  }
});
