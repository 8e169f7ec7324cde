/**
 * The consumer-side S2DS reads the consumer application into slabs it reuses
 * once the BEEP session says their octets are written (source.ts `recycle`,
 * the request's `onReleased`). Through a real data path (TLS-PSK BEEP on
 * 127.0.0.1) with a producer application that reads slowly, so the S2DS's
 * writes back up and slabs wait for their release: every octet must arrive
 * as written (SHA-256), both ways.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import type net from 'node:net';
import { consumerApp, MiB, openPair, producerApp, readAll, sleep, until, within, writeData, type ReadResult } from './helpers.js';

/** Read `socket` to its end, pausing `ms` after every `every` octets (a slow application). */
function readSlowly(socket: net.Socket, every: number, ms: number): Promise<ReadResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  let next = every;
  return new Promise((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      if (bytes >= next) {
        next += every;
        socket.pause();
        void sleep(ms).then(() => socket.resume());
      }
    });
    socket.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`closed without end after ${bytes} octets`)));
  });
}

test('consumer → producer through recycled read slabs, the producer reading slowly: SHA-256 equal at both ends, both ways', async (t) => {
  t.timeout(120_000);
  const total = 96 * MiB;
  const back = 8 * MiB;
  const ends: Promise<[ReadResult, { sha256: string; bytes: number }]>[] = [];
  const producer = await producerApp((s) => {
    ends.push(Promise.all([readSlowly(s, 2 * MiB, 3), writeData(s, 'producer', back)]));
  });
  t.teardown(() => producer.close());
  const pair = await openPair(t, { targets: [producer.address], numConn: 1 }, { numConn: 1 });
  const s = await consumerApp(pair.outbound.listeners[0] as string);
  const [read, wrote] = await within(Promise.all([readAll(s), writeData(s, 'consumer', total)]), 100_000, 'the transfer');
  await until(() => ends.length === 1, 5000, 'the producer connection');
  const [prodRead, prodWrote] = await within(ends[0] as Promise<[ReadResult, { sha256: string; bytes: number }]>, 30_000, 'the producer end');
  t.is(prodRead.bytes, total);
  t.is(prodRead.sha256, wrote.sha256, 'consumer → producer: every octet as written');
  t.is(read.bytes, back);
  t.is(read.sha256, prodWrote.sha256, 'producer → consumer');
  t.deepEqual(pair.errors, []);
});
