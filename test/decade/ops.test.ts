/**
 * What a DECADE server shows operators and a client shows its user: metrics
 * from the `beepstream:decade:operation` diagnostics channel (src/ops), and
 * progress callbacks of PUT and GET (the CLI's progress bar draws from them).
 * Serial: the metrics count every DECADE server of the process.
 */
import test from 'ava';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { nameOf } from '../../src/decade/index.js';
import { collectDecadeMetrics } from '../../src/ops/index.js';
import { octets, rejectsWith, startDecade, tempDir } from '../helpers/decade.js';

test.serial('decade metrics count operations by outcome and octets moved, with no token, name or account in them', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const register = new Registry();
  const m = collectDecadeMetrics(register);
  t.teardown(() => m.close());
  const { c, token } = await h.session();
  const data = octets(300_000, 5);
  await c.put(token, data);
  await c.get(token, nameOf(data).name);
  await rejectsWith(t, c.get(token, nameOf(octets(10, 6)).name), 'NOT_FOUND');
  const text = await register.metrics();
  t.regex(text, /beepstream_decade_operations_total\{op="put",outcome="CREATED",via="client"\} 1\n/);
  t.regex(text, /beepstream_decade_operations_total\{op="get",outcome="OK",via="client"\} 1\n/);
  t.regex(text, /beepstream_decade_operations_total\{op="get",outcome="NOT_FOUND",via="client"\} 1\n/);
  t.regex(text, /beepstream_decade_octets_total\{op="put",via="client"\} 300000\n/);
  t.regex(text, /beepstream_decade_octets_total\{op="get",via="client"\} 300000\n/);
  t.false(text.includes(token));
  t.false(text.includes(nameOf(data).name));
  t.false(text.includes('alice'));
  // After close, nothing more is counted and the names are free again.
  m.close();
  await c.put(token, octets(10, 7));
  t.false((await register.metrics()).includes('beepstream_decade_operations_total'));
  const again = collectDecadeMetrics(register);
  again.close();
  t.pass();
});

test.serial('PUT and GET report progress: increasing octet counts that end at the object size', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const { c, token } = await h.session();
  const data = octets(3 * 1024 * 1024 + 11, 8);
  const { name } = nameOf(data);
  const put: [number, number][] = [];
  await c.putStream(token, name, data.length, [data.subarray(0, 1_000_000), data.subarray(1_000_000, 2_000_000), data.subarray(2_000_000)], { onProgress: (n, total) => put.push([n, total]) });
  t.deepEqual(put, [[1_000_000, data.length], [2_000_000, data.length], [data.length, data.length]]);
  const got: number[] = [];
  const dir = await tempDir(t);
  await c.getFile(token, name, join(dir, 'out'), { onProgress: (n, total) => {
    t.is(total, data.length);
    got.push(n);
  } });
  t.true(got.length >= 1);
  t.true(got.every((n, i) => i === 0 || n > (got[i - 1] as number)), 'increasing');
  t.is(got.at(-1), data.length);
});
