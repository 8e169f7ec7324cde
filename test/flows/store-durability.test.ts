/**
 * Durability of the SQLite store (`src/flows/sqlite-sync.ts`): a commit is
 * written to the WAL at once and acknowledged only after an fdatasync of the
 * WAL that began after it; subscribers see it when written (default) or only
 * once synced (`deliver: 'durable'`); a failed sync stops the store; the
 * worker thread checkpoints the WAL into the database file. The syncs are
 * the real `fs.fdatasync`, held back by the test where it says so.
 */
import test from 'ava';
import { fdatasync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowsError, openSqliteStore, type FlowStore, type SqliteStoreOptions } from '../../src/flows/index.js';
import { acl, ev, readAll } from './store-contract.js';

/** A sync function that records and can hold back the real fdatasync. */
function heldSync(): { fn: NonNullable<SqliteStoreOptions['sync']>; calls: number; held: (() => void)[]; hold: boolean; fail: boolean } {
  const s = {
    calls: 0,
    held: [] as (() => void)[],
    hold: false,
    fail: false,
    fn: (fd: number, done: (err: Error | null) => void): void => {
      s.calls++;
      if (s.fail) return void setImmediate(() => done(new Error('EIO (test)')));
      const run = (): void => fdatasync(fd, (err) => done(err));
      if (s.hold) s.held.push(run);
      else run();
    },
  };
  return s;
}

async function open(t: import('ava').ExecutionContext, options: Omit<SqliteStoreOptions, 'path'> = {}): Promise<{ store: FlowStore; path: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-durable-'));
  const path = join(dir, 'f.db');
  const store = await openSqliteStore({ path, ...options });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, path };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 5; i++) await turn();
  return done;
};

test('an append is acknowledged only after a WAL sync that began after its commit; subscribers see it once written (the default)', async (t) => {
  const sync = heldSync();
  const { store } = await open(t, { sync: sync.fn });
  await store.createFlow('f', '', acl);
  sync.hold = true;
  const before = sync.calls;
  const append = store.append('f', 'a', 'p', [ev(1), ev(2)]);
  t.false(await settled(append), 'not acknowledged while the sync is held');
  t.is(sync.calls, before + 1, 'one sync began for the commit');
  t.is(await store.committedNext('f'), 3, 'written: visible to subscribers');
  t.deepEqual((await readAll(store, 'f')).map((e) => e.seq), [1, 2]);
  // A retry of the same events while the first copy is not yet on disk waits for the disk too.
  const retry = store.append('f', 'a', 'p', [ev(1), ev(2)]);
  t.false(await settled(retry));
  // Consumer positions, too, are acknowledged once on disk.
  const ack = store.ack('f', 'c', 2);
  t.false(await settled(ack));
  sync.hold = false;
  for (let i = 0; i < 100 && sync.held.length > 0; i++) {
    (sync.held.shift() as () => void)();
    await turn();
  }
  t.deepEqual(await append, { offsets: [1, 2], duplicates: 0 });
  t.deepEqual(await retry, { offsets: [1, 2], duplicates: 2 });
  t.is(await ack, 2);
});

test("deliver: 'durable' — subscribers see an event only once its WAL sync completed", async (t) => {
  const sync = heldSync();
  const { store } = await open(t, { sync: sync.fn, deliver: 'durable' });
  await store.createFlow('f', '', acl);
  sync.hold = true;
  const append = store.append('f', 'a', 'p', [ev(1)]);
  t.false(await settled(append));
  t.is(await store.committedNext('f'), 1, 'written but not synced: not visible');
  t.deepEqual(await readAll(store, 'f'), []);
  sync.hold = false;
  for (let i = 0; i < 100 && sync.held.length > 0; i++) {
    (sync.held.shift() as () => void)();
    await turn();
  }
  await append;
  t.is(await store.committedNext('f'), 2);
  t.deepEqual((await readAll(store, 'f')).map((e) => e.seq), [1]);
});

test('a failed WAL sync stops the store: the append waiting for it and every later call are UNAVAILABLE', async (t) => {
  const sync = heldSync();
  const { store } = await open(t, { sync: sync.fn });
  await store.createFlow('f', '', acl);
  sync.fail = true;
  const err = await t.throwsAsync(store.append('f', 'a', 'p', [ev(1)]), { instanceOf: FlowsError });
  t.is(err?.flowsCode, 'UNAVAILABLE');
  const later = await t.throwsAsync(store.append('f', 'a', 'p', [ev(2)]), { instanceOf: FlowsError });
  t.is(later?.flowsCode, 'UNAVAILABLE');
});

test('the WAL is checkpointed into the database file while the store runs (by its worker thread: automatic checkpoints are off on the store connection)', async (t) => {
  const { store, path } = await open(t);
  await store.createFlow('f', '', acl);
  const size0 = statSync(path).size;
  for (let b = 0; b < 20; b++) await store.append('f', 'a', 'p', Array.from({ length: 100 }, (_, i) => ev(b * 100 + i + 1)));
  // Checkpoints run once a second on a written store: wait (bounded) for the pages to reach the database file.
  let size = statSync(path).size;
  for (let i = 0; i < 100 && size < size0 + 100 * 1024; i++) {
    await new Promise((r) => setTimeout(r, 100));
    size = statSync(path).size;
  }
  t.true(size >= size0 + 100 * 1024, `the database file grew from ${size0} to ${size} octets`);
  t.is((await readAll(store, 'f', 1, 1000)).length, 2000);
});
