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

test('a control frame caps the other channels\' windows at their share of CONTROL_BULK_WINDOW, until CONTROL_HOLD_MS of control silence', (t) => {
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
  const share = Math.floor(CONTROL_BULK_WINDOW / flow['members'].size);
  for (const cf of bulk) {
    receiveAndConsume(cf, 16 * MiB); // the peer used everything granted before
    t.true(open(cf) <= share, `window offered while control is active: ${open(cf)} ≤ ${share}`);
    t.true(open(cf) > 0, 'never shut');
  }
  t.true(open(control) >= 16 * MiB - 100, 'the control channel itself is not capped');
  let sum = 0;
  for (const cf of bulk) sum += open(cf);
  t.true(sum <= CONTROL_BULK_WINDOW, `together at most CONTROL_BULK_WINDOW: ${sum}`);

  // Still within the hold: still capped.
  now = 10 + CONTROL_HOLD_MS - 1;
  for (const cf of bulk) receiveAndConsume(cf, open(cf));
  for (const cf of bulk) t.true(open(cf) <= share);

  // Control silent for the hold: windows open to their size again.
  now = 10 + CONTROL_HOLD_MS + 1;
  for (const cf of bulk) receiveAndConsume(cf, open(cf));
  for (const cf of bulk) t.is(open(cf), 16 * MiB, 'uncapped after the hold');
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
  // The channels of the server's session: control, sink (channel 0 is not a member).
  const share = Math.floor(CONTROL_BULK_WINDOW / 2);
  let checked = 0;
  const offers: number[] = [];
  const onFrame = (m: unknown): void => {
    const e = m as FrameEvent;
    if (e.sessionId !== srv.id || e.frame.type !== 'SEQ' || e.frame.channel !== sink.number) return;
    // Judged by the clock the policy used a moment earlier: only SEQs sent within the hold.
    const flow = srv.core.flow;
    if (flow.now() - flow.controlAt >= CONTROL_HOLD_MS) return;
    checked++;
    offers.push(e.frame.window);
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
  t.log(`${checked} SEQs on the sink within the hold; largest window offered ${Math.max(0, ...offers)} (share ${share})`);
  t.true(checked > 0, 'the sink was credited while control was active');
  t.true(offers.every((w) => w <= share), `windows offered: at most ${share}; largest ${Math.max(0, ...offers)}`);
});
