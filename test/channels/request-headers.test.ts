/**
 * Header injection in our own requests is bad input, caught before the request is registered:
 * `request`, `requestAnswers` and `createRequest` with a CR/LF in a header value, or a header
 * name that is not a token, reject with BEEP_ERR_INVALID_ARGUMENT, leave nothing outstanding,
 * and `ch.close()` / `session.close()` then resolve. Real sockets on 127.0.0.1.
 */
import test from 'ava';
import { BeepError, connect, createServer, echoProfile, ECHO_URI, ErrorCodes } from '../../src/index.js';

/** Reject if `p` does not settle within `ms` (bounds, not measurements: generous). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function pair(t: { teardown(f: () => void | Promise<void>): void }) {
  const server = createServer({ profiles: [echoProfile] });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const session = await connect({ host: '127.0.0.1', port });
  t.teardown(() => session.destroy());
  return { session, ch: await session.startChannel(ECHO_URI) };
}

const BAD = [
  ['a LF in contentType', { contentType: 'text/plain\nX: 1' }],
  ['a CR in transferEncoding', { transferEncoding: 'binary\rX: 1' }],
  ['a CRLF in an extra header', { headers: { 'X-Note': 'a\r\nX-Injected: 1' } }],
  ['a header name that is not a token', { headers: { 'Bad Name': 'v' } }],
] as const;

for (const [what, options] of BAD) {
  test(`request with ${what}: BEEP_ERR_INVALID_ARGUMENT, nothing outstanding, close() and session.close() resolve`, async (t) => {
    const { session, ch } = await pair(t);
    const err = await t.throwsAsync(within(ch.request('hi', options), 30_000, 'request'), { instanceOf: BeepError });
    t.is(err?.code, ErrorCodes.INVALID_ARGUMENT);
    t.is(ch.outstanding.size, 0, 'the request was never registered');
    // The channel is still usable: a good request after the bad one gets its reply.
    t.is(await (await within(ch.request('ok'), 30_000, 'good request')).text(), 'ok');
    await within(ch.close(), 30_000, 'ch.close()');
    await within(session.close(), 30_000, 'session.close()');
    t.pass();
  });
}

test('requestAnswers and createRequest with a bad header reject with BEEP_ERR_INVALID_ARGUMENT and leave nothing outstanding', async (t) => {
  const { session, ch } = await pair(t);
  const it = ch.requestAnswers('2', { contentType: 'text/plain\nX: 1' });
  const err = await t.throwsAsync(within(it.next(), 30_000, 'requestAnswers'), { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.INVALID_ARGUMENT);
  const { body, reply } = ch.createRequest({ contentType: 'text/plain\r\nX: 1' });
  body.end('never sent');
  const err2 = await t.throwsAsync(within(reply, 30_000, 'createRequest'), { instanceOf: BeepError });
  t.is(err2?.code, ErrorCodes.INVALID_ARGUMENT);
  t.is(ch.outstanding.size, 0);
  await within(session.close(), 30_000, 'session.close()');
  t.pass();
});
