/**
 * Worker thread of the SQLite flow store (`sqlite-sync.ts`): its own
 * connection to the database runs `PRAGMA wal_checkpoint(PASSIVE)` when the
 * store asks (message `'checkpoint'`), so copying the WAL back into the
 * database file and syncing it never holds the store's event loop. PASSIVE
 * never blocks the store's writer; it copies what no reader still needs.
 * Replies `{ ok, log, checkpointed }` or `{ ok: false, message }`.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path } = workerData as { path: string };
const db = new Database(path, { fileMustExist: true, timeout: 1000 });

parentPort?.on('message', (m: unknown) => {
  if (m !== 'checkpoint') return;
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    parentPort?.postMessage({ ok: true, log: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 });
  } catch (err) {
    parentPort?.postMessage({ ok: false, message: (err as Error).message });
  }
});
