/**
 * The flow policy end to end: two real Sessions over an in-process link that
 * delays every chunk by a fixed time and serialises it at a fixed rate (a
 * long fat path in miniature). Behaviour, not speed: the window must reach
 * the path's bandwidth-delay product after a bounded amount of data — about
 * what doubling once per round trip moves — and the receiver must hold little.
 */
import test from 'ava';
import { Duplex } from 'node:stream';
import { Session, type Channel } from '../../src/channels/index.js';
import { defineProfile } from '../../src/profiles/index.js';

const SINK = 'urn:test:flow-sink';

/** One direction of the link: FIFO, one timer, delivery at max(link free, now) + size/rate + delay. */
class Direction {
  private readonly q: { at: number; chunk: Buffer | null }[] = [];
  private free = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly delayMs: number, private readonly bytesPerMs: number, private readonly to: () => Duplex) {}
  send(chunk: Buffer | null): void {
    const now = performance.now();
    const size = chunk ? chunk.byteLength : 0;
    this.free = Math.max(this.free, now) + size / this.bytesPerMs;
    this.q.push({ at: this.free + this.delayMs, chunk });
    this.arm();
  }
  private arm(): void {
    if (this.timer || this.q.length === 0) return;
    const head = this.q[0] as { at: number };
    this.timer = setTimeout(() => this.deliver(), Math.max(0, head.at - performance.now()));
  }
  private deliver(): void {
    this.timer = null;
    const now = performance.now();
    while (this.q.length > 0 && (this.q[0] as { at: number }).at <= now + 0.5) {
      const { chunk } = this.q.shift() as { chunk: Buffer | null };
      this.to().push(chunk);
    }
    this.arm();
  }
}

class LinkEnd extends Duplex {
  out!: Direction;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.out.send(chunk);
    cb();
  }
  override _final(cb: () => void): void {
    this.out.send(null);
    cb();
  }
}

function delayedLink(oneWayMs: number, bytesPerMs: number): [LinkEnd, LinkEnd] {
  const a = new LinkEnd();
  const b = new LinkEnd();
  a.out = new Direction(oneWayMs, bytesPerMs, () => b);
  b.out = new Direction(oneWayMs, bytesPerMs, () => a);
  return [a, b];
}

test('over a 40 ms, 25 MB/s link the receive window reaches the bandwidth-delay product after about what one doubling per round trip moves', async (t) => {
  t.timeout(60_000);
  const oneWay = 20;
  const rate = 25_000; // octets per ms
  const bdp = rate * 2 * oneWay; // 1 MB
  const [a, b] = delayedLink(oneWay, rate);
  let received = 0;
  let reachedAfter = -1;
  let serverCh: Channel | undefined;
  let openedAt = 0;
  let reachedAt = 0;
  let peakBuffered = 0;
  const total = 16 * 1024 * 1024;
  const sink = defineProfile({
    uri: SINK,
    onMessage(msg, res) {
      return new Promise<void>((resolve, reject) => {
        msg.on('data', (c: Buffer) => {
          received += c.byteLength;
          const f = serverCh?.flow;
          if (f) {
            peakBuffered = Math.max(peakBuffered, f.buffered);
            if (reachedAfter < 0 && f.window >= bdp) {
              reachedAfter = received;
              reachedAt = performance.now();
            }
          }
        });
        msg.once('end', () => res.reply(String(received)).then(resolve, reject));
        msg.once('error', reject);
      });
    },
  });
  const server = new Session(b, 'listener', { profiles: [sink] });
  server.on('channel', (ch) => {
    serverCh = ch;
    openedAt = performance.now();
  });
  const client = new Session(a, 'initiator', {});
  const ch = await client.startChannel(SINK);
  const { body, reply } = ch.createRequest();
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  await new Promise<void>((resolve, reject) => {
    body.on('error', reject);
    const go = (): void => {
      while (sent < total) {
        sent += chunk.byteLength;
        if (!body.write(chunk)) {
          body.once('drain', go);
          return;
        }
      }
      body.end(resolve);
    };
    go();
  });
  const r = await reply;
  t.is(Number(await r.text()), total, 'every octet arrived');
  const f = serverCh?.flow;
  t.truthy(f);
  t.true(reachedAfter > 0, `the window reached the BDP (${bdp}); it ended at ${f?.window}`);
  // Doubling from 64 KiB once per round trip moves about 2 × BDP before the
  // window reaches the BDP; one doubling every two round trips about 4 ×.
  t.true(reachedAfter <= 6 * bdp, `reached it after ${reachedAfter} octets (${(reachedAfter / bdp).toFixed(1)} × BDP)`);
  t.log(`window ≥ BDP after ${((reachedAt - openedAt) / (2 * oneWay)).toFixed(1)} nominal round trips, ${(reachedAfter / bdp).toFixed(1)} × BDP of data; min RTT ${f?.minRttMs.toFixed(1)} ms; peak buffered ${peakBuffered}; SEQs ${f?.seqs}; peer stalls ${f?.peerStalls}`);
  t.true((f?.minRttMs ?? 0) >= 2 * oneWay - 1, `RTT estimate ${f?.minRttMs} ms is at least the path's ${2 * oneWay} ms`);
  t.true(peakBuffered <= 2 * bdp + 64 * 1024, `the receiver held at most ${peakBuffered} unread`);
  t.true((f?.window ?? Infinity) <= 16 * 1024 * 1024, 'within the ceiling');
  await client.close();
});
