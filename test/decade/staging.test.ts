/**
 * The staging of transient views (src/decade/staging.ts) into a real
 * FileStore writer: the octets written are those of the views even though
 * each view's memory is overwritten as soon as it was added; staging buffers
 * are reused once the writer has written them, and never while a reader
 * holds a piece of one; a flush while another write waits in the writer
 * (a reader joining) neither reorders nor stalls the writes.
 */
import test from 'ava';
import { createHash, randomFillSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Stager, STAGE_OCTETS } from '../../src/decade/staging.js';
import { FileStore } from '../../src/decade/index.js';
import { tempDir } from '../helpers/decade.js';

const HEX = 'ab'.repeat(32);

async function openWriter(t: Parameters<typeof tempDir>[0]) {
  const store = new FileStore({ dir: await tempDir(t) });
  await store.open();
  t.teardown(() => store.close());
  const writer = await store.createWriter(HEX);
  t.teardown(() => writer.abort());
  return { store, writer: writer as typeof writer & { path: string } };
}

/** `total` octets as views of one reused buffer of `view` octets (overwritten after each add), through `stager`. */
async function feed(stager: Stager, total: number, view: number, seed: number, each?: (i: number) => void): Promise<string> {
  const h = createHash('sha256');
  const mem = Buffer.alloc(view);
  let i = 0;
  for (let left = total; left > 0; i++) {
    const n = Math.min(view, left);
    const v = mem.subarray(0, n);
    v.fill(0);
    randomFillSync(v);
    v[0] = (seed + i) & 0xff;
    h.update(v);
    await stager.add(v);
    v.fill(0xee); // the view's memory is reused by the session: the staged copy must not change
    each?.(i);
    left -= n;
  }
  await stager.flush();
  return h.digest('hex');
}

test('the octets written are those of the views, though each view is overwritten once added; the hash sees them once, in order', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { writer } = await openWriter(t);
  const hash = createHash('sha256');
  let hashed = 0;
  const stager = new Stager(writer, () => false, (o) => {
    hash.update(o);
    hashed += o.length;
  });
  const total = 5 * STAGE_OCTETS + 12345;
  const want = await feed(stager, total, 16 * 1024 + 7, 1);
  for (let i = 0; i < 4000 && writer.written < total; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(hashed, total);
  t.is(hash.digest('hex'), want);
  t.is(createHash('sha256').update(await readFile(writer.path)).digest('hex'), want);
});

test('staging buffers are reused once the writer has written them: 64 MiB through a handful of buffers', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { writer } = await openWriter(t);
  const stager = new Stager(writer, () => false, () => undefined);
  await feed(stager, 64 * 1024 * 1024, 64 * 1024, 2);
  t.true(stager.allocated <= 12, `allocated ${stager.allocated} buffers of ${STAGE_OCTETS} octets`);
  t.true(stager.allocated >= 1);
});

test('a buffer whose pieces were lent to a reader is never reused: the pieces keep their octets', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { writer } = await openWriter(t);
  const lent: { piece: Buffer; copy: Buffer }[] = [];
  let lend = true;
  const stager = new Stager(writer, (piece) => {
    if (!lend) return false;
    lent.push({ piece, copy: Buffer.from(piece) });
    return true;
  }, () => undefined);
  // The first 3 MiB are lent (a reader reads along), the rest not.
  await feed(stager, 24 * 1024 * 1024, 32 * 1024, 3, (i) => (lend = (i + 1) * 32 * 1024 < 3 * 1024 * 1024));
  t.true(lent.length > 0);
  for (const { piece, copy } of lent) t.true(piece.equals(copy));
});

test('a flush while a write waits in the writer (a reader joins mid-transfer): nothing stalls, order kept', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { writer } = await openWriter(t);
  const stager = new Stager(writer, () => false, () => undefined);
  const total = 40 * 1024 * 1024;
  // Early flushes at many points, not awaited (as a joining reader's), while adds go on.
  const want = await feed(stager, total, 48 * 1024, 4, (i) => {
    if (i % 7 === 3) void stager.flush();
  });
  await stager.flush();
  for (let i = 0; i < 2000 && writer.written < total; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(writer.written, total);
  t.is(createHash('sha256').update(await readFile(writer.path)).digest('hex'), want);
});
