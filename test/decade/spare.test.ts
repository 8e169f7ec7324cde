/**
 * The spare SDT channel a relaying client keeps (DecadeClient.keepSpare):
 * a GET takes it and the replacement is started only once the GET's first
 * octets have arrived — not before its request, where the server would
 * handle the replacement's channel start first — and also when the GET is
 * refused or cancelled before any octet; a PUT replaces it at once.
 */
import test from 'ava';
import { nameOf, SDT_URI } from '../../src/decade/index.js';
import { octets, rejectsWith, startDecade, until } from '../helpers/decade.js';

type Spare = { spare: Promise<unknown> | null };
const spareOf = (c: object): Promise<unknown> | null => (c as Spare).spare;
const sdtChannels = (h: Awaited<ReturnType<typeof startDecade>>): number => {
  let n = 0;
  for (const s of h.server.sessions) for (const ch of s.core.channels.values()) if (ch.profile === SDT_URI) n++;
  return n;
};

test('a GET takes the spare and starts its replacement only after the first octets arrived', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const token = await h.token();
  const data = octets(3 * 1024 * 1024, 21);
  await c.put(token, data);
  c.keepSpare();
  await until('the spare to be open', async () => spareOf(c) !== null && (await spareOf(c)) !== undefined && sdtChannels(h) >= 1);
  const before = sdtChannels(h);
  t.true(before >= 1);
  const g = await c.getChunks(token, nameOf(data).name);
  // The range has arrived on the spare; no replacement started yet.
  t.is(spareOf(c), null);
  t.true(sdtChannels(h) <= before); // no channel started since (the PUT's may have closed meanwhile)
  const parts: Buffer[] = [];
  let first = true;
  for await (const chunk of g.chunks) {
    parts.push(Buffer.from(chunk));
    if (first) {
      first = false;
      continue;
    }
    // Asked for the second chunk: the replacement is under way.
    t.not(spareOf(c), null);
  }
  t.true(Buffer.concat(parts).equals(data));
  await spareOf(c);
  t.not(spareOf(c), null);
});

test('a refused GET and a GET cancelled before its octets replace the spare too', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const c = await h.client();
  const token = await h.token();
  const data = octets(100_000, 22);
  await c.put(token, data);
  c.keepSpare();
  await spareOf(c);
  await rejectsWith(t, c.getChunks(token, nameOf(octets(10, 23)).name), 'NOT_FOUND');
  t.not(spareOf(c), null);
  await spareOf(c);
  const g = await c.getChunks(token, nameOf(data).name);
  t.is(spareOf(c), null);
  g.cancel();
  t.not(spareOf(c), null);
  // The session still serves: the next GET on the new spare.
  t.true((await c.get(token, nameOf(data).name)).equals(data));
});
