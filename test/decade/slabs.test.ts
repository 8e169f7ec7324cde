/**
 * GETs of stored objects from recycled memory (src/decade/slabs.ts): the
 * octets read into slabs are the file's for any range; a slab is reused only
 * after its release (a slab still lent keeps its content while later ones are
 * read); a short file fails; the file is closed however the reading ends; and
 * over a server (FileStore, onReleased of the reply) a GET of many slabs'
 * worth is served from a bounded number of slabs, byte-exact, repeatedly.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nameOf } from '../../src/decade/index.js';
import { openFileReader, readSlabs, SlabLoan, SlabPool, type PositionalReader } from '../../src/decade/slabs.js';
import { octets, startDecade, tempDir, until } from '../helpers/decade.js';

async function file(t: Parameters<typeof tempDir>[0], data: Buffer): Promise<string> {
  const p = join(await tempDir(t), 'blob');
  await writeFile(p, data);
  return p;
}

test('the slabs carry exactly the range asked for (offsets and lengths across slab boundaries)', async (t) => {
  const data = octets(3 * 4096 + 123, 7);
  const path = await file(t, data);
  const pool = new SlabPool(4096, 4);
  for (const [off, len] of [[0, data.length], [1, 4096], [4095, 4098], [5000, 0], [data.length - 1, 1], [8192, data.length - 8192]] as const) {
    const loan = new SlabLoan(pool);
    const parts: Buffer[] = [];
    for await (const batch of readSlabs(() => openFileReader(path), off, len, pool, loan)) {
      for (const b of batch) parts.push(Buffer.from(b));
    }
    t.true(Buffer.concat(parts).equals(data.subarray(off, off + len)), `${off}+${len}`);
    // Everything handed out is released: the slabs are free again.
    loan.released(len);
    t.is(loan.outstanding, 0);
  }
  t.true(pool.allocated <= 4);
});

test('a slab is reused only once released: lent slabs keep their content while later ones are read', async (t) => {
  const data = octets(8 * 1024, 9);
  const path = await file(t, data);
  const pool = new SlabPool(1024, 16);
  const loan = new SlabLoan(pool);
  const held: Buffer[] = [];
  for await (const batch of readSlabs(() => openFileReader(path), 0, data.length, pool, loan)) held.push(...batch);
  // Nothing released: every slab is a slab of its own, and each still holds its octets.
  t.is(new Set(held.map((b) => b.buffer)).size, 8);
  t.true(Buffer.concat(held).equals(data));
  t.is(pool.allocated, 8);
  // Half released (and a release in the middle of a slab frees only those wholly before it).
  loan.released(4 * 1024 + 10);
  t.is(loan.outstanding, 4);
  t.is(pool.held, 4);
  const loan2 = new SlabLoan(pool);
  const again: Buffer[] = [];
  for await (const batch of readSlabs(() => openFileReader(path), 0, 4 * 1024, pool, loan2)) again.push(...batch.map((b) => Buffer.from(b)));
  t.is(pool.allocated, 8); // reused, none new
  t.true(Buffer.concat(again).equals(data.subarray(0, 4 * 1024)));
  // The slabs still lent are untouched by the reads into the reused ones.
  t.true(Buffer.concat(held.slice(4)).equals(data.subarray(4 * 1024)));
});

test('a file shorter than the range fails; the reader is closed when the reading ends early or fails', async (t) => {
  const data = octets(5000, 3);
  const path = await file(t, data);
  let closes = 0;
  const counted = async (): Promise<PositionalReader> => {
    const r = await openFileReader(path);
    return { read: (...a) => r.read(...a), close: async () => { closes++; await r.close(); } };
  };
  const pool = new SlabPool(1024, 4);
  await t.throwsAsync(async () => {
    for await (const _ of readSlabs(counted, 0, 6000, pool, new SlabLoan(pool))) void _;
  }, { message: /ended .* early/ });
  for await (const _ of readSlabs(counted, 0, 5000, pool, new SlabLoan(pool))) break;
  // The early end closes the reader once its read ahead settles (asynchronously): waited for,
  // bounded, so a busy machine cannot fail the test.
  await until('the reader to close after the early end', () => closes === 2);
  t.is(closes, 2);
  await t.throwsAsync(async () => {
    for await (const _ of readSlabs(() => openFileReader(join(path, 'missing')), 0, 10, pool, new SlabLoan(pool))) void _;
  });
});

test('over a server: GETs of a 6 MiB object are byte-exact and served from a bounded set of slabs, released by the session', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const { c, token } = await h.session();
  const data = octets(6 * 1024 * 1024 + 77, 11);
  const name = nameOf(data).name;
  await c.put(token, data);
  const pool = (h.decade as unknown as { slabs: SlabPool }).slabs;
  for (let i = 0; i < 4; i++) t.true((await c.get(token, name)).equals(data));
  const { body } = await c.getStream(token, name, { offset: 1_000_001, length: 3_000_000 });
  const parts: Buffer[] = [];
  for await (const b of body as AsyncIterable<Buffer>) parts.push(b);
  t.true(Buffer.concat(parts).equals(data.subarray(1_000_001, 4_000_001)));
  // Five GETs of 25 slabs' worth each (125 slab reads) from far fewer slabs: the session released them.
  t.log(`slabs allocated: ${pool.allocated}`);
  t.true(pool.allocated <= 30, `allocated ${pool.allocated}`);
  t.true(pool.held > 0);
});
