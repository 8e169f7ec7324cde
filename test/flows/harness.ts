/**
 * Test fixtures of the flows profile: an FNAA behind real TLS (development
 * PKI) and real SCRAM-SHA-256, over a SQLite store in a temporary directory,
 * listening on 127.0.0.1; and FNUA clients authenticated as test users.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { createServer, createUserEntry, saslProfiles, scramSha256Client, scramSha256Server, tlsProfile, type BeepServer } from '../../src/index.js';
import { type ScramCredentials } from '../../src/profiles/index.js';
import { connectFlows, createFlowsServer, openSqliteStore, type FlowStore, type FlowsClient, type FlowsServer, type FlowsServerOptions } from '../../src/flows/index.js';
import { testPki } from '../helpers/certs.js';

export const pki = testPki();
export const PASSWORD = 'correct horse battery staple';
export const users = new Map<string, ScramCredentials>();
for (const name of ['alice', 'bob', 'carol']) users.set(name, await createUserEntry(PASSWORD, 4096));

/** A running FNAA. */
export interface Fnaa {
  port: number;
  beep: BeepServer;
  flows: FlowsServer;
  store: FlowStore;
  dir: string;
}

/** Start an FNAA (TLS required unless `allowInsecure`) and stop it when the test ends; on a SQLite store in a temporary directory unless `options.store` is given (then it is closed at the end too). */
export async function startFnaa(t: ExecutionContext, options: Omit<FlowsServerOptions, 'store'> & { store?: FlowStore } = {}): Promise<Fnaa> {
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-'));
  const store = options.store ?? (await openSqliteStore({ path: join(dir, 'flows.db') }));
  const flows = createFlowsServer({ ...options, store });
  const beep = createServer({
    profiles: [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), ...saslProfiles({ mechanisms: [scramSha256Server({ store: users })] }), flows.profile],
  });
  const { port } = await beep.listen(0, '127.0.0.1');
  t.teardown(async () => {
    flows.close();
    await beep.close(1000);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { port, beep, flows, store, dir };
}

/** An FNUA over TLS authenticated as `user`; released when the test ends. */
export async function fnua(t: ExecutionContext, port: number, user = 'alice'): Promise<FlowsClient> {
  const c = await connectFlows({ port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: user, password: PASSWORD }) });
  t.teardown(() => c.close());
  return c;
}

/** A namespace for test event types. */
export const NS = 'urn:example:flows-test';
