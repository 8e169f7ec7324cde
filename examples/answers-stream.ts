/**
 * A one-to-many (MSG → ANS … NUL) streaming profile, server and client in
 * one process over a real loopback socket: the readings profile of
 * `readings-profile.ts`.
 *
 * Run (after `npm run build`):
 *
 * ```sh
 * node dist/examples/answers-stream.js
 * ```
 *
 * Prints one line and exits 0:
 *
 * ```text
 * answers: 5 readings in kelvin from 294.65 K to 295.45 K; latest 21.50 °C; fahrenheit refused with 504; 2 channels in parallel: 3 + 3 readings
 * ```
 *
 * @module
 */
import { BeepReplyError, connect, createServer, type Channel } from 'beepstream';
import { READINGS_URI, readingsProfile } from './readings-profile.js';

// Server: register the profile; port 0 picks a free port.
const server = createServer({ profiles: [readingsProfile] });
const { port } = await server.listen(0, '127.0.0.1');

// Client: connect and start a channel, piggybacking initiation content.
const session = await connect({ host: '127.0.0.1', port });
try {
  const kelvin = await session.startChannel(READINGS_URI, { content: 'kelvin' });
  const units = kelvin.startContent?.toString('utf8'); // what the profile piggybacked on its reply

  // MSG → ANS … NUL: each answer is an IncomingMessage; the loop ends at NUL.
  const series: string[] = [];
  for await (const answer of kelvin.requestAnswers('series 5')) {
    series.push(await answer.text());
  }

  // MSG → RPY on another channel, in the default units.
  const celsius = await session.startChannel(READINGS_URI);
  const latest = await (await celsius.request('latest')).text();

  // A refused start rejects with BeepReplyError carrying the reply code.
  let refusal = 0;
  try {
    await session.startChannel(READINGS_URI, { content: 'fahrenheit' });
  } catch (err) {
    if (!(err instanceof BeepReplyError)) throw err;
    refusal = err.replyCode ?? 0;
  }

  // Channels are independent: two series stream at once, each paced by its own window.
  const collect = async (channel: Channel, request: string): Promise<string[]> => {
    const out: string[] = [];
    for await (const answer of channel.requestAnswers(request)) out.push(await answer.text());
    return out;
  };
  const [a, b] = await Promise.all([collect(kelvin, 'series 3'), collect(celsius, 'series 3')]);

  console.log(
    `answers: ${series.length} readings in ${units} from ${series[0]} to ${series.at(-1)}; latest ${latest}; ` +
      `fahrenheit refused with ${refusal}; 2 channels in parallel: ${a.length} + ${b.length} readings`,
  );
} finally {
  await session.close();
  await server.close();
}
