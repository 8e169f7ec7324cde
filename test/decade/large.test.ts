/**
 * Objects from 0 octets to 4 GiB written and read back with SHA-256 verified
 * at both ends (the server's stored blob hashed again here, the client's GET
 * hashed as it streams). The 4 GiB object is generated as it is sent and
 * hashed as it is received: nothing holds it in memory. 4 GiB = 2^32 octets,
 * so the SDT channel's sequence numbers wrap (RFC 3081 §3.1) during the round
 * trip.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { nameFromDigest } from '../../src/decade/index.js';
import { octets, startDecade } from '../helpers/decade.js';

const MiB = 1024 * 1024;
const BLOCK = octets(MiB, 77);

/** `size` octets, 1 MiB at a time, each chunk a fresh buffer stamped with its offset (no two alike). */
function* generate(size: number): Generator<Buffer> {
  for (let off = 0; off < size; off += MiB) {
    const n = Math.min(MiB, size - off);
    const c = Buffer.from(BLOCK.subarray(0, n));
    if (n >= 8) c.writeDoubleBE(off, 0);
    yield c;
  }
}

function digest(size: number): Buffer {
  const h = createHash('sha256');
  for (const c of generate(size)) h.update(c);
  return h.digest();
}

async function fileDigest(path: string): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
    h.update(c);
    size += c.byteLength;
  }
  return { hex: h.digest('hex'), size };
}

for (const size of [0, 1, 7, 4 * 1024 * MiB]) {
  test(`${size} octets: PUT streamed, GET streamed, SHA-256 equal at the client and on the server's disk`, async (t) => {
    t.timeout(540_000, 'a 4 GiB round trip on a busy 2-core machine');
    const h = await startDecade(t);
    const { c, token } = await h.session();
    const d = digest(size);
    const name = nameFromDigest(d);
    const rss0 = process.memoryUsage.rss();
    let peak = rss0;
    const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
    t.teardown(() => clearInterval(sample));
    const created = await c.putStream(token, name.name, size, generate(size));
    t.deepEqual(created, { name: name.name, size, fresh: true });
    // Server end: the blob on disk is the object.
    const stored = await fileDigest(h.store.blobPath(name.hex));
    t.is(stored.size, size);
    t.is(stored.hex, d.toString('hex'));
    // Client end: hashed as it streams in.
    const { range, body } = await c.getStream(token, name.name);
    t.is(range.size, size);
    const hash = createHash('sha256');
    let got = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      got += chunk.byteLength;
    }
    t.is(got, size);
    t.is(hash.digest('hex'), d.toString('hex'));
    clearInterval(sample);
    // Streamed, not buffered: far less memory than the object (the bound is loose on purpose).
    if (size > 1024 * MiB) t.true(peak - rss0 < 1024 * MiB, `RSS grew by ${((peak - rss0) / MiB).toFixed(0)} MiB`);
  });
}
