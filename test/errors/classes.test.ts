/**
 * Every error class the library throws is a BeepError with a stable
 * `BEEP_ERR_…` code (`beepCode`; `code` too, except SciStreamError, whose
 * `code` stays its draft §8 status) and a scope (session / channel /
 * operation), and the old class names still work with `instanceof`. Node
 * errors are wrapped with their `cause`.
 */
import { resolveLimits, type SessionLimits } from '../../src/channels/index.js';
import test from 'ava';
import net from 'node:net';
import {
  BeepChannelError,
  BeepError,
  BeepFramingError,
  BeepOperationError,
  BeepReplyError,
  BeepSessionError,
  ErrorCodes,
  beepError,
  isBeepError,
  scopeOf,
  transportError,
  type ErrorCode,
} from '../../src/errors.js';
import { MgmtSyntaxError } from '../../src/channels/mgmt.js';
import { connect } from '../../src/channels/session.js';
import { DataWireError } from '../../src/scistream/data/wire.js';
import { SciStreamError } from '../../src/scistream/control/errors.js';
import { UsageError } from '../../src/cli/address.js';
import { describeError } from '../../src/cli/errors.js';
import { DecadeUsageError } from '../../src/cli/decade.js';
import { DecadeError } from '../../src/decade/errors.js';
import { FlowsError } from '../../src/flows/errors.js';
import { XmlError } from '../../src/xml/index.js';

const LIBRARY_CODES = new Set<string>(Object.values(ErrorCodes));

const cases: [string, () => BeepError, new (...a: never[]) => Error, 'session' | 'channel' | 'operation'][] = [
  ['MgmtSyntaxError', () => new MgmtSyntaxError(501, 'missing number attribute'), MgmtSyntaxError, 'operation'],
  ['DataWireError', () => new DataWireError(500, 'poorly-formed'), DataWireError, 'operation'],
  ['SciStreamError', () => new SciStreamError('BAD_FORMAT', 'bad'), SciStreamError, 'operation'],
  ['UsageError', () => new UsageError('--port must be …'), UsageError, 'operation'],
  ['DecadeUsageError', () => new DecadeUsageError('--token …'), DecadeUsageError, 'operation'],
  ['DecadeError', () => new DecadeError('NOT_FOUND', 'no such object'), DecadeError, 'operation'],
  ['FlowsError', () => new FlowsError('FLOW_NOT_FOUND', 'no such flow'), FlowsError, 'operation'],
  ['XmlError', () => new XmlError('doctype', 'no DOCTYPE'), XmlError, 'operation'],
  ['BeepFramingError', () => new BeepFramingError(ErrorCodes.FRAME_SYNTAX, 'bad header'), BeepFramingError, 'session'],
];

for (const [name, make, Class, scope] of cases) {
  test(`${name} is a BeepError with a stable BEEP_ERR_ code and scope ${scope}; instanceof ${name} still holds`, (t) => {
    const err = make();
    t.true(err instanceof BeepError);
    t.true(err instanceof Class);
    t.true(err instanceof Error);
    t.is(err.name, name);
    t.true(LIBRARY_CODES.has(err.beepCode), err.beepCode);
    t.regex(err.beepCode, /^BEEP_ERR_[A-Z_]+$/);
    t.is(err.scope, scope);
    t.true(isBeepError(err, err.beepCode));
    t.true(typeof err.stack === 'string');
  });
}

test('codes kept stable: SciStreamError.code is the §8 status, DataWireError/MgmtSyntaxError carry the reply code as replyCode', (t) => {
  const s = new SciStreamError('NO_RESOURCE', 'too many connections requested', { details: 'at most 8' });
  t.is(s.code, 'NO_RESOURCE');
  t.is(s.beepCode, ErrorCodes.LIMIT);
  t.is(s.replyCode, 450);
  t.true(isBeepError(s, 'NO_RESOURCE'));
  t.true(isBeepError(s, ErrorCodes.LIMIT));
  t.is(new SciStreamError('INVALID_UID', 'x', { origin: 'remote' }).beepCode, ErrorCodes.REPLY_ERROR);
  t.is(new SciStreamError('BAD_FORMAT', 'x', { replyCode: 500, cause: new XmlError('entity', 'y') }).beepCode, ErrorCodes.XML_SYNTAX);
  t.is(new SciStreamError('TIMEOUT', 'x').beepCode, ErrorCodes.TIMEOUT);
  t.is(new SciStreamError('CONN_ERROR', 'x').beepCode, ErrorCodes.TRANSPORT);
  const d = new DataWireError(501, 'attribute index missing');
  t.is(d.replyCode, 501);
  t.is(d.code, ErrorCodes.XML_PARAMETER);
  t.is(d.reason, 'parameter');
  const m = new MgmtSyntaxError(500, 'x', 'doctype');
  t.is(m.code, ErrorCodes.XML_SYNTAX);
  t.is(m.reason, 'doctype');
  t.is(MgmtSyntaxError.from(new XmlError('too-deep', 'deep')).reason, 'too-deep');
  t.is(new UsageError('x').code, ErrorCodes.USAGE);
});

test('scope: every library code has one; beepError() builds the class of its scope; BeepReplyError takes the scope of its code', (t) => {
  for (const code of Object.values(ErrorCodes) as ErrorCode[]) {
    const err = beepError(code, 'x');
    t.is(err.scope, scopeOf(code), code);
    const Class = { session: BeepSessionError, channel: BeepChannelError, operation: BeepOperationError }[scopeOf(code)];
    t.true(err instanceof Class, code);
  }
  t.is(scopeOf(ErrorCodes.WINDOW_OVERRUN), 'session');
  t.is(scopeOf(ErrorCodes.START_REFUSED), 'channel');
  t.is(scopeOf(ErrorCodes.REPLY_ERROR), 'operation');
  t.is(new BeepReplyError(ErrorCodes.START_REFUSED, 554, 'no').scope, 'channel');
  t.is(new BeepReplyError(ErrorCodes.REPLY_ERROR, 550, 'no').scope, 'operation');
  t.is(new BeepError(ErrorCodes.SESSION_CLOSED, 'gone').scope, 'session');
});

test('the CLI prints a usage error as its message alone, any other BeepError with its code', (t) => {
  t.is(describeError(new UsageError('invalid port "x"')), 'invalid port "x"');
  t.is(describeError(new BeepError(ErrorCodes.LIMIT, 'too many')), 'too many [BEEP_ERR_LIMIT]');
});

test('transportError wraps real Node errors (a bad port, a refused connection) with the cause kept', async (t) => {
  let raw: unknown;
  try {
    net.connect({ host: '127.0.0.1', port: 70000 });
  } catch (err) {
    raw = err;
  }
  t.is((raw as { code?: string }).code, 'ERR_SOCKET_BAD_PORT');
  const bad = transportError(raw, '127.0.0.1', 70000);
  t.true(bad instanceof BeepSessionError);
  t.is(bad.code, ErrorCodes.TRANSPORT);
  t.is(bad.cause, raw);
  t.regex(bad.message, /cannot connect to 127\.0\.0\.1:70000: .*ERR_SOCKET_BAD_PORT/);
  // A port nobody listens on: bind one, close it, connect to it.
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const refused = await new Promise<unknown>((resolve) => net.connect({ host: '127.0.0.1', port }).once('error', resolve));
  const w = transportError(refused, '::1', port);
  t.is((w.cause as { code?: string }).code, 'ECONNREFUSED');
  t.regex(w.message, new RegExp(`cannot connect to \\[::1\\]:${port}: .*ECONNREFUSED`));
  const already = new BeepError(ErrorCodes.ABORTED, 'aborted');
  t.is(transportError(already, 'h', 1), already, 'a BeepError passes unchanged');
});

test('connect({ port: 70000 }) rejects with a BeepError (BEEP_ERR_INVALID_ARGUMENT naming the port), not a raw ERR_SOCKET_BAD_PORT', async (t) => {
  const err = await t.throwsAsync(connect({ host: '127.0.0.1', port: 70000, timeout: 5000 }));
  t.true(err instanceof BeepError, String(err));
  t.is((err as BeepError).code, ErrorCodes.INVALID_ARGUMENT);
  t.regex((err as BeepError).message, /70000/);
});

test('bad session limits throw BEEP_ERR_INVALID_ARGUMENT naming the limit, not a raw TypeError', (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ bogus: 1 }, /unknown limit "bogus"/],
    [{ maxFrameSize: -1 }, /maxFrameSize must be a positive number/],
    [{ receiveWindow: 100 }, /receiveWindow must be at least 4096/],
    [{ maxReceiveWindow: 2 ** 31 }, /maxReceiveWindow must be below 2\^31/],
  ];
  for (const [limits, message] of cases) {
    const err = t.throws(() => resolveLimits(limits as SessionLimits), undefined, JSON.stringify(limits));
    t.true(err instanceof BeepError, String(err));
    t.is((err as BeepError).code, ErrorCodes.INVALID_ARGUMENT);
    t.regex((err as BeepError).message, message);
  }
});
