/**
 * Pacing and teardown of a data path: end-to-end backpressure from a slow
 * consumer application to the producer application's socket with memory
 * bounded, the session rate, and close() in the middle of a transfer freeing
 * every port. Serial: the RSS and rate measurements must not share the
 * process with other transfers.
 */
import test from 'ava';
import net from 'node:net';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { readFileSync } from 'node:fs';
import { DATA_LIMITS, createDataServer, OutboundPath } from '../../../src/scistream/data/index.js';
import { consumerApp, MiB, newUid, openPair, producerApp, readAll, until, within, writeData, type WriteResult } from './helpers.js';

/** The most a TCP connection's send + receive buffers may grow to here (Linux autotuning maxima; 4 + 6 MiB defaults elsewhere). */
function tcpBuffersMax(): number {
  const max = (f: string, dflt: number): number => {
    try {
      return Number(readFileSync(`/proc/sys/net/ipv4/${f}`, 'latin1').trim().split(/\s+/)[2]) || dflt;
    } catch {
      return dflt;
    }
  };
  return max('tcp_wmem', 4 * MiB) + max('tcp_rmem', 6 * MiB);
}

test.serial('slow consumer: the producer is held back end to end, memory stays bounded, 256 MiB arrive intact', async (t) => {
  t.timeout(300_000);
  const total = 256 * MiB;
  let written = 0;
  let producerWrite: Promise<WriteResult> | undefined;
  const producer = await producerApp((s) => {
    s.on('data', () => undefined);
    producerWrite = writeData(s, 'firehose', total, { onProgress: (n) => (written = n) });
  });
  t.teardown(() => producer.close());
  const { inbound, outbound } = await openPair(t, { targets: [producer.address], numConn: 1 }, { numConn: 1 });
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0;
  let lead = 0;
  let read = 0;
  const c = await consumerApp(outbound.listeners[0] as string);
  c.end(); // the consumer only listens
  const started = performance.now();
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
    lead = Math.max(lead, written - read);
  }, 20);
  t.teardown(() => clearInterval(sampler));
  const done = readAll(c, (n) => (read = n));
  // Read at most 256 KiB per 10 ms tick (≤ 25 MiB/s, a fraction of what the path carries):
  // pause once the tick's budget is spent, resume on the next tick.
  const perTick = 256 * 1024;
  let budget = perTick;
  c.on('data', (d: Buffer) => {
    budget -= d.length;
    if (budget <= 0) c.pause();
  });
  const ticker = setInterval(() => {
    budget = perTick;
    c.resume();
  }, 10);
  t.teardown(() => clearInterval(ticker));
  const got = await within(done, 240_000, 'consumer read to end');
  clearInterval(ticker);
  clearInterval(sampler);
  const sent = await within(producerWrite as Promise<WriteResult>, 30_000, 'producer done');
  t.is(got.bytes, total);
  t.is(got.sha256, sent.sha256);
  const seconds = (performance.now() - started) / 1000;
  t.true(seconds > 8, 'paced by the consumer');
  t.true(sent.backpressure > 0 && sent.waitedMs > seconds * 1000 * 0.5, `the producer's write() held it back ${(sent.waitedMs / 1000).toFixed(1)} s of ${seconds.toFixed(1)} s`);
  // What may sit between producer and consumer is bounded by configuration, not by timing: the
  // data channel's largest window (it grows with the measured RTT, which a busy machine inflates;
  // 64 MiB was seen), the two application connections' kernel buffers, and a pump's mark at each
  // end. (A path without backpressure would be nearly all of the 256 MiB ahead.)
  const leadBound = (DATA_LIMITS.maxReceiveWindow as number) + 2 * tcpBuffersMax() + 4 * MiB;
  t.true(lead < leadBound, `the producer got at most ${(lead / MiB).toFixed(1)} MiB ahead of the slow consumer (bound ${(leadBound / MiB).toFixed(0)} MiB)`);
  const growth = (rssMax - rss0) / MiB;
  t.log(`${seconds.toFixed(1)} s at the slow consumer's pace; RSS growth ${growth.toFixed(1)} MiB, producer lead ≤ ${(lead / MiB).toFixed(1)} MiB, producer waited on 'drain' ${(sent.waitedMs / 1000).toFixed(1)} s (${sent.backpressure} times)`);
  t.true(growth < 150, `RSS grew ${growth.toFixed(1)} MiB`);
  await until(() => inbound.stats().open === 0 && outbound.stats().open === 0, 5000, 'stream closed');
});

test.serial('rate: 20 MiB/s per direction, shared by streams on two striped connections, both directions at once: never 10 % over, not starved', async (t) => {
  t.timeout(240_000);
  const rate = 20 * MiB;
  const perStream = 30 * MiB; // two streams: 60 MiB each way, about 3 s
  const producerSide: { first: number; last: number }[] = [];
  const producer = await producerApp((s) => {
    const m = { first: 0, last: 0 };
    producerSide.push(m);
    s.once('data', () => (m.first = performance.now()));
    void readAll(s).then(() => (m.last = performance.now()));
    void writeData(s, 'paced', perStream);
  });
  t.teardown(() => producer.close());
  const { outbound } = await openPair(t, { targets: [producer.address], numConn: 2, rate }, { numConn: 2, rate, connections: 2 });
  t.is((outbound as OutboundPath).links().length, 2, 'one stream per BEEP connection, one bucket per direction');
  const consumerSide = await within(
    Promise.all(
      outbound.listeners.map(async (l) => {
        const s = await consumerApp(l);
        const m = { first: 0, last: 0, bytes: 0 };
        s.once('data', () => (m.first = performance.now()));
        const [r] = await Promise.all([readAll(s), writeData(s, 'paced up', perStream)]);
        m.last = performance.now();
        m.bytes = r.bytes;
        return m;
      }),
    ),
    150_000,
    'paced transfer',
  );
  await until(() => producerSide.length === 2 && producerSide.every((m) => m.last > 0), 30_000, 'producer side done');
  const measure = (ms: { first: number; last: number }[]): number => (2 * perStream) / ((Math.max(...ms.map((m) => m.last)) - Math.min(...ms.map((m) => m.first))) / 1000);
  const toConsumer = measure(consumerSide);
  const toProducer = measure(producerSide);
  t.log(`to consumer ${(toConsumer / MiB).toFixed(2)} MiB/s, to producer ${(toProducer / MiB).toFixed(2)} MiB/s (rate ${rate / MiB} MiB/s)`);
  t.true(consumerSide.every((m) => m.bytes === perStream));
  // The limiter must never let more through than the rate (+10 % for timing);
  // below it, a loaded CI machine (other test files run at once) may fall
  // short of 20 MiB/s on its own (with the machine's load at 16 on two cores, a quarter of it was
  // seen), so only starvation (under 5 %) fails there. Rates as figures belong in the benchmark.
  for (const [what, got] of [['producer → consumer', toConsumer], ['consumer → producer', toProducer]] as const) {
    t.true(got < rate * 1.1, `${what} ${(got / MiB).toFixed(2)} MiB/s exceeds the rate`);
    t.true(got > rate * 0.05, `${what} ${(got / MiB).toFixed(2)} MiB/s is starved`);
  }
});

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

test.serial('close() mid-transfer aborts both applications, closes every session and frees every port', async (t) => {
  t.timeout(120_000);
  let producerEnd: Promise<boolean> | undefined;
  const producer = await producerApp((s) => {
    producerEnd = new Promise((r) => s.once('close', () => r(true)));
    s.on('data', () => undefined);
    void writeData(s, 'big', 4096 * MiB).catch(() => undefined);
  });
  t.teardown(() => producer.close());
  const { inbound, outbound, errors } = await openPair(t, { targets: [producer.address], numConn: 2 }, { numConn: 2 });
  const ports = [...inbound.listeners, ...outbound.listeners].map((l) => Number(l.split(':')[1]));
  const c = await consumerApp(outbound.listeners[0] as string);
  const consumerEnd = new Promise<boolean>((r) => c.once('close', () => r(true)));
  let received = 0;
  c.on('data', (d: Buffer) => (received += d.length));
  void writeData(c, 'big up', 4096 * MiB).catch(() => undefined);
  await until(() => received > 16 * MiB, 20_000, 'transfer under way');
  for (const p of ports) t.false(await canBind(p), `port ${p} in use while open`);
  // The consumer side is released first, the producer side after (as two RELEASEs would).
  await within(outbound.close(), 10_000, 'outbound close');
  await within(outbound.closed, 1000, 'outbound closed resolves');
  t.true(await within(consumerEnd, 5000, 'consumer socket closed'));
  t.true(await within(producerEnd as Promise<boolean>, 5000, 'producer socket closed (session lost)'));
  await within(inbound.close(), 10_000, 'inbound close');
  await within(inbound.closed, 1000, 'inbound closed resolves');
  for (const p of ports) t.true(await canBind(p), `port ${p} free after close`);
  t.is(inbound.stats().open, 0);
  t.is(outbound.stats().open, 0);
  t.false(errors.some((e) => !(e instanceof BeepError)), 'only BEEP errors reported');
});

test.serial('ports come from the configured range, are freed on close and on a failed open', async (t) => {
  t.timeout(120_000);
  // Find four consecutive free ports.
  let lo = 0;
  for (let tries = 0; tries < 50 && lo === 0; tries++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    if ((await Promise.all([0, 1, 2, 3].map((k) => canBind(base + k)))).every(Boolean)) lo = base;
  }
  t.not(lo, 0, 'four consecutive free ports');
  const range: [number, number] = [lo, lo + 3];
  const producer = await producerApp();
  t.teardown(() => producer.close());
  const ds = createDataServer({ host: '127.0.0.1', portRange: range });
  t.teardown(() => ds.close());
  const uid = newUid();
  const inbound = await ds.openInbound({ uid, targets: [producer.address], numConn: 2 });
  const outbound = await ds.openOutbound({ uid, remotes: inbound.listeners, numConn: 2 });
  const used = [...inbound.listeners, ...outbound.listeners].map((l) => Number(l.split(':')[1]));
  t.is(used.length, 3);
  for (const p of used) t.true(p >= lo && p <= lo + 3, `${p} in range`);
  // Needs two more ports, one is left: fails, and frees the one it took.
  const err = await t.throwsAsync(ds.openOutbound({ uid, remotes: inbound.listeners, numConn: 2 }));
  t.true(err instanceof BeepError && err.code === ErrorCodes.LIMIT, String(err));
  const spare = [0, 1, 2, 3].map((k) => lo + k).find((p) => !used.includes(p)) as number;
  t.true(await canBind(spare), 'the failed open freed its port');
  await outbound.close();
  await inbound.close();
  for (const p of used) t.true(await canBind(p), `${p} free again`);
});
