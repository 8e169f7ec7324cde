/**
 * The other side of silly-window avoidance (RFC 1122 §4.2.3.4): a peer that
 * follows RFC 3081 but whose whole receive window is small (256 octets here,
 * below the 512-octet threshold that answers CVE-2019-9511's data dribble)
 * must still get its octets. Silly-window avoidance holds such a window back;
 * after the override timeout (`SWS_OVERRIDE_MS`) the listener sends into it
 * anyway — one small frame per interval, so a dribbling attacker gains little.
 */
import test from 'ava';
import { createServer, answersProfile } from '../../src/index.js';
import { SWS_OVERRIDE_MS } from '../../src/channels/core.js';
import { ANSWERS, Attacker } from '../helpers/hostile.js';

test('a conformant peer whose whole window is 256 octets still receives a 6 KiB answer, in frames no faster than one per override interval', async (t) => {
  t.timeout(60_000);
  const server = createServer({ profiles: [answersProfile] });
  const { port } = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  const a = await Attacker.open(port);
  t.teardown(() => a.destroy());
  const [ch] = await a.startChannels(1, 1, ANSWERS);
  const channel = ch as number;
  // One answer of 6144 octets: the first 4096 ride in RFC 3081's initial window.
  t.true(a.frame('MSG', channel, 0, '\r\n1:6144'));
  const t0 = Date.now();
  let seqs = 0;
  let acked = -1;
  // Acknowledge everything received, always offering just 256 octets more.
  const done = a.until(
    () => {
      const got = a.received.get(channel) ?? 0;
      if (got !== acked && !a.closed) {
        acked = got;
        a.socket.write(`SEQ ${channel} ${got >>> 0} 256\r\n`);
        seqs++;
      }
      return got >= 6144;
    },
    30_000,
    'the whole answer through a 256-octet window',
  );
  // Wake the check as octets arrive (until() re-checks on every frame).
  await done;
  const ms = Date.now() - t0;
  const got = a.received.get(channel) ?? 0;
  t.log(`${got} octets (headers and framing included) in ${ms} ms with ${seqs} SEQs of 256 octets`);
  t.true(got >= 6144);
  // About (6144 − 4096) ÷ 256 = 8 frames held back one interval each: it took at
  // least a few intervals (the window was held back), and it finished.
  t.true(ms >= 3 * SWS_OVERRIDE_MS, `${ms} ms: the small window was held back before it was used`);
});
