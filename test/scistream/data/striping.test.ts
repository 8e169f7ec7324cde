/**
 * Striping a data path over K TCP connections (`connections`), reachable per
 * path and as a data server default (how an S2CS configuration turns it on),
 * the one validation of `numConn` and `connections`, and the data-path
 * limits. Real sockets on 127.0.0.1, real TLS 1.3 PSK, every octet checked
 * with SHA-256 at both ends in both directions.
 */
import test from 'ava';
import type net from 'node:net';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { resolveLimits } from '../../../src/channels/types.js';
import {
  checkConnections, createDataServer, DATA_LIMITS, InboundPath, MAX_CONNECTIONS, MAX_NUM_CONN, OutboundPath,
} from '../../../src/scistream/data/index.js';
import { consumerApp, MiB, newUid, openPair, producerApp, readAll, until, within, writeData, type ReadResult, type WriteResult } from './helpers.js';

interface Ends {
  read: ReadResult;
  wrote: WriteResult;
}

const sorted = (a: string[]): string[] => [...a].sort();

test('striping: connections 4 carries 4 application connections on 4 TLS-PSK BEEP connections, one each, every octet checked both ways', async (t) => {
  t.timeout(90_000);
  const streams = 4;
  const perStream = 8 * MiB;
  const producerEnds: Promise<Ends>[] = [];
  const producer = await producerApp((s: net.Socket, n: number) => {
    producerEnds.push(Promise.all([readAll(s), writeData(s, `producer-${n}`, perStream)]).then(([read, wrote]) => ({ read, wrote })));
  });
  t.teardown(() => producer.close());
  const pair = await openPair(t, { targets: [producer.address], numConn: streams }, { numConn: streams, connections: 4 });
  const out = pair.outbound as OutboundPath;
  t.is(out.links().length, 4, 'four BEEP connections before any application connects');

  const consumerEnds = await within(
    Promise.all(
      pair.outbound.listeners.map(async (l, i) => {
        const s = await consumerApp(l);
        const [read, wrote] = await Promise.all([readAll(s), writeData(s, `consumer-${i}`, perStream)]);
        return { read, wrote };
      }),
    ),
    60_000,
    'transfer',
  );
  await until(() => producerEnds.length === streams, 5000, 'producer connections');
  const prodEnds = await within(Promise.all(producerEnds), 10_000, 'producer ends');

  for (const e of [...consumerEnds, ...prodEnds]) {
    t.is(e.wrote.bytes, perStream);
    t.is(e.read.bytes, perStream);
  }
  t.deepEqual(sorted(consumerEnds.map((e) => e.read.sha256)), sorted(prodEnds.map((e) => e.wrote.sha256)), 'producer → consumer: every stream intact');
  t.deepEqual(sorted(prodEnds.map((e) => e.read.sha256)), sorted(consumerEnds.map((e) => e.wrote.sha256)), 'consumer → producer: every stream intact');
  t.is(new Set(consumerEnds.map((e) => e.wrote.sha256)).size, streams, 'four distinct streams');

  await until(() => pair.inbound.stats().open === 0 && pair.outbound.stats().open === 0, 5000, 'streams closed');
  const outLinks = out.links();
  const inLinks = (pair.inbound as InboundPath).links();
  t.deepEqual(outLinks.map((l) => l.opened), [1, 1, 1, 1], 'one application connection on each TCP connection');
  t.deepEqual(inLinks.map((l) => l.opened), [1, 1, 1, 1], 'the inbound receiver accepted all four connections');
  for (const l of [...outLinks, ...inLinks]) {
    t.is(l.protocol, 'TLSv1.3');
    t.regex(l.cipher ?? '', /GCM|CHACHA20/);
  }
  for (const p of [pair.inbound, pair.outbound]) {
    t.deepEqual(p.stats(), { connections: streams, open: 0, bytesToProducer: streams * perStream, bytesToConsumer: streams * perStream });
  }
  t.deepEqual(pair.errors, []);
});

test("the data server's connections option stripes paths whose spec does not say; a spec's own connections wins; never more than numConn", async (t) => {
  t.timeout(30_000);
  const producer = await producerApp();
  t.teardown(() => producer.close());
  const byDefault = await openPair(t, { targets: [producer.address], numConn: 4 }, { numConn: 4 }, { connections: 3 });
  t.is((byDefault.outbound as OutboundPath).links().length, 3, 'server default: 3 connections');
  await until(() => (byDefault.inbound as InboundPath).links().length === 3, 5000, 'three tuned sessions at the inbound side');

  const own = await openPair(t, { targets: [producer.address], numConn: 4 }, { numConn: 4, connections: 1 }, { connections: 3 });
  t.is((own.outbound as OutboundPath).links().length, 1, "the spec's connections: 1");

  const capped = await openPair(t, { targets: [producer.address], numConn: 2 }, { numConn: 2, connections: 8 });
  t.is((capped.outbound as OutboundPath).links().length, 2, 'connections 8 with numConn 2: two connections');

  // A path striped by the server default carries data like any other (one stream, checked).
  const s = await consumerApp(byDefault.outbound.listeners[0] as string);
  await until(() => producer.sockets.length === 1, 5000, 'producer connection');
  const prod = producer.sockets[0] as net.Socket;
  const [wrote, read] = await within(Promise.all([writeData(s, 'default-striped', 2 * MiB), readAll(prod)]), 20_000, 'one stream');
  t.is(read.bytes, 2 * MiB);
  t.is(read.sha256, wrote.sha256);
  for (const p of [byDefault, own, capped]) t.deepEqual(p.errors, []);
});

test('numConn and connections are validated in one place: a BeepError BEEP_ERR_INVALID_ARGUMENT naming the field, nothing left open', async (t) => {
  const ds = createDataServer({ host: '127.0.0.1' });
  t.teardown(() => ds.close());
  const uid = newUid();
  const expectInvalid = (e: unknown, field: RegExp): void => {
    t.true(e instanceof BeepError, String(e));
    t.is((e as BeepError).code, ErrorCodes.INVALID_ARGUMENT);
    t.regex((e as BeepError).message, field);
  };
  for (const connections of [0, -1, 1.5, MAX_CONNECTIONS + 1, Number.NaN]) {
    expectInvalid(await t.throwsAsync(ds.openOutbound({ uid, remotes: ['127.0.0.1:9'], numConn: 4, connections })), new RegExp(`connections must be an integer from 1 to ${MAX_CONNECTIONS}`));
    expectInvalid(t.throws(() => createDataServer({ host: '127.0.0.1', connections })), /connections must be an integer/);
    expectInvalid(t.throws(() => checkConnections(connections)), /connections/);
  }
  for (const numConn of [0, 1.5, MAX_NUM_CONN + 1]) {
    expectInvalid(await t.throwsAsync(ds.openOutbound({ uid, remotes: ['127.0.0.1:9'], numConn })), new RegExp(`numConn must be an integer from 1 to ${MAX_NUM_CONN}`));
    expectInvalid(await t.throwsAsync(ds.openInbound({ uid, targets: ['127.0.0.1:9'], numConn })), /numConn must be an integer/);
  }
  t.notThrows(() => checkConnections(undefined));
  t.notThrows(() => checkConnections(MAX_CONNECTIONS));
  t.is(ds.paths.length, 0, 'no path was opened');
});

test('DATA_LIMITS let one channel reach 2 × the bandwidth-delay product of 1 Gbit/s × 100 ms, within the session budget, from a modest start', (t) => {
  const bdp = (1e9 / 8) * 0.1; // 12.5 MB
  const l = resolveLimits(DATA_LIMITS, 'listener');
  t.true(l.maxReceiveWindow >= 32 * MiB, `maxReceiveWindow ${l.maxReceiveWindow}`);
  t.true(l.maxReceiveWindow >= 2 * bdp);
  t.true(l.sessionReceiveBudget >= 2 * bdp, `sessionReceiveBudget ${l.sessionReceiveBudget} covers 2 × BDP`);
  t.true(l.receiveWindow <= 1 * MiB, `initial window ${l.receiveWindow} stays modest`);
  t.true(l.maxFrameSize >= l.maxSendFrame, 'our own frames are accepted by a peer with the same limits');
});
