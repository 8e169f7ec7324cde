/**
 * The channel life cycle of a core (src/channels/lifecycle.ts) on its own: one
 * SessionCore, no peer, no sockets; channels created, opened and removed by hand.
 */
import test from 'ava';
import { defineProfile, ErrorCodes, BeepError } from '../../src/index.js';
import { SessionCore, type Channel } from '../../src/channels/index.js';

/** Channels whose profile was opened (tests of a file run concurrently: each looks for its own). */
const opened: Channel[] = [];
const PLAIN = defineProfile({
  uri: 'urn:test:plain',
  onOpen(ch) {
    opened.push(ch);
  },
  async onMessage(_msg, res) {
    await res.reply('ok');
  },
});

function core(role: 'initiator' | 'listener' = 'initiator', limits = {}): SessionCore {
  return new SessionCore({ role, profiles: [PLAIN], limits, clock: () => 0 });
}

test('channel numbers follow our parity (RFC 3080 §2.3.1.2) and skip numbers in use', (t) => {
  const c = core('initiator');
  c.lifecycle.createChannel(3, 'open');
  t.deepEqual([c.lifecycle.allocChannel(), c.lifecycle.allocChannel(), c.lifecycle.allocChannel()], [1, 5, 7]);
  const l = core('listener');
  t.deepEqual([l.lifecycle.allocChannel(), l.lifecycle.allocChannel()], [2, 4]);
});

test('allocChannel refuses past maxChannels with BEEP_ERR_LIMIT', (t) => {
  const c = core('initiator', { maxChannels: 2 });
  c.lifecycle.createChannel(c.lifecycle.allocChannel(), 'starting');
  c.lifecycle.createChannel(c.lifecycle.allocChannel(), 'starting');
  const err = t.throws(() => c.lifecycle.allocChannel(), { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.LIMIT);
});

test('openChannel binds the profile, announces a remote channel and wakes waiters; a closed channel is not reopened', async (t) => {
  const c = core();
  const seen: Channel[] = [];
  c.on('channel', (ch) => seen.push(ch));
  const ch = c.lifecycle.createChannel(1, 'starting');
  const started = c.lifecycle.waitFor(ch, (x) => x.state !== 'starting');
  c.lifecycle.openChannel(ch, PLAIN.uri, undefined, true);
  await started;
  t.is(ch.state, 'open');
  t.is(ch.profile, PLAIN.uri);
  t.deepEqual(seen, [ch]);
  t.is(opened.filter((x) => x === ch).length, 1);
  c.lifecycle.removeChannel(ch, undefined);
  c.lifecycle.openChannel(ch, PLAIN.uri, undefined, true);
  t.is(ch.state, 'closed');
  t.is(opened.filter((x) => x === ch).length, 1, 'onOpen not called again');
  t.is(seen.length, 1);
});

test('abortStart forgets a start in flight and leaves an open channel alone', (t) => {
  const c = core();
  const a = c.lifecycle.createChannel(1, 'starting');
  const b = c.lifecycle.createChannel(3, 'open');
  c.lifecycle.abortStart(a);
  c.lifecycle.abortStart(b);
  t.is(a.state, 'closed');
  t.false(c.channels.has(1));
  t.is(b.state, 'open');
  t.is(c.channels.get(3), b);
});

test('removeChannel fails what is pending with BEEP_ERR_CHANNEL_CLOSED, once, and remembers the number', async (t) => {
  const c = core();
  const ch = c.lifecycle.createChannel(1, 'open');
  c.lifecycle.openChannel(ch, PLAIN.uri, undefined, false);
  const reply = ch.request('hello');
  let closes = 0;
  ch.on('close', () => closes++);
  t.false(c.lifecycle.isQuiescent(ch));
  t.false(c.lifecycle.allAcknowledged(ch));
  c.lifecycle.removeChannel(ch, undefined);
  c.lifecycle.removeChannel(ch, undefined);
  const err = await t.throwsAsync(reply, { instanceOf: BeepError });
  t.is(err?.code, ErrorCodes.CHANNEL_CLOSED);
  t.is(closes, 1);
  t.is(ch.state, 'closed');
  t.false(c.channels.has(1));
  t.true(c.lifecycle.wasRecentlyClosed(1));
  t.true(c.lifecycle.isQuiescent(ch));
});

test('the recently-closed list is bounded: the oldest of 257 closes is forgotten', (t) => {
  const c = core();
  for (let i = 0; i < 257; i++) {
    const n = 2 * i + 1;
    c.lifecycle.removeChannel(c.lifecycle.createChannel(n, 'open'), undefined);
  }
  t.false(c.lifecycle.wasRecentlyClosed(1));
  t.true(c.lifecycle.wasRecentlyClosed(3));
  t.true(c.lifecycle.wasRecentlyClosed(513));
});

test('closeAgreed moves an open channel to closing and nothing else', (t) => {
  const c = core();
  const a = c.lifecycle.createChannel(1, 'open');
  const b = c.lifecycle.createChannel(3, 'starting');
  c.lifecycle.closeAgreed(a);
  c.lifecycle.closeAgreed(b);
  t.is(a.state, 'closing');
  t.is(b.state, 'starting');
});

test('the start-rate bucket allows maxStartRate starts at once on a frozen clock, then refuses', (t) => {
  const c = core('listener', { maxStartRate: 3 });
  t.deepEqual([1, 2, 3, 4].map(() => c.lifecycle.takeStartToken()), [true, true, true, false]);
});
