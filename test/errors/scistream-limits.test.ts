/**
 * One SciStreamLimits: validated once when an S2CS starts, the same values in
 * its control registry and its data server, and what a client is refused
 * with states the server's limit.
 */
import test from 'ava';
import { BeepError, ErrorCodes } from '../../src/errors.js';
import {
  CONNECTIONS_CEILING,
  DEFAULT_SCISTREAM_LIMITS,
  MAX_CONNECTIONS,
  MAX_NUM_CONN,
  NUM_CONN_CEILING,
  NUM_CONN_WIRE_MAX,
  createDataServer,
  resolveSciStreamLimits,
  sciStreamLimitsOf,
} from '../../src/scistream/data/index.js';
import { newUid, parseMessage, SciStreamError } from '../../src/scistream/control/index.js';
import { startS2cs } from '../../src/scistream/roles.js';
import { login, pki, users } from '../scistream/roles-harness.js';

test('resolveSciStreamLimits: defaults, ceilings, and one error naming the limit and its range', (t) => {
  t.deepEqual({ ...resolveSciStreamLimits() }, { ...DEFAULT_SCISTREAM_LIMITS });
  t.true(Object.isFrozen(resolveSciStreamLimits({ maxNumConn: 8 })));
  t.is(MAX_NUM_CONN, NUM_CONN_CEILING);
  t.is(MAX_CONNECTIONS, CONNECTIONS_CEILING);
  t.true(NUM_CONN_CEILING < NUM_CONN_WIRE_MAX);
  t.is(resolveSciStreamLimits({ maxNumConn: 4 }).maxConnections, 4, 'striping never beyond num_conn');
  for (const [given, field] of [
    [{ maxNumConn: NUM_CONN_CEILING + 1 }, 'maxNumConn'],
    [{ maxNumConn: 0 }, 'maxNumConn'],
    [{ maxNumConn: 1.5 }, 'maxNumConn'],
    [{ maxConnections: CONNECTIONS_CEILING + 1 }, 'maxConnections'],
    [{ maxRate: -1 }, 'maxRate'],
    [{ maxSessions: 0 }, 'maxSessions'],
  ] as const) {
    const err = t.throws(() => resolveSciStreamLimits(given)) as BeepError;
    t.true(err instanceof BeepError);
    t.is(err.code, ErrorCodes.INVALID_ARGUMENT);
    t.regex(err.message, new RegExp(field));
  }
  t.is(sciStreamLimitsOf({ maxConnPerSession: 8, limits: { maxNumConn: 16 } }).maxNumConn, 16, 'limits win over the shorthand');
  t.is(sciStreamLimitsOf({ maxConnPerSession: 8 }).maxNumConn, 8);
});

test('the wire syntax of num_conn stays 1..65535 (a larger num_conn is BAD_FORMAT 501, not a limit)', (t) => {
  const uid = newUid();
  t.is((parseMessage(`<request uid='${uid}' role='PROD' num_conn='${NUM_CONN_WIRE_MAX}'/>`) as { numConn: number }).numConn, NUM_CONN_WIRE_MAX);
  const err = t.throws(() => parseMessage(`<request uid='${uid}' role='PROD' num_conn='${NUM_CONN_WIRE_MAX + 1}'/>`)) as SciStreamError;
  t.is(err.code, 'BAD_FORMAT');
  t.is(err.replyCode, 501);
});

test('a data server refuses a path beyond its limits with BEEP_ERR_LIMIT naming the limit', async (t) => {
  const ds = createDataServer({ host: '127.0.0.1', sciStreamLimits: { maxNumConn: 4 } });
  t.teardown(() => ds.close());
  t.is(ds.limits.maxNumConn, 4);
  const err = (await t.throwsAsync(ds.openOutbound({ uid: newUid(), remotes: ['127.0.0.1:9'], numConn: 5 }))) as BeepError;
  t.is(err.code, ErrorCodes.LIMIT);
  t.regex(err.message, /limit of 4/);
  const stripes = (await t.throwsAsync(ds.openOutbound({ uid: newUid(), remotes: ['127.0.0.1:9'], numConn: 4, connections: 5 }))) as BeepError;
  t.is(stripes.code, ErrorCodes.LIMIT);
  t.regex(stripes.message, /limit of 4/);
});

test('S2CS start: bad limits are refused before anything listens', async (t) => {
  const err = (await t.throwsAsync(startS2cs({ host: '127.0.0.1', port: 0, cert: pki.serverCert, key: pki.serverKey, users, sciStreamLimits: { maxNumConn: NUM_CONN_CEILING + 1 } }))) as BeepError;
  t.is(err.code, ErrorCodes.INVALID_ARGUMENT);
  t.regex(err.message, /maxNumConn must be an integer from 1 to 512/);
});

test('S2CS: one set of limits in registry, data server and S2cs; a REQUEST beyond them is refused stating the server limit', async (t) => {
  const s2cs = await startS2cs({ host: '127.0.0.1', port: 0, cert: pki.serverCert, key: pki.serverKey, users, control: { maxConnPerSession: 32 }, sciStreamLimits: { maxNumConn: 8, maxRate: 1000 } });
  t.teardown(() => s2cs.close());
  t.is(s2cs.limits.maxNumConn, 8, 'sciStreamLimits wins over the control shorthand');
  t.deepEqual({ ...s2cs.control.registry.limits }, { ...s2cs.limits });
  t.deepEqual({ ...s2cs.data.limits }, { ...s2cs.limits });
  const client = await login(t, s2cs);
  const err = (await t.throwsAsync(client.request({ uid: newUid(), role: 'PROD', numConn: 9 }))) as SciStreamError;
  t.true(err instanceof SciStreamError);
  t.is(err.code, 'NO_RESOURCE');
  t.is(err.replyCode, 450);
  t.regex(err.details ?? '', /at most 8 connections per session/);
  const rate = (await t.throwsAsync(client.request({ uid: newUid(), role: 'PROD', numConn: 8, rate: 1001 }))) as SciStreamError;
  t.regex(rate.details ?? '', /at most 1000 octets per second/);
  const stripes = (await t.throwsAsync(client.request({ uid: newUid(), role: 'CONS', numConn: 8, connections: 9 }))) as SciStreamError;
  t.is(stripes.code, 'NO_RESOURCE');
  t.regex(stripes.details ?? '', /at most 8 TCP connections/);
});
