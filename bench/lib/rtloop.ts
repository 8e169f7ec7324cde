/**
 * The round-trip driver of the `rr-*` cases (and of `bench/heapprobe.ts`):
 * one loop per stream, each round trip started from the callback of the one
 * before (`BenchStream.roundTripCb`), every implementation alike.
 *
 * The JS heap per message is measured over this loop, so it allocates
 * nothing per round trip of its own: no promise, no `await`, no closure —
 * one object per stream made before the measurement, the latencies stored in
 * a `Float64Array` made before it too. (Until issue 13's seventh session the
 * loop was `for (…) await s.roundTrip(payload)` in an async function: an
 * `await` and the implementation's promise per round trip, about 200 B of
 * the driver's own plus 100–350 B in each adapter, in every implementation's
 * client figure; bench/README.md.)
 *
 * @module
 */
import type { BenchStream } from './adapter.js';

/** Latencies of the round trips, shared by the streams of one measurement. */
export class Latencies {
  readonly ms: Float64Array;
  count = 0;
  constructor(capacity: number) {
    this.ms = new Float64Array(capacity);
  }
}

/** One stream's loop: `n` round trips of `payload` (or until `deadline`, `performance.now()` ms). */
class StreamLoop {
  private i = 0;
  private t = 0;
  private resolve: (() => void) | null = null;
  private reject: ((e: Error) => void) | null = null;

  constructor(
    private readonly s: BenchStream,
    private readonly payload: Uint8Array,
    private readonly n: number,
    private readonly deadline: number,
    private readonly lat: Latencies | null,
  ) {}

  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.next(this.timed ? performance.now() : 0);
    });
  }

  /** Whether the clock is read: for latencies or a deadline. */
  private get timed(): boolean {
    return this.lat !== null || this.deadline !== Infinity;
  }

  /** Start the next round trip at `t` (ms; the end of the one before: one clock reading per round trip). */
  private next(t: number): void {
    if (this.i >= this.n || t >= this.deadline) {
      (this.resolve as () => void)();
      return;
    }
    this.t = t;
    this.s.roundTripCb(this.payload, this.done);
  }

  /** The round trip in flight ended (bound once). */
  private readonly done = (err?: Error): void => {
    if (err !== undefined) {
      (this.reject as (e: Error) => void)(err);
      return;
    }
    const t = this.timed ? performance.now() : 0;
    const lat = this.lat;
    if (lat !== null) lat.ms[lat.count++] = t - this.t;
    this.i++;
    this.next(t);
  };
}

/**
 * Run `perStream` round trips of `payload` on every stream concurrently (each
 * stream one at a time), until done or `deadline` (`performance.now()` ms);
 * latencies (ms) go to `lat` when given. Rejects with the first stream's error.
 */
export function roundTrips(streams: readonly BenchStream[], payload: Uint8Array, perStream: number, deadline = Infinity, lat: Latencies | null = null): Promise<void> {
  return Promise.all(streams.map((s) => new StreamLoop(s, payload, perStream, deadline, lat).run())).then(() => undefined);
}
