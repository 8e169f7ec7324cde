/**
 * FileStore's writer around the page cache (`O_DIRECT`, `direct-writer.ts`),
 * used for a relay's copy: on a real file system under the system's
 * temporary directory, the octets stored are exactly those given (chunks of
 * every size, changed as soon as each write resolves), read back while the
 * write goes on, committed and fsynced as any object; an abort leaves no
 * file; without the hint (or with `directWrites: false`) the usual writer.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIRECT_BUFFER, DirectBlobWriter } from '../../src/decade/direct-writer.js';
import { FileStore, nameOf } from '../../src/decade/index.js';
import { octets, tempDir, until } from '../helpers/decade.js';

async function store(t: Parameters<typeof tempDir>[0], directWrites?: boolean): Promise<{ s: FileStore; dir: string }> {
  const dir = await tempDir(t);
  const s = new FileStore({ dir, ...(directWrites === undefined ? {} : { directWrites }) });
  await s.open();
  t.teardown(() => s.close());
  return { s, dir };
}

test('bypassCache: the octets stored are those written (odd chunk sizes, each chunk overwritten once its write resolved), readable back while writing, committed', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { s } = await store(t);
  const data = octets(3 * DIRECT_BUFFER + 12_345, 41);
  const { hex } = nameOf(data);
  const w = await s.createWriter(hex, { bypassCache: true });
  if (!(w instanceof DirectBlobWriter)) {
    // A file system without O_DIRECT (tmpfs): the store falls back to its usual writer.
    t.log('O_DIRECT is not available under the temporary directory: the usual writer was used');
    t.pass();
    return;
  }
  const scratch = Buffer.alloc(70_001);
  let off = 0;
  for (let i = 0; off < data.length && i < 10_000; i++) {
    const n = Math.min(data.length - off, [1, 4095, 70_001, 4096, 333][i % 5] as number);
    data.copy(scratch, 0, off, off + n);
    await w.write(scratch.subarray(0, n));
    scratch.fill(0xee, 0, n); // the writer copied it: changing it now changes nothing stored
    off += n;
    if (off >= 2 * DIRECT_BUFFER + 5 && off - n < 2 * DIRECT_BUFFER + 5) {
      // Two whole buffers are on their way to the disk: read some of them back meanwhile.
      await until('the first two buffers to be written', () => w.written >= 2 * DIRECT_BUFFER, 30_000);
      const back = Buffer.alloc(10_000);
      t.is(await w.read(back, DIRECT_BUFFER - 5_000), 10_000);
      t.true(back.equals(data.subarray(DIRECT_BUFFER - 5_000, DIRECT_BUFFER + 5_000)), 'read back across a buffer boundary while writing');
    }
  }
  t.is(off, data.length);
  t.true(w.direct, 'O_DIRECT was used for the whole buffers');
  const { fresh } = await s.commit(w, { account: 'a', hex, size: data.length, type: 'application/octet-stream', created: Date.now(), expires: null });
  t.true(fresh);
  const stored = await readFile(s.blobPath(hex));
  t.is(stored.length, data.length, 'the last, partial buffer is there too');
  t.is(createHash('sha256').update(stored).digest('hex'), hex);
});

test('bypassCache: an abort leaves no temporary file; the sizes that end on a buffer boundary and below one buffer are stored whole', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const { s, dir } = await store(t);
  const aborted = await s.createWriter('0'.repeat(64), { bypassCache: true });
  await aborted.write(octets(DIRECT_BUFFER + 10, 2));
  await aborted.abort();
  t.deepEqual(await readdir(join(dir, 'tmp')), [], 'nothing left in tmp/');
  for (const size of [0, 1, 4096, DIRECT_BUFFER, 2 * DIRECT_BUFFER]) {
    const data = octets(size, size + 3);
    const { hex } = nameOf(data);
    const w = await s.createWriter(hex, { bypassCache: true });
    if (size > 0) await w.write(data);
    await s.commit(w, { account: 'a', hex, size, type: 'application/octet-stream', created: Date.now(), expires: null });
    const stored = await readFile(s.blobPath(hex));
    t.is(createHash('sha256').update(stored).digest('hex'), hex, `${size} octets`);
  }
  t.deepEqual(await readdir(join(dir, 'tmp')), []);
});

test('without the hint, or with directWrites false, the store writes through the page cache as usual', async (t) => {
  t.timeout(60_000); // a bound on every wait below (not a measurement)
  const { s } = await store(t);
  const plain = await s.createWriter('1'.repeat(64));
  t.false(plain instanceof DirectBlobWriter);
  await plain.abort();
  const { s: off } = await store(t, false);
  const w = await off.createWriter('2'.repeat(64), { bypassCache: true });
  t.false(w instanceof DirectBlobWriter);
  await w.abort();
});
