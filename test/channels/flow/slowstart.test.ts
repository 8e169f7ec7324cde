/**
 * Session-wide slow start (src/channels/flow/slowstart.ts): several busy
 * channels on one transport sized together while the session's rate grows.
 */
import test from 'ava';
import { ChannelFlow, SessionFlow, type FlowLimits } from '../../../src/channels/flow.js';
import { KiB, MiB, simulate, type Sim } from './sim.js';

test('eight channels on one transport in slow start (a congestion window growing from ten segments): Σ windows reach the BDP within 10 round trips, within a round trip of one channel, none left behind, and they fill the link', (t) => {
  const rtt = 100;
  const linkRate = 125_000;
  const bdp = linkRate * rtt;
  const frame = 16 * KiB;
  const limits: FlowLimits = { receiveWindow: 64 * KiB, maxReceiveWindow: 64 * MiB, sessionReceiveBudget: 64 * MiB };
  const reach = (n: number): { at: number; min: number; sim: Sim } => {
    const sim = simulate({ rtt, linkRate, n, limits, frame, cwnd: 10 * 1448 });
    let at = Infinity;
    for (let r = 1; r <= 20 && at === Infinity; r++) {
      sim.run(r * rtt);
      if (sim.chans.reduce((s, c) => s + c.cf.window.size, 0) >= bdp) at = r;
    }
    return { at, min: Math.min(...sim.chans.map((c) => c.cf.window.size)), sim };
  };
  const one = reach(1);
  const eight = reach(8);
  t.log(`Σ window ≥ BDP after ${one.at} round trips (one channel), ${eight.at} (eight; smallest window then ${eight.min})`);
  t.true(eight.at <= 10, `eight channels: Σ window reached the BDP after ${eight.at} round trips`);
  t.true(eight.at <= one.at + 1, `eight channels (${eight.at}) within a round trip of one (${one.at})`);
  // No channel is left behind at its initial window while the others grow.
  t.true(eight.min >= bdp / 8 / 4, `smallest of the eight windows ${eight.min} ≥ a quarter of an equal share`);
  eight.sim.run(40 * rtt);
  const before = eight.sim.delivered();
  eight.sim.run(50 * rtt);
  const got = (eight.sim.delivered() - before) / (10 * rtt);
  t.true(got >= 0.95 * linkRate, `the eight fill the link: ${(got / 1000).toFixed(1)} MB/s, windows ${eight.sim.chans.map((c) => c.cf.window.size).join(", ")}`);
  t.true(eight.sim.flow.budgetUsed <= limits.sessionReceiveBudget, 'within the budget');
  t.log(`peak Σ window ${(eight.sim.peakWindows / bdp).toFixed(2)} × BDP (one channel: ${(one.sim.peakWindows / bdp).toFixed(2)})`);
});

test('session slow start ends when the transport, not the windows, limits: eight channels behind a 4 MiB send buffer promise at most 6 × BDP', (t) => {
  const rtt = 50;
  const linkRate = 125_000;
  const bdp = linkRate * rtt;
  const limits: FlowLimits = { receiveWindow: 64 * KiB, maxReceiveWindow: 64 * MiB, sessionReceiveBudget: 256 * MiB };
  const sim = simulate({ rtt, linkRate, n: 8, limits, frame: 16 * KiB, cwnd: 10 * 1448, sndbuf: 4 * MiB });
  sim.run(60 * rtt);
  const sum = sim.chans.reduce((s, c) => s + c.cf.window.size, 0);
  t.log(`peak Σ window ${(sim.peakWindows / bdp).toFixed(2)} × BDP, now ${(sum / bdp).toFixed(2)} × BDP; session slow start ${sim.flow.slowStart ? 'on' : 'ended'}`);
  t.false(sim.flow.slowStart, 'the session left slow start');
  t.true(sim.peakWindows <= 6 * bdp, `peak Σ window ${sim.peakWindows} within 6 × BDP (${6 * bdp})`);
});

/**
 * Two channels of one session, driven by hand one round trip (100 ms) at a
 * time: channel A's sender uses all A's window each round trip (a frame ends
 * at A's latest edge: the window held it back); channel B receives a quarter
 * of its window per round trip and never shows such a signal (its frames
 * queue behind A's at the sender), so by its own rule (2 × rate × RTT) it
 * would not grow. B's reader takes all that arrives, or (`bKeepsUp` false)
 * only a quarter of what sits unread.
 */
function twoChannels(bKeepsUp: boolean, rounds: number): { a: ChannelFlow; b: ChannelFlow; flow: SessionFlow } {
  let now = 0;
  const flow = new SessionFlow({ receiveWindow: 64 * KiB, maxReceiveWindow: 64 * MiB, sessionReceiveBudget: 256 * MiB }, () => now);
  flow.rtt.sample(100);
  const a = flow.open();
  const b = flow.open();
  a.takeUpdate();
  b.takeUpdate();
  for (let r = 0; r < rounds; r++) {
    now += 100;
    a.onFrame(a.window.expected, a.window.remaining);
    const part = Math.floor(b.window.size / 4);
    if (b.window.remaining >= part && part > 0) b.onFrame(b.window.expected, part);
    b.onConsume(bKeepsUp ? b.window.buffered : Math.floor(b.window.buffered / 4));
    a.onConsume(a.window.buffered);
    a.takeUpdate();
    b.takeUpdate();
  }
  return { a, b, flow };
}

test('session slow start: a busy channel that keeps up but never sees its own window-limited signal grows with the session, to an equal share of the busy channels\' windows', (t) => {
  const { a, b, flow } = twoChannels(true, 6);
  t.log(`after 6 round trips: A ${a.window.size}, B ${b.window.size}`);
  t.true(flow.slowStart, 'the session is still in slow start');
  t.true(a.window.size >= 512 * KiB, `A grew while its window was the limit: ${a.window.size}`);
  // Alone, B's own rule gives 2 × its rate × RTT: its window would stay at 64 KiB.
  t.true(b.window.size >= a.window.size / 4, `B grew with the session: ${b.window.size} (A ${a.window.size})`);
  t.true(b.snapshot().grows > 0);
});

test('session slow start leaves a slow reader alone: a channel whose octets pile up unread does not grow with the others', (t) => {
  const { a, b } = twoChannels(false, 6);
  t.true(a.window.size >= 512 * KiB, `A grew while its window was the limit: ${a.window.size}`);
  t.is(b.window.size, 64 * KiB, 'B (nothing read) keeps its initial window');
  t.is(b.snapshot().grows, 0);
});
