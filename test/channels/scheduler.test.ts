/**
 * The output scheduler (src/channels/scheduler.ts) driven directly: channels of
 * one SessionCore with messages queued by hand, batches pulled from the
 * scheduler and decoded, the effects it returns inspected. No peer, no sockets.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { defineProfile } from '../../src/index.js';
import { SessionCore, type Channel } from '../../src/channels/index.js';
import { FrameDecoder, type DataFrame, type Frame } from '../../src/framing/index.js';
import { AfterList, AFTER_DONE, AFTER_QUIESCENT } from '../../src/channels/scheduler.js';

const DATA = defineProfile({ uri: 'urn:test:data' });
const CONTROL = defineProfile({ uri: 'urn:test:control', control: true });

function setup(): { core: SessionCore; ch0: Channel; open: (n: number, uri?: string) => Channel } {
  const core = new SessionCore({ role: 'initiator', profiles: [DATA, CONTROL], clock: () => 0 });
  const ch0 = core.channels.get(0) as Channel;
  const open = (n: number, uri = DATA.uri): Channel => {
    const ch = core.lifecycle.createChannel(n, 'open');
    core.lifecycle.openChannel(ch, uri, undefined, false);
    return ch;
  };
  return { core, ch0, open };
}

function decode(batch: Uint8Array[] | null): Frame[] {
  const frames: Frame[] = [];
  if (!batch) return frames;
  new FrameDecoder({ maxFrameSize: 1 << 24 }).push(Buffer.concat(batch), (f) => frames.push(f));
  return frames;
}

const order = (frames: Frame[]): string[] => frames.map((f) => `${f.type} ${f.channel}`);

test('channel 0 goes first, then control channels, then the rest, whatever order they became ready in', (t) => {
  const { core, ch0, open } = setup();
  const data = open(1);
  const ctl = open(3, CONTROL.uri);
  core.queueMessage(data, 'MSG', 0, undefined, 'd', undefined);
  core.queueMessage(ctl, 'MSG', 0, undefined, 'c', undefined);
  const frames = decode(core.scheduler.pull(1 << 20, ch0, new AfterList()));
  // Channel 0 holds our greeting (RPY 0 0), queued at construction.
  t.deepEqual(order(frames), ['RPY 0', 'MSG 3', 'MSG 1']);
});

test('weighted round-robin: a channel of weight 3 sends three frames per turn, one of weight 1 one', (t) => {
  const { core, ch0, open } = setup();
  core.scheduler.pull(1 << 20, ch0, new AfterList()); // the greeting
  const a = open(1);
  const b = open(3);
  a.weight = 3;
  for (let i = 0; i < 5; i++) core.queueMessage(a, 'MSG', i, undefined, `a${i}`, undefined);
  for (let i = 0; i < 5; i++) core.queueMessage(b, 'MSG', i, undefined, `b${i}`, undefined);
  const frames = decode(core.scheduler.pull(1 << 20, ch0, new AfterList()));
  t.deepEqual(order(frames), ['MSG 1', 'MSG 1', 'MSG 1', 'MSG 3', 'MSG 1', 'MSG 1', 'MSG 3', 'MSG 3', 'MSG 3', 'MSG 3']);
  t.deepEqual(frames.map((f) => (f.type === 'SEQ' ? -1 : f.msgno)), [0, 1, 2, 0, 3, 4, 1, 2, 3, 4]);
});

test('a batch stops near its budget and asks to be pulled again; the next batch goes on where it stopped', (t) => {
  const { core, ch0, open } = setup();
  core.scheduler.pull(1 << 20, ch0, new AfterList());
  const a = open(1);
  for (let i = 0; i < 4; i++) core.queueMessage(a, 'MSG', i, undefined, 'x'.repeat(100), undefined);
  const first = decode(core.scheduler.pull(150, ch0, new AfterList()));
  t.is(first.length, 2, 'the second frame crosses the budget, the third is not cut');
  t.true(core.scheduler.hasOutput);
  const rest = decode(core.scheduler.pull(1 << 20, ch0, new AfterList()));
  t.deepEqual(rest.map((f) => (f.type === 'SEQ' ? -1 : f.msgno)), [2, 3]);
  t.false(core.scheduler.hasOutput);
  t.is(core.scheduler.pull(1 << 20, ch0, new AfterList())?.length ?? 0, 0);
});

test('the effects of a batch: a message whose last frame went out is done, then its channel is checked for quiescence', (t) => {
  const { core, ch0, open } = setup();
  core.scheduler.pull(1 << 20, ch0, new AfterList());
  const a = open(1);
  const out = core.queueMessage(a, 'MSG', 0, undefined, 'x', undefined);
  const after = new AfterList();
  core.scheduler.pull(1 << 20, ch0, after);
  t.is(after.n, 4);
  t.deepEqual(after.items.slice(0, 4), [AFTER_DONE, out, AFTER_QUIESCENT, a]);
  t.is(a.outQueue.length, 0);
});

test('a message marked holdAfter stops output after its last frame until the hold is released (RFC 3080 §3.1)', (t) => {
  const { core, ch0, open } = setup();
  core.scheduler.pull(1 << 20, ch0, new AfterList());
  const a = open(1);
  const held = core.queueMessage(a, 'MSG', 0, undefined, 'ready', undefined);
  held.holdAfter = true;
  core.queueMessage(a, 'MSG', 1, undefined, 'next', undefined);
  t.deepEqual(order(decode(core.scheduler.pull(1 << 20, ch0, new AfterList()))), ['MSG 1']);
  t.true(core.scheduler.outputHeld);
  t.is(core.scheduler.pull(1 << 20, ch0, new AfterList()), null);
  core.scheduler.releaseOutput();
  const next = decode(core.scheduler.pull(1 << 20, ch0, new AfterList()));
  t.deepEqual(next.map((f) => (f.type === 'SEQ' ? -1 : f.msgno)), [1]);
});

test('frames never exceed the peer window: a 5000-octet message goes out as 4096 octets, then waits for a SEQ', (t) => {
  const { core, ch0, open } = setup();
  core.scheduler.pull(1 << 20, ch0, new AfterList());
  const a = open(1);
  core.queueMessage(a, 'MSG', 0, undefined, 'y'.repeat(5000), undefined);
  const frames = decode(core.scheduler.pull(1 << 20, ch0, new AfterList())).filter((f) => f.type !== 'SEQ');
  t.is(frames.length, 1);
  const f = frames[0] as DataFrame;
  t.is(f.size, 4096);
  t.true(f.more);
  t.is(a.send.available, 0);
  t.is(decode(core.scheduler.pull(1 << 20, ch0, new AfterList())).filter((x) => x.type !== 'SEQ').length, 0);
});

test('a closed scheduler schedules nothing', (t) => {
  const { core, ch0, open } = setup();
  const a = open(1);
  core.scheduler.close();
  core.scheduler.clear();
  core.queueMessage(a, 'MSG', 0, undefined, 'x', undefined);
  t.is(core.scheduler.pull(1 << 20, ch0, new AfterList()), null);
});

test('a credit that makes no SEQ due asks for no flush and sends nothing; one that does asks, and its SEQ goes out', (t) => {
  const { core, ch0, open } = setup();
  const ch = open(1);
  core.scheduler.pull(1 << 20, ch0, new AfterList()); // the greeting and anything opening queued
  t.false(core.scheduler.hasOutput);
  const f = ch.flowState;
  // The channel's first octets may resize its window (a SEQ then is due): settle that first.
  f.onFrame(0, 100);
  f.onConsume(100);
  core.scheduler.recheckCredit(ch);
  core.scheduler.pull(1 << 20, ch0, new AfterList());
  const size = f.window.size;
  f.onFrame(100, 100);
  f.onConsume(100);
  core.scheduler.recheckCredit(ch);
  t.false(core.scheduler.hasOutput, '100 octets of a window of ' + size + ' are no reason to write');
  t.deepEqual(order(decode(core.scheduler.pull(1 << 20, ch0, new AfterList()))), [], 'and a pull finds nothing to send');
  const more = Math.ceil(size / 2);
  f.onFrame(200, more);
  f.onConsume(more);
  core.scheduler.recheckCredit(ch);
  t.true(core.scheduler.hasOutput, 'half a window consumed: a SEQ is due');
  const frames = decode(core.scheduler.pull(1 << 20, ch0, new AfterList()));
  t.deepEqual(order(frames), ['SEQ 1']);
  const seq = frames[0] as Extract<Frame, { type: 'SEQ' }>;
  t.is(seq.ackno, 200 + more);
});
