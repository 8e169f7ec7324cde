/**
 * The small parts of the data plane: the token bucket (injected clock), the
 * data-plane elements, host:port handling and listening in a port range.
 */
import test from 'ava';
import net from 'node:net';
import fc from 'fast-check';
import { BeepError, ErrorCodes } from '../../../src/errors.js';
import { TokenBucket, defaultBurst, defaultCatchUp } from '../../../src/scistream/data/bucket.js';
import { buildControl, buildStreamInit, DataWireError, parseControl, parseStreamInit } from '../../../src/scistream/data/wire.js';
import { within } from './helpers.js';
import { checkPortRange, closeServer, formatHostPort, listenInRange, parseHostPort, resetSocket } from '../../../src/scistream/data/ports.js';

test('token bucket: a full burst passes at once, then the debt sets the wait; idle gathers burst, debt may catch up', (t) => {
  let now = 0;
  const b = new TokenBucket(1000, { burst: 100, catchUp: 300, initial: 100, now: () => now });
  t.is(b.take(100), 0, 'the burst');
  t.is(b.take(50), 50, '50 octets of debt at 1000 B/s: 50 ms');
  now = 50;
  t.is(b.available(), 0);
  now = 1050;
  t.is(b.available(), 100, 'idle: refill caps at the burst');
  t.is(b.take(1100), 1000, 'a chunk larger than the bucket passes, into debt');
  now = 3050; // the source came back 1 s late
  t.is(b.available(), 300, 'in debt: refill may catch up to catchUp');
  t.is(b.take(300), 0);
});

test('token bucket: over any sequence of takes honouring the waits, the rate is never exceeded (it starts empty)', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1000, max: 10_000_000 }), fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 200 }), (rate, chunks) => {
      let now = 0;
      const b = new TokenBucket(rate, { now: () => now });
      let sent = 0;
      for (const c of chunks) {
        sent += c;
        now += b.take(c);
        // After waiting as told, what passed is within rate·time (plus one chunk, which passes into debt).
        if (sent - c > (rate * now) / 1000 + 1) return false;
      }
      return true;
    }),
  );
  t.is(defaultBurst(20 * 1024 * 1024), 1048576);
  t.is(defaultBurst(10), 1);
  t.is(defaultBurst(1e12), 4 * 1024 * 1024);
  t.is(defaultCatchUp(20 * 1024 * 1024), 5 * 1048576);
  t.is(defaultCatchUp(1e12), 64 * 1024 * 1024);
  let now = 0;
  const empty = new TokenBucket(1000, { now: () => now });
  now = 60_000;
  t.is(empty.take(10), 10, 'starts empty at its first use, however long after its creation');
  now = 60_010;
  t.is(empty.available(), 0, 'debt paid');
  now = 120_000;
  t.is(empty.available(), 50, 'then gathers 50 ms worth while idle');
  t.throws(() => new TokenBucket(0));
  t.throws(() => new TokenBucket(Number.NaN));
});

test('stream init and data-control elements round-trip; bad ones are refused with 500/501', (t) => {
  t.is(parseStreamInit(buildStreamInit(7)), 7);
  t.is(parseStreamInit('<stream index="0"/>'), 0);
  t.deepEqual(parseControl(buildControl({ kind: 'reset', channel: 5 })), { kind: 'reset', channel: 5 });
  t.deepEqual(parseControl(Buffer.from("<ready channel='3' />")), { kind: 'ready', channel: 3 });
  const code = (f: () => unknown): number => {
    try {
      f();
    } catch (e) {
      return e instanceof DataWireError ? e.replyCode : -1;
    }
    return 0;
  };
  t.is(code(() => parseStreamInit(undefined)), 500);
  t.is(code(() => parseStreamInit('<stream index="x"/>')), 501);
  t.is(code(() => parseStreamInit('<stream/>')), 501);
  t.is(code(() => parseStreamInit('<other index="1"/>')), 501);
  t.is(code(() => parseStreamInit('<stream index="1"')), 500);
  t.is(code(() => parseStreamInit('<!DOCTYPE x [<!ENTITY a "1">]><stream index="&a;"/>')), 500);
  t.is(code(() => parseControl('<reset channel="99999999999"/>')), 501);
  t.is(code(() => parseControl('<close channel="1"/>')), 501);
  t.is(code(() => parseControl('<reset channel="1"/><reset channel="2"/>')), 500);
  t.is(code(() => parseControl(`<reset channel="1" pad="${'x'.repeat(2000)}"/>`)), 500);
  t.throws(() => buildStreamInit(-1));
  t.throws(() => buildControl({ kind: 'ready', channel: 0 }));
});

test('host:port parsing and formatting, IPv6 in brackets', (t) => {
  t.deepEqual(parseHostPort('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
  t.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 });
  t.deepEqual(parseHostPort('data.example.org:65535'), { host: 'data.example.org', port: 65535 });
  for (const bad of ['', '127.0.0.1', '127.0.0.1:0', 'h:65536', '::1:80', 'h: 80', 'h:80x']) {
    const err = t.throws(() => parseHostPort(bad), undefined, bad);
    t.true(err instanceof BeepError && err.code === ErrorCodes.INVALID_ARGUMENT);
  }
  t.is(formatHostPort('::1', 80), '[::1]:80');
  t.is(formatHostPort('10.0.0.1', 80), '10.0.0.1:80');
  t.deepEqual(checkPortRange(undefined), [0, 0]);
  t.throws(() => checkPortRange([10, 5]));
  t.throws(() => checkPortRange([0, 5]));
  t.throws(() => checkPortRange([1, 70000]));
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('listenInRange skips ports in use, fails with BEEP_ERR_LIMIT when the range is full, and closeServer frees the port', async (t) => {
  const port = await freePort();
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const a = net.createServer();
  const err = await t.throwsAsync(listenInRange(a, '127.0.0.1', [port, port]));
  t.true(err instanceof BeepError && err.code === ErrorCodes.LIMIT, String(err));
  await new Promise<void>((r) => blocker.close(() => r()));
  t.is(await listenInRange(a, '127.0.0.1', [port, port]), port, 'the same server object can listen after a failed try');
  await closeServer(a);
  const again = net.createServer();
  t.is(await listenInRange(again, '127.0.0.1', [port, port]), port, 'free again after closeServer');
  await closeServer(again);
  const any = net.createServer();
  t.true((await listenInRange(any, '127.0.0.1')) > 0);
  await closeServer(any);
});

test('resetSocket: a connection reset while our FIN is in flight is still closed (libuv refuses the reset), a live one gets a RST', async (t) => {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  /** Our end (dialled) and how the peer (accepted) saw the connection end. */
  const connection = async (): Promise<{ ours: net.Socket; peerEnd: Promise<{ error: string | undefined; ended: boolean }> }> => {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const ours = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    ours.on('error', () => undefined);
    await new Promise<void>((r) => ours.once('connect', () => r()));
    const peer = await accepted;
    t.teardown(() => peer.destroy());
    let error: string | undefined;
    let ended = false;
    peer.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code));
    peer.on('end', () => (ended = true));
    peer.resume();
    // Settles on the first sign of the end (with allowHalfOpen a FIN alone does not close it).
    const peerEnd = new Promise<{ error: string | undefined; ended: boolean }>((r) => {
      peer.once('end', () => setImmediate(() => r({ error, ended })));
      peer.once('close', () => r({ error, ended }));
    });
    return { ours, peerEnd };
  };
  const a = await connection();
  const aClosed = new Promise<void>((r) => a.ours.once('close', () => r()));
  a.ours.end();
  resetSocket(a.ours); // same turn: the shutdown is in flight
  await within(aClosed, 10_000, 'our socket closed');
  const ea = await within(a.peerEnd, 10_000, 'peer saw the close');
  t.true(ea.ended || ea.error !== undefined, 'the peer saw the connection end');

  const b = await connection();
  resetSocket(b.ours);
  const eb = await within(b.peerEnd, 10_000, 'peer saw the reset');
  t.is(eb.error, 'ECONNRESET');
});
