/**
 * Streaming bodies with backpressure, both ways, over a real loopback
 * socket: a client uploads 16 MiB as one MSG written as a stream, and
 * downloads 16 MiB as one RPY read as a stream. Neither side ever holds a
 * whole body in memory: the receiver's window (reopened only as the
 * application reads) paces the sender's writes.
 *
 * Two small profiles:
 * - `urn:example:sha256`: the MSG body is hashed as it arrives; the RPY is
 *   `OCTETS HEX-DIGEST`.
 * - `urn:example:source`: the MSG is a size `N`; the RPY is N octets,
 *   written as a stream.
 *
 * Run (after `npm run build`):
 *
 * ```sh
 * node dist/examples/streaming.js
 * ```
 *
 * Prints one line and exits 0:
 *
 * ```text
 * streaming: uploaded 16777216 octets (SHA-256 match), downloaded 16777216 octets (SHA-256 match)
 * ```
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect, createServer, defineProfile } from 'beepstream';

const SIZE = 16 * 1024 * 1024;

/** `total` octets of a repeating pattern, 64 KiB at a time. */
function* pattern(total: number): Generator<Buffer> {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  for (let sent = 0; sent < total; sent += block.length) yield block.subarray(0, Math.min(block.length, total - sent));
}

const expected = createHash('sha256');
for (const chunk of pattern(SIZE)) expected.update(chunk);
const expectedDigest = expected.digest('hex');

/** Hash the MSG body as it arrives; reply with its size and digest. */
const sha256Profile = defineProfile({
  uri: 'urn:example:sha256',
  async onMessage(msg, res) {
    const hash = createHash('sha256');
    let octets = 0;
    // Reading the body is what reopens the channel's window: the sender
    // can only run as far ahead as this loop lets it.
    for await (const chunk of msg as AsyncIterable<Buffer>) {
      hash.update(chunk);
      octets += chunk.length;
    }
    await res.reply(`${octets} ${hash.digest('hex')}`);
  },
});

/** Reply to `N` with N octets, streamed. */
const sourceProfile = defineProfile({
  uri: 'urn:example:source',
  async onMessage(msg, res) {
    const size = Number(await msg.text(16));
    if (!Number.isSafeInteger(size) || size < 0 || size > 1024 ** 3) {
      await res.error(501, 'expected a size in octets, at most 1 GiB');
      return;
    }
    // pipeline() waits whenever the reply stream's buffer is full, i.e.
    // whenever the peer's window is closed.
    await pipeline(Readable.from(pattern(size)), res.replyStream({ contentType: 'application/octet-stream' }));
  },
});

const server = createServer({ profiles: [sha256Profile, sourceProfile] });
const { port } = await server.listen(0, '127.0.0.1');
const session = await connect({ host: '127.0.0.1', port });
try {
  // Upload: write the MSG body as a stream; its reply settles once the server has read it all.
  const upload = await session.startChannel('urn:example:sha256');
  const { body, reply } = upload.createRequest({ contentType: 'application/octet-stream' });
  const [, uploaded] = await Promise.all([pipeline(Readable.from(pattern(SIZE)), body), reply]);
  const [octetsUp, digestUp] = (await uploaded.text()).split(' ');

  // Download: the reply resolves as soon as it begins; read its body as a stream.
  const download = await session.startChannel('urn:example:source');
  const downloaded = await download.request(String(SIZE));
  const hash = createHash('sha256');
  let octetsDown = 0;
  for await (const chunk of downloaded as AsyncIterable<Buffer>) {
    hash.update(chunk);
    octetsDown += chunk.length;
  }

  const check = (digest: string | undefined): string => (digest === expectedDigest ? 'SHA-256 match' : 'SHA-256 MISMATCH');
  console.log(`streaming: uploaded ${octetsUp} octets (${check(digestUp)}), downloaded ${octetsDown} octets (${check(hash.digest('hex'))})`);
  if (digestUp !== expectedDigest || octetsDown !== SIZE) process.exitCode = 1;
} finally {
  await session.close();
  await server.close();
}
