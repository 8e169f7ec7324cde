/**
 * ACL changes after a flow was created (`spec/flows.md` §5.1), over real TLS
 * + SCRAM sessions on 127.0.0.1 and a real SQLite store: who may change it,
 * what a change does to later requests, and to subscriptions already live
 * (ended, or seeing more or fewer routed events); a change made through
 * another FNAA on the same store; the server-wide policy replaced at run
 * time.
 */
import test from 'ava';
import { FlowsError, createFlowsServer, type EventInit, type FlowEvent, type Subscription } from '../../src/flows/index.js';
import { createServer, saslProfiles, scramSha256Server, tlsProfile } from '../../src/index.js';
import { NS, fnua, pki, startFnaa, users } from './harness.js';

const ev = (i: number, extra: Partial<EventInit> = {}): EventInit => ({ type: `{${NS}}tick`, source: 'alice', data: `event ${i}`, ...extra });

async function refused(t: import('ava').ExecutionContext, p: Promise<unknown>, code: string, reply: number): Promise<FlowsError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof FlowsError, `a FlowsError, got ${String(err)}`);
  t.is((err as FlowsError).flowsCode as string, code);
  t.is((err as FlowsError).replyCode, reply);
  return err as FlowsError;
}

/** Read a subscription until it ends or `n` events came; what came and how it ended. */
async function drain(sub: Subscription, n = 1000): Promise<{ events: FlowEvent[]; error: unknown }> {
  const events: FlowEvent[] = [];
  try {
    for await (const e of sub) {
      events.push(e);
      if (events.length >= n) break;
    }
  } catch (error) {
    return { events, error };
  }
  return { events, error: undefined };
}

test('ACL change: only an admin may change it; it may not leave the flow without an admin; bad lists and unknown flows are refused with stable codes', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t);
  const alice = await fnua(t, port);
  const bob = await fnua(t, port, 'bob');
  await alice.create('guarded', { acl: { subscribe: ['alice', 'bob'] } });
  const e = await refused(t, bob.acl('guarded', { grant: { publish: ['bob'] } }), 'NOT_AUTHORIZED', 537);
  t.is(e.details.permission, 'admin');
  const noAdmin = await refused(t, alice.acl('guarded', { revoke: { admin: ['alice'] } }), 'BAD_REQUEST', 501);
  t.is(noAdmin.details.field, 'acl.admin');
  const bad = await refused(t, alice.acl('guarded', { grant: { publish: [''] } }), 'BAD_REQUEST', 501);
  t.is(bad.details.field, 'grant.publish[0]');
  const unknownPerm = await refused(t, alice.call({ op: 'acl', flow: 'guarded', set: { read: ['bob'] } }), 'BAD_REQUEST', 501);
  t.is(unknownPerm.details.field, 'set.read');
  await refused(t, alice.call({ op: 'acl', flow: 'guarded' }), 'BAD_REQUEST', 501);
  await refused(t, alice.acl('nowhere', { grant: { publish: ['bob'] } }), 'FLOW_NOT_FOUND', 550);
  t.deepEqual((await alice.describe('guarded')).acl, { publish: ['alice'], subscribe: ['alice', 'bob'], admin: ['alice'] }, 'nothing changed');
  // set, then grant, then revoke; the reply is the flow as it is now.
  const info = await alice.acl('guarded', { set: { subscribe: ['carol'] }, grant: { publish: ['bob', 'bob'], admin: ['carol'] }, revoke: { publish: ['alice'] } });
  t.deepEqual(info.acl, { publish: ['bob'], subscribe: ['carol'], admin: ['alice', 'carol'] });
  t.deepEqual((await alice.describe('guarded')).acl, info.acl);
  // carol, now an admin, may change it too.
  const carol = await fnua(t, port, 'carol');
  t.deepEqual((await carol.acl('guarded', { revoke: { admin: ['alice'] } })).acl.admin, ['carol']);
  await refused(t, alice.acl('guarded', { grant: { admin: ['alice'] } }), 'NOT_AUTHORIZED', 537);
});

test('ACL change: later requests follow it — a granted identity may publish and subscribe, a revoked one is refused (NOT_AUTHORIZED) at its next publish, subscribe and ack', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t, { sources: { bob: ['*'] } });
  const alice = await fnua(t, port);
  const bob = await fnua(t, port, 'bob');
  await alice.create('later');
  await refused(t, bob.publish('later', 'b', [{ ...ev(1), seq: 1 }]), 'NOT_AUTHORIZED', 537);
  await alice.acl('later', { grant: { publish: ['bob'], subscribe: ['bob'] } });
  t.deepEqual((await bob.publish('later', 'b', [{ ...ev(1), seq: 1 }])).offsets, [1]);
  const read = await drain(await bob.subscribe('later', { from: 'start', follow: false, consumer: 'c' }));
  t.deepEqual(read.events.map((e) => e.offset), [1]);
  t.is(await bob.ack('later', 'c', 1), 1);
  await alice.acl('later', { revoke: { publish: ['bob'], subscribe: ['bob'] } });
  const p = await refused(t, bob.publish('later', 'b', [{ ...ev(2), seq: 2 }]), 'NOT_AUTHORIZED', 537);
  t.is(p.details.permission, 'publish');
  await refused(t, bob.subscribe('later', { from: 'start' }), 'NOT_AUTHORIZED', 537);
  await refused(t, bob.ack('later', 'c', 1), 'NOT_AUTHORIZED', 537);
  t.is((await alice.describe('later')).events, 1);
});

test('ACL change: revoking subscribe ends the live subscriptions of that identity with NOT_AUTHORIZED (537); no event published after the change reaches them; others carry on', async (t) => {
  t.timeout(120_000);
  const { port, flows } = await startFnaa(t);
  const alice = await fnua(t, port);
  const bob = await fnua(t, port, 'bob');
  await alice.create('revoked', { acl: { subscribe: ['alice', 'bob'] } });
  const p = await alice.producer('revoked', 'p');
  await p.publish([ev(1), ev(2)]);
  const bobSub = await bob.subscribe('revoked', { from: 'start' });
  const bobSub2 = await bob.subscribe('revoked', { from: 'end' });
  const aliceSub = await alice.subscribe('revoked', { from: 'start' });
  const bobFirst: FlowEvent[] = [];
  for await (const e of bobSub) {
    bobFirst.push(e);
    if (bobFirst.length === 2) break;
  }
  t.deepEqual(bobFirst.map((e) => e.offset), [1, 2]);
  t.is(flows.subscriptions().filter((s) => s.identity === 'bob').length, 2);
  await alice.acl('revoked', { revoke: { subscribe: ['bob'] } });
  // Both of bob's subscriptions were ended by the change, before its reply.
  t.is(flows.subscriptions().filter((s) => s.identity === 'bob').length, 0);
  await p.publish([ev(3), ev(4)]);
  const [r1, r2] = await Promise.all([drain(bobSub), drain(bobSub2)]);
  for (const r of [r1, r2]) {
    t.true(r.error instanceof FlowsError, 'the iteration throws');
    t.is((r.error as FlowsError).flowsCode, 'NOT_AUTHORIZED');
    t.is((r.error as FlowsError).replyCode, 537);
    t.is((r.error as FlowsError).details.permission, 'subscribe');
    t.false(r.events.some((e) => e.offset >= 3), 'nothing published after the change');
  }
  // alice's subscription is untouched and sees everything.
  t.deepEqual((await drain(aliceSub, 4)).events.map((e) => e.offset), [1, 2, 3, 4]);
  await aliceSub.close();
});

test('ACL change: an existing subscription sees events routed to others once its identity becomes an admin, and stops seeing them once it no longer is', async (t) => {
  t.timeout(120_000);
  const { port } = await startFnaa(t, { routes: { alice: ['*'] } });
  const alice = await fnua(t, port);
  const bob = await fnua(t, port, 'bob');
  await alice.create('routes', { acl: { subscribe: ['alice', 'bob', 'carol'] } });
  const p = await alice.producer('routes', 'p');
  const sub = await bob.subscribe('routes', { from: 'end' });
  const got: FlowEvent[] = [];
  const reading = (async () => {
    for await (const e of sub) {
      got.push(e);
      if (e.data === 'last') break;
    }
  })();
  const until = async (data: string): Promise<void> => {
    for (let i = 0; i < 600 && !got.some((e) => e.data === data); i++) await new Promise((r) => setTimeout(r, 50)); // bounded: 30 s
  };
  await p.publish([ev(1, { to: 'carol', data: 'to carol 1' }), ev(2, { data: 'open 1' })]);
  await until('open 1');
  await alice.acl('routes', { grant: { admin: ['bob'] } });
  await p.publish([ev(3, { to: 'carol', data: 'to carol 2' }), ev(4, { data: 'open 2' })]);
  await until('open 2');
  await alice.acl('routes', { revoke: { admin: ['bob'] } });
  await p.publish([ev(5, { to: 'carol', data: 'to carol 3' }), ev(6, { to: 'bob', data: 'to bob' }), ev(7, { data: 'last' })]);
  await reading;
  t.deepEqual(got.map((e) => e.data), ['open 1', 'to carol 2', 'open 2', 'to bob', 'last']);
  await sub.close();
});

test('ACL change made through another FNAA on the same store reaches this FNAA\'s live subscriptions (re-checked every aclRecheckMs)', async (t) => {
  t.timeout(120_000);
  const a = await startFnaa(t);
  // A second FNAA on the same store, as two FNAAs share one JetStream cluster.
  const second = createFlowsServer({ store: a.store, aclRecheckMs: 100 });
  const beep = createServer({ profiles: [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), ...saslProfiles({ mechanisms: [scramSha256Server({ store: users })] }), second.profile] });
  const { port: port2 } = await beep.listen(0, '127.0.0.1');
  t.teardown(async () => {
    second.close();
    await beep.close(1000);
  });
  const alice = await fnua(t, a.port);
  await alice.create('shared', { acl: { subscribe: ['alice', 'bob'] } });
  const bob = await fnua(t, port2, 'bob');
  const sub = await bob.subscribe('shared', { from: 'start' });
  t.is(second.subscriptions().length, 1);
  await alice.acl('shared', { revoke: { subscribe: ['bob'] } }); // through the first FNAA
  const r = await drain(sub);
  t.is((r.error as FlowsError | undefined)?.flowsCode, 'NOT_AUTHORIZED');
  t.is(second.subscriptions().length, 0);
});

test('setPolicy replaces the server-wide routes, sources and creators for every later request', async (t) => {
  t.timeout(120_000);
  const { port, flows } = await startFnaa(t, { creators: ['alice'] });
  const alice = await fnua(t, port);
  const bob = await fnua(t, port, 'bob');
  await refused(t, bob.create('bobs'), 'NOT_AUTHORIZED', 537);
  await alice.create('policy', { acl: { publish: ['alice', 'bob'], subscribe: ['alice', 'bob'] } });
  await refused(t, alice.publish('policy', 'p', [{ ...ev(1, { to: 'bob' }), seq: 1 }]), 'ROUTE_NOT_AUTHORIZED', 537);
  await refused(t, bob.publish('policy', 'b', [{ ...ev(1, { source: 'relay.example' }), seq: 1 }]), 'FORGED_SOURCE', 537);
  flows.setPolicy({ routes: { alice: ['bob'] }, sources: { bob: ['relay.example'] } });
  t.deepEqual((await alice.publish('policy', 'p', [{ ...ev(1, { to: 'bob' }), seq: 1 }])).offsets, [1]);
  t.deepEqual((await bob.publish('policy', 'b', [{ ...ev(1, { source: 'relay.example' }), seq: 1 }])).offsets, [2]);
  t.is((await bob.create('bobs')).name, 'bobs', 'creators reverted to the default: everyone');
  flows.setPolicy({});
  await refused(t, alice.publish('policy', 'p', [{ ...ev(2, { to: 'bob' }), seq: 2 }]), 'ROUTE_NOT_AUTHORIZED', 537);
});
