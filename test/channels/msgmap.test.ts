import test from 'ava';
import fc from 'fast-check';
import { MsgnoMap } from '../../src/channels/msgmap.js';

test('property: MsgnoMap behaves as a Map<number, V> (get, has, set, delete, size, values in insertion order), below and past the switch to a Map', (t) => {
  const op = fc.oneof(
    fc.record({ k: fc.constant('set' as const), key: fc.integer({ min: 0, max: 20 }), v: fc.integer() }),
    fc.record({ k: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ k: fc.constant('clear' as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const model = new Map<number, { v: number }>();
      const m = new MsgnoMap<{ v: number }>();
      for (const o of ops) {
        if (o.k === 'set') {
          const v = { v: o.v };
          model.set(o.key, v);
          if (m.set(o.key, v) !== m) return false;
        } else if (o.k === 'delete') {
          if (model.delete(o.key) !== m.delete(o.key)) return false;
        } else {
          model.clear();
          m.clear();
        }
        if (m.size !== model.size) return false;
        for (let key = 0; key <= 20; key++) if (m.get(key) !== model.get(key) || m.has(key) !== model.has(key)) return false;
        const a = [...m.values()];
        const b = [...model.values()];
        if (a.length !== b.length || a.some((x, i) => x !== b[i])) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('MsgnoMap: values() taken while in arrays is a snapshot, so entries may be deleted while iterating', (t) => {
  const m = new MsgnoMap<string>();
  m.set(1, 'a').set(2, 'b').set(3, 'c');
  const seen: string[] = [];
  for (const v of m.values()) {
    seen.push(v);
    m.delete(2);
  }
  t.deepEqual(seen, ['a', 'b', 'c']);
  t.is(m.size, 2);
});
