/**
 * `beepstream demo`: a listener and a client on loopback exchanging messages
 * over real sockets: the plain BEEP demo (`npm start` runs `scistream-demo`).
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer } from '../channels/index.js';
import { answersProfile, ANSWERS_URI, echoProfile, ECHO_URI } from '../profiles/index.js';
import { parsePositiveInt } from './address.js';
import { runSciStreamDemo } from '../scistream/index.js';
import { parseNumConn } from './s2uc.js';

/** Run the demo; resolves with the exit code. */
export async function runDemo(opts: { bytes: string }): Promise<number> {
  const total = parsePositiveInt('--bytes', opts.bytes, 16 * 1024 * 1024 * 1024);
  const log = (s: string): boolean => process.stdout.write(s + '\n');
  const server = createServer({ profiles: [echoProfile, answersProfile] });
  const addr = await server.listen(0, '127.0.0.1');
  log(`listener on 127.0.0.1:${addr.port}`);
  const session = await connect({ port: addr.port });
  log(`greeting: ${session.peerProfiles.join(', ')}`);
  try {
    const echo = await session.startChannel(ECHO_URI);
    const hello = await (await echo.request('hello, BEEP')).text();
    log(`echo channel ${echo.number}: ${JSON.stringify(hello)}`);

    // Stream `total` octets through the echo channel and check every byte.
    const block = randomBytes(1024 * 1024);
    const sent = createHash('sha256');
    const got = createHash('sha256');
    const { body, reply } = echo.createRequest();
    const t0 = process.hrtime.bigint();
    const writer = (async () => {
      for (let off = 0; off < total; off += block.length) {
        const chunk = block.subarray(0, Math.min(block.length, total - off));
        sent.update(chunk);
        if (!body.write(chunk)) await new Promise((r) => body.once('drain', r));
      }
      body.end();
    })();
    let n = 0;
    for await (const chunk of await reply) {
      got.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    await writer;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const ok = n === total && sent.digest('hex') === got.digest('hex');
    log(`streamed ${total} octets through echo and back in ${secs.toFixed(2)} s (${(total / secs / 1e6).toFixed(1)} MB/s each way), sha256 ${ok ? 'match' : 'MISMATCH'}`);
    if (!ok) return 1;

    const answers = await session.startChannel(ANSWERS_URI);
    let count = 0;
    for await (const a of answers.requestAnswers('5')) {
      count++;
      await a.dump();
    }
    log(`answers channel ${answers.number}: ${count} ANS then NUL`);

    const many = await Promise.all(Array.from({ length: 300 }, () => session.startChannel(ECHO_URI)));
    const replies = await Promise.all(many.map(async (c) => (await c.request(`channel ${c.number}`)).text()));
    const allOk = replies.every((r, i) => r === `channel ${many[i]?.number}`);
    log(`300 channels open at once: ${allOk ? 'all echoed' : 'MISMATCH'}`);
    if (!allOk) return 1;
    await session.close();
    log('session released');
    return 0;
  } finally {
    session.destroy();
    await server.close(1000);
  }
}

/** `beepstream scistream-demo`: the main job; resolves with the exit code (0 only if every byte checked out). */
export async function runSciStreamDemoCli(opts: { bytesPerStream: string; numConn: string; rate?: string }): Promise<number> {
  const bytesPerStream = parsePositiveInt('--bytes-per-stream', opts.bytesPerStream, 64 * 1024 * 1024 * 1024);
  const numConn = parseNumConn('--num-conn', opts.numConn);
  const rate = opts.rate === undefined ? undefined : parsePositiveInt('--rate', opts.rate);
  const result = await runSciStreamDemo({ bytesPerStream, numConn, ...(rate === undefined ? {} : { rate }) }, (line) => process.stdout.write(line + '\n'));
  return result.ok ? 0 : 1;
}
