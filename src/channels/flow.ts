/**
 * The receive-window policy: the one place that decides how large a
 * channel's receive window is, when it grows or shrinks, and when a SEQ is
 * due. {@link RecvWindow} stays pure mechanism (edges, serial arithmetic);
 * this module only tells it what size to have and when to advertise.
 *
 * Sizing follows TCP receive-buffer auto-tuning (Linux `tcp_rcv_space_adjust`,
 * Dynamic Right-Sizing) and QUIC flow controllers (quic-go, Chromium):
 *
 * - **RTT**: when we send a SEQ that moves our edge from E to E′, we note E
 *   and the time. A frame that *begins exactly at* E was held back by our
 *   window until the SEQ reached the sender, so its arrival time minus the
 *   SEQ's departure is one round trip (plus the sender's turn-around). A frame
 *   that crosses E without beginning there yields no sample: the sender was
 *   not waiting. Channel starts we send add a sample (request → reply). Samples
 *   are shared by every channel of the session: one transport, one path.
 * - **Rate**: octets the application consumed (read: a `'data'` handler,
 *   `read()`, iteration, `bytes()`) over an epoch of at least one measured
 *   RTT (the smallest sample, at least 1 ms).
 * - **Sizing RTT**: the smallest sample (the path's propagation delay:
 *   samples above it carry queueing, and sizing from them would feed on
 *   itself — a larger window queues more, which looks like a longer RTT,
 *   which asks for a larger window), never below {@link MIN_SIZING_RTT_MS}
 *   (what a Node event loop under load takes to turn around).
 * - **Grow**: a frame that *ends* at an edge advertised since the last resize
 *   says the sender ran out of this size of window. If the reader then brings
 *   what sits unread down to a quarter of the window within half a sizing
 *   RTT, and the rate it kept over the last two epochs needs this size, the
 *   window grows to min(4 × size, 2 × size × RTT ÷ latest sample): about
 *   double per round trip while nothing queues (slow start), and the fixed
 *   point 2 × rate × RTT once a window's worth waits in queues. Before the
 *   reader has shown a rate over one epoch, at most one doubling.
 * - **Right-size** (Dynamic Right-Sizing): at each epoch's end a reader that
 *   keeps up gets at least 2 × rate × RTT, plus twice the rate's growth
 *   (Linux's rule: up to 6 × one round trip's delivery) while in slow start —
 *   so the window stays ahead of TCP's own slow start
 *   instead of taking turns with it. While in slow start, an epoch in which
 *   our window held the sender back (and the reader kept up) at least
 *   doubles the window, as TCP's congestion window grows; so does an epoch
 *   in which the reader kept up and its rate grew by a quarter (up to
 *   16 × rate × RTT: the rate lags a transport in its own slow start). Slow start ends
 *   when the rate stops growing (BBR's full-pipe test, not counting those
 *   epochs), and the window is trimmed toward 2.5 × rate × RTT.
 * - **Shrink**: a slow reader (half of its window or more sat unread during
 *   an epoch, while its rate needs less than half of it) halves toward
 *   2 × rate × RTT, never below the initial window (RFC 3081 §3.1.4: "slow
 *   readers should get small windows").
 * - **Updates**: a SEQ is due once the edge can move by a quarter of the
 *   window (quic-go's 25 %), at most one per output batch; so a reader that
 *   keeps up never leaves a sender blocked while the window is ≥ 4/3 × BDP.
 * - **Budget**: buffer beyond the initial windows is drawn from a session
 *   budget; when it runs out, a channel below its fair share (budget ÷ busy
 *   channels) takes back buffer from channels above it. Granted window is
 *   never retracted (RFC 3081 §3.1.4 after RFC 1122 §4.2.2.16): a smaller
 *   size only limits what later SEQs advertise.
 * - **Memory budgets** (hostile peers): what a session holds because of its
 *   peer — windows granted and unused, octets unread, replies owed that the
 *   peer's window does not let us send — is charged to `sessionMemoryBudget`
 *   and the listener's {@link MemoryPool}, which cap what a SEQ advertises.
 *
 * The clock is injected (milliseconds), so the policy is a pure unit.
 *
 * Parts (each one concept): `flow/params.ts` (limits, counters, constants),
 * `flow/rtt.ts` (the RTT estimate), `flow/channel.ts` (one channel: samples,
 * rate, growth, shrink, SEQs), `flow/session.ts` (the session: budget,
 * fairness, memory caps), `flow/slowstart.ts` (session-wide slow start),
 * `flow/memory.ts` (memory budgets shared by a listener's sessions). This
 * module is their façade.
 *
 * @module
 */
export { type FlowCounters, type FlowLimits, UPDATE_FRACTION, MIN_SIZING_RTT_MS, CONTROL_HOLD_MS, CONTROL_BULK_WINDOW } from './flow/params.js';
export { RttEstimator } from './flow/rtt.js';
export { MemoryPool, MESSAGE_COST } from './flow/memory.js';
export { ChannelFlow, type ChannelFlowStats } from './flow/channel.js';
export { SessionFlow } from './flow/session.js';
