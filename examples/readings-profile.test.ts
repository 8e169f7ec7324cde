/**
 * Tests of the readings profile over real loopback sockets — the test a
 * profile author writes next to a profile (in a project of your own:
 * `test/readings.test.ts`). Each test starts a server on a free port,
 * connects, and tears both down.
 *
 * It runs as part of the suite through `test/examples-readings.test.ts`
 * (which imports it); alone: `npx ava dist/test/examples-readings.test.js`.
 *
 * @module
 */
import test, { type ExecutionContext } from 'ava';
import { BeepReplyError, connect, createServer, type Session } from 'beepstream';
import { READINGS_URI, readingsProfile } from './readings-profile.js';

/** A server with the profile on a free loopback port, and a session to it; both gone after the test. */
async function connected(t: ExecutionContext): Promise<Session> {
  const server = createServer({ profiles: [readingsProfile] });
  const { port } = await server.listen(0, '127.0.0.1');
  const session = await connect({ host: '127.0.0.1', port });
  t.teardown(async () => {
    session.destroy();
    await server.close();
  });
  return session;
}

test('the greeting advertises the profile', async (t) => {
  const session = await connected(t);
  t.true(session.peerProfiles.includes(READINGS_URI));
});

test('series N: N answers, then NUL', async (t) => {
  const session = await connected(t);
  const channel = await session.startChannel(READINGS_URI, { content: 'kelvin' });
  t.is(channel.startContent?.toString(), 'kelvin');
  const answers: string[] = [];
  for await (const answer of channel.requestAnswers('series 3')) {
    t.is(answer.type, 'ANS');
    answers.push(await answer.text());
  }
  t.deepEqual(answers, ['294.65 K', '295.35 K', '295.05 K']);
});

test('latest: one reply in the default units', async (t) => {
  const session = await connected(t);
  const channel = await session.startChannel(READINGS_URI);
  const reply = await channel.request('latest');
  t.is(reply.contentType, 'text/plain; charset=utf-8');
  t.is(await reply.text(), '21.50 °C');
});

test('unsupported units: the start is refused with 504', async (t) => {
  const session = await connected(t);
  const err = await t.throwsAsync(session.startChannel(READINGS_URI, { content: 'fahrenheit' }), { instanceOf: BeepReplyError });
  t.is(err?.replyCode, 504);
});

test('a malformed request gets ERR 501 and the channel carries on', async (t) => {
  const session = await connected(t);
  const channel = await session.startChannel(READINGS_URI);
  const err = await t.throwsAsync(channel.request('series many'), { instanceOf: BeepReplyError });
  t.is(err?.replyCode, 501);
  t.is(await (await channel.request('latest')).text(), '21.50 °C');
});
