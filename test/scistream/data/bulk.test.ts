/**
 * Bulk transfer through a real data path: producer application (net.Server)
 * ↔ inbound receiver ↔ BEEP over TLS-PSK ↔ outbound sender ↔ consumer
 * application (net.Socket), all on 127.0.0.1. Data is generated chunk by
 * chunk and checked with SHA-256 at both ends, both directions at once.
 */
import test from 'ava';
import type net from 'node:net';
import { InboundPath, OutboundPath } from '../../../src/scistream/data/index.js';
import { consumerApp, MiB, openPair, producerApp, readAll, within, writeData, until, type ReadResult, type WriteResult } from './helpers.js';

interface Ends {
  read: ReadResult;
  wrote: WriteResult;
}

/** Run `streams` full-duplex streams of `perStream` octets each way; returns both ends of every stream. */
async function transfer(streams: number, perStream: number, connections: number) {
  const producerEnds: Promise<Ends>[] = [];
  const producer = await producerApp((s: net.Socket, n: number) => {
    producerEnds.push(Promise.all([readAll(s), writeData(s, `producer-${n}`, perStream)]).then(([read, wrote]) => ({ read, wrote })));
  });
  const pair = await openPair(null, { targets: [producer.address], numConn: streams }, { numConn: streams, connections });
  try {
    const consumerEnds = await within(
      Promise.all(
        pair.outbound.listeners.map(async (l, i) => {
          const s = await consumerApp(l);
          const [read, wrote] = await Promise.all([readAll(s), writeData(s, `consumer-${i}`, perStream)]);
          return { read, wrote };
        }),
      ),
      100_000,
      'transfer',
    );
    await until(() => producerEnds.length === streams, 5000, 'producer connections');
    const prodEnds = await within(Promise.all(producerEnds), 10_000, 'producer ends');
    await until(() => pair.inbound.stats().open === 0 && pair.outbound.stats().open === 0, 5000, 'channels closed');
    const links = { outbound: (pair.outbound as OutboundPath).links(), inbound: (pair.inbound as InboundPath).links() };
    return { consumerEnds, prodEnds, pair, links };
  } finally {
    await pair.close();
    await producer.close();
  }
}

function sameMultiset(a: string[], b: string[]): boolean {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}

test('256 MiB each way over 4 parallel streams (num_conn 4), SHA-256 equal at both ends', async (t) => {
  t.timeout(120_000);
  const perStream = 64 * MiB;
  const { consumerEnds, prodEnds, pair } = await transfer(4, perStream, 1);
  t.is(consumerEnds.length, 4);
  t.is(prodEnds.length, 4);
  for (const e of [...consumerEnds, ...prodEnds]) {
    t.is(e.wrote.bytes, perStream);
    t.is(e.read.bytes, perStream);
  }
  // Each stream's producer→consumer and consumer→producer data arrived intact.
  t.true(sameMultiset(prodEnds.map((e) => e.wrote.sha256), consumerEnds.map((e) => e.read.sha256)), 'producer → consumer checksums');
  t.true(sameMultiset(consumerEnds.map((e) => e.wrote.sha256), prodEnds.map((e) => e.read.sha256)), 'consumer → producer checksums');
  t.is(new Set(prodEnds.map((e) => e.wrote.sha256)).size, 4, 'four distinct streams');
  for (const p of [pair.inbound, pair.outbound]) {
    t.deepEqual(p.stats(), { connections: 4, open: 0, bytesToProducer: 4 * perStream, bytesToConsumer: 4 * perStream });
  }
  t.deepEqual(pair.errors, []);
});

test('striping: connections K=2 spreads 4 streams over two TLS-PSK BEEP connections, checksums match', async (t) => {
  t.timeout(180_000);
  const perStream = 16 * MiB;
  const { consumerEnds, prodEnds, pair, links } = await transfer(4, perStream, 2);
  t.true(sameMultiset(prodEnds.map((e) => e.wrote.sha256), consumerEnds.map((e) => e.read.sha256)));
  t.true(sameMultiset(consumerEnds.map((e) => e.wrote.sha256), prodEnds.map((e) => e.read.sha256)));
  const out = links.outbound;
  t.is(out.length, 2, 'two BEEP connections');
  t.deepEqual(out.map((l) => l.opened), [2, 2], 'two streams on each');
  for (const l of out) {
    t.is(l.protocol, 'TLSv1.3');
    t.regex(l.cipher ?? '', /GCM|CHACHA20/);
  }
  const inbound = links.inbound;
  t.is(inbound.length, 2);
  t.deepEqual(inbound.map((l) => l.opened).sort(), [2, 2]);
  t.deepEqual(pair.errors, []);
});
