/**
 * The ANSWERS profile, a one-to-many test service: a MSG whose body is `N` or
 * `N:SIZE` is answered by N ANS messages (each SIZE octets, default a short
 * text) and then NUL. Anything else gets ERR 501.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { defineProfile } from './define.js';

/** URI of the answers profile. */
export const ANSWERS_URI = 'urn:beepstream:profiles:answers';

/** Most answers one MSG may ask for. */
export const MAX_ANSWERS = 1_000_000;
/** Largest answer size one MSG may ask for (octets). */
export const MAX_ANSWER_SIZE = 16 * 1024 * 1024;

/** Parse `N` or `N:SIZE`; `null` when malformed or out of range. */
export function parseAnswersRequest(text: string): { count: number; size: number | undefined } | null {
  const m = /^\s*([0-9]{1,7})(?::([0-9]{1,9}))?\s*$/.exec(text);
  if (!m) return null;
  const count = Number(m[1]);
  const size = m[2] === undefined ? undefined : Number(m[2]);
  if (count > MAX_ANSWERS || (size !== undefined && size > MAX_ANSWER_SIZE)) return null;
  return { count, size };
}

let FILL: Buffer = Buffer.alloc(0);

/** `size` octets of 'a', a view of one buffer shared by all requests (grown on demand). */
function fillOf(size: number): Buffer {
  if (FILL.length < size) FILL = Buffer.alloc(Math.max(size, Math.min(MAX_ANSWER_SIZE, 2 * FILL.length)), 0x61);
  return FILL.subarray(0, size);
}

/** The answers profile. */
export const answersProfile = defineProfile({
  uri: ANSWERS_URI,
  /** Parse `N` or `N:SIZE`; send N answers, each awaited (paced by the window), then NUL. */
  async onMessage(msg, res) {
    const text = await msg.text(64).catch(() => null);
    const req = text === null ? null : parseAnswersRequest(text);
    if (!req) {
      await res.error(501, `expected "N" or "N:SIZE" with N <= ${MAX_ANSWERS} and SIZE <= ${MAX_ANSWER_SIZE}`);
      return;
    }
    // Issue 17: one shared fill buffer, not one per request (a peer asking every
    // channel for 16 MiB answers while never reading would otherwise make us
    // allocate 16 MiB per channel). Answers are views of it.
    const fill = req.size === undefined ? null : fillOf(req.size);
    for (let i = 0; i < req.count; i++) {
      // Awaiting each answer paces the loop by the peer's window.
      await res.answer(fill ?? `answer ${i + 1} of ${req.count}`);
    }
    await res.end();
  },
});
