/**
 * A custom profile, the running example of `docs/writing-a-profile.md`: a
 * made-up instrument that serves temperature readings.
 *
 * - URI `urn:example:readings`.
 * - Initiation content (piggybacked on the start): the units, `celsius`
 *   (the default) or `kelvin`; anything else is refused with 504
 *   (parameter not implemented). The accepted units are piggybacked back.
 * - `latest` → RPY: one reading (one-to-one).
 * - `series N` → N × ANS, one reading each, then NUL (one-to-many).
 * - anything else → ERR 501 (syntax error in parameters).
 *
 * This module only defines the profile; `answers-stream.ts` serves and uses
 * it, `readings-profile.test.ts` tests it.
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import { defineProfile, type Channel } from 'beepstream';

/** URI of the readings profile. */
export const READINGS_URI = 'urn:example:readings';

/** Units a channel can ask for. */
export type Units = 'celsius' | 'kelvin';

/** Most readings one `series` may ask for. */
export const MAX_SERIES = 10_000;

/** Parse the initiation content: `celsius` when absent, null when not supported. */
function parseUnits(content: Buffer | undefined): Units | null {
  const text = content === undefined ? '' : content.toString('utf8').trim();
  if (text === '' || text === 'celsius') return 'celsius';
  return text === 'kelvin' ? 'kelvin' : null;
}

/** The i-th reading of the (simulated) instrument, formatted in `units`. */
export function reading(i: number, units: Units): string {
  const celsius = 21.5 + ((i * 7) % 10) / 10;
  return units === 'kelvin' ? `${(celsius + 273.15).toFixed(2)} K` : `${celsius.toFixed(2)} °C`;
}

/** Per-channel state: the units each channel asked for. */
const unitsOf = new WeakMap<Channel, Units>();

/** The readings profile. */
export const readingsProfile = defineProfile({
  uri: READINGS_URI,

  // The peer asks for a channel: accept, piggybacking the units, or refuse with a reply code.
  onStart({ content }) {
    const units = parseUnits(content);
    if (units === null) return { accept: false, code: 504, diagnostic: 'units must be celsius or kelvin' };
    return { accept: true, content: units };
  },

  // The channel exists: keep its state.
  onOpen(channel, content) {
    unitsOf.set(channel, parseUnits(content) ?? 'celsius');
  },

  // MSGs of one channel arrive here one at a time, in order.
  async onMessage(msg, res, channel) {
    const units = unitsOf.get(channel) ?? 'celsius';
    const request = await msg.text(64).catch(() => null); // bounded: a huge MSG is refused, not buffered
    if (request === 'latest') {
      await res.reply(reading(0, units), { contentType: 'text/plain; charset=utf-8' });
      return;
    }
    const series = /^series ([0-9]{1,5})$/.exec(request ?? '');
    if (series && Number(series[1]) <= MAX_SERIES) {
      const count = Number(series[1]);
      for (let i = 0; i < count; i++) {
        // Each answer resolves once handed to the transport: awaiting it paces
        // this loop by the peer's receive window (backpressure).
        await res.answer(reading(i, units), { contentType: 'text/plain; charset=utf-8' });
      }
      await res.end(); // NUL: the one-to-many reply is complete
      return;
    }
    await res.error(501, `expected "latest" or "series N" with N <= ${MAX_SERIES}`);
  },

  onClosed(channel) {
    unitsOf.delete(channel);
  },
});
