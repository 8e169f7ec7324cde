/**
 * A simulated path for the flow policy's unit tests: an injected clock, a
 * fixed one-way delay, a link of fixed rate, a sender that frames up to its
 * window like the core's scheduler, optionally a transport in slow start
 * (congestion window, send buffer) between the channels and the link.
 */
import { ChannelFlow, SessionFlow, type FlowLimits } from '../../../src/channels/flow.js';
import { SendWindow } from '../../../src/channels/window.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const LIMITS: FlowLimits = { receiveWindow: 64 * KiB, maxReceiveWindow: 32 * MiB, sessionReceiveBudget: 256 * MiB };

export interface SimChannel {
  cf: ChannelFlow;
  snd: SendWindow;
  /** Octets per ms the receiving application reads (Infinity: keeps up). */
  readRate: number;
  received: number;
  consumed: number;
  /** Round trip at which the window first reached `goal`, if it did. */
  reachedAt?: number;
}

export interface Sim {
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
export function simulate(o: { rtt: number; linkRate: number; n?: number; readRate?: number[]; limits?: FlowLimits; frame?: number; goal?: number; step?: number; cwnd?: number; sndbuf?: number }): Sim {
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

