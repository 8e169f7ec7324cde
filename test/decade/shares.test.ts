/**
 * The weighted fair queuing of a session's GETs (src/decade/shares.ts), on an
 * injected clock: who may write, by virtual time; stalled transfers left out.
 */
import test from 'ava';
import { LEAD, Shares, STALL_MS } from '../../src/decade/shares.js';

const KiB = 1024;

test('alone, a transfer always writes; two transfers with weights 3 and 1 write 3:1 when each writes whenever it may', (t) => {
  let now = 0;
  const s = new Shares(() => now);
  const a = s.join(3);
  t.true(s.mayWrite(a));
  const b = s.join(1);
  let sa = 0;
  let sb = 0;
  // Round after round, each writes 64 KiB if it may (both always have data).
  for (let i = 0; i < 4000; i++) {
    now += 0.1;
    if (s.mayWrite(a)) {
      s.wrote(a, 64 * KiB);
      sa += 64 * KiB;
    }
    if (s.mayWrite(b)) {
      s.wrote(b, 64 * KiB);
      sb += 64 * KiB;
    }
  }
  const ratio = sa / sb;
  t.true(Math.abs(ratio - 3) < 0.05, `ratio ${ratio}`);
  // Neither ran further ahead of the other than the lead (plus one write).
  t.true(Math.abs(a.v - b.v) <= LEAD + 64 * KiB);
});

test('a transfer that stops writing is left out after STALL_MS, and a newcomer starts level with the others (no credit for the past)', (t) => {
  let now = 0;
  const s = new Shares(() => now);
  const a = s.join(1);
  const b = s.join(1);
  s.wrote(b, 4 * LEAD);
  t.false(s.mayWrite(b), 'b is far ahead of a, which is still moving');
  now += STALL_MS + 1;
  t.true(s.mayWrite(b), 'a has not written for STALL_MS: b goes on');
  s.wrote(b, 10 * LEAD);
  const c = s.join(2);
  t.is(c.v, b.v, 'the newcomer joins at the floor of the moving transfers');
  s.leave(a);
  s.leave(b);
  t.true(s.mayWrite(c));
  t.is(s.size, 1);
});

test('turn() waits while a transfer is ahead and resolves once the other catches up or leaves', async (t) => {
  let now = 0;
  const s = new Shares(() => now);
  const a = s.join(1);
  const b = s.join(1);
  s.wrote(a, 2 * LEAD);
  let went = false;
  const p = s.turn(a).then(() => (went = true));
  await new Promise((r) => setImmediate(r));
  t.false(went);
  s.wrote(b, 2 * LEAD);
  await p;
  t.true(went);
  s.wrote(a, 4 * LEAD);
  const q = s.turn(a);
  s.leave(b);
  await q;
  t.pass();
});
