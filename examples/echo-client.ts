/**
 * An echo client: connects to an echo server, starts an ECHO channel and
 * sends a few messages.
 *
 * Run (after `npm run build`), with `examples/echo-server.ts` listening:
 *
 * ```sh
 * node dist/examples/echo-client.js 127.0.0.1:PORT   # or set BEEP_SERVER=127.0.0.1:PORT
 * ```
 *
 * Prints `echo: hello, BEEP (text/plain); pipelined: one two three` and
 * exits 0; on any failure it exits 1 with the error.
 *
 * @module
 */
import { connect, ECHO_URI } from 'beepstream';

const target = process.argv[2] ?? process.env.BEEP_SERVER ?? '127.0.0.1:10288';
const colon = target.lastIndexOf(':');
const session = await connect({ host: target.slice(0, colon), port: Number(target.slice(colon + 1)) });
try {
  // The greeting tells which profiles the server offers.
  if (!session.peerProfiles.includes(ECHO_URI)) throw new Error(`${target} does not offer ${ECHO_URI}`);
  const channel = await session.startChannel(ECHO_URI);

  // MSG → RPY: the reply carries the same body and entity headers.
  const reply = await channel.request('hello, BEEP', { contentType: 'text/plain' });
  const text = await reply.text();

  // Requests may be pipelined on one channel; replies come back in order.
  const echoes = await Promise.all(['one', 'two', 'three'].map(async (m) => (await channel.request(m)).text()));

  console.log(`echo: ${text} (${reply.contentType}); pipelined: ${echoes.join(' ')}`);
} finally {
  await session.close(); // closes the channel, then releases the session
}
