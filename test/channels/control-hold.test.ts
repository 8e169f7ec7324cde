/**
 * Issue 13, control latency under bulk: while a control channel is active,
 * the other channels of the session offer at most CONTROL_BULK_WINDOW octets
 * together (src/channels/flow.ts), so what the peer can have queued ahead of
 * a control message stays small; after CONTROL_HOLD_MS of control silence
 * the windows are theirs again. Unit tests on an injected clock, then a real
 * session over loopback.
 */
import test from 'ava';
import { CONTROL_BULK_WINDOW, CONTROL_HOLD_MS, SessionFlow, type ChannelFlow } from '../../src/channels/flow.js';
import { CONTROL_PATH_GAIN, CONTROL_RAMP_GAIN } from '../../src/channels/flow/params.js';
import { simulate } from './flow/sim.js';
import { seqDiff } from '../../src/channels/window.js';
import dc from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS, connect, createServer, defineProfile, type Session } from '../../src/index.js';
import type { FrameEvent } from '../../src/channels/diagnostics.js';

const MiB = 1024 * 1024;

/** Octets the peer may still send on `cf` (advertised edge − next expected). */
const open = (cf: ChannelFlow): number => seqDiff(cf.window.edge, cf.window.expected);

/** A channel that received `n` octets and consumed them, then the SEQ it would send. */
function receiveAndConsume(cf: ChannelFlow, n: number): void {
  cf.onFrame(cf.window.expected, n);
  cf.onConsume(n);
  cf.takeUpdate();
}

test('a control frame caps the other channels\' windows at their share of CONTROL_BULK_WINDOW (no RTT measured: nothing added for the path), until CONTROL_HOLD_MS of control silence', (t) => {
  let now = 0;
  const flow = new SessionFlow({ receiveWindow: 16 * MiB, maxReceiveWindow: 16 * MiB, sessionReceiveBudget: 256 * MiB }, () => now);
  const control = flow.open();
  control.control = true;
  const bulk = [flow.open(), flow.open(), flow.open()];
  for (const cf of bulk) cf.takeUpdate(true);
  control.takeUpdate(true);
  // Bulk moves before any control traffic: each channel's window is its own 16 MiB.
  for (const cf of bulk) receiveAndConsume(cf, 8 * MiB);
  for (const cf of bulk) t.is(open(cf), 16 * MiB, 'uncapped before control traffic');

  // A control MSG arrives.
  now = 10;
  control.onFrame(control.window.expected, 100);
  control.onConsume(100);
  // Edges already advertised are never retracted (RFC 3081 §3.1.4); new credit stops at the share.
  // The three bulk channels share it; the control channel takes no part of it.
  const share = Math.floor(CONTROL_BULK_WINDOW / bulk.length);
  for (const cf of bulk) {
    receiveAndConsume(cf, 16 * MiB); // the peer used everything granted before
    t.true(open(cf) <= share, `window offered while control is active: ${open(cf)} ≤ ${share}`);
    t.true(open(cf) > 0, 'never shut');
  }
  t.true(open(control) >= 16 * MiB - 100, 'the control channel itself is not capped');
  let sum = 0;
  for (const cf of bulk) sum += open(cf);
  t.true(sum <= CONTROL_BULK_WINDOW, `together at most CONTROL_BULK_WINDOW: ${sum}`);
  t.true(sum >= CONTROL_BULK_WINDOW - bulk.length, `and all of it: ${sum}`);

  // Still within the hold: still capped.
  now = 10 + CONTROL_HOLD_MS - 1;
  for (const cf of bulk) receiveAndConsume(cf, open(cf));
  for (const cf of bulk) t.true(open(cf) <= share);

  // Control silent for the hold: windows open to their size again.
  now = 10 + CONTROL_HOLD_MS + 1;
  for (const cf of bulk) receiveAndConsume(cf, open(cf));
  for (const cf of bulk) t.is(open(cf), 16 * MiB, 'uncapped after the hold');
});

test('on a long path a capped channel keeps CONTROL_RAMP_GAIN × its best rate × the path\'s RTT in slow start, CONTROL_PATH_GAIN × after it', (t) => {
  let now = 0;
  const flow = new SessionFlow({ receiveWindow: 1 * MiB, maxReceiveWindow: 64 * MiB, sessionReceiveBudget: 256 * MiB }, () => now);
  flow.rtt.sample(100); // a 100 ms path
  const control = flow.open();
  control.control = true;
  const bulk = flow.open();
  bulk.takeUpdate(true);
  // One epoch (a round trip) of 1 MiB read as it arrives: the channel's rate, in slow start.
  now = 1;
  receiveAndConsume(bulk, MiB);
  now = 102;
  receiveAndConsume(bulk, 1);
  t.true(bulk.measuredRate > 0, 'a rate was measured');
  t.true(bulk.inSlowStart);
  control.onFrame(control.window.expected, 100);
  const cap = flow.windowCap(bulk, 0) + bulk.window.buffered;
  const bdp = bulk.bestRate * 100;
  t.true(cap >= CONTROL_RAMP_GAIN * bdp, `share ${cap} ≥ ${CONTROL_RAMP_GAIN} × rate × RTT (${Math.round(CONTROL_RAMP_GAIN * bdp)})`);
  t.true(cap <= CONTROL_RAMP_GAIN * bdp + CONTROL_BULK_WINDOW + 1, `and no more than that plus its part of CONTROL_BULK_WINDOW: ${cap}`);
  // Three epochs without growth (a fourth of the rate each) end slow start; the share then
  // counts the best rate, not the last (a share of the last would lower the rate it is measured from).
  for (let i = 0; i < 4 && bulk.inSlowStart; i++) {
    now += 101;
    receiveAndConsume(bulk, MiB / 4);
  }
  t.false(bulk.inSlowStart, 'slow start ended');
  t.true(bulk.measuredRate < bulk.bestRate / 2, 'the last epoch was slower than the best');
  control.onFrame(control.window.expected, 100);
  const after = flow.windowCap(bulk, 0) + bulk.window.buffered;
  t.true(after >= CONTROL_PATH_GAIN * bulk.bestRate * 100, `share ${after} ≥ ${CONTROL_PATH_GAIN} × best rate × RTT`);
  t.true(after <= CONTROL_PATH_GAIN * bulk.bestRate * 100 + CONTROL_BULK_WINDOW + 1, `share ${after} within its bound`);
});

/** A 1 Gbit/s path of `rtt` ms behind a transport in slow start (IW10), one channel, a control channel beside it. */
function controlPath(rtt: number, controlAt: (ms: number) => boolean) {
  const limits = { receiveWindow: MiB, maxReceiveWindow: 64 * MiB, sessionReceiveBudget: 128 * MiB };
  const sim = simulate({ rtt, linkRate: 125_000, frame: 16 * 1024, cwnd: 10 * 1448, limits });
  const ctl = sim.flow.open();
  ctl.control = true;
  const perRtt: number[] = [];
  let last = 0;
  for (let ms = 5; ms <= 60 * rtt; ms += 5) {
    if (controlAt(ms)) {
      ctl.onFrame(ctl.window.expected, 50);
      ctl.onConsume(50);
    }
    sim.run(ms);
    if (ms % rtt === 0) {
      perRtt.push(sim.delivered() - last);
      last = sim.delivered();
    }
  }
  return { perRtt, bdp: 125_000 * rtt };
}

test('control traffic during a long path\'s ramp (a message every 100 ms for its first ten round trips) does not slow it: 90 % of the link within one round trip of the same channel without control', (t) => {
  for (const rtt of [50, 100]) {
    const first = (r: { perRtt: number[]; bdp: number }): number => r.perRtt.findIndex((n) => n >= 0.9 * r.bdp) + 1;
    const alone = controlPath(rtt, () => false);
    const held = controlPath(rtt, (ms) => ms <= 10 * rtt && ms % 100 === 0);
    t.true(first(alone) > 0 && first(held) > 0, `${rtt} ms: both reached 90 % of the link`);
    t.true(first(held) <= first(alone) + 1, `${rtt} ms: with control at the start after ${first(held)} round trips, without after ${first(alone)}`);
    t.log(`${rtt} ms: 90 % of the link after ${first(held)} round trips with control traffic during the ramp, ${first(alone)} without`);
  }
});

test('steady control traffic beside a long path\'s bulk channel leaves the bulk at the link\'s rate (its share counts its best rate, so it does not wind down epoch by epoch)', (t) => {
  const rtt = 50;
  // Bulk alone for 30 round trips (steady state), then a control message every 100 ms.
  const r = controlPath(rtt, (ms) => ms >= 30 * rtt && ms % 100 === 0);
  const tail = r.perRtt.slice(40);
  const worst = Math.min(...tail);
  t.true(worst >= 0.95 * r.bdp, `delivery per round trip under control ≥ 95 % of the link: worst ${(worst / r.bdp).toFixed(2)}`);
});

test('a control notice before any bulk has arrived (SciStream\'s <ready> at a stream\'s start) starts no hold; the same notice while bulk arrives does', (t) => {
  let now = 0;
  const flow = new SessionFlow({ receiveWindow: 16 * MiB, maxReceiveWindow: 16 * MiB, sessionReceiveBudget: 256 * MiB }, () => now);
  const control = flow.open();
  control.control = true;
  const bulk = flow.open();
  bulk.takeUpdate(true);
  control.takeUpdate(true);
  // The notice comes first; the stream's octets follow it.
  control.onFrame(control.window.expected, 40);
  control.onConsume(40);
  now = 5;
  receiveAndConsume(bulk, 8 * MiB);
  t.is(open(bulk), 16 * MiB, 'not capped: nothing was queued ahead of the notice');
  // A second notice while the bulk moves: the hold begins.
  now = 10;
  control.onFrame(control.window.expected, 40);
  control.onConsume(40);
  receiveAndConsume(bulk, 16 * MiB);
  t.true(open(bulk) <= CONTROL_BULK_WINDOW, `capped while bulk moves: ${open(bulk)}`);
  // Bulk quiet for the hold, then a notice: no hold.
  now = 10 + CONTROL_HOLD_MS + 1;
  control.onFrame(control.window.expected, 40);
  receiveAndConsume(bulk, 0);
  bulk.takeUpdate();
  t.is(flow.controlAt, 10, 'a notice after a second without bulk did not renew the hold');
});

test('without a control channel nothing is capped', (t) => {
  let now = 0;
  const flow = new SessionFlow({ receiveWindow: 16 * MiB, maxReceiveWindow: 16 * MiB, sessionReceiveBudget: 256 * MiB }, () => now);
  const a = flow.open();
  const b = flow.open();
  a.takeUpdate(true);
  b.takeUpdate(true);
  now = 5;
  receiveAndConsume(a, 12 * MiB);
  receiveAndConsume(b, 12 * MiB);
  t.is(open(a), 16 * MiB);
  t.is(open(b), 16 * MiB);
});

test('over a real session, every SEQ the receiver sends on a bulk channel while a control profile is active offers at most its share, and both channels keep moving', async (t) => {
  t.timeout(60_000);
  const CONTROL = 'urn:beepstream:test:control-hold:control';
  const SINK = 'urn:beepstream:test:control-hold:sink';
  const profiles = [
    defineProfile({ uri: CONTROL, control: true, async onMessage(msg, res) { await res.reply(await msg.bytes()); } }),
    defineProfile({
      uri: SINK,
      async onMessage(msg, res) {
        let n = 0;
        for await (const v of msg.views()) n += v.length;
        await res.reply(String(n));
      },
    }),
  ];
  const limits = { receiveWindow: 16 * MiB, maxReceiveWindow: 16 * MiB };
  const server = createServer({ profiles, limits });
  const { port } = await server.listen(0, '127.0.0.1');
  const peer = new Promise<Session>((r) => server.once('session', r));
  const client = await connect({ host: '127.0.0.1', port, profiles, limits });
  const srv = await peer;
  const control = await client.startChannel(CONTROL);
  const sink = await client.startChannel(SINK);
  let checked = 0;
  const over: string[] = [];
  const onFrame = (m: unknown): void => {
    const e = m as FrameEvent;
    if (e.sessionId !== srv.id || e.frame.type !== 'SEQ' || e.frame.channel !== sink.number) return;
    // Judged by the clock the policy used a moment earlier: only SEQs sent within the hold.
    const flow = srv.core.flow;
    if (flow.now() - flow.controlAt >= CONTROL_HOLD_MS) return;
    checked++;
    // The sink's share: all of CONTROL_BULK_WINDOW (it is the one bulk channel; the control
    // channel takes no part and channel 0 is not a member) beyond its rate × the path's
    // shortest RTT (twice that in slow start).
    const cf = srv.channels.get(sink.number)?.flowState;
    // (Loopback: below the 10 ms sizing floor, so its last rate; controlPathNeed is that rule.)
    const pathNeed = flow.rtt.count === 0 || !cf ? 0 : flow.controlPathNeed(cf);
    const share = Math.floor(CONTROL_BULK_WINDOW + pathNeed);
    if (e.frame.window > share) over.push(`${e.frame.window} > ${share}`);
  };
  dc.subscribe(DIAGNOSTICS_CHANNELS.frameOut, onFrame);
  t.teardown(async () => {
    dc.unsubscribe(DIAGNOSTICS_CHANNELS.frameOut, onFrame);
    client.destroy();
    await server.close(200).catch(() => undefined);
  });
  // 64 MiB upload in 1 MiB pieces while control requests go back and forth (both bounded).
  const piece = Buffer.alloc(MiB, 7);
  const upload = sink.request((function* () { for (let i = 0; i < 64; i++) yield piece; })());
  let done = false;
  void upload.finally(() => (done = true));
  let pings = 0;
  for (let i = 0; i < 5000 && (!done || pings < 20); i++) {
    t.is(await (await control.request(`ping ${i}`)).text(), `ping ${i}`);
    pings++;
  }
  t.is(await (await upload).text(), String(64 * MiB), 'the bulk upload arrived whole');
  t.true(pings >= 20, 'control requests went back and forth');
  t.log(`${checked} SEQs on the sink within the hold`);
  t.true(checked > 0, 'the sink was credited while control was active');
  t.deepEqual(over, [], 'no window offered beyond the share');
});
