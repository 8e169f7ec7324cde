/**
 * The DECADE harness's teardown is bounded: a client, server or store whose
 * close waits on a stuck transfer fails the test with a message saying what
 * hung (after forcing it), instead of holding the ava worker for ever.
 */
import test from 'ava';
import { createServer, type Session } from '../../src/channels/index.js';
import { DecadeServer, FileStore, generateAccountKey, nameOf } from '../../src/decade/index.js';
import { bounded, closeClient, gated, octets, startDecade, startPut, stopServer, tempDir, until } from '../helpers/decade.js';

test('bounded: settles as its promise does; past the bound it runs onTimeout and rejects naming what hung', async (t) => {
  t.timeout(60_000); // a bound on every wait below (not a measurement)
  t.is(await bounded('a quick step', Promise.resolve(7), 10_000), 7);
  await t.throwsAsync(bounded('a failing step', Promise.reject(new Error('boom')), 10_000), { message: 'boom' });
  let forced = false;
  const err = await t.throwsAsync(bounded('a step that never ends', new Promise<never>(() => undefined), 50, () => (forced = true)));
  t.regex(err?.message ?? '', /^a step that never ends did not finish within 50 ms/);
  t.true(forced, 'onTimeout ran');
});

test('closeClient: a client whose close waits on a stuck PUT is destroyed and the teardown fails with a clear message', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const h = await startDecade(t);
  const { c, token } = await h.session();
  const data = octets(300_000, 5);
  const name = nameOf(data).name;
  // The first chunk goes; the second is never released: the PUT is stuck mid-object.
  const g = gated([data.subarray(0, 100_000), data.subarray(100_000)], 90_000);
  g.release();
  const put = startPut(c, token, name, data.length, g.source);
  await until('the server to see the upload', () => c.status(token, name).then((s) => s.objects[0]?.state === 'uploading', () => false));
  const err = await t.throwsAsync(closeClient(c, 500));
  t.regex(err?.message ?? '', /^closing a DECADE client did not finish within 500 ms/);
  t.true(c.session.handle.isClosed, 'the session was destroyed');
  await t.throwsAsync(put, undefined, 'the stuck PUT failed with its session');
  g.release();
});

test('stopServer: a store whose close never ends fails the teardown after the bound, and the server is closed anyway', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const dir = await tempDir(t);
  // A store that never finishes closing: a stand-in for one stuck on a transfer.
  class StuckStore extends FileStore {
    override close(): Promise<void> {
      void super.close();
      return new Promise<void>(() => undefined);
    }
  }
  const store = new StuckStore({ dir });
  await store.open();
  const key = generateAccountKey();
  const decade = new DecadeServer({ store, accounts: [{ id: 'alice', publicKey: key.publicJwk }] });
  const server = createServer({ profiles: [...decade.profiles] });
  await server.listen(0, '127.0.0.1');
  const sessions = new Set<Session>();
  const err = await t.throwsAsync(stopServer(decade, server, store, sessions, 300));
  t.regex(err?.message ?? '', /^closing the DECADE store did not finish within 300 ms/);
  t.is(server.address(), null, 'the BEEP server stopped listening');
});
