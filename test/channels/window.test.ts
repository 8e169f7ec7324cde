import test from 'ava';
import fc from 'fast-check';
import { INITIAL_WINDOW, MAX_WINDOW, RecvWindow, SendWindow, seqAdd, seqDiff, seqLte } from '../../src/channels/window.js';

const MAX = 4294967295; // 2^32 - 1
const HALF = 0x80000000; // 2^31

/** A SendWindow whose sequence space starts at `start` (fields set directly). */
function sendAt(start: number, window = INITIAL_WINDOW): SendWindow {
  const w = new SendWindow();
  w.nextSeq = start;
  w.ackno = start;
  w.edge = seqAdd(start, window);
  return w;
}

/** A RecvWindow whose sequence space starts at `start` (fields set directly). */
function recvAt(start: number, size = INITIAL_WINDOW, window = INITIAL_WINDOW): RecvWindow {
  const w = new RecvWindow(size);
  w.expected = start;
  w.edge = seqAdd(start, window);
  return w;
}

// ---------------------------------------------------------------- arithmetic

test('constants: initial window 4096 (RFC 3081 §3.1.1), max window 2^31-1', (t) => {
  t.is(INITIAL_WINDOW, 4096);
  t.is(MAX_WINDOW, 2147483647);
});

test('seqAdd wraps modulo 2^32', (t) => {
  t.is(seqAdd(0, 0), 0);
  t.is(seqAdd(1, 2), 3);
  t.is(seqAdd(MAX, 1), 0);
  t.is(seqAdd(MAX, 2), 1);
  t.is(seqAdd(MAX - 99, 4096), 3996);
  t.is(seqAdd(MAX, MAX), MAX - 1);
  t.is(seqAdd(HALF, HALF), 0);
});

test('seqDiff is the forward distance modulo 2^32', (t) => {
  t.is(seqDiff(5, 3), 2);
  t.is(seqDiff(3, 5), MAX - 1); // 2^32 - 2: "behind" by 2
  t.is(seqDiff(0, MAX), 1);
  t.is(seqDiff(10, MAX - 9), 20);
  t.is(seqDiff(7, 7), 0);
});

test('seqLte follows serial-number arithmetic across the wrap', (t) => {
  t.true(seqLte(0, 0));
  t.true(seqLte(1, 2));
  t.false(seqLte(2, 1));
  t.true(seqLte(MAX, 0), '2^32-1 is just before 0');
  t.true(seqLte(MAX - 10, 5));
  t.false(seqLte(5, MAX - 10));
  t.true(seqLte(0, HALF - 1), 'distance 2^31 - 1 still counts as ahead');
  t.false(seqLte(0, HALF), 'distance 2^31 is not ahead');
});

test('seq arithmetic properties', (t) => {
  const u32 = fc.integer({ min: 0, max: MAX });
  fc.assert(
    fc.property(u32, u32, (a, b) => {
      const s = seqAdd(a, b);
      return (
        Number.isInteger(s) && s >= 0 && s <= MAX &&
        seqDiff(s, a) === b &&
        seqAdd(b, seqDiff(a, b)) === a &&
        seqLte(a, b) === seqDiff(b, a) < HALF &&
        (a === b || seqLte(a, b) !== seqLte(b, a) || seqDiff(a, b) === HALF)
      );
    }),
  );
  t.pass();
});

// ---------------------------------------------------------------- SendWindow

test('SendWindow starts at seqno 0 with the initial 4096-octet window', (t) => {
  const w = new SendWindow();
  t.is(w.nextSeq, 0);
  t.is(w.ackno, 0);
  t.is(w.edge, 4096);
  t.is(w.available, 4096);
});

test('SendWindow.consume moves nextSeq and refuses to exceed the window', (t) => {
  const w = new SendWindow();
  w.consume(1000);
  t.is(w.nextSeq, 1000);
  t.is(w.available, 3096);
  w.consume(3096);
  t.is(w.available, 0);
  t.throws(() => w.consume(1), { instanceOf: RangeError });
  t.is(w.nextSeq, 4096, 'a refused consume changes nothing');
  w.consume(0);
  t.is(w.nextSeq, 4096);
});

test('SendWindow.update accepts ackno == nextSeq and ackno behind it', (t) => {
  const w = new SendWindow();
  w.consume(4096);
  t.true(w.update(4096, 8192));
  t.is(w.ackno, 4096);
  t.is(w.edge, 12288);
  t.is(w.available, 8192);
  t.true(w.update(2048, 10240), 'acknowledging less than everything is fine');
  t.is(w.edge, 12288);
  t.is(w.available, 8192);
  t.true(w.update(0, 4096));
});

test('SendWindow.update rejects an ackno beyond nextSeq and keeps its state', (t) => {
  const w = new SendWindow();
  w.consume(100);
  t.false(w.update(101, 4096));
  t.false(w.update(5000, 4096));
  t.false(w.update(HALF, 4096));
  t.is(w.ackno, 0);
  t.is(w.edge, 4096);
  t.is(w.available, 3996);
  // Nothing sent at all: only ackno 0 is valid.
  const fresh = new SendWindow();
  t.false(fresh.update(1, 4096));
  t.true(fresh.update(0, 4096));
});

test('SendWindow.update across the 2^32 wrap', (t) => {
  const start = MAX - 99; // 100 octets before the wrap
  const w = sendAt(start);
  t.is(w.available, 4096);
  w.consume(300);
  t.is(w.nextSeq, 200, 'nextSeq wrapped');
  t.is(w.available, 3796);
  t.false(w.update(201, 4096), 'one past nextSeq, after the wrap');
  t.false(w.update(5000, 4096));
  t.false(w.update(seqAdd(200, HALF - 1), 4096), 'anything ahead of nextSeq in serial arithmetic');
  t.true(w.update(MAX, 4096), 'an ackno before the wrap is behind nextSeq');
  t.is(w.edge, 4095);
  t.is(w.available, 3895);
  t.true(w.update(200, 4096), 'ackno == nextSeq after the wrap');
  t.is(w.ackno, 200);
  t.is(w.edge, 4296);
  t.is(w.available, 4096);
  // The edge itself can wrap.
  const e = sendAt(MAX - 10, 100);
  t.is(e.edge, 89);
  t.is(e.available, 100);
  e.consume(100);
  t.is(e.nextSeq, 89);
  t.is(e.available, 0);
});

test('SendWindow: a window shrunk behind nextSeq gives available 0, never negative', (t) => {
  const w = new SendWindow();
  w.consume(4000);
  t.true(w.update(1000, 10)); // edge 1010, far behind nextSeq 4000
  t.is(w.edge, 1010);
  t.is(w.available, 0);
  t.throws(() => w.consume(1), { instanceOf: RangeError });
  t.true(w.update(4000, 0));
  t.is(w.available, 0);
  t.true(w.update(4000, 1));
  t.is(w.available, 1);
  // Shrink across the wrap.
  const z = sendAt(MAX - 5);
  z.consume(100);
  t.true(z.update(MAX - 5, 50));
  t.is(z.available, 0);
});

// ---------------------------------------------------------------- RecvWindow

test('RecvWindow starts expecting seqno 0 with edge 4096; size is clamped to [4096, 2^31-1]', (t) => {
  const w = new RecvWindow();
  t.is(w.expected, 0);
  t.is(w.edge, 4096);
  t.is(w.buffered, 0);
  t.is(w.size, 4096);
  t.is(w.remaining, 4096);
  t.is(new RecvWindow(10).size, 4096);
  t.is(new RecvWindow(65536).size, 65536);
  t.is(new RecvWindow(2 ** 40).size, MAX_WINDOW);
  const big = new RecvWindow(65536);
  t.is(big.edge, 4096, 'the edge starts at the initial window whatever the buffer');
});

test('RecvWindow.check: seqno mismatch, overrun, exact fit', (t) => {
  const w = new RecvWindow();
  t.is(w.check(0, 0), 'ok');
  t.is(w.check(0, 4096), 'ok');
  t.is(w.check(0, 4097), 'overrun');
  t.is(w.check(1, 10), 'seqno');
  t.is(w.check(MAX, 10), 'seqno');
  w.receive(4000);
  t.is(w.expected, 4000);
  t.is(w.buffered, 4000);
  t.is(w.remaining, 96);
  t.is(w.check(0, 1), 'seqno');
  t.is(w.check(4000, 96), 'ok');
  t.is(w.check(4000, 97), 'overrun');
  t.is(w.check(4001, 1), 'seqno', 'seqno is checked before size');
  t.deepEqual([w.expected, w.edge, w.buffered], [4000, 4096, 4000], 'check changes nothing');
});

test('RecvWindow.check and receive across the wrap', (t) => {
  const w = recvAt(MAX - 999);
  t.is(w.remaining, 4096);
  t.is(w.edge, 3096);
  t.is(w.check(MAX - 999, 4096), 'ok');
  t.is(w.check(MAX - 999, 4097), 'overrun');
  w.receive(1500);
  t.is(w.expected, 500);
  t.is(w.remaining, 2596);
  t.is(w.check(500, 2596), 'ok');
  t.is(w.check(500, 2597), 'overrun');
  t.is(w.check(MAX - 999, 1), 'seqno');
  w.receive(2596);
  t.is(w.remaining, 0);
  t.is(w.check(3096, 1), 'overrun');
  t.is(w.check(3096, 0), 'ok');
});

test('RecvWindow.consume never makes buffered negative', (t) => {
  const w = new RecvWindow();
  w.receive(100);
  w.consume(60);
  t.is(w.buffered, 40);
  w.consume(1000);
  t.is(w.buffered, 0);
});

test('RecvWindow.takeUpdate only once the edge can advance by at least the threshold given', (t) => {
  const w = new RecvWindow(); // size 4096
  t.is(w.takeUpdate(w.size / 2), null, 'nothing received: nothing to advertise');
  t.is(w.takeUpdate(1), null, 'force does not invent an advance');
  w.receive(4096);
  t.is(w.takeUpdate(w.size / 2), null, 'all buffered: edge cannot move');
  w.consume(2047);
  t.is(w.takeUpdate(w.size / 2), null, '2047 < 2048');
  t.is(w.edge, 4096);
  w.consume(1);
  t.deepEqual(w.takeUpdate(w.size / 2), { ackno: 4096, window: 2048 });
  t.is(w.edge, 6144);
  t.is(w.takeUpdate(w.size / 2), null, 'taken once');
  w.consume(10);
  t.is(w.takeUpdate(w.size / 2), null);
  t.deepEqual(w.takeUpdate(1), { ackno: 4096, window: 2058 }, 'force advertises any advance');
  t.is(w.edge, 6154);
});

test('RecvWindow with a large buffer advertises it at once', (t) => {
  const w = new RecvWindow(65536);
  t.deepEqual(w.takeUpdate(w.size / 2), { ackno: 0, window: 65536 });
  t.is(w.edge, 65536);
  t.is(w.remaining, 65536);
  w.receive(40000);
  w.consume(32767);
  t.is(w.takeUpdate(w.size / 2), null, 'advance 32767 < 32768');
  w.consume(1);
  t.deepEqual(w.takeUpdate(w.size / 2), { ackno: 40000, window: 58304 });
  t.is(w.edge, 98304);
});

test('RecvWindow.takeUpdate across the wrap', (t) => {
  const w = recvAt(MAX - 999);
  w.receive(4096);
  t.is(w.expected, 3096);
  w.consume(4096);
  t.deepEqual(w.takeUpdate(w.size / 2), { ackno: 3096, window: 4096 });
  t.is(w.edge, 7192);
  t.is(w.check(3096, 4096), 'ok');
  t.is(w.check(3096, 4097), 'overrun');
});

test('RecvWindow never retracts the advertised edge (resize smaller)', (t) => {
  const w = new RecvWindow(65536);
  t.truthy(w.takeUpdate(w.size / 2));
  t.is(w.edge, 65536);
  w.resize(4096);
  t.is(w.size, 4096);
  t.is(w.takeUpdate(w.size / 2), null);
  t.is(w.takeUpdate(1), null);
  t.is(w.edge, 65536, 'edge kept');
  t.is(w.check(0, 65536), 'ok', 'the peer may still use all it was promised');
  w.receive(65536);
  w.consume(65536);
  // New edge 65536 + 4096: an advance of 4096 >= 2048.
  t.deepEqual(w.takeUpdate(w.size / 2), { ackno: 65536, window: 4096 });
});

test('RecvWindow.resize: clamped, and a larger buffer is advertised at the next update', (t) => {
  const w = new RecvWindow();
  w.resize(1);
  t.is(w.size, 4096);
  w.resize(2 ** 33);
  t.is(w.size, MAX_WINDOW);
  w.resize(1 << 20);
  t.is(w.size, 1 << 20);
  t.deepEqual(w.takeUpdate(w.size / 2), { ackno: 0, window: 1 << 20 });
  t.is(w.remaining, 1 << 20);
});

// ---------------------------------------------------------------- properties

type Op =
  | { op: 'send'; n: number }
  | { op: 'deliver' }
  | { op: 'consume'; n: number }
  | { op: 'update'; force: boolean }
  | { op: 'seq' }
  | { op: 'resize'; size: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('send' as const), n: fc.integer({ min: 0, max: 100000 }) }),
  fc.record({ op: fc.constant('deliver' as const) }),
  fc.record({ op: fc.constant('consume' as const), n: fc.integer({ min: 0, max: 100000 }) }),
  fc.record({ op: fc.constant('update' as const), force: fc.boolean() }),
  fc.record({ op: fc.constant('seq' as const) }),
  fc.record({ op: fc.constant('resize' as const), size: fc.integer({ min: 1, max: 1 << 20 }) }),
);

const startArb = fc.oneof(
  fc.integer({ min: 0, max: MAX }),
  fc.integer({ min: MAX - 200000, max: MAX }), // close to the wrap
  fc.constant(0),
);

test('property: a sender paced by SEQs never sends past the receiver\'s advertised edge', (t) => {
  fc.assert(
    fc.property(startArb, fc.integer({ min: 4096, max: 1 << 18 }), fc.array(opArb, { maxLength: 120 }), (start, size, ops) => {
      const snd = sendAt(start);
      const rcv = recvAt(start, size);
      // In-order transport queues in each direction, as over TCP.
      const dataInFlight: { seqno: number; size: number }[] = [];
      const seqInFlight: { ackno: number; window: number }[] = [];
      let edgeBefore = rcv.edge;
      for (const o of ops) {
        switch (o.op) {
          case 'send': {
            const n = Math.min(o.n, snd.available);
            dataInFlight.push({ seqno: snd.nextSeq, size: n });
            snd.consume(n);
            break;
          }
          case 'deliver': {
            const f = dataInFlight.shift();
            if (f) {
              if (rcv.check(f.seqno, f.size) !== 'ok') throw new Error(`receiver refused ${JSON.stringify(f)}: ${rcv.check(f.seqno, f.size)}`);
              rcv.receive(f.size);
            }
            break;
          }
          case 'consume':
            rcv.consume(o.n);
            break;
          case 'update': {
            const u = rcv.takeUpdate(o.force ? 1 : rcv.size / 2);
            if (u) seqInFlight.push(u);
            break;
          }
          case 'seq': {
            const s = seqInFlight.shift();
            if (s && !snd.update(s.ackno, s.window)) throw new Error(`sender refused SEQ ${JSON.stringify(s)}`);
            break;
          }
          case 'resize':
            rcv.resize(o.size);
            break;
        }
        // The sender's limit never passes what the receiver advertised.
        const senderLimit = seqAdd(snd.nextSeq, snd.available);
        if (snd.available < 0 || snd.available >= HALF) throw new Error(`available out of range: ${snd.available}`);
        if (!seqLte(senderLimit, rcv.edge)) throw new Error(`sender may reach ${senderLimit}, receiver advertised ${rcv.edge}`);
        // The advertised edge is monotonic.
        if (!seqLte(edgeBefore, rcv.edge)) throw new Error(`edge moved left: ${edgeBefore} -> ${rcv.edge}`);
        edgeBefore = rcv.edge;
        // Octets in flight or buffered never exceed what was granted.
        if (seqDiff(rcv.edge, rcv.expected) >= HALF) throw new Error('receiver expected passed its edge');
      }
      // Drain: everything in flight is accepted.
      for (const f of dataInFlight) {
        if (rcv.check(f.seqno, f.size) !== 'ok') throw new Error('late frame refused');
        rcv.receive(f.size);
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: the RecvWindow edge is monotonic in serial arithmetic', (t) => {
  const rOp = fc.oneof(
    fc.record({ op: fc.constant('recv' as const), n: fc.integer({ min: 0, max: 1 << 20 }) }),
    fc.record({ op: fc.constant('consume' as const), n: fc.integer({ min: 0, max: 1 << 20 }) }),
    fc.record({ op: fc.constant('update' as const), force: fc.boolean() }),
    fc.record({ op: fc.constant('resize' as const), size: fc.integer({ min: 0, max: MAX_WINDOW }) }),
  );
  fc.assert(
    fc.property(startArb, fc.integer({ min: 0, max: 1 << 22 }), fc.array(rOp, { maxLength: 150 }), (start, size, ops) => {
      const w = recvAt(start, size);
      for (const o of ops) {
        const before = w.edge;
        switch (o.op) {
          case 'recv': {
            const n = Math.min(o.n, w.remaining);
            if (w.check(w.expected, n) !== 'ok') throw new Error('a fitting frame was refused');
            w.receive(n);
            break;
          }
          case 'consume':
            w.consume(o.n);
            break;
          case 'update': {
            const u = w.takeUpdate(o.force ? 1 : w.size / 2);
            if (u) {
              if (u.ackno !== w.expected) throw new Error('ackno is not the next expected seqno');
              if (u.window < 0 || u.window > MAX_WINDOW) throw new Error(`window out of range ${u.window}`);
              if (w.edge !== seqAdd(u.ackno, u.window)) throw new Error('edge != ackno + window');
            }
            break;
          }
          case 'resize':
            w.resize(o.size);
            break;
        }
        const adv = seqDiff(w.edge, before);
        if (adv >= HALF) throw new Error(`edge retracted from ${before} to ${w.edge}`);
        if (w.remaining >= HALF) throw new Error('remaining out of range');
        if (w.buffered < 0) throw new Error('negative buffered');
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
