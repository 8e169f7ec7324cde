/**
 * beepstream under test, through its public API only: a `sink` profile (one
 * huge MSG streamed in with `createRequest()`, counted as it is read, answered
 * by a small RPY carrying the count), an `echo` profile (`request()` → RPY
 * with the same body) and the same echo as a `control: true` profile, one
 * channel per stream.
 *
 * @module
 */
import { once } from 'node:events';
import type net from 'node:net';
import { WireMeter } from '../lib/byteproto.js';
import { connect, createServer, defineProfile, type Channel, type IncomingMessage, type Responder, type SessionLimits } from '../../src/index.js';
import { SLOW_READ_RATE, type BenchConn, type BenchStream, type ClientImpl, type Impl, type ImplOptions, type ServerImpl, type StreamKind } from '../lib/adapter.js';

/** URI of the bench sink profile. */
export const SINK_URI = 'urn:beepstream:bench:sink';
/** URI of the bench echo profile. */
export const ECHO_URI = 'urn:beepstream:bench:echo';

/** Bulk payload octets the sink profile has read in this process. */
const received = { octets: 0 };

/**
 * Counts and discards a MSG's body as it streams in; replies with the count.
 * It reads the body as views (`msg.views()`), the library's way for a bulk
 * receiver that does not keep what it reads.
 */
export const sinkProfile = defineProfile({
  uri: SINK_URI,
  async onMessage(msg, res) {
    let n = 0;
    for await (const v of msg.views()) {
      n += v.length;
      received.octets += v.length;
    }
    await res.reply(String(n));
  },
});

/** URI of the bench slow sink profile. */
export const SLOW_URI = 'urn:beepstream:bench:slow-sink';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A sink whose reader consumes {@link SLOW_READ_RATE} octets per second: it
 * reads a chunk, then waits until its count is back on the pace (the unread
 * rest stays in the channel, holding its receive window). Counted like the
 * sink; replies with the count.
 */
export const slowSinkProfile = defineProfile({
  uri: SLOW_URI,
  async onMessage(msg, res) {
    let n = 0;
    const t0 = performance.now();
    for await (const c of msg as AsyncIterable<Buffer>) {
      n += c.length;
      received.octets += c.length;
      const due = t0 + (n / SLOW_READ_RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    await res.reply(String(n));
  },
});

/** URI of the bench control profile. */
export const CONTROL_URI = 'urn:beepstream:bench:control';

/**
 * The echo: a body that is all here already (a small one is) is taken and
 * answered at once with no promise made (`takeBytes`, `send`); a longer one
 * is collected first. (Before issue 13's sixth session it was
 * `await res.reply(await msg.bytes())`, an async function, about 1.3 KB of
 * the server's heap per message in promises; see bench/README.md.)
 */
function echoBody(msg: IncomingMessage, res: Responder): void | Promise<void> {
  const body = msg.takeBytes();
  if (body !== null) return res.send(body);
  return msg.bytes().then((b) => res.send(b));
}

/** Replies to every MSG with its body. */
export const echoBenchProfile = defineProfile({ uri: ECHO_URI, onMessage: echoBody });

/** The same echo as a control profile: its frames go ahead of bulk channels'. */
export const controlBenchProfile = defineProfile({ uri: CONTROL_URI, control: true, onMessage: echoBody });

const URIS: Record<StreamKind, string> = { sink: SINK_URI, echo: ECHO_URI, control: CONTROL_URI, slow: SLOW_URI };

/** Octets of a data frame's header and trailer, about (`MSG 1 2 . 3456789 65536\r\n` … `END\r\n`). */
const FRAME_OVERHEAD = 36;

/**
 * A channel's flow snapshot (`channel.flow`: `buffered`, `peakBuffered`), read
 * defensively so the bench also runs against a library without it.
 */
function flowOf(ch: unknown): { buffered?: number; peakBuffered?: number } | undefined {
  const f0 = (ch as { flow?: unknown }).flow;
  let f: unknown;
  try {
    f = typeof f0 === 'function' ? (f0 as () => unknown).call(ch) : f0;
  } catch {
    return undefined;
  }
  if (f === null || typeof f !== 'object') return undefined;
  const o = f as Record<string, unknown>;
  const num = (x: unknown): number | undefined => (typeof x === 'number' ? x : undefined);
  return { buffered: num(o.buffered), peakBuffered: num(o.peakBuffered) };
}

function addStats(into: Record<string, number>, stats: object): void {
  for (const [k, v] of Object.entries(stats)) if (typeof v === 'number') into[k] = (into[k] ?? 0) + v;
}

function limitsOf(o: ImplOptions): SessionLimits {
  const limits: Record<string, number> = { ...o.limits };
  if (o.manyStreams) limits.maxChannels = Math.max(limits.maxChannels ?? 0, 1_000_000);
  // The churn and scale cases open channels far faster than the default start-rate limit.
  limits.maxStartRate = Math.max(limits.maxStartRate ?? 0, 1_000_000);
  return limits as SessionLimits;
}

class BeepStream implements BenchStream {
  private readonly ch: Channel;

  constructor(ch: Channel) {
    this.ch = ch;
  }

  async bulk(total: number, buf: Uint8Array, stop?: () => boolean): Promise<number> {
    const { body, reply } = this.ch.createRequest();
    reply.catch(() => undefined);
    let sent = 0;
    while (sent < total) {
      if (stop?.()) break;
      const n = Math.min(buf.byteLength, total - sent);
      const ok = body.write(n === buf.byteLength ? buf : buf.subarray(0, n));
      sent += n;
      if (!ok) await once(body, 'drain');
    }
    body.end();
    const count = Number(await (await reply).text());
    if (count !== sent) throw new Error(`sink counted ${count} octets, ${sent} sent`);
    return sent;
  }

  /** Octets the echo of the round trip in flight must return. */
  private expect = 0;

  /** Checks an echo (bound once: no closure per round trip). */
  private readonly checkEcho = (r: IncomingMessage): void | Promise<void> => {
    // A small reply is all here once it is handed over: taken with no promise.
    const b = r.takeBytes();
    if (b === null) return r.bytes().then((x) => this.checkLength(x));
    this.checkLength(b);
  };

  private checkLength(b: Buffer): void {
    if (b.length !== this.expect) throw new Error(`echo returned ${b.length} octets, ${this.expect} sent`);
  }

  /**
   * One request and its echo. Not an async function (as the raw TCP
   * baseline's is not): a promise chained on the request's, no generator.
   */
  roundTrip(payload: Uint8Array): Promise<void> {
    this.expect = payload.byteLength;
    return this.ch.request(payload).then(this.checkEcho);
  }

  /** The callback of the {@link roundTripCb} in flight. */
  private done: ((err?: Error) => void) | null = null;

  /** The echo of a {@link roundTripCb}, whole (bound once: no closure per round trip). */
  private readonly onEcho = (err: Error | null, body?: Buffer): void => {
    const done = this.done as (err?: Error) => void;
    this.done = null;
    if (err !== null) return done(err);
    if ((body as Buffer).length !== this.expect) return done(new Error(`echo returned ${(body as Buffer).length} octets, ${this.expect} sent`));
    done();
  };

  /** One request and its echo through `exchange()`: no promise made, on either side of the API. */
  roundTripCb(payload: Uint8Array, done: (err?: Error) => void): void {
    this.expect = payload.byteLength;
    this.done = done;
    this.ch.exchange(payload, this.onEcho);
  }

  close(): Promise<void> {
    return this.ch.close();
  }
}

async function server(o: ImplOptions): Promise<ServerImpl> {
  const srv = createServer({ profiles: [sinkProfile, slowSinkProfile, echoBenchProfile, controlBenchProfile], limits: limitsOf(o), maxSessions: 100_000, maxSessionsPerAddress: 100_000 });
  srv.on('error', () => undefined);
  srv.on('session', (s) => s.on('handlerError', () => undefined));
  const wire = new WireMeter();
  srv.server.on('connection', (raw: net.Socket) => wire.add(raw));
  const { port } = await srv.listen(0, '127.0.0.1');
  return {
    port,
    counts: () => {
      let streams = 0;
      const stats: Record<string, number> = {};
      let flow = 0;
      let flowSeen = true;
      let slowPeak: number | undefined;
      for (const s of srv.sessions) {
        streams += s.channels.size - 1;
        addStats(stats, s.stats);
        for (const [n, ch] of s.channels) {
          if (n === 0) continue;
          const f = flowOf(ch);
          if (f?.buffered === undefined) flowSeen = false;
          else flow += f.buffered;
          if (ch.profile === SLOW_URI && f?.peakBuffered !== undefined) slowPeak = Math.max(slowPeak ?? 0, f.peakBuffered);
        }
      }
      // Public first: the flow snapshot; else what came in (payload) and was not read yet.
      const estimate = (stats.octetsIn ?? 0) - FRAME_OVERHEAD * ((stats.framesIn ?? 0) + (stats.seqIn ?? 0)) - received.octets;
      const buffered = flowSeen && streams > 0 ? { octets: flow, source: 'flow' as const } : { octets: Math.max(0, estimate), source: 'estimate' as const };
      return { sessions: srv.sessions.size, streams, received: received.octets, wire: wire.total, stats, buffered, ...(slowPeak !== undefined ? { slowPeakBuffered: slowPeak } : {}) };
    },
    close: () => srv.close(1000),
  };
}

function client(o: ImplOptions): ClientImpl {
  return {
    async connect(port: number): Promise<BenchConn> {
      const session = await connect({ host: '127.0.0.1', port, limits: limitsOf(o) });
      session.on('handlerError', () => undefined);
      return {
        async open(kind: StreamKind): Promise<BenchStream> {
          return new BeepStream(await session.startChannel(URIS[kind]));
        },
        destroy() {
          session.destroy();
        },
        stats() {
          return { ...session.stats } as unknown as Record<string, number>;
        },
      };
    },
  };
}

/** beepstream. */
export const beepImpl: Impl = { name: 'beepstream', multiplexed: true, server, client };
