/**
 * `beepstream flows demo` (`npm run flows-demo`): the flow main job in one
 * command, on embedded defaults — a flows server (FNAA) over TLS (a
 * generated development PKI) and SCRAM-SHA-256 on 127.0.0.1 with its SQLite
 * store in a temporary directory; a publisher sending `--events` events of
 * two types; two durable subscribers, one taking every event and one with a
 * type filter, each acknowledging as it goes. It checks that each got its
 * events once, in order, and prints what happened.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createServer } from '../channels/index.js';
import { createUserEntry, saslProfiles, scramSha256Client, scramSha256Server, tlsProfile, type ScramCredentials } from '../profiles/index.js';
import { generateDevPki, removeDevPki } from '../scistream/index.js';
import { connectFlows, createFlowsServer, openSqliteStore, type FlowEvent, type FlowsClient, type Subscription } from '../flows/index.js';
import { parsePositiveInt } from './address.js';

const NS = 'urn:example:shop';

/** Run the demo; resolves with the exit code (0: every check passed). */
export async function runFlowsDemo(opts: { events: string }): Promise<number> {
  const total = parsePositiveInt('--events', opts.events, 10_000_000);
  const log = (s: string): boolean => process.stdout.write(`${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'beepstream-flows-demo-'));
  const pki = generateDevPki();
  const clients: FlowsClient[] = [];
  const store = await openSqliteStore({ path: join(dir, 'flows.db') });
  const users = new Map<string, ScramCredentials>();
  const password = randomBytes(18).toString('base64url'); // shown nowhere
  for (const name of ['shop', 'billing', 'shipping']) users.set(name, await createUserEntry(password, 4096));
  const fnaa = createFlowsServer({ store });
  const server = createServer({
    profiles: [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), ...saslProfiles({ mechanisms: [scramSha256Server({ store: users })] }), fnaa.profile],
    requireTls: true,
  });
  try {
    const { port } = await server.listen(0, '127.0.0.1');
    log(`flows server (FNAA) on 127.0.0.1:${port}: TLS (development PKI), SCRAM-SHA-256, SQLite store ${join(dir, 'flows.db')}`);
    const client = async (user: string): Promise<FlowsClient> => {
      const c = await connectFlows({ port, tls: { ca: pki.ca, serverName: 'localhost' }, sasl: scramSha256Client({ username: user, password }) });
      clients.push(c);
      return c;
    };
    const shop = await client('shop');
    await shop.create('orders', { description: 'orders of the demo shop', acl: { subscribe: ['billing', 'shipping'] } });
    log(`shop created flow "orders" (billing and shipping may subscribe)`);

    // Two durable subscribers: billing takes every event, shipping only {urn:example:shop}shipped.
    const expectShipped = Math.floor(total / 4);
    const follow = async (user: string, sub: Subscription, want: number, check: (e: FlowEvent, i: number) => boolean): Promise<{ got: number; bad: number }> => {
      let got = 0;
      let bad = 0;
      for await (const e of sub) {
        if (!check(e, got)) bad++;
        got++;
        if (got % 1000 === 0 || got === want) await sub.ack();
        if (got >= want) break;
      }
      log(`${user} received ${got} events${bad ? `, ${bad} out of order or unexpected` : ', in order, each once'}; acknowledged up to offset ${await sub.ack()}`);
      return { got, bad };
    };
    const billingSub = await (await client('billing')).subscribe('orders', { from: 'start', consumer: 'billing' });
    const shippingSub = await (await client('shipping')).subscribe('orders', { from: 'start', consumer: 'shipping', types: [`{${NS}}shipped`] });
    log(`billing subscribed to every event; shipping subscribed with the filter {${NS}}shipped`);
    const billing = follow('billing', billingSub, total, (e, i) => e.offset === i + 1 && e.seq === i + 1);
    const shipping = follow('shipping', shippingSub, expectShipped, (e, i) => e.type === `{${NS}}shipped` && e.offset === (i + 1) * 4);

    const producer = await shop.producer('orders', 'web-1');
    const t0 = process.hrtime.bigint();
    for (let sent = 0; sent < total; ) {
      const n = Math.min(500, total - sent);
      await producer.publish(Array.from({ length: n }, (_, k) => {
        const i = sent + k + 1;
        return { type: `{${NS}}${i % 4 === 0 ? 'shipped' : 'placed'}`, source: 'shop', data: JSON.stringify({ order: i, item: 'café ☕', qty: 1 + (i % 3) }), contentType: 'application/json' };
      }));
      sent += n;
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    log(`shop published ${total} events (one durable acknowledgement per batch of 500) in ${secs.toFixed(2)} s: ${Math.round(total / secs)} events/s`);
    const [b, s] = await Promise.all([billing, shipping]);
    const info = await shop.describe('orders');
    const ok = b.got === total && b.bad === 0 && s.got === expectShipped && s.bad === 0 && info.events === total;
    log(ok ? 'ok: every event stored once; each subscriber got what it asked for, once, in order' : 'FAILED: see above');
    return ok ? 0 : 1;
  } finally {
    for (const c of clients) await c.close();
    fnaa.close();
    await server.close(1000);
    await store.close();
    removeDevPki(pki);
    rmSync(dir, { recursive: true, force: true });
  }
}
