/**
 * The data plane's pump (`src/scistream/data/pump.ts`): what one turn of the
 * event loop brings reaches the destination in one vectored write, and the
 * source is held back only past the pump's own high-water mark.
 */
import test from 'ava';
import { PassThrough, Writable } from 'node:stream';
import { pump, PUMP_HIGH_WATER } from '../../../src/scistream/data/pump.js';

/** A destination that records each batch the stream machinery hands it; completions are held until `release()`. */
function recordingSink(hold = false): { sink: Writable; batches: Buffer[][]; release: () => void } {
  const batches: Buffer[][] = [];
  const held: (() => void)[] = [];
  const done = (cb: () => void): void => {
    if (hold) held.push(cb);
    else cb();
  };
  const sink = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      batches.push([chunk]);
      done(cb);
    },
    writev(chunks, cb) {
      batches.push(chunks.map((c) => c.chunk as Buffer));
      done(cb);
    },
  });
  return {
    sink,
    batches,
    release: () => {
      hold = false;
      for (const cb of held.splice(0)) cb();
    },
  };
}

const piece = (i: number, n = 1000): Buffer => Buffer.alloc(n, i);

test('pieces emitted from separate callbacks of one turn (ticks drained in between, as a TLS socket emits its records) go out in one write', async (t) => {
  const src = new PassThrough();
  const { sink, batches } = recordingSink();
  const ended = new Promise<void>((resolve) => pump(src, sink, { onEnd: resolve }));
  // Node drains the tick queue after every callback from native code: emulate
  // one socket read decoded into 8 records, each emitted from its own callback.
  const emit = (i: number): void => {
    src.write(piece(i));
    if (i < 7) process.nextTick(() => emit(i + 1));
  };
  setImmediate(() => emit(0));
  await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
  t.is(batches.length, 1, `one write for the turn, got ${batches.length}`);
  t.is(batches[0]?.length, 8);
  t.deepEqual(
    batches.flat().map((b) => b[0]),
    [0, 1, 2, 3, 4, 5, 6, 7],
    'in order',
  );
  src.end();
  await ended;
});

test('pieces of later turns go out in later writes, every octet once and in order, no copies', async (t) => {
  const src = new PassThrough();
  const { sink, batches } = recordingSink();
  const ended = new Promise<void>((resolve) => pump(src, sink, { onEnd: resolve }));
  const sent: Buffer[] = [];
  for (let turn = 0; turn < 3; turn++) {
    await new Promise<void>((r) => setImmediate(r));
    for (let i = 0; i < 4; i++) {
      const b = piece(turn * 4 + i);
      sent.push(b);
      src.write(b);
    }
  }
  await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
  t.is(batches.length, 3, 'one write per turn');
  const got = batches.flat();
  t.is(got.length, 12);
  // PassThrough hands on the very buffers written to it; the pump must too.
  for (let i = 0; i < 12; i++) t.is(got[i], sent[i], `chunk ${i} is the buffer that was read`);
  src.end();
  await ended;
});

test('the source is paused once highWater octets wait in the destination (not at its own 16 KiB mark), and resumed on drain', async (t) => {
  const src = new PassThrough({ highWaterMark: 1024 * 1024 });
  const { sink, release } = recordingSink(true);
  const highWater = 64 * 1024;
  let received = 0;
  const ended = new Promise<void>((resolve) => pump(src, sink, { highWater, count: (n) => (received += n), onEnd: resolve }));
  const chunk = 16 * 1024;
  // One turn: 10 chunks; the sink completes nothing yet.
  for (let i = 0; i < 10; i++) src.write(piece(i, chunk));
  await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
  t.true(src.isPaused(), 'paused');
  t.is(received, highWater, 'exactly highWater octets were handed over before the pause');
  t.is(sink.writableLength, highWater);
  release();
  await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
  t.is(received, 10 * chunk, 'resumed on drain: the rest went on');
  src.end();
  await ended;
  t.is(PUMP_HIGH_WATER, 1024 * 1024, 'the default');
});
