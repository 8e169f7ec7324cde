/**
 * The channel life cycle of a core (src/channels/lifecycle.ts) on its own: one
 * SessionCore, no peer, no sockets; channels created, opened and removed by hand.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { FrameDecoder } from '../../src/framing/index.js';
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

/** The SEQ frames in what `c` would write now. */
function seqsIn(c: SessionCore): { channel: number; window: number }[] {
  const bufs = c.pull();
  const seqs: { channel: number; window: number }[] = [];
  if (!bufs) return seqs;
  new FrameDecoder({ maxFrameSize: 1 << 30 }).push(Buffer.concat(bufs), (f) => {
    if (f.type === 'SEQ') seqs.push({ channel: f.channel, window: f.window });
  });
  return seqs;
}

test("a new channel's window announcement rides with the next write, or goes at the end of the turn — not in a write of its own", async (t) => {
  const c = core('initiator', { receiveWindow: 1 << 20 });
  c.pull(); // the greeting
  const a = c.lifecycle.createChannel(1, 'open');
  c.lifecycle.announceWindow(a);
  t.false(c.hasOutput, 'no write is asked for the announcement alone');
  // Any write this turn carries it.
  t.deepEqual(seqsIn(c), [{ channel: 1, window: 1 << 20 }]);
  const b = c.lifecycle.createChannel(3, 'open');
  c.lifecycle.announceWindow(b);
  t.false(c.hasOutput);
  let asked = 0;
  c.on('output', () => asked++);
  // Nothing else to write this turn: at its end, a write is asked for, and it holds the SEQ.
  await new Promise((r) => setImmediate(r));
  t.is(asked, 1);
  t.true(c.hasOutput);
  t.deepEqual(seqsIn(c), [{ channel: 3, window: 1 << 20 }]);
  // A channel closed before the turn ends announces nothing; a window of 4096 needs no announcement.
  const d = c.lifecycle.createChannel(5, 'open');
  c.lifecycle.announceWindow(d);
  c.lifecycle.removeChannel(d, undefined);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(seqsIn(c), []);
  const small = core('initiator', { receiveWindow: 4096 });
  small.pull();
  small.lifecycle.announceWindow(small.lifecycle.createChannel(1, 'open'));
  await new Promise((r) => setImmediate(r));
  t.false(small.hasOutput);
  t.deepEqual(seqsIn(small), []);
});

test('a quiet removal (nothing pending) wakes waiters and emits close without an error', async (t) => {
  const c = core();
  const ch = c.lifecycle.createChannel(1, 'open');
  c.lifecycle.openChannel(ch, PLAIN.uri, undefined, false);
  const woken = c.lifecycle.waitFor(ch, () => false);
  const errs: (Error | undefined)[] = [];
  ch.on('close', (e) => errs.push(e));
  c.lifecycle.removeChannel(ch, undefined);
  await woken;
  t.deepEqual(errs, [undefined]);
  t.is(ch.quiesceWaiters.length, 0);
});
