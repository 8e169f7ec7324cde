/**
 * Bandwidth weights (draft §6.1.2; spec/decade.md, "Tokens"): two GETs on
 * one connection whose tokens carry weights 3 and 1 share the connection
 * about 3:1. A behaviour test over a real socket, not a speed test: it
 * compares octet counts of the two transfers over the same stretch of time
 * (while both run), whatever the machine's speed; the 10 % figure is the
 * benchmark's (bench/README.md, `decade-weights`).
 */
import test from 'ava';
import { nameOf } from '../../src/decade/index.js';
import { octets, startDecade } from '../helpers/decade.js';

/**
 * Octets of the light transfer received while the heavy one received its
 * octets from 10 % to 90 % of its size: the heavy one's share over the light
 * one's, measured by the receiver in arrival order ('data' events, so the
 * reader never reorders what the sender scheduled).
 */
async function share(h: Awaited<ReturnType<typeof startDecade>>, heavyWeight: number, lightWeight: number): Promise<{ ratio: number; lightDone: boolean }> {
  const size = 24 * 1024 * 1024;
  const a = octets(size, 31);
  const b = octets(size, 32);
  const c = await h.client();
  const put = await h.token({ operations: ['put'] });
  await c.put(put, a);
  await c.put(put, b);
  const [ta, tb] = await Promise.all([h.token({ operations: ['get'], weight: heavyWeight }), h.token({ operations: ['get'], weight: lightWeight })]);
  const [ga, gb] = await Promise.all([c.getStream(ta, nameOf(a).name), c.getStream(tb, nameOf(b).name)]);
  let na = 0;
  let nb = 0;
  let mark: { a: number; b: number } | undefined;
  let ratio = Number.NaN;
  let lightDone = false;
  const done = (body: NodeJS.ReadableStream): Promise<void> =>
    new Promise((resolve, reject) => {
      body.once('end', resolve);
      body.once('error', reject);
    });
  ga.body.on('data', (chunk: Buffer) => {
    na += chunk.byteLength;
    if (mark === undefined && na >= size / 10) mark = { a: na, b: nb };
    if (Number.isNaN(ratio) && mark !== undefined && na >= (size * 9) / 10) ratio = (na - mark.a) / Math.max(1, nb - mark.b);
  });
  gb.body.on('data', (chunk: Buffer) => {
    nb += chunk.byteLength;
    if (nb === size && Number.isNaN(ratio)) lightDone = true;
  });
  await Promise.all([done(ga.body), done(gb.body)]);
  return { ratio, lightDone };
}

test.serial('two GETs on one connection with token weights 3 and 1 share its bandwidth about 3:1 while both run', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const { ratio, lightDone } = await share(h, 3, 1);
  t.log(`ratio ${ratio.toFixed(3)}`);
  t.false(lightDone, 'the weight-1 transfer did not finish before the weight-3 one had 90 % of its octets');
  // 3:1 within 25 % here (frames are scheduled whole, so a short window carries rounding); the
  // benchmark row shows the 10 % figure over larger objects.
  t.true(ratio >= 2.25 && ratio <= 3.75, `octets received 3:1-weighted vs 1-weighted: ${ratio.toFixed(2)}`);
});

test.serial('the same two GETs with equal weights share about 1:1 (the 3:1 above comes from the weights)', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const { ratio } = await share(h, 1, 1);
  t.log(`ratio ${ratio.toFixed(3)}`);
  t.true(ratio >= 0.6 && ratio <= 1.6, `octets received with equal weights: ${ratio.toFixed(2)}`);
});

test.serial('a weighted GET whose client stops reading does not hold back the other GETs of the session', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const size = 8 * 1024 * 1024;
  const a = octets(size, 41);
  const b = octets(size, 42);
  const c = await h.client();
  const put = await h.token({ operations: ['put'] });
  await c.put(put, a);
  await c.put(put, b);
  const heavy = await c.getStream(await h.token({ operations: ['get'], weight: 3 }), nameOf(a).name);
  const light = await c.getStream(await h.token({ operations: ['get'], weight: 1 }), nameOf(b).name);
  // The heavy one is never read (its window closes); the light one is read to the end.
  let n = 0;
  for await (const chunk of light.body as AsyncIterable<Buffer>) n += chunk.byteLength;
  t.is(n, size);
  heavy.body.destroy();
});
