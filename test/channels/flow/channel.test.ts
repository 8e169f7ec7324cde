/**
 * One channel's receive window under the flow policy (src/channels/flow/channel.ts)
 * as a pure unit, over the simulated path of ./sim.ts: growth per round trip,
 * right-sizing, slow readers, SEQ pacing, wrap at 2^32, channel 0, RTT samples.
 */
import test from 'ava';
import { SessionFlow, UPDATE_FRACTION } from '../../../src/channels/flow.js';
import { SendWindow, INITIAL_WINDOW } from '../../../src/channels/window.js';
import { KiB, MiB, LIMITS, simulate, type SimChannel } from './sim.js';

test('a reader that keeps up: the window reaches the bandwidth-delay product within 10 round trips, and the link is filled', (t) => {
  for (const rtt of [50, 100]) {
    const linkRate = 125_000; // 1 Gbit/s in octets per ms
    const bdp = linkRate * rtt;
    const sim = simulate({ rtt, linkRate, goal: bdp });
    sim.run(30 * rtt);
    const ch = sim.chans[0] as SimChannel;
    t.truthy(ch.reachedAt, `${rtt} ms: window reached ${bdp} octets`);
    t.true((ch.reachedAt as number) <= 10, `${rtt} ms: reached the BDP after ${ch.reachedAt?.toFixed(1)} round trips`);
    const before = sim.delivered();
    sim.run(40 * rtt);
    const rate = (sim.delivered() - before) / (10 * rtt);
    t.true(rate >= 0.95 * linkRate, `${rtt} ms: ${(rate / 1000).toFixed(1)} MB/s of ${linkRate / 1000}`);
    // What the receiver holds unread stays small. What it has promised (the
    // windows) overshoots by at most one slow-start step (2 × rate × RTT plus
    // twice the rate's last growth: at most 6 × BDP, and never past the
    // ceiling), and settles near 2 × BDP once the rate stops growing.
    t.true(sim.peakBuffered <= 2 * bdp + 4 * 64 * KiB, `${rtt} ms: buffered ${sim.peakBuffered} within 2 × BDP + 4 frames`);
    t.true(sim.peakWindows <= Math.min(6 * bdp, LIMITS.maxReceiveWindow), `${rtt} ms: windows ${sim.peakWindows} within 6 × BDP (${6 * bdp}) and the ceiling`);
    const settled = ch.cf.window.size;
    t.true(settled <= 2.5 * bdp && settled >= bdp, `${rtt} ms: window settles at ${settled}, between the BDP and 2.5 × BDP (${2.5 * bdp})`);
    t.log(`${rtt} ms: BDP after ${ch.reachedAt?.toFixed(1)} round trips; peak windows ${(sim.peakWindows / bdp).toFixed(2)} × BDP, settled ${(settled / bdp).toFixed(2)} × BDP`);
  }
});

test('growth: about one doubling per round trip while the window is the limit', (t) => {
  const rtt = 50;
  const sim = simulate({ rtt, linkRate: 125_000 });
  const sizes: number[] = [];
  for (let r = 1; r <= 6; r++) {
    sim.run(r * rtt);
    sizes.push((sim.chans[0] as SimChannel).cf.window.size);
  }
  // From 64 KiB, six round trips of doubling give 4 MiB; allow one round trip of lag.
  t.true((sizes[5] as number) >= 2 * MiB, `sizes per round trip: ${sizes.join(', ')}`);
  for (let i = 1; i < sizes.length; i++) t.true((sizes[i] as number) >= (sizes[i - 1] as number), 'never shrinks while the reader keeps up');
});

test('behind a transport in its own slow start (IW10, 100 ms), the window stays ahead of its ramp: the BDP within 8 round trips, the link filled, and the window trimmed to about 2.5 × BDP once the rate stops growing', (t) => {
  const rtt = 100;
  const linkRate = 125_000;
  const bdp = linkRate * rtt;
  const sim = simulate({ rtt, linkRate, goal: bdp, frame: 4 * KiB, cwnd: 10 * 1448, limits: { ...LIMITS, maxReceiveWindow: 64 * MiB } });
  const ch = sim.chans[0] as SimChannel;
  const trail: string[] = [];
  for (let r = 1; r <= 12; r++) {
    sim.run(r * rtt);
    trail.push(`${r}: ${(ch.cf.window.size / KiB).toFixed(0)} KiB`);
  }
  t.truthy(ch.reachedAt, `window reached the BDP (${trail.join(', ')})`);
  t.true((ch.reachedAt as number) <= 8, `the BDP after ${ch.reachedAt?.toFixed(1)} round trips (${trail.join(', ')})`);
  sim.run(40 * rtt);
  const before = sim.delivered();
  sim.run(50 * rtt);
  const rate = (sim.delivered() - before) / (10 * rtt);
  t.true(rate >= 0.95 * linkRate, `${(rate / 1000).toFixed(1)} MB/s of ${linkRate / 1000}`);
  t.true(ch.cf.window.size <= 3 * bdp, `slow start over, the window is trimmed: ${(ch.cf.window.size / bdp).toFixed(2)} × BDP`);
  t.log(`BDP after ${ch.reachedAt?.toFixed(1)} round trips; peak window ${(sim.peakWindows / bdp).toFixed(2)} × BDP; per round trip ${trail.join(', ')}`);
});

test('a slow reader gets a window near 2 × rate × RTT, never below the initial window, and the budget back', (t) => {
  const rtt = 50;
  // First a fast phase grows the window, then the reader slows to 1 MB/s.
  const sim = simulate({ rtt, linkRate: 125_000 });
  sim.run(20 * rtt);
  const c = sim.chans[0] as SimChannel;
  const grown = c.cf.window.size;
  t.true(grown >= 4 * MiB, `grew to ${grown}`);
  c.readRate = 1000; // 1 MB/s
  sim.run(400 * rtt);
  const target = 2 * 1000 * rtt; // 100 kB
  t.true(c.cf.window.size <= Math.max(LIMITS.receiveWindow, 2 * target), `shrank to ${c.cf.window.size} (target ${target})`);
  t.true(c.cf.window.size >= LIMITS.receiveWindow, 'never below the initial window');
  t.true(c.cf.stats.shrinks > 0);
  t.is(sim.flow.budgetUsed, c.cf.window.size - LIMITS.receiveWindow, 'the budget follows the size');
  // Once what was promised before the slowdown is read (never retracted),
  // buffered stays within the new window plus a frame.
  const buffered = c.cf.window.buffered;
  t.true(buffered <= c.cf.window.size + 64 * KiB, `buffered ${buffered}`);
});

test('a slow reader from the start: buffered stays within max(initial window, 2 × rate × RTT) plus one frame', (t) => {
  const rtt = 50;
  const sim = simulate({ rtt, linkRate: 125_000, readRate: [1000] });
  sim.run(100 * rtt);
  const c = sim.chans[0] as SimChannel;
  t.true(sim.peakBuffered <= Math.max(LIMITS.receiveWindow, 2 * 1000 * rtt) + 64 * KiB, `peak buffered ${sim.peakBuffered}`);
  t.true(c.consumed > 0.9 * 1000 * 100 * rtt, `the reader was never starved: ${c.consumed}`);
});

test('SEQs go out at a quarter of the window consumed, never one per frame', (t) => {
  const rtt = 50;
  const sim = simulate({ rtt, linkRate: 125_000, frame: 16 * KiB });
  sim.run(40 * rtt);
  const c = sim.chans[0] as SimChannel;
  const frames = c.received / (16 * KiB);
  t.true(c.cf.stats.seqs < frames / 2, `${c.cf.stats.seqs} SEQs for ${Math.round(frames)} frames`);
  t.is(UPDATE_FRACTION, 0.25);
});

test('sequence numbers wrap at 2^32: RTT samples and growth continue across the wrap', (t) => {
  let now = 0;
  const flow = new SessionFlow(LIMITS, () => now);
  flow.rtt.sample(10);
  const cf = flow.open();
  const start = 2 ** 32 - 100_000;
  cf.window.expected = start;
  cf.window.edge = (start + INITIAL_WINDOW) >>> 0;
  const snd = new SendWindow();
  snd.nextSeq = start;
  snd.ackno = start;
  snd.edge = cf.window.edge;
  let seq = cf.takeUpdate();
  t.truthy(seq);
  snd.update((seq as { ackno: number }).ackno, (seq as { window: number }).window);
  const samples = flow.rtt.count;
  for (let i = 0; i < 400; i++) {
    now += 5; // SEQ reaches the sender, the sender sends its whole window back: 10 ms round trip
    while (snd.available > 0) {
      const size = Math.min(16 * KiB, snd.available);
      t.is(cf.window.check(snd.nextSeq, size), 'ok');
      cf.onFrame(snd.nextSeq, size);
      snd.consume(size);
      cf.onConsume(size); // the reader keeps up
    }
    now += 5;
    seq = cf.takeUpdate();
    if (seq) snd.update(seq.ackno, seq.window);
  }
  t.true(cf.window.expected < start, 'wrapped');
  t.true(flow.rtt.count > samples + 10, `samples after the wrap: ${flow.rtt.count - samples}`);
  t.true(Math.abs(flow.rtt.srtt - 10) <= 5, `srtt ${flow.rtt.srtt}`);
  t.true(cf.window.size > 64 * KiB, `grew to ${cf.window.size}`);
  t.true(cf.stats.peerStalls > 10);
});

test('channel 0 (tune: false) keeps its window whatever it reads', (t) => {
  let now = 0;
  const flow = new SessionFlow(LIMITS, () => now);
  flow.rtt.sample(1);
  const cf = flow.open(false);
  for (let i = 0; i < 100; i++) {
    now += 2;
    cf.onFrame(cf.window.expected, cf.window.remaining);
    cf.onConsume(cf.window.buffered);
    cf.takeUpdate();
  }
  t.is(cf.window.size, LIMITS.receiveWindow);
  t.is(flow.budgetUsed, 0);
});

test('a listener without an RTT sample takes one from the announcement SEQ to the channel\'s first octets', (t) => {
  let now = 0;
  const flow = new SessionFlow(LIMITS, () => now);
  const cf = flow.open();
  t.truthy(cf.takeUpdate(), 'the announcement of the 64 KiB window');
  now = 50;
  cf.onFrame(0, 16 * KiB);
  t.is(flow.rtt.count, 1);
  t.is(flow.rtt.min, 50);
  // A later channel's first octets do not add a sample: the session has one.
  const cf2 = flow.open();
  cf2.takeUpdate();
  now = 500;
  cf2.onFrame(0, 1024);
  t.is(flow.rtt.count, 1);
});

test('a reader that takes what arrives in bursts and then sleeps (1 MB/s on average) is a slow reader: no growth past the first, then back to the initial window', (t) => {
  let now = 0;
  const flow = new SessionFlow(LIMITS, () => now);
  flow.rtt.sample(0.2); // a fast path: sized for the 10 ms floor
  const cf = flow.open();
  const snd = new SendWindow();
  const u = cf.takeUpdate();
  if (u) snd.update(u.ackno, u.window);
  let peak = 0;
  let credit = 0;
  for (let ms = 0; ms < 5000; ms++) {
    now = ms;
    // The sender fills whatever window it has, in 64 KiB frames.
    while (snd.available > 0) {
      const size = Math.min(64 * KiB, snd.available);
      cf.onFrame(snd.nextSeq, size);
      snd.consume(size);
    }
    // The reader wakes every 50 ms and takes at once what its 1 MB/s pace allows.
    credit += 1000;
    if (ms % 50 === 49) {
      const n = Math.min(credit, cf.window.buffered);
      credit -= n;
      if (n > 0) cf.onConsume(n);
    }
    const seq = cf.takeUpdate();
    if (seq) snd.update(seq.ackno, seq.window);
    peak = Math.max(peak, cf.window.size);
  }
  t.true(peak <= 4 * 64 * KiB, `largest window ${peak}`);
  t.is(cf.window.size, LIMITS.receiveWindow, `back to the initial window (${cf.window.size})`);
});

test('on a sub-millisecond path (loopback: 0.1 ms, 2 GB/s) the first rate comes within a quarter millisecond: the window is past its first doubling by 0.5 ms and at megabytes by 1 ms', (t) => {
  const sim = simulate({ rtt: 0.1, linkRate: 2_000_000, step: 0.01 });
  const ch = sim.chans[0] as SimChannel;
  sim.run(0.5);
  const half = ch.cf.window.size;
  sim.run(1);
  const one = ch.cf.window.size;
  t.true(half > 128 * KiB, `window at 0.5 ms: ${half}`);
  t.true(one >= 2 * MiB, `window at 1 ms: ${one}`);
});

test('stalls that left the receiver idle are told from those that cost nothing: a reader that keeps up waits at some of its stalls, a slow reader (octets still unread) at none', (t) => {
  const fast = simulate({ rtt: 50, linkRate: 125_000 });
  fast.run(20 * 50);
  const f = fast.flow.counters;
  t.true(f.peerWindowStalls > 0 && f.peerWindowStallsIdle > 0, `keeps up: ${f.peerWindowStallsIdle} of ${f.peerWindowStalls} stalls idle`);
  t.true(f.peerWindowStallsIdle <= f.peerWindowStalls);
  // (Its first round trip aside: the simulated sender starts into the 4096-octet
  // default before the announcement SEQ reaches it, and the reader does wait for that.)
  const slow = simulate({ rtt: 50, linkRate: 125_000, readRate: [1000] });
  slow.run(2 * 50);
  const s = slow.flow.counters;
  const [stalls0, idle0] = [s.peerWindowStalls, s.peerWindowStallsIdle];
  slow.run(100 * 50);
  t.true(s.peerWindowStalls - stalls0 > 10, `the slow reader's sender stalled ${s.peerWindowStalls - stalls0} times more`);
  t.is(s.peerWindowStallsIdle - idle0, 0, 'none of them left the reader waiting');
});
