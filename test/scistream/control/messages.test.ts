/**
 * Control messages: exact wire forms, round trips of every message and of
 * errors (fast-check), liberal parsing, safe parsing (DOCTYPE, entities, size,
 * depth), field validation, and the error-code tables.
 */
import test from 'ava';
import fc from 'fast-check';
import { BeepError, ErrorCodes } from '../../../src/index.js';
import {
  BAD_FORMAT_SYNTAX, MAX_ERROR_DOCUMENT, REPLY_CODES, SCISTREAM_CODES, SciStreamError, buildErrorXml, buildMessage, classifyDataError, cleanText,
  codeForReplyCode, formatEndpoint, isEndpoint, isUid, newUid, parseEndpoint, parseErrorXml, parseMessage, parseRequest,
  type ControlPlaneMessage, type SciStreamErrorCode,
} from '../../../src/scistream/control/index.js';

const UID = '0123456789abcdef0123456789abcdef';

function code(f: () => unknown): { code: string; replyCode: number } {
  try {
    f();
  } catch (err) {
    if (err instanceof SciStreamError) return { code: err.code, replyCode: err.replyCode };
    throw err;
  }
  throw new Error('did not throw');
}

// ------------------------------------------------------------ arbitraries

const uidArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
const roleArb = fc.constantFrom('PROD' as const, 'CONS' as const);
const portArb = fc.integer({ min: 1, max: 65535 });
const labelArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
const hostArb = fc.oneof(
  fc.ipV4(),
  fc.array(labelArb, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
  fc.ipV6(),
);
const endpointArb = fc.tuple(hostArb, portArb).map(([h, p]) => formatEndpoint(h, p));
const listArb = fc.array(endpointArb, { maxLength: 5 });
const stateArb = fc.constantFrom('pending' as const, 'setup' as const, 'active' as const, 'releasing' as const, 'closed' as const);
const countArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const textArb = fc.string({ unit: 'binary', maxLength: 300 });

const messageArb: fc.Arbitrary<ControlPlaneMessage> = fc.oneof(
  fc.record({ type: fc.constant('request' as const), uid: uidArb, role: roleArb, numConn: fc.integer({ min: 1, max: 65535 }), rate: fc.option(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }), keep: fc.option(fc.constant(true), { nil: undefined }) }, { requiredKeys: ['type', 'uid', 'role', 'numConn'] }),
  fc.record({ type: fc.constant('hello' as const), uid: uidArb, role: roleArb, prodListeners: listArb }),
  fc.record({ type: fc.constant('updatetargets' as const), uid: uidArb, role: roleArb, remoteListeners: listArb }),
  fc.record({ type: fc.constantFrom('release' as const, 'status' as const), uid: uidArb }),
  fc.record({ type: fc.constant('response' as const), uid: uidArb, state: stateArb, listeners: listArb, prodListeners: listArb }),
  fc.record({ type: fc.constant('appresponse' as const), uid: uidArb, message: textArb, listeners: listArb }),
  fc.record({
    type: fc.constant('statusresponse' as const), uid: uidArb, role: roleArb, state: stateArb, numConn: fc.integer({ min: 1, max: 65535 }),
    rate: fc.option(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }), keep: fc.boolean(),
    listeners: listArb, prodListeners: listArb, remoteListeners: listArb, expiresIn: fc.option(countArb, { nil: undefined }),
    stats: fc.option(fc.record({ connections: countArb, open: countArb, bytesToProducer: countArb, bytesToConsumer: countArb }), { nil: undefined }),
  }, { requiredKeys: ['type', 'uid', 'role', 'state', 'numConn', 'keep', 'listeners', 'prodListeners', 'remoteListeners'] }),
);

/** What a message is expected to look like after a round trip: human text cleaned and trimmed, absent optionals dropped. */
function expected(m: ControlPlaneMessage): ControlPlaneMessage {
  const out = JSON.parse(JSON.stringify(m)) as ControlPlaneMessage;
  if (out.type === 'appresponse') out.message = cleanText(out.message, 256).trim();
  return out;
}

// ------------------------------------------------------------ wire forms

test('wire forms: every message has the documented syntax', (t) => {
  t.is(buildMessage({ type: 'request', uid: UID, role: 'PROD', numConn: 4, rate: 1000000 }), `<request uid='${UID}' role='PROD' num_conn='4' rate='1000000' />`);
  t.is(buildMessage({ type: 'request', uid: UID, role: 'CONS', numConn: 1, keep: true }), `<request uid='${UID}' role='CONS' num_conn='1' keep='true' />`);
  t.is(
    buildMessage({ type: 'hello', uid: UID, role: 'PROD', prodListeners: ['10.0.0.5:5000', '[::1]:5001'] }),
    `<hello uid='${UID}' role='PROD'><prod_listener>10.0.0.5:5000</prod_listener><prod_listener>[::1]:5001</prod_listener></hello>`,
  );
  t.is(buildMessage({ type: 'updatetargets', uid: UID, role: 'CONS', remoteListeners: ['dtn.example.org:4000'] }), `<updatetargets uid='${UID}' role='CONS'><remote_listener>dtn.example.org:4000</remote_listener></updatetargets>`);
  t.is(buildMessage({ type: 'release', uid: UID }), `<release uid='${UID}' />`);
  t.is(buildMessage({ type: 'status', uid: UID }), `<status uid='${UID}' />`);
  t.is(
    buildMessage({ type: 'response', uid: UID, state: 'active', listeners: ['192.0.2.1:5100'], prodListeners: ['10.0.0.5:5000'] }),
    `<response uid='${UID}' state='active'><listener>192.0.2.1:5100</listener><prod_listener>10.0.0.5:5000</prod_listener></response>`,
  );
  t.is(buildMessage({ type: 'appresponse', uid: UID, message: 'a < b & c', listeners: [] }), `<appresponse uid='${UID}'><message>a &lt; b &amp; c</message></appresponse>`);
  t.is(
    buildMessage({ type: 'statusresponse', uid: UID, role: 'PROD', state: 'active', numConn: 2, keep: false, listeners: ['127.0.0.1:1'], prodListeners: [], remoteListeners: [], stats: { connections: 3, open: 1, bytesToProducer: 10, bytesToConsumer: 20 } }),
    `<statusresponse uid='${UID}' role='PROD' state='active' num_conn='2' keep='false'><listener>127.0.0.1:1</listener><stats connections='3' open='1' bytes_to_producer='10' bytes_to_consumer='20' /></statusresponse>`,
  );
  t.is(
    buildErrorXml(new SciStreamError('NO_RESOURCE', 'Requested resources unavailable', { details: 'Insufficient bandwidth', retryAfter: 300 })),
    "<error code='NO_RESOURCE' reply='450' retry_after='300'>Requested resources unavailable<details>Insufficient bandwidth</details></error>",
  );
  t.is(
    buildErrorXml(new SciStreamError('CONN_ERROR', 'Failed to connect', { endpoint: '192.168.1.10:8080' })),
    "<error code='CONN_ERROR' reply='554' endpoint='192.168.1.10:8080'>Failed to connect</error>",
  );
});

test('round trip: parse(build(m)) gives m back for every message (property)', (t) => {
  fc.assert(fc.property(messageArb, (m) => {
    t.deepEqual(parseMessage(buildMessage(m)), expected(m));
  }), { numRuns: 2000 });
});

test('round trip: errors keep code, reply code, message, details, retry_after and endpoint, within 1024 units (property)', (t) => {
  const codes = SCISTREAM_CODES.filter((c) => c !== 'SUCCESS') as SciStreamErrorCode[];
  fc.assert(fc.property(fc.constantFrom(...codes), textArb, fc.option(fc.string({ unit: 'binary', maxLength: 2000 }), { nil: undefined }), fc.option(fc.nat(), { nil: undefined }), fc.option(endpointArb, { nil: undefined }), (c, message, details, retryAfter, endpoint) => {
    const e = new SciStreamError(c, message, { ...(details === undefined ? {} : { details }), ...(retryAfter === undefined ? {} : { retryAfter }), ...(endpoint === undefined ? {} : { endpoint }) });
    const xml = buildErrorXml(e);
    t.true(xml.length <= MAX_ERROR_DOCUMENT);
    const back = parseErrorXml(xml, codeForReplyCode);
    t.truthy(back);
    t.is(back!.code, c);
    t.is(back!.replyCode, REPLY_CODES[c]);
    t.is(back!.origin, 'remote');
    t.is(back!.retryAfter, retryAfter);
    t.is(back!.endpoint, endpoint);
    if (xml.length < MAX_ERROR_DOCUMENT - 40) {
      t.is(back!.message, cleanText(message, 256).trim());
      t.is(back!.details, details === undefined ? undefined : cleanText(details, 512).trim());
    }
  }), { numRuns: 1000 });
});

test('liberal: quotes, case, white space, declaration, comments and CDATA do not matter (property)', (t) => {
  fc.assert(fc.property(messageArb, fc.boolean(), fc.boolean(), fc.boolean(), (m, dq, upper, decl) => {
    let xml = buildMessage(m);
    if (dq) xml = xml.replace(/='([^']*)'/g, '="$1"');
    if (upper) xml = xml.replace(/<(\/?)([a-z_]+)/g, (_s, slash: string, name: string) => `<${slash}${name.toUpperCase()}`);
    xml = xml.replace(/ \/>/g, '\n\t/>').replace(/>(?=<)/g, '>\n  <!-- x -->\n  ');
    if (decl) xml = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}\n`;
    t.deepEqual(parseMessage(xml), expected(m));
  }), { numRuns: 1000 });
});

test('liberal: fields as child elements, proto list names, separated lists, mixed-case names and values', (t) => {
  t.deepEqual(parseMessage(`<Request><UID> ${UID.toUpperCase()} </UID><Role>prod</Role><NumConn>3</NumConn><rate>0</rate></Request>`), { type: 'request', uid: UID, role: 'PROD', numConn: 3 });
  t.deepEqual(parseMessage(`<request uid="${UID}" role="consumer" num-conn="+2" keep="yes"/>`), { type: 'request', uid: UID, role: 'CONS', numConn: 2, keep: true });
  t.deepEqual(parseMessage(`<Hello uid='${UID}' role='PROD'><prod_listeners>a.example:1, b.example:2</prod_listeners><listener><![CDATA[10.1.1.1:3]]></listener></Hello>`), { type: 'hello', uid: UID, role: 'PROD', prodListeners: ['a.example:1', 'b.example:2', '10.1.1.1:3'] });
  t.deepEqual(parseMessage(`<update_targets uid='${UID}' role='CONS' remote_listeners='h:1 h:2'><remote_listeners><listener>h:3</listener></remote_listeners></update_targets>`), { type: 'updatetargets', uid: UID, role: 'CONS', remoteListeners: ['h:1', 'h:2', 'h:3'] });
  t.deepEqual(parseMessage(`<release uid='${UID}' version='1' unknown='ignored'><extension/></release>`), { type: 'release', uid: UID });
  const err = parseErrorXml(`<error code="rate_limit" reply="454"><message>slow down</message><details> later </details><retry_after>7</retry_after></error>`, codeForReplyCode);
  t.is(err?.code, 'RATE_LIMIT');
  t.is(err?.message, 'slow down');
  t.is(err?.details, 'later');
  t.is(err?.retryAfter, 7);
  t.is(parseErrorXml(`<error code='WHATEVER' reply='550'>x</error>`, codeForReplyCode)?.code, 'INVALID_UID', 'unknown code: from the reply code');
  t.is(parseErrorXml(`<error code='537'>no</error>`, codeForReplyCode)?.code, 'AUTH_ERROR', 'a plain RFC 3080 <error>');
  t.is(parseErrorXml('<ok/>', codeForReplyCode), null);
  t.is(parseErrorXml('garbage', codeForReplyCode), null);
});

test('safe: DOCTYPE, entity declarations and unknown entities are refused; size, depth and roots are bounded', (t) => {
  const bad500 = { code: 'BAD_FORMAT', replyCode: BAD_FORMAT_SYNTAX };
  t.deepEqual(code(() => parseMessage(`<!DOCTYPE r [<!ENTITY x "y">]><release uid='${UID}'/>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<!doctype release><release uid='${UID}'/>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<appresponse uid='${UID}'><message>&xxe;</message></appresponse>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}' x='&#0;'/>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}'>${'<a>'.repeat(10)}${'</a>'.repeat(10)}</release>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}'>${' '.repeat(70000)}</release>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}'/><release uid='${UID}'/>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}'/>trailing`)), bad500);
  t.deepEqual(code(() => parseMessage('')), bad500);
  t.deepEqual(code(() => parseMessage('\u0000\u00ff garbage {"uid": 1}')), bad500);
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}' uid='${UID}'/>`)), bad500);
  t.deepEqual(code(() => parseMessage(`<__proto__><polluted>1</polluted></__proto__>`)), bad500);
  t.is(({} as Record<string, unknown>).polluted, undefined);
  t.is(parseMessage(`<appresponse uid='${UID}'><message>&lt;&#x41;&#66;&amp;&quot;&apos;&gt;</message></appresponse>`).type, 'appresponse');
});

test('fields: uid syntax is INVALID_UID, a missing or bad field BAD_FORMAT 501, version 2 VERSION_ERR, unknown element NOT_IMPLEMENTED', (t) => {
  t.deepEqual(code(() => parseMessage(`<release uid='${UID.slice(1)}'/>`)), { code: 'INVALID_UID', replyCode: 550 });
  t.deepEqual(code(() => parseMessage(`<release uid='8a5c3d2e-1f00-11ee-be56-0242ac120002'/>`)), { code: 'INVALID_UID', replyCode: 550 });
  t.deepEqual(code(() => parseMessage('<release/>')), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<request uid='${UID}' role='PROD'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<request uid='${UID}' role='BOTH' num_conn='1'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<request uid='${UID}' role='PROD' num_conn='0'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<request uid='${UID}' role='PROD' num_conn='1.5'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<request uid='${UID}' role='PROD' num_conn='99999999999999999'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<request uid='${UID}' role='PROD' num_conn='1' keep='maybe'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<hello uid='${UID}' role='PROD'><prod_listener>nohost</prod_listener></hello>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<hello uid='${UID}' role='PROD'>${'<prod_listener>h:1</prod_listener>'.repeat(257)}</hello>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseMessage(`<release uid='${UID}' version='2'/>`)), { code: 'VERSION_ERR', replyCode: 504 });
  t.deepEqual(code(() => parseMessage(`<migrate uid='${UID}'/>`)), { code: 'NOT_IMPLEMENTED', replyCode: 504 });
  t.deepEqual(code(() => parseMessage(`<error code='SERVER_ERR' reply='451'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
  t.deepEqual(code(() => parseRequest(`<response uid='${UID}' state='active'/>`)), { code: 'BAD_FORMAT', replyCode: 501 });
});

test('strict sending: a field that is not valid is refused before anything is sent', (t) => {
  t.is(code(() => buildMessage({ type: 'release', uid: UID.toUpperCase() })).code, 'INVALID_UID');
  t.is(code(() => buildMessage({ type: 'release', uid: 'x' })).code, 'INVALID_UID');
  t.is(code(() => buildMessage({ type: 'request', uid: UID, role: 'PROD', numConn: 0 })).code, 'BAD_FORMAT');
  t.is(code(() => buildMessage({ type: 'request', uid: UID, role: 'PROD', numConn: 1, rate: 0 })).code, 'BAD_FORMAT');
  t.is(code(() => buildMessage({ type: 'request', uid: UID, role: 'X' as 'PROD', numConn: 1 })).code, 'BAD_FORMAT');
  t.is(code(() => buildMessage({ type: 'hello', uid: UID, role: 'PROD', prodListeners: ["h:1'/><x a='"] })).code, 'BAD_FORMAT');
  t.is(code(() => buildMessage({ type: 'hello', uid: UID, role: 'PROD', prodListeners: ['h:0'] })).code, 'BAD_FORMAT');
  t.is(code(() => buildMessage({ type: 'hello', uid: UID, role: 'PROD', prodListeners: Array(257).fill('h:1') })).code, 'BAD_FORMAT');
  // Text that XML cannot carry is cleaned, not sent raw.
  const xml = buildMessage({ type: 'appresponse', uid: UID, message: 'a\u0000b\ud800c]]>\r', listeners: [] });
  t.is((parseMessage(xml) as { message: string }).message, 'a\ufffdb\ufffdc]]>');
});

test('endpoints: host names, IPv4 and bracketed IPv6 with a port 1-65535', (t) => {
  for (const e of ['a:1', 'dtn01.example.org:65535', '192.0.2.7:80', '[::1]:5000', '[2001:db8::1]:443', 'host.:9', 'x-1.y:2']) t.true(isEndpoint(e), e);
  for (const e of ['a', 'a:0', 'a:65536', 'a:01', 'a:+1', '::1:5000', '[zz]:1', '1.2.3.999:1', '-a:1', 'a_b:1', ' a:1', 'a:1 ', 'a..b:1', '', `${'a'.repeat(64)}:1`]) t.false(isEndpoint(e), e);
  t.deepEqual(parseEndpoint('[::1]:7'), { host: '::1', port: 7 });
  t.is(formatEndpoint('::1', 7), '[::1]:7');
  t.is(formatEndpoint('10.0.0.1', 7), '10.0.0.1:7');
});

test('uid: 32 lowercase hexadecimal digits from the CSPRNG, all distinct', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const u = newUid();
    t.true(isUid(u));
    seen.add(u);
  }
  t.is(seen.size, 2000);
  t.false(isUid(UID.toUpperCase()));
});

test('fuzz: any input parses to a message or fails with a SciStreamError, never anything else (property)', (t) => {
  const docs = messageArb.map(buildMessage);
  const mutated = fc.tuple(docs, fc.nat(), fc.string({ maxLength: 4 })).map(([d, i, s]) => d.slice(0, i % (d.length + 1)) + s + d.slice((i % (d.length + 1)) + 1));
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), mutated), (input) => {
    try {
      parseMessage(input);
    } catch (err) {
      t.true(err instanceof SciStreamError, String(err));
    }
    t.pass();
  }), { numRuns: 3000 });
});

test('codes: every §8 code has a BEEP reply code; reply codes map back; data-server failures are classified', (t) => {
  t.deepEqual([...SCISTREAM_CODES], ['SUCCESS', 'AUTH_ERROR', 'INVALID_UID', 'NO_RESOURCE', 'CONN_ERROR', 'VERSION_ERR', 'RATE_LIMIT', 'BAD_FORMAT', 'SERVER_ERR', 'TIMEOUT', 'NOT_IMPLEMENTED', 'UNAVAILABLE']);
  for (const c of SCISTREAM_CODES) t.true(REPLY_CODES[c] >= 200 && REPLY_CODES[c] <= 599);
  for (const c of SCISTREAM_CODES) {
    if (c === 'SUCCESS' || c === 'TIMEOUT' || c === 'VERSION_ERR') continue; // share 451 / 504 with SERVER_ERR / NOT_IMPLEMENTED
    t.is(codeForReplyCode(REPLY_CODES[c]), c);
  }
  t.is(codeForReplyCode(530), 'AUTH_ERROR');
  t.is(codeForReplyCode(538), 'AUTH_ERROR');
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:4000'), { code: 'ECONNREFUSED', address: '10.0.0.1', port: 4000 });
  const c1 = classifyDataError(refused);
  t.is(c1.code, 'CONN_ERROR');
  t.is(c1.endpoint, '10.0.0.1:4000');
  t.false(c1.message.includes('ECONNREFUSED'), 'internal text stays out of the message');
  t.is(classifyDataError(Object.assign(new Error('x'), { code: 'EADDRINUSE' }), 12).retryAfter, 12);
  t.is(classifyDataError(Object.assign(new Error('x'), { code: 'EADDRINUSE' })).code, 'NO_RESOURCE');
  t.is(classifyDataError(Object.assign(new Error('secret path /etc/x'), {})).message.includes('secret'), false);
  t.is(classifyDataError(new Error('boom')).code, 'SERVER_ERR');
  t.is(classifyDataError({ code: 'TIMEOUT', message: 'x' }).code, 'TIMEOUT');
  t.is(classifyDataError(new BeepError(ErrorCodes.LIMIT, 'no free port in 5100-5199')).code, 'NO_RESOURCE');
  t.is(classifyDataError(new BeepError(ErrorCodes.TRANSPORT, 'TLS handshake failed')).code, 'CONN_ERROR');
  t.is(classifyDataError(new BeepError(ErrorCodes.INVALID_STATE, 'data server closed')).code, 'UNAVAILABLE');
  t.is(classifyDataError(new Error('connect to 10.0.0.1:4000 timed out after 10000 ms')).code, 'CONN_ERROR');
  const wrapped = classifyDataError(new BeepError(ErrorCodes.TRANSPORT, 'x', { cause: refused }));
  t.is(wrapped.code, 'CONN_ERROR');
  t.is(wrapped.endpoint, '10.0.0.1:4000', 'found in the cause chain');
  const own = new SciStreamError('UNAVAILABLE', 'draining');
  t.is(classifyDataError(own), own);
});
