/**
 * The application → tunnel direction (`src/scistream/data/source.ts`): a
 * real TCP connection on 127.0.0.1 read into 1 MiB slabs, iterated as a
 * message body would be; every octet arrives once and in order, reading
 * stops at the source's own mark (so the writer's TCP window closes), and
 * the application's FIN ends the iteration after the last octet.
 */
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { SocketSource, SOURCE_HIGH_WATER, SOURCE_SLAB, SPARE_SLABS } from '../../../src/scistream/data/source.js';
import { MiB, sleep, until, within } from './helpers.js';

/** A connected pair: `app` writes, `ours` is paused and unread (as the data path hands it over). */
async function pair(): Promise<{ app: net.Socket; ours: net.Socket; close: () => void }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const app = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  const ours = await accepted;
  await new Promise<void>((r) => (app.connecting ? app.once('connect', () => r()) : r()));
  server.close();
  return {
    app,
    ours,
    close: () => {
      app.destroy();
      ours.destroy();
    },
  };
}

function writeAll(app: net.Socket, data: Buffer, end: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    app.once('error', reject);
    app.write(data, (err) => (err ? reject(err) : resolve()));
    if (end) app.end();
  });
}

test('every octet once and in order, in views of read slabs growing to 1 MiB (reads side by side joined), ended by the application FIN', async (t) => {
  const { app, ours, close } = await pair();
  t.teardown(close);
  const data = randomBytes(24 * MiB + 12345);
  let read = 0;
  let ended = false;
  const src = new SocketSource(ours, { count: (n) => (read += n), onEnd: () => (ended = true) });
  src.start();
  const written = writeAll(app, data, true);
  const h = createHash('sha256');
  let n = 0;
  let chunks = 0;
  const sizes: number[] = [];
  await within(
    (async () => {
      for await (const c of src) {
        sizes.push(c.buffer.byteLength);
        h.update(c);
        n += c.length;
        chunks++;
      }
    })(),
    30_000,
    'the iteration to end',
  );
  await written;
  t.true(ended, 'onEnd on FIN');
  t.is(n, data.length);
  t.is(read, data.length, 'count saw every octet');
  t.is(h.digest('hex'), createHash('sha256').update(data).digest('hex'));
  // Views into read slabs of 128 KiB, 256 KiB, … up to 1 MiB (not 64 KiB read buffers of their own).
  t.true(sizes.every((z, i) => z >= 128 * 1024 && z <= SOURCE_SLAB && (z & (z - 1)) === 0 && (i === 0 || z >= (sizes[i - 1] as number))), `slab sizes ${sizes.join(',')}`);
  t.is(sizes[sizes.length - 1], SOURCE_SLAB, 'a long stream reads into 1 MiB slabs');
  t.log(`${chunks} chunks for ${(n / MiB).toFixed(1)} MiB`);
});

test('reading stops once highWater octets wait for the consumer of the body (the writer is held back), and goes on as they are taken', async (t) => {
  const { app, ours, close } = await pair();
  t.teardown(close);
  const highWater = 256 * 1024;
  const data = randomBytes(64 * MiB);
  let read = 0;
  const src = new SocketSource(ours, { highWater, count: (n) => (read += n), onEnd: () => undefined });
  src.start();
  let writerDone = false;
  const written = writeAll(app, data, true).then(() => (writerDone = true));
  await until(() => read >= highWater, 10_000, 'the first reads');
  await sleep(100); // room to overshoot, if it did not stop
  // One read can land after the mark is reached (it is offered at most a slab).
  t.true(read < highWater + SOURCE_SLAB, `stopped near the mark: ${read} octets read`);
  t.false(writerDone, 'the writer is held back (64 MiB cannot all sit in kernel buffers)');
  const h = createHash('sha256');
  let n = 0;
  for await (const c of src) {
    h.update(c);
    n += c.length;
  }
  await written;
  t.is(n, data.length);
  t.is(h.digest('hex'), createHash('sha256').update(data).digest('hex'));
  t.is(SOURCE_HIGH_WATER, 2 * MiB, 'the default');
});

test('stop() stops reading but keeps the iteration open until end(); what was read before is still delivered', async (t) => {
  const { app, ours, close } = await pair();
  t.teardown(close);
  const first = Buffer.alloc(1000, 1);
  let read = 0;
  const src = new SocketSource(ours, { count: (n) => (read += n), onEnd: () => t.fail('no FIN was sent') });
  src.start();
  await writeAll(app, first, false);
  await until(() => read === first.length, 5000, 'the first write');
  src.stop();
  await writeAll(app, Buffer.alloc(1000, 2), false);
  await sleep(50);
  t.is(read, first.length, 'nothing read after stop()');
  const it = src[Symbol.asyncIterator]();
  const a = await it.next();
  t.deepEqual(a.value, first);
  const pending = it.next();
  let settled = false;
  void pending.then(() => (settled = true));
  await sleep(20);
  t.false(settled, 'the iteration stays open (a reset MSG is ended by the peer, not by us)');
  src.end();
  t.true((await pending).done);
});

test('a reset that arrives with the last octets (libuv reports it as EOF) does not end the body: the socket errors instead', async (t) => {
  const { app, ours, close } = await pair();
  t.teardown(close);
  let ended = false;
  let error: string | undefined;
  ours.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code));
  const closed = new Promise<void>((r) => ours.once('close', () => r()));
  // Octets and then a reset reach `ours` while it is not yet reading: its first
  // reads take the octets, and the hang-up with them is reported as an EOF.
  await writeAll(app, randomBytes(256 * 1024), false);
  app.resetAndDestroy();
  await sleep(100);
  const src = new SocketSource(ours, { onEnd: () => (ended = true) });
  src.start();
  const reading = (async () => {
    for await (const _ of src) void _;
  })();
  await within(closed, 10_000, 'our socket closed');
  src.end(); // as the bridge does once its socket is gone
  await within(reading, 10_000, 'iteration over');
  t.is(error, 'ECONNRESET', 'the reset is seen');
  t.false(ended, 'no end of body forwarded for a reset');
});

/**
 * Iterate `src` as a consumer that keeps each chunk until `lag` octets more
 * have arrived, checks it still holds what the application wrote, then
 * releases it (`released`, as the request's onReleased does); a negative lag
 * keeps every chunk to the end. Returns chunks found overwritten and the hash.
 */
async function consumeHolding(src: SocketSource, data: Buffer, lag: number): Promise<{ damaged: number; sha: string; n: number }> {
  const held: { c: Buffer; at: number }[] = [];
  let heldOctets = 0;
  let at = 0;
  let damaged = 0;
  const h = createHash('sha256');
  const check = (x: { c: Buffer; at: number }): void => {
    if (!x.c.equals(data.subarray(x.at, x.at + x.c.length))) damaged++;
  };
  for await (const c of src) {
    h.update(c);
    held.push({ c, at });
    at += c.length;
    heldOctets += c.length;
    while (lag >= 0 && heldOctets > lag) {
      const x = held.shift() as { c: Buffer; at: number };
      check(x);
      heldOctets -= x.c.length;
      src.released(x.at + x.c.length);
    }
  }
  for (const x of held) check(x);
  src.released(at);
  return { damaged, sha: h.digest('hex'), n: at };
}

test('recycle: full slabs are read into again once every octet of them is released, never before; chunks held meanwhile stay intact', async (t) => {
  const { app, ours, close } = await pair();
  t.teardown(close);
  const data = randomBytes(48 * MiB);
  const src = new SocketSource(ours, { recycle: true, onEnd: () => undefined });
  src.start();
  const written = writeAll(app, data, true);
  const r = await within(consumeHolding(src, data, 3 * MiB), 60_000, 'the iteration');
  await written;
  t.is(r.n, data.length);
  t.is(r.damaged, 0, 'no chunk was overwritten before its release');
  t.is(r.sha, createHash('sha256').update(data).digest('hex'));
  t.true(src.slabsReused > 0, 'slabs were reused');
  // 48 MiB read: without reuse, 45 slabs of 1 MiB and 3 small ones. With it, what is held
  // (3 MiB lag, the 2 MiB high-water mark, the slab being read into) and a few spares.
  t.true(src.slabsAllocated <= 3 + 3 + 2 + 2 + SPARE_SLABS, `${src.slabsAllocated} slabs allocated, ${src.slabsReused} reused`);
  t.log(`${src.slabsAllocated} slabs allocated, ${src.slabsReused} reused`);
});

test('recycle: a consumer that releases nothing keeps every chunk intact (no slab is reused); without recycle none is either', async (t) => {
  for (const recycle of [true, false]) {
    const { app, ours, close } = await pair();
    try {
      const data = randomBytes(12 * MiB);
      const src = new SocketSource(ours, { recycle, onEnd: () => undefined });
      src.start();
      const written = writeAll(app, data, true);
      const r = await within(consumeHolding(src, data, -1), 60_000, 'the iteration');
      await written;
      t.is(r.damaged, 0);
      t.is(r.sha, createHash('sha256').update(data).digest('hex'));
      t.is(src.slabsReused, 0);
    } finally {
      close();
    }
  }
});
