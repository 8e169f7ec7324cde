/**
 * The receive-window policy (src/channels/flow.ts) as a pure unit: an
 * injected clock and a simulated path (fixed one-way delay, a link of fixed
 * rate, a sender that frames up to its window like the core's scheduler).
 */
import test from 'ava';
import { ChannelFlow, SessionFlow, UPDATE_FRACTION, type FlowLimits } from '../../src/channels/flow.js';
import { SendWindow, INITIAL_WINDOW } from '../../src/channels/window.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const LIMITS: FlowLimits = { receiveWindow: 64 * KiB, maxReceiveWindow: 32 * MiB, sessionReceiveBudget: 256 * MiB };

interface SimChannel {
  cf: ChannelFlow;
  snd: SendWindow;
  /** Octets per ms the receiving application reads (Infinity: keeps up). */
  readRate: number;
  received: number;
  consumed: number;
  /** Round trip at which the window first reached `goal`, if it did. */
  reachedAt?: number;
}

interface Sim {
  flow: SessionFlow;
  chans: SimChannel[];
  now: () => number;
  /** Run until `until` ms. */
  run(until: number): void;
  /** Octets delivered to the receiver so far. */
  delivered(): number;
  /** Largest sum of receive windows seen, and of octets buffered. */
  peakWindows: number;
  peakBuffered: number;
}

/**
 * A path of `rtt` ms and `linkRate` octets/ms carrying `n` channels, each
 * with an endless message to send, frames of at most `frame` octets.
 */
function simulate(o: { rtt: number; linkRate: number; n?: number; readRate?: number[]; limits?: FlowLimits; frame?: number; goal?: number; step?: number; cwnd?: number; sndbuf?: number }): Sim {
  let t = 0;
  const step = o.step ?? 0.05;
  const frame = o.frame ?? 64 * KiB;
  const flow = new SessionFlow(o.limits ?? LIMITS, () => t);
  const chans: SimChannel[] = [];
  const data: { at: number; ch: SimChannel; seqno: number; size: number }[] = [];
  const seqs: { at: number; ch: SimChannel; ackno: number; window: number }[] = [];
  // Start: the initiator sent <start> and got the reply one RTT later (a sample).
  flow.rtt.sample(o.rtt);
  for (let i = 0; i < (o.n ?? 1); i++) {
    const ch: SimChannel = { cf: flow.open(), snd: new SendWindow(), readRate: o.readRate?.[i] ?? Infinity, received: 0, consumed: 0 };
    chans.push(ch);
    // The announcement SEQ rides with the start reply.
    const u = ch.cf.takeUpdate();
    if (u) seqs.push({ at: o.rtt / 2, ch, ackno: u.ackno, window: u.window });
  }
  let linkFree = 0; // time the link is next free (serialisation)
  let rr = 0;
  // `cwnd` set: a transport in slow start between the channels and the link
  // (TCP's congestion window, from `cwnd` octets, growing by what is acknowledged
  // up to 1.5 × BDP); frames the windows allow wait in its send queue.
  let cwnd = o.cwnd ?? Infinity;
  let inflight = 0;
  const sendq: { ch: SimChannel; seqno: number; size: number }[] = [];
  const acks: { at: number; size: number }[] = [];
  const sim: Sim = {
    flow,
    chans,
    now: () => t,
    peakWindows: 0,
    peakBuffered: 0,
    delivered: () => chans.reduce((s, c) => s + c.received, 0),
    run(until: number) {
      while (t < until) {
        t += step;
        // Receiver: frames that arrived, then the applications read.
        while (data.length > 0 && (data[0] as (typeof data)[0]).at <= t) {
          const f = data.shift() as (typeof data)[0];
          if (f.ch.cf.window.check(f.seqno, f.size) !== 'ok') throw new Error(`frame refused: ${f.ch.cf.window.check(f.seqno, f.size)}`);
          f.ch.cf.onFrame(f.seqno, f.size);
          f.ch.received += f.size;
          if (o.cwnd !== undefined) acks.push({ at: f.at + o.rtt / 2, size: f.size });
        }
        let windows = 0;
        let buffered = 0;
        for (const c of chans) {
          const n = Math.min(c.cf.window.buffered, c.readRate === Infinity ? Infinity : c.readRate * step);
          const whole = Math.floor(n);
          if (whole > 0) {
            c.cf.onConsume(whole);
            c.consumed += whole;
          }
          const u = c.cf.takeUpdate();
          if (u) seqs.push({ at: t + o.rtt / 2, ch: c, ackno: u.ackno, window: u.window });
          windows += c.cf.window.size;
          buffered += c.cf.window.buffered;
          if (o.goal !== undefined && c.reachedAt === undefined && c.cf.window.size >= o.goal) c.reachedAt = t / o.rtt;
        }
        sim.peakWindows = Math.max(sim.peakWindows, windows);
        sim.peakBuffered = Math.max(sim.peakBuffered, buffered);
        // Sender: SEQs that arrived, then frames round-robin while the link is free.
        while (seqs.length > 0 && (seqs[0] as (typeof seqs)[0]).at <= t) {
          const s = seqs.shift() as (typeof seqs)[0];
          if (!s.ch.snd.update(s.ackno, s.window)) throw new Error('bad SEQ');
        }
        if (o.cwnd === undefined) {
          for (let tries = 0; linkFree <= t && tries < chans.length; tries++) {
            const c = chans[rr++ % chans.length] as SimChannel;
            const size = Math.min(frame, c.snd.available);
            if (size === 0) continue;
            tries = -1;
            const seqno = c.snd.nextSeq;
            c.snd.consume(size);
            linkFree = Math.max(linkFree, t) + size / o.linkRate;
            data.push({ at: linkFree + o.rtt / 2, ch: c, seqno, size });
          }
          continue;
        }
        while (acks.length > 0 && (acks[0] as (typeof acks)[0]).at <= t) {
          const a = acks.shift() as (typeof acks)[0];
          inflight -= a.size;
          cwnd = Math.min(cwnd + a.size, 1.5 * o.linkRate * o.rtt);
        }
        // The session writes what the windows allow into the transport's queue, round-robin,
        // while the transport's send buffer (`sndbuf`: queued and unacknowledged) has room.
        let queued = sendq.reduce((n, f) => n + f.size, 0);
        for (let tries = 0; tries < chans.length && queued + inflight < (o.sndbuf ?? Infinity); tries++) {
          const c = chans[rr++ % chans.length] as SimChannel;
          const size = Math.min(frame, c.snd.available);
          if (size === 0) continue;
          tries = -1;
          sendq.push({ ch: c, seqno: c.snd.nextSeq, size });
          queued += size;
          c.snd.consume(size);
        }
        while (sendq.length > 0 && linkFree < t + step && inflight + (sendq[0] as (typeof sendq)[0]).size <= cwnd) {
          const f = sendq.shift() as (typeof sendq)[0];
          inflight += f.size;
          linkFree = Math.max(linkFree, t) + f.size / o.linkRate;
          data.push({ at: linkFree + o.rtt / 2, ch: f.ch, seqno: f.seqno, size: f.size });
        }
      }
    },
  };
  return sim;
}

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

test('the session budget holds across 1,000 channels that all want to grow', (t) => {
  let now = 0;
  const limits: FlowLimits = { receiveWindow: 64 * KiB, maxReceiveWindow: 16 * MiB, sessionReceiveBudget: 64 * MiB };
  const flow = new SessionFlow(limits, () => now);
  flow.rtt.sample(50);
  const chans = Array.from({ length: 1000 }, () => flow.open());
  for (let round = 0; round < 20; round++) {
    now += 60;
    for (const cf of chans) {
      // Each channel consumed its whole window in this round trip, held back by it.
      const w = cf.window;
      const n = w.remaining;
      cf.onFrame(w.expected, n);
      cf.onConsume(n);
      cf.takeUpdate();
      const extra = chans.reduce((s, c) => s + (c.window.size - limits.receiveWindow), 0);
      if (extra > limits.sessionReceiveBudget) {
        t.fail(`round ${round}: ${extra} octets beyond the initial windows exceed the budget`);
        return;
      }
    }
  }
  const extra = chans.reduce((s, c) => s + (c.window.size - limits.receiveWindow), 0);
  t.is(flow.budgetUsed, extra, 'the budget counts what the channels hold');
  t.true(extra > limits.sessionReceiveBudget * 0.9, `the budget is used (${extra})`);
  const max = Math.max(...chans.map((c) => c.window.size));
  t.true(max - limits.receiveWindow <= Math.ceil(limits.sessionReceiveBudget / 1000) * 2 + 64 * KiB, `no channel hoards it: largest ${max}`);
  for (const cf of chans) cf.close();
  t.is(flow.budgetUsed, 0, 'closed channels give their buffer back');
});

test('fairness: two busy channels on one link end up with windows within 2× of each other, even when one started first', (t) => {
  const rtt = 50;
  const limits: FlowLimits = { receiveWindow: 64 * KiB, maxReceiveWindow: 32 * MiB, sessionReceiveBudget: 8 * MiB };
  const sim = simulate({ rtt, linkRate: 125_000, n: 2, limits, readRate: [Infinity, 0] });
  // Channel 1 is idle (its reader is stopped) while channel 0 takes the budget…
  sim.run(20 * rtt);
  const [a, b] = sim.chans as [SimChannel, SimChannel];
  t.true(a.cf.window.size > 4 * MiB, `the first channel grew to ${a.cf.window.size}`);
  // …then channel 1's reader starts.
  b.readRate = Infinity;
  sim.run(80 * rtt);
  const ratio = Math.max(a.cf.window.size, b.cf.window.size) / Math.min(a.cf.window.size, b.cf.window.size);
  t.true(ratio <= 2, `windows ${a.cf.window.size} and ${b.cf.window.size}`);
  t.true(sim.flow.budgetUsed <= limits.sessionReceiveBudget, 'within the budget');
  const share = b.received / (a.received + b.received);
  t.true(b.received > 0 && share > 0.2, `the late channel got ${(share * 100).toFixed(0)} % of what was delivered overall`);
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
