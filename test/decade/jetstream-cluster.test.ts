/**
 * The DECADE server on a real 3-node nats-server cluster (JetStream file
 * storage, 3 replicas): both streams are replicated, and after `kill -9` of
 * the object stream's leader an object stored before is read back whole
 * (SHA-256 checked) and a new PUT is stored — failures while the cluster
 * elects a new leader are NOT_AVAILABLE, never anything else. Bounded: every
 * retry loop has a count and each try a timeout.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { isDecadeError, JetStreamDecadeStore, nameOf } from '../../src/decade/index.js';
import { startNats } from '../helpers/nats.js';
import { octets, startDecadeOn } from '../helpers/decade.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('jetstream 3-node cluster, 3 replicas: kill -9 of the object stream leader; the stored object is read back whole and a new PUT is stored; meanwhile only NOT_AVAILABLE', async (t) => {
  t.timeout(600_000);
  const cluster = await startNats((fn) => t.teardown(fn), 3);
  const bucket = 'ha';
  const make = (): JetStreamDecadeStore => new JetStreamDecadeStore({ servers: cluster.servers, bucket, replicas: 3, timeoutMs: 5000 });
  // The cluster elects its JetStream meta leader first: opening succeeds once it has (bounded).
  let ready = false;
  for (let i = 0; i < 60 && !ready; i++) {
    const probe = make();
    ready = await probe.open().then(() => true, async () => {
      await sleep(1000);
      return false;
    });
    await probe.close();
  }
  if (!ready) return t.fail('the JetStream cluster did not become ready within 60 tries');
  const h = await startDecadeOn(t, make());
  const nc = await connect({ servers: cluster.servers, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  for (const s of [`OBJ_${bucket}`, `DECADE_${bucket}`]) t.is((await jsm.streams.info(s)).config.num_replicas, 3, `${s} has 3 replicas`);

  const { c, token } = await h.session();
  const before = octets(3 * 1024 * 1024, 11);
  t.true((await c.put(token, before)).fresh);
  const leader = (await jsm.streams.info(`OBJ_${bucket}`)).cluster?.leader;
  const node = cluster.nodes.find((n) => n.name === leader);
  if (!node) return t.fail(`no node named ${String(leader)}`);
  node.child.kill('SIGKILL');
  await node.exited;

  const codes = new Set<string>();
  /** Retry an operation through the failover (bounded); every failure must be a DecadeError, and is recorded. */
  const retry = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    for (let i = 0; i < 90; i++) {
      try {
        return await op();
      } catch (err) {
        t.true(isDecadeError(err), `${what}: a DecadeError, got ${String(err)}`);
        codes.add(isDecadeError(err) ? err.decadeCode : String(err));
        await sleep(1000);
      }
    }
    throw new Error(`${what} did not succeed within 90 tries`);
  };
  const back = await retry('the GET after the kill', () => c.get(token, nameOf(before).name));
  t.is(sha(back), sha(before), 'the object stored before the kill, whole');
  const after = octets(2 * 1024 * 1024 + 1, 12);
  t.true((await retry('a PUT after the kill', () => c.put(token, after))).fresh);
  t.is(sha(await retry('its GET', () => c.get(token, nameOf(after).name))), sha(after));
  t.deepEqual([...codes].filter((x) => x !== 'NOT_AVAILABLE'), [], 'failures during the election are NOT_AVAILABLE');
  t.not((await jsm.streams.info(`OBJ_${bucket}`)).cluster?.leader, leader, 'another node leads the stream now');
});
