/**
 * The scheduler's ready rings (src/channels/ring.ts): FIFO sets of channels with
 * membership kept as a bit on the member.
 */
import test from 'ava';
import fc from 'fast-check';
import { ReadyRing, type RingMember } from '../../src/channels/ring.js';

const member = (id: number): RingMember & { id: number } => ({ id, ringBits: 0 });

test('members come out in the order they went in; adding a member twice keeps its first place', (t) => {
  const r = new ReadyRing<ReturnType<typeof member>>(1);
  const [a, b, c] = [member(1), member(2), member(3)];
  r.add(a);
  r.add(b);
  r.add(a);
  r.add(c);
  t.is(r.size, 3);
  t.deepEqual([r.shift()?.id, r.shift()?.id, r.shift()?.id, r.shift()], [1, 2, 3, undefined]);
  t.is(a.ringBits, 0);
});

test('two rings keep separate bits on the same member', (t) => {
  const r1 = new ReadyRing<RingMember>(1);
  const r2 = new ReadyRing<RingMember>(2);
  const m = member(1);
  r1.add(m);
  r2.add(m);
  t.true(r1.has(m) && r2.has(m));
  r1.delete(m);
  t.false(r1.has(m));
  t.true(r2.has(m));
  t.is(r1.size, 0);
  t.is(r2.shift(), m);
});

test('at() iterates front to back and sees members added during the iteration; clear() empties and resets bits', (t) => {
  const r = new ReadyRing<ReturnType<typeof member>>(4);
  const ms = Array.from({ length: 20 }, (_, i) => member(i));
  // Wrap the circular array before iterating: take some out, put more in (forces growth past 8).
  for (const m of ms.slice(0, 6)) r.add(m);
  r.shift();
  r.shift();
  const seen: number[] = [];
  for (let i = 0; i < r.size; i++) {
    const m = r.at(i);
    seen.push(m.id);
    if (m.id === 3) for (const n of ms.slice(6, 16)) r.add(n);
    r.add(m); // already a member: no effect
  }
  t.deepEqual(seen, [2, 3, 4, 5, ...Array.from({ length: 10 }, (_, i) => i + 6)]);
  r.clear();
  t.is(r.size, 0);
  t.true(ms.every((m) => m.ringBits === 0));
});

test('property: a ring behaves as an insertion-ordered set under add, delete and shift', (t) => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('add' as const), i: fc.nat(11) }),
    fc.record({ k: fc.constant('delete' as const), i: fc.nat(11) }),
    fc.record({ k: fc.constant('shift' as const), i: fc.constant(0) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const ms = Array.from({ length: 12 }, (_, i) => member(i));
      const r = new ReadyRing<ReturnType<typeof member>>(8);
      const model = new Set<number>();
      for (const o of ops) {
        if (o.k === 'add') {
          r.add(ms[o.i]!);
          model.add(o.i);
        } else if (o.k === 'delete') {
          r.delete(ms[o.i]!);
          model.delete(o.i);
        } else {
          const want = model.values().next();
          const got = r.shift();
          if (want.done) {
            if (got !== undefined) return false;
          } else {
            model.delete(want.value);
            if (got?.id !== want.value) return false;
          }
        }
        if (r.size !== model.size) return false;
      }
      const rest: number[] = [];
      for (let i = 0; i < r.size; i++) rest.push(r.at(i).id);
      return JSON.stringify(rest) === JSON.stringify([...model]);
    }),
    { numRuns: 300 },
  );
  t.pass();
});
