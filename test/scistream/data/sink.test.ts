/**
 * The tunnel → application direction (`src/scistream/data/sink.ts`): the
 * peer's body read as views that are valid only until the next step — the
 * tests' views come from one buffer that is overwritten after every step, as
 * the session's receive memory is reused — reaches the destination intact,
 * in one write per event-loop turn, held back only past the sink's own mark.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { writeViews, SINK_HIGH_WATER, SINK_SLAB } from '../../../src/scistream/data/sink.js';

/** A destination recording every write; completions are held until `release()` when `hold`. */
function recorder(hold = false): { dst: Writable; writes: Buffer[]; release: () => void } {
  const writes: Buffer[] = [];
  const held: (() => void)[] = [];
  const dst = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      writes.push(Buffer.from(chunk)); // what it held at the time of the write
      if (hold) held.push(cb);
      else cb();
    },
  });
  return {
    dst,
    writes,
    release: () => {
      hold = false;
      for (const cb of held.splice(0)) cb();
    },
  };
}

/**
 * A message whose views are all the same memory, scribbled over as soon as
 * the reader steps on (what reused receive memory does to a view kept too
 * long). `pieces` are yielded in order; `gate` (when given) is awaited before
 * each piece after the first of a group of `perTurn`.
 */
function recycledMessage(pieces: Buffer[], opts: { perTurn?: number; fail?: Error } = {}): { msg: { views(): AsyncGenerator<Buffer, void, undefined> }; finished: () => boolean } {
  const mem = Buffer.alloc(64 * 1024);
  let finished = false;
  const perTurn = opts.perTurn ?? pieces.length;
  async function* views(): AsyncGenerator<Buffer, void, undefined> {
    try {
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0 && i % perTurn === 0) await new Promise<void>((r) => setImmediate(r));
        const p = pieces[i] as Buffer;
        p.copy(mem);
        yield mem.subarray(0, p.length);
        mem.fill(0xee); // reused for the next read
      }
      if (opts.fail) throw opts.fail;
    } finally {
      finished = true;
    }
  }
  return { msg: { views }, finished: () => finished };
}

const pieceOf = (i: number, n: number): Buffer => Buffer.alloc(n, i & 0xff);
const turns = (n: number): Promise<void> => new Promise((r) => {
  const step = (k: number): void => (k === 0 ? r() : void setImmediate(() => step(k - 1)));
  step(n);
});

test('views of one turn go out in one write, copied before the view is released: the destination gets every octet in order', async (t) => {
  const pieces = Array.from({ length: 24 }, (_, i) => pieceOf(i + 1, 15_000 + i));
  const { msg, finished } = recycledMessage(pieces, { perTurn: 8 });
  const { dst, writes } = recorder();
  let counted = 0;
  const ended = new Promise<void>((resolve, reject) => writeViews(msg, dst, { count: (n) => (counted += n), onEnd: resolve, onFail: reject }));
  await ended;
  await turns(2);
  t.true(finished(), 'the iteration ran to its end');
  t.is(writes.length, 3, 'three turns, three writes (not one per view)');
  const all = Buffer.concat(writes);
  t.true(all.equals(Buffer.concat(pieces)), 'every octet, in order, none overwritten by the reuse of the views');
  t.is(counted, all.length);
});

test('a body larger than a slab crosses slabs intact', async (t) => {
  const n = Math.ceil((3 * SINK_SLAB) / 60_000) + 5;
  const pieces = Array.from({ length: n }, (_, i) => pieceOf(i * 7 + 3, 60_000));
  const { msg } = recycledMessage(pieces, { perTurn: 4 });
  const { dst, writes } = recorder();
  await new Promise<void>((resolve, reject) => writeViews(msg, dst, { onEnd: resolve, onFail: reject }));
  await turns(2);
  const all = Buffer.concat(writes);
  t.is(all.length, n * 60_000);
  t.is(createHash('sha256').update(all).digest('hex'), createHash('sha256').update(Buffer.concat(pieces)).digest('hex'));
});

test('views are no longer taken once highWater octets wait unwritten in the destination, and taken again on its drain', async (t) => {
  const piece = 16 * 1024;
  const pieces = Array.from({ length: 40 }, (_, i) => pieceOf(i, piece));
  const { msg } = recycledMessage(pieces, { perTurn: 40 });
  const { dst, writes, release } = recorder(true);
  const highWater = 128 * 1024;
  let counted = 0;
  const ended = new Promise<void>((resolve, reject) => writeViews(msg, dst, { highWater, count: (n) => (counted += n), onEnd: resolve, onFail: reject }));
  await turns(4);
  t.is(counted, highWater, 'exactly highWater octets taken, then it waits (the window stays closed)');
  t.is(dst.writableLength, highWater);
  release();
  await ended;
  await turns(2);
  t.is(counted, 40 * piece, 'went on after drain');
  t.true(Buffer.concat(writes).equals(Buffer.concat(pieces)));
  t.is(SINK_HIGH_WATER, 4 * 1024 * 1024, 'the default is MiB-scale, not the socket mark');
});

test('stop() ends the iteration (the view held is released) and nothing more is written; a failed body reports onFail, not onEnd', async (t) => {
  const pieces = Array.from({ length: 10 }, (_, i) => pieceOf(i, 1000));
  const a = recycledMessage(pieces, { perTurn: 1 });
  const r = recorder();
  let ended = false;
  const sink = writeViews(a.msg, r.dst, { onEnd: () => (ended = true), onFail: () => t.fail('no failure') });
  await turns(3);
  sink.stop();
  const before = Buffer.concat(r.writes).length;
  await turns(12);
  t.true(a.finished(), 'the generator was closed');
  t.false(ended);
  t.true(before < 10_000 && Buffer.concat(r.writes).length === before, 'nothing written after stop()');

  const boom = new Error('session gone');
  const b = recycledMessage([pieceOf(1, 100)], { fail: boom });
  const failed = await new Promise<unknown>((resolve) => writeViews(b.msg, recorder().dst, { onEnd: () => resolve('ended'), onFail: resolve }));
  t.is(failed, boom);
});
