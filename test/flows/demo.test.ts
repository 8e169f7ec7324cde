/**
 * `beepstream flows demo`: the flow main job in one command on embedded
 * defaults (TLS, SCRAM, SQLite), run as a real process: it exits 0 and says
 * what each party did; each subscriber got its events once, in order.
 */
import test from 'ava';
import { run } from '../helpers/cli.js';

test('flows demo: a server, a publisher and two durable subscribers (one filtered) in one command; exit 0, every event once and in order', async (t) => {
  t.timeout(180_000);
  const r = await run(['flows', 'demo', '--events', '2000'], 150_000);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^flows server \(FNAA\) on 127\.0\.0\.1:\d+: TLS/m);
  t.regex(r.stdout, /^shop published 2000 events/m);
  t.regex(r.stdout, /^billing received 2000 events, in order, each once; acknowledged up to offset 2000$/m);
  t.regex(r.stdout, /^shipping received 500 events, in order, each once; acknowledged up to offset 2000$/m, 'the filtered subscriber got only its type');
  t.regex(r.stdout, /^ok: every event stored once/m);
  t.notRegex(r.stdout + r.stderr, /password/i, 'no secret is shown');
});

test('flows demo: a bad --events exits 2 with one line naming it', async (t) => {
  const r = await run(['flows', 'demo', '--events', 'many']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--events/);
});
