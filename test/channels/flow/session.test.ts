/**
 * The session's receive budget (src/channels/flow/session.ts): held across
 * many channels, shared fairly between busy ones.
 */
import test from 'ava';
import { SessionFlow, type FlowLimits } from '../../../src/channels/flow.js';
import { KiB, MiB, simulate, type SimChannel } from './sim.js';

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
