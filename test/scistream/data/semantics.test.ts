/**
 * Stream semantics of the data path over real sockets and real TLS-PSK:
 * half-close both ways, reset propagation both ways, num_conn, an unreachable
 * producer, and what a peer without the key gets (nothing).
 */
import test from 'ava';
import net from 'node:net';
import { BeepError, BeepReplyError, ErrorCodes } from '../../../src/errors.js';
import { connect } from '../../../src/channels/session.js';
import { startTls, TLS_URI } from '../../../src/profiles/tls.js';
import { createDataServer, derivePsk, DATA_URI, DATA_CONTROL_URI, buildStreamInit } from '../../../src/scistream/data/index.js';
import { consumerApp, MiB, newUid, openPair, producerApp, readAll, sleep, until, within, writeData } from './helpers.js';

/**
 * Resolves with how the socket ended: its error code, and whether a FIN came.
 * libuv reports a RST that arrives with the last octets as EOF and leaves the
 * error for the next write, so an EOF counts as a FIN only once an empty
 * write after it succeeds (as the data path itself tells them apart).
 */
function ending(s: net.Socket): Promise<{ error: string | undefined; ended: boolean }> {
  let error: string | undefined;
  let ended = false;
  s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
  s.on('end', () => {
    if (!s.writable || s.writableEnded) ended = true;
    else s.write(Buffer.alloc(0), (err) => (ended ||= !err));
  });
  return new Promise((resolve) => s.once('close', () => resolve({ error, ended })));
}

test('half-close consumer → producer: the consumer ends its side and still receives everything the producer sends after', async (t) => {
  t.timeout(120_000);
  const result: Promise<{ got: number; sent: string }>[] = [];
  const producer = await producerApp((s) => {
    // Read the consumer's request to its end, then answer and end.
    result.push(readAll(s).then(async (r) => ({ got: r.bytes, sent: (await writeData(s, 'answer', 5 * MiB)).sha256 })));
  });
  t.teardown(() => producer.close());
  const { inbound, outbound } = await openPair(t, { targets: [producer.address], numConn: 1 }, { numConn: 1 });
  const c = await consumerApp(outbound.listeners[0] as string);
  const closing = ending(c);
  const reading = readAll(c);
  const wrote = await writeData(c, 'request', 3 * MiB); // ends our side
  const got = await within(reading, 20_000, 'answer after our FIN');
  const p = await within(result[0] as Promise<{ got: number; sent: string }>, 5000, 'producer');
  t.is(p.got, wrote.bytes, 'the producer saw our whole request, then EOF');
  t.is(got.bytes, 5 * MiB);
  t.is(got.sha256, p.sent, 'answer intact after our half-close');
  t.deepEqual(await within(closing, 5000, 'consumer socket closes'), { error: undefined, ended: true }, 'a clean close');
  await until(() => inbound.stats().open === 0 && outbound.stats().open === 0, 5000, 'channel closed on both sides');
});

test('half-close producer → consumer: the producer ends first and still receives everything the consumer sends after', async (t) => {
  t.timeout(120_000);
  let producerGot: Promise<{ bytes: number; sha256: string }> | undefined;
  let producerClosed: Promise<{ error: string | undefined; ended: boolean }> | undefined;
  const producer = await producerApp((s) => {
    producerClosed = ending(s);
    producerGot = readAll(s);
    void writeData(s, 'greeting', 2 * MiB); // then FIN, while still reading
  });
  t.teardown(() => producer.close());
  const { inbound, outbound } = await openPair(t, { targets: [producer.address], numConn: 1 }, { numConn: 1 });
  const c = await consumerApp(outbound.listeners[0] as string);
  const greeting = await within(readAll(c), 20_000, 'greeting to its end');
  t.is(greeting.bytes, 2 * MiB);
  // After the producer's FIN, the consumer still talks to it.
  const wrote = await writeData(c, 'late data', 4 * MiB);
  await until(() => producerGot !== undefined, 5000, 'producer connection');
  const got = await within(producerGot as Promise<{ bytes: number; sha256: string }>, 20_000, 'producer reads to end');
  t.is(got.bytes, wrote.bytes);
  t.is(got.sha256, wrote.sha256);
  t.deepEqual(await within(producerClosed as Promise<unknown>, 5000, 'producer socket closes'), { error: undefined, ended: true });
  await until(() => inbound.stats().open === 0 && outbound.stats().open === 0, 5000, 'channel closed on both sides');
});

test('reset consumer → producer: the consumer application aborts (RST) mid-transfer; the producer connection is reset', async (t) => {
  t.timeout(120_000);
  let producerEnd: Promise<{ error: string | undefined; ended: boolean }> | undefined;
  const producer = await producerApp((s) => {
    producerEnd = ending(s);
    s.on('data', () => undefined);
    void writeData(s, 'endless', 1024 * MiB).catch(() => undefined);
  });
  t.teardown(() => producer.close());
  const { inbound, outbound } = await openPair(t, { targets: [producer.address], numConn: 1 }, { numConn: 1 });
  const c = await consumerApp(outbound.listeners[0] as string);
  let received = 0;
  c.on('data', (d: Buffer) => (received += d.length));
  c.on('error', () => undefined);
  await until(() => received > 4 * MiB, 20_000, 'data flowing');
  c.resetAndDestroy();
  const end = await within(producerEnd as Promise<{ error: string | undefined; ended: boolean }>, 10_000, 'producer socket closed');
  t.is(end.error, 'ECONNRESET', 'the producer sees a reset, not a clean end');
  t.false(end.ended);
  await until(() => inbound.stats().open === 0 && outbound.stats().open === 0, 5000, 'channel closed on both sides');
});

test('reset producer → consumer: the producer application aborts (RST); the consumer connection is reset, not ended', async (t) => {
  t.timeout(120_000);
  const producer = await producerApp((s) => {
    s.on('data', () => undefined);
    void writeData(s, 'some', 2 * MiB, { end: false }).then(() => sleep(50)).then(() => s.resetAndDestroy());
  });
  t.teardown(() => producer.close());
  const { inbound, outbound } = await openPair(t, { targets: [producer.address], numConn: 1 }, { numConn: 1 });
  const c = await consumerApp(outbound.listeners[0] as string);
  const end = ending(c);
  c.on('data', () => undefined);
  // The consumer keeps sending meanwhile.
  void writeData(c, 'upload', 1024 * MiB).catch(() => undefined);
  const e = await within(end, 10_000, 'consumer socket closed');
  t.is(e.error, 'ECONNRESET');
  t.false(e.ended, 'no clean EOF before the reset');
  await until(() => inbound.stats().open === 0 && outbound.stats().open === 0, 5000, 'channel closed on both sides');
});

test('num_conn bounds concurrent application connections; a listener takes a new one once a stream is over', async (t) => {
  t.timeout(120_000);
  const producer = await producerApp((s) => {
    s.on('data', () => undefined);
    s.on('end', () => s.end());
  });
  t.teardown(() => producer.close());
  const { outbound } = await openPair(t, { targets: [producer.address], numConn: 2 }, { numConn: 2 });
  t.is(outbound.listeners.length, 2, 'one listener per stream index');
  const a = await consumerApp(outbound.listeners[0] as string);
  const b = await consumerApp(outbound.listeners[1] as string);
  await until(() => producer.sockets.length === 2, 5000, 'two producer connections');
  // The third is aborted (RST) on accept: the connect itself may already see it.
  const third = await consumerApp(outbound.listeners[0] as string).then(
    (s) => within(ending(s), 5000, 'third connection refused'),
    (e: NodeJS.ErrnoException) => ({ error: e.code, ended: false }),
  );
  t.is(third.error, 'ECONNRESET', 'the third connection is aborted');
  t.is(producer.sockets.length, 2, 'the producer never saw it');
  a.end();
  b.end();
  await until(() => outbound.stats().open === 0, 5000, 'both streams over');
  a.destroy();
  b.destroy();
  const d = await consumerApp(outbound.listeners[0] as string);
  await until(() => producer.sockets.length === 3, 5000, 'a new stream once one is free');
  d.destroy();
});

test('an unreachable producer application: the consumer connection is aborted, the path stays usable', async (t) => {
  t.timeout(120_000);
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const { outbound, errors } = await openPair(t, { targets: [`127.0.0.1:${deadPort}`], numConn: 1 }, { numConn: 1 });
  const c = await consumerApp(outbound.listeners[0] as string);
  const e = await within(ending(c), 10_000, 'consumer aborted');
  t.is(e.error, 'ECONNRESET');
  t.true(errors.some((x) => x instanceof BeepReplyError && x.replyCode === 554), 'start refused with 554');
  t.is(outbound.stats().open, 0);
});

test('wrong key: an outbound sender with another uid fails the TLS handshake and the producer gets nothing; the right one then works', async (t) => {
  t.timeout(120_000);
  const producer = await producerApp((s) => s.end('hello'));
  t.teardown(() => producer.close());
  const uid = newUid();
  const ds = createDataServer({ host: '127.0.0.1' });
  t.teardown(() => ds.close());
  const inbound = await ds.openInbound({ uid, targets: [producer.address], numConn: 1 });
  const err = await t.throwsAsync(ds.openOutbound({ uid: newUid(), remotes: inbound.listeners, numConn: 1 }));
  t.true(err instanceof BeepError && err.code === ErrorCodes.TRANSPORT, String(err));
  t.regex(String(err?.message), /handshake/i);
  t.is(ds.paths.length, 1, 'the failed outbound path freed itself');
  await sleep(100);
  t.is(producer.sockets.length, 0, 'the producer application received nothing');
  t.is(inbound.stats().connections, 0);
  // The listener is unharmed: the right key gets through.
  const outbound = await ds.openOutbound({ uid, remotes: inbound.listeners, numConn: 1 });
  const c = await consumerApp(outbound.listeners[0] as string);
  t.is((await within(readAll(c), 10_000, 'hello')).bytes, 5);
});

test('before TLS the listener offers only TLS and refuses data channels with 538; a wrong PSK gets no session', async (t) => {
  t.timeout(120_000);
  const producer = await producerApp();
  t.teardown(() => producer.close());
  const uid = newUid();
  const ds = createDataServer({ host: '127.0.0.1' });
  t.teardown(() => ds.close());
  const inbound = await ds.openInbound({ uid, targets: [producer.address], numConn: 1 });
  const [host, port] = (inbound.listeners[0] as string).split(':');
  const s = await connect({ host: host as string, port: Number(port) });
  t.teardown(() => s.destroy());
  t.deepEqual(s.peerProfiles, [TLS_URI]);
  const refused = await t.throwsAsync(s.startChannel(DATA_URI, { content: buildStreamInit(0) }));
  t.true(refused instanceof BeepReplyError && refused.replyCode === 538, String(refused));
  // Right identity, wrong key: the handshake fails.
  const { identity } = derivePsk(uid);
  const bad = await t.throwsAsync(startTls(s, { psk: { identity, key: derivePsk(newUid()).key }, minVersion: 'TLSv1.3', handshakeTimeout: 5000 }));
  t.true(bad instanceof BeepError && bad.code === ErrorCodes.TRANSPORT);
  t.is(s.core.state, 'closed');
  t.is(producer.sockets.length, 0);
});

test('losing the BEEP connection (producer side closed) aborts the consumer connections and ends the outbound path', async (t) => {
  t.timeout(120_000);
  const producer = await producerApp((s) => s.on('data', () => undefined));
  t.teardown(() => producer.close());
  const { inbound, outbound } = await openPair(t, { targets: [producer.address], numConn: 2 }, { numConn: 2 });
  const c = await consumerApp(outbound.listeners[1] as string);
  const end = ending(c);
  c.write('hello');
  await until(() => producer.sockets.length === 1, 5000, 'stream up');
  await inbound.close();
  await within(outbound.closed, 5000, 'the outbound path ends by itself');
  t.is((await within(end, 5000, 'consumer aborted')).error, 'ECONNRESET');
  t.is(outbound.stats().open, 0);
});

test('churn: 100 short streams and 20 immediate resets leave nothing open, and later streams still work', async (t) => {
  t.timeout(180_000);
  const producer = await producerApp((s) => {
    s.on('data', () => undefined);
    s.on('end', () => s.end('ok'));
  });
  t.teardown(() => producer.close());
  const { inbound, outbound, errors } = await openPair(t, { targets: [producer.address], numConn: 4 }, { numConn: 4 });
  for (let round = 0; round < 25; round++) {
    await within(
      Promise.all(
        outbound.listeners.map(async (l) => {
          const c = await consumerApp(l);
          c.end('x');
          t.is((await readAll(c)).bytes, 2);
        }),
      ),
      10_000,
      `round ${round}`,
    );
    await until(() => outbound.stats().open === 0, 5000, 'round over');
  }
  for (let i = 0; i < 20; i++) {
    // Aborted at once; while num_conn streams are still being torn down a connect may be refused.
    const c = await consumerApp(outbound.listeners[i % 4] as string).catch(() => null);
    c?.resetAndDestroy();
    await until(() => outbound.stats().open < 4, 5000, 'a slot');
  }
  await until(() => inbound.stats().open === 0 && outbound.stats().open === 0, 5000, 'all closed');
  await until(() => producer.sockets.every((s) => s.destroyed), 5000, 'every producer connection closed');
  t.is(inbound.stats().connections, outbound.stats().connections);
  const c = await consumerApp(outbound.listeners[0] as string);
  c.end('x');
  t.is((await within(readAll(c), 5000, 'a stream after the churn')).bytes, 2);
  t.false(errors.some((e) => !(e instanceof BeepError)), String(errors));
});

test('a tuned peer breaking the profile: bad <stream> 501, past num_conn 550, poorly-formed notice 500, unknown notice 501, second control channel 550', async (t) => {
  t.timeout(120_000);
  const producer = await producerApp((s) => s.on('data', () => undefined));
  t.teardown(() => producer.close());
  const uid = newUid();
  const ds = createDataServer({ host: '127.0.0.1' });
  t.teardown(() => ds.close());
  const inbound = await ds.openInbound({ uid, targets: [producer.address], numConn: 1 });
  const [host, port] = (inbound.listeners[0] as string).split(':');
  const s = await connect({ host: host as string, port: Number(port), requireTls: true });
  t.teardown(() => s.destroy());
  await startTls(s, { psk: derivePsk(uid), minVersion: 'TLSv1.3' });
  t.deepEqual([...s.peerProfiles].sort(), [DATA_CONTROL_URI, DATA_URI].sort());
  const code = async (p: Promise<unknown>): Promise<number | undefined> => {
    const e = await t.throwsAsync(p);
    return e instanceof BeepReplyError ? e.replyCode : undefined;
  };
  const control = await s.startChannel(DATA_CONTROL_URI);
  t.is(await code(s.startChannel(DATA_CONTROL_URI)), 550);
  t.is(await code(s.startChannel(DATA_URI, { content: '<stream />' })), 501);
  t.is(await code(s.startChannel(DATA_URI)), 500);
  const ch = await s.startChannel(DATA_URI, { content: buildStreamInit(0) });
  t.is(ch.state, 'open');
  await until(() => producer.sockets.length === 1, 5000, 'producer connection');
  t.is(await code(s.startChannel(DATA_URI, { content: buildStreamInit(1) })), 550, 'num_conn 1');
  t.is(await code(control.request('<reset channel="x"/>', { contentType: 'application/beep+xml' })), 501);
  t.is(await code(control.request('<reset', { contentType: 'application/beep+xml' })), 500);
  t.is(await code(control.request('<hello channel="1"/>', { contentType: 'application/beep+xml' })), 501);
  t.is(await (await control.request(`<ready channel='999' />`, { contentType: 'application/beep+xml' })).text(), '<ok />', 'a notice for no stream is moot');
  // A reset notice aborts the producer connection.
  const closed = new Promise((r) => producer.sockets[0]?.once('close', r));
  await control.request(`<reset channel='${ch.number}' />`, { contentType: 'application/beep+xml' });
  await within(closed, 5000, 'producer connection reset');
  t.is(s.core.state, 'open', 'the session carries on');
});
