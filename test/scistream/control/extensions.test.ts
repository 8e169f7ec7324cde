/**
 * beepstream's extensions of the control messages: REQUEST `connections`
 * (striping of the consumer side) and STATUSRESPONSE `<data_errors>` (failed
 * data connections of the session), built and parsed; absent when unused.
 */
import test from 'ava';
import { buildMessage, parseMessage, type RequestMessage, type StatusResponseMessage } from '../../../src/scistream/control/index.js';

const uid = '0123456789abcdef0123456789abcdef';

test('REQUEST connections round-trips, and is absent unless given', (t) => {
  const m: RequestMessage = { type: 'request', uid, role: 'CONS', numConn: 4, keep: true, connections: 2 };
  const xml = buildMessage(m);
  t.regex(xml, /connections='2'/);
  t.deepEqual(parseMessage(xml), m);
  const plain = parseMessage(buildMessage({ type: 'request', uid, role: 'CONS', numConn: 4 })) as RequestMessage;
  t.is(plain.connections, undefined);
  t.throws(() => buildMessage({ ...m, connections: 0 }));
});

test('STATUSRESPONSE data_errors round-trips; a malformed endpoint or errno is dropped', (t) => {
  const m: StatusResponseMessage = {
    type: 'statusresponse', uid, role: 'PROD', state: 'active', numConn: 1, keep: true, listeners: ['127.0.0.1:5100'], prodListeners: ['127.0.0.1:9'], remoteListeners: [],
    dataErrors: { count: 3, endpoint: '127.0.0.1:9', errno: 'ECONNREFUSED' },
  };
  const xml = buildMessage(m);
  t.regex(xml, /<data_errors count='3' endpoint='127\.0\.0\.1:9' errno='ECONNREFUSED' \/>/);
  t.deepEqual(parseMessage(xml), m);
  const odd = xml.replace("errno='ECONNREFUSED'", "errno='not an errno'");
  t.deepEqual((parseMessage(odd) as StatusResponseMessage).dataErrors, { count: 3, endpoint: '127.0.0.1:9' });
  const none = { ...m };
  delete none.dataErrors;
  t.is((parseMessage(buildMessage(none)) as StatusResponseMessage).dataErrors, undefined);
});
