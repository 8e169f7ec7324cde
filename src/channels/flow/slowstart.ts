/**
 * Session-wide slow start: while several busy channels share one transport
 * and the session's rate still grows, the session sizes their windows
 * together, as one channel's would be sized (see {@link SessionSlowStart.epoch}).
 *
 * @module
 */
import { MAX_RATE_GAIN, MIN_EPOCH_MS, SLOW_START_GROWTH, SLOW_START_ROUNDS } from './params.js';
import type { ChannelFlow } from './channel.js';
import type { RttEstimator } from './rtt.js';

/**
 * The session's slow start: its epoch (start, octets consumed by its
 * channels, their rates), whether any channel's window held the sender back
 * during it, and the full-pipe test over the session's rate.
 */
export class SessionSlowStart {
  private ssStart = -1;
  private ssBytes = 0;
  private ssRate = 0;
  private ssPrevRate = 0;
  private ssFull = 0;
  private ssFlat = 0;
  /** @internal Set by a channel whose window held the sender back during this session epoch. */
  limited = false;
  /** Session slow start has not ended (the session's rate still grows). */
  active = true;
  /**
   * @internal The last session epoch had two or more busy channels and the
   * session is in slow start: the session, not each channel, doubles them.
   */
  together = false;

  /**
   * @internal A channel of `members` consumed `n` octets at `now`: the session's epoch.
   * Channels sharing one transport each see only a share of its rate, and
   * each channel's window-limited signals are blurred by what the others
   * queue ahead of it at the sender; so while the session's rate grows, the
   * session sizes its busy channels together, as one channel would be sized:
   * at the end of each session epoch (at least one measured RTT) in which
   * two or more channels consumed, Σ ← max(2 × rate × RTT × (1 + 2 (g − 1)),
   * min(2 × Σ, 8 × rate × RTT) if any channel's window held the sender
   * back and the session's rate grew), where Σ is the sum of the busy
   * channels' windows and g the session rate's growth (1 to 2);
   * the growth goes to the busy channels that keep up (at most a quarter of
   * their window sat unread during the epoch), smallest first, up to a
   * common level (water-filling), so no channel is left behind. The
   * doubling needs the session's rate to have grown by 25 % over its best;
   * session slow start ends with the session's own full-pipe test (3 epochs
   * in a row without that growth).
   */
  epoch(members: ReadonlySet<ChannelFlow>, rtt: RttEstimator, cf: ChannelFlow, n: number, now: number): void {
    cf.ssBytes += n;
    this.ssBytes += n;
    if (rtt.count === 0) return;
    if (this.ssStart < 0) this.ssStart = now;
    const elapsed = now - this.ssStart;
    if (elapsed < Math.max(rtt.min, MIN_EPOCH_MS)) return;
    const rate = this.ssBytes / elapsed;
    this.ssPrevRate = this.ssRate;
    this.ssRate = rate;
    const limited = this.limited;
    // Busy: consumed at least a quarter of an equal share of the epoch's
    // octets (a control channel's trickle beside a bulk one is not).
    let consuming = 0;
    for (const m of members) if (m.ssBytes > 0) consuming++;
    const floor = this.ssBytes / (4 * Math.max(1, consuming));
    let busy = 0;
    let sum = 0;
    for (const m of members) {
      if (m.ssBytes === 0 || m.ssBytes < floor) continue;
      busy++;
      sum += m.window.size;
    }
    // The session's full-pipe test counts every epoch: a channel's window
    // held its sender back in almost every epoch of a session of several
    // channels, so "limited" says little about the session; and while the
    // sum is what limits the transport, it doubles, so the rate grows.
    let growing = false;
    if (this.active && busy >= 2) {
      if (rate >= SLOW_START_GROWTH * this.ssFull) {
        this.ssFull = rate;
        this.ssFlat = 0;
        growing = true;
      } else if (++this.ssFlat >= SLOW_START_ROUNDS) {
        this.active = false;
      }
    }
    this.together = this.active && busy >= 2;
    if (this.together) {
      const g = this.ssPrevRate > 0 ? Math.min(MAX_RATE_GAIN, Math.max(1, rate / this.ssPrevRate)) : 1;
      let want = 2 * rate * rtt.sizing * (1 + 2 * (g - 1));
      // Double only while the session's rate still grows (once the transport
      // — its congestion window, its send buffer — is what limits, it does
      // not), and never past 8 × what one round trip delivers: while the
      // windows are what limits, the sum is about twice that (it doubled
      // since the octets now arriving were granted); far more says the
      // windows are not the limit, whatever one channel's signals say.
      if (limited && growing) want = Math.max(want, Math.min(2 * sum, 8 * rate * rtt.sizing));
      if (want > sum) {
        // Fill up from the smallest window: raise the busy channels that keep
        // up to a common level L so that the sum becomes `want` (those above
        // L keep theirs): an equal share for the ones left behind, and a sum
        // no larger than one channel's window would be.
        const grow: ChannelFlow[] = [];
        let fixed = 0;
        for (const m of members) {
          if (m.ssBytes === 0 || m.ssBytes < floor) continue;
          if (m.ssPeak <= m.window.size / 4) grow.push(m);
          else fixed += m.window.size;
        }
        grow.sort((x, y) => x.window.size - y.window.size);
        let rest = want - fixed;
        let level = 0;
        for (let i = 0; i < grow.length; i++) {
          level = rest / (grow.length - i);
          const w = (grow[i] as ChannelFlow).window.size;
          if (w <= level) break;
          rest -= w; // above the level: keeps its size
          level = 0;
        }
        for (const m of grow) if (level > m.window.size) m.sessionGrow(Math.floor(level));
      }
    }
    this.ssStart = now;
    this.ssBytes = 0;
    this.limited = false;
    for (const m of members) {
      m.ssBytes = 0;
      m.ssPeak = m.window.buffered;
    }
  }
}
