/**
 * `--trace`: frames as RFC 3080 writes them. The formatter on its own, then
 * the trace of a known exchange (connect to listen, echo one message) on both
 * sides, frame by frame; and no secret in a trace of a SASL exchange.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO_URI, createUserEntry } from '../../src/index.js';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { escapeOctets, formatFrame, frameEventOf, maskPayload } from '../../src/cli/trace.js';
import { testPki } from '../helpers/certs.js';
import { run } from '../helpers/cli.js';
import { startServer } from '../helpers/ops-server.js';

const I = { localRole: 'initiator' } as const;
const L = { localRole: 'listener' } as const;

test('formatFrame: header, payload lines split at CRLF, END; the sender decides I: or L:', (t) => {
  const greeting = 'Content-Type: application/beep+xml\r\n\r\n<greeting />\r\n';
  const e = frameEventOf('out', { type: 'RPY', channel: 0, msgno: 0, more: false, seqno: 0, size: 52 }, greeting);
  // The RFC's own example (RFC 3080 §2.3.1.1), sent by the initiator.
  t.is(formatFrame(e, I), 'I: RPY 0 0 . 0 52\nI: Content-Type: application/beep+xml\nI:\nI: <greeting />\nI: END\n');
  t.is(formatFrame(e, L), 'L: RPY 0 0 . 0 52\nL: Content-Type: application/beep+xml\nL:\nL: <greeting />\nL: END\n');
  t.is(formatFrame({ ...e, direction: 'in' }, I), formatFrame(e, L));
  // SEQ: the header line only (RFC 3081 §3.1.3: no payload, no trailer).
  t.is(formatFrame(frameEventOf('in', { type: 'SEQ', channel: 3, ackno: 4096, window: 65536 }), I), 'L: SEQ 3 4096 65536\n');
  // NUL and ANS.
  t.is(formatFrame(frameEventOf('out', { type: 'NUL', channel: 1, msgno: 7, more: false, seqno: 10, size: 0 }), L), 'L: NUL 1 7 . 10 0\nL: END\n');
  t.is(formatFrame(frameEventOf('out', { type: 'ANS', channel: 1, msgno: 7, more: true, seqno: 0, size: 3, ansno: 2 }, 'abc'), L), 'L: ANS 1 7 * 0 3 2\nL: abc\nL: END\n');
});

test('formatFrame: non-printables escaped, payload cut with the count of the rest; channel 0 shown up to 256 octets', (t) => {
  t.is(escapeOctets(Buffer.from('a\tb\\c\x00\x7f\u00e9\r\n', 'utf8')), 'a\\tb\\\\c\\x00\\x7f\\xc3\\xa9\\r\\n');
  const body = Buffer.concat([Buffer.from('\r\n'), Buffer.alloc(100, 0x61)]);
  const e = frameEventOf('out', { type: 'MSG', channel: 1, msgno: 0, more: false, seqno: 0, size: 102 }, body);
  t.is(formatFrame(e, { ...I, maxOctets: 10 }), `I: MSG 1 0 . 0 102\nI:\nI: ${'a'.repeat(8)}\nI: …(92 more octets)\nI: END\n`);
  t.is(formatFrame(e, { ...I, maxOctets: 0 }), 'I: MSG 1 0 . 0 102\nI: …(102 more octets)\nI: END\n');
  // A frame larger than its preview (256 octets): the count is of the whole frame.
  const big = frameEventOf('in', { type: 'RPY', channel: 2, msgno: 1, more: true, seqno: 5, size: 70000 }, Buffer.alloc(256, 0x62));
  t.is(formatFrame(big, I), `L: RPY 2 1 * 5 70000\nL: ${'b'.repeat(64)}\nL: …(69936 more octets)\nL: END\n`);
  const mgmt = 'Content-Type: application/beep+xml\r\n\r\n' + `<start number='1'><profile uri='${'u'.repeat(100)}' /></start>\r\n`;
  const m = frameEventOf('out', { type: 'MSG', channel: 0, msgno: 1, more: false, seqno: 0, size: mgmt.length }, mgmt);
  t.true(formatFrame(m, I).includes(`<profile uri='${'u'.repeat(100)}' /></start>\nI: END\n`), 'channel 0 whole');
  // A CR not followed by LF stays escaped on its line.
  t.is(formatFrame(frameEventOf('out', { type: 'MSG', channel: 1, msgno: 0, more: false, seqno: 0, size: 5 }, 'a\rb\nc'), I), 'I: MSG 1 0 . 0 5\nI: a\\rb\\nc\nI: END\n');
});

test('formatFrame: SASL blobs, uid attributes and hidden payloads are never shown', (t) => {
  t.is(maskPayload(`<blob>AGFsaWNlAHNlY3JldA==</blob>`), '<blob>***</blob>');
  t.is(maskPayload(`<blob status='complete'>dj1abc</blob> and <blob>cut off`), `<blob status='complete'>***</blob> and <blob>***`);
  t.is(maskPayload(`<blob status='complete' /></profile>`), `<blob status='complete' /></profile>`, 'an empty blob has nothing to hide');
  t.is(maskPayload(`<blob></blob>`), `<blob></blob>`);
  t.is(maskPayload(`<request uid='0123456789abcdef0123456789abcdef' role='PROD'/>`), `<request uid='***' role='PROD'/>`);
  const start = `Content-Type: application/beep+xml\r\n\r\n<start number='1'><profile uri='http://iana.org/beep/SASL/PLAIN'><![CDATA[<blob>AGFsaWNlAHNlY3JldA==</blob>]]></profile></start>\r\n`;
  const out = formatFrame(frameEventOf('out', { type: 'MSG', channel: 0, msgno: 1, more: false, seqno: 0, size: start.length }, start), I);
  t.false(out.includes('AGFsaWNlAHNlY3JldA'));
  t.true(out.includes('<![CDATA[<blob>***'));
  const hidden = formatFrame(frameEventOf('out', { type: 'MSG', channel: 1, msgno: 0, more: false, seqno: 0, size: 30 }, 'x'.repeat(30)), { ...I, hidePayload: true });
  t.is(hidden, 'I: MSG 1 0 . 0 30\nI: …(30 octets not shown)\nI: END\n');
});

test('formatFrame: a SEQ we sent is followed by a # line with the receive-window state behind it', (t) => {
  const flow = { window: 1 << 20, buffered: 4096, peakBuffered: 8192, consumed: 5, peerStalls: 3, seqs: 7, grows: 4, shrinks: 1, rttMs: 50, minRttMs: 49.5, srttMs: 51.25, rate: 1000000 };
  const out = formatFrame({ ...frameEventOf('out', { type: 'SEQ', channel: 3, ackno: 4096, window: 65536 }), flow }, I);
  t.is(out, 'I: SEQ 3 4096 65536\n# flow channel 3: window 1048576, unread 4096, rtt 51.3 ms (min 49.5), rate 1000000 octets/s, peer stalls 3, grows 4, shrinks 1\n');
});

/** The trace as frame blocks: a SEQ line alone, or a header through its END. */
function blocks(trace: string): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  for (const line of trace.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    cur.push(line);
    if (/^[IL]: SEQ /.test(line) || /^[IL]: END$/.test(line)) {
      out.push(cur.join('\n'));
      cur = [];
    }
  }
  if (cur.length) out.push(cur.join('\n'));
  return out;
}

const MESSAGE = 'tab\there \u00e9 and more text to pass the sixty-four octet limit of the trace!!';
const CT = 'Content-Type: application/beep+xml';
const GREETING_L = `<greeting><profile uri='${ECHO_URI}' /><profile uri='urn:beepstream:profiles:answers' /></greeting>`;
const SHOWN = 'tab\\there \\xc3\\xa9 and more text to pass the sixty-four octet limit o';

/** Frames the initiator sends in that exchange, in order. */
const EXPECTED_I = [
  `I: RPY 0 0 . 0 50\nI: ${CT}\nI:\nI: <greeting />\nI: END`,
  'I: SEQ 0 168 65536',
  `I: MSG 0 1 . 50 124\nI: ${CT}\nI:\nI: <start number='1'><profile uri='${ECHO_URI}' /></start>\nI: END`,
  'I: SEQ 1 0 65536',
  `I: MSG 1 0 . 0 77\nI:\nI: ${SHOWN}\nI: …(13 more octets)\nI: END`,
  `I: MSG 0 2 . 174 69\nI: ${CT}\nI:\nI: <close number='1' code='200' />\nI: END`,
  `I: MSG 0 3 . 243 69\nI: ${CT}\nI:\nI: <close number='0' code='200' />\nI: END`,
];
/** Frames the listener sends, in order. */
const EXPECTED_L = [
  `L: RPY 0 0 . 0 168\nL: ${CT}\nL:\nL: ${GREETING_L}\nL: END`,
  'L: SEQ 0 50 65536',
  `L: RPY 0 1 . 168 98\nL: ${CT}\nL:\nL: <profile uri='${ECHO_URI}' />\nL: END`,
  'L: SEQ 1 0 65536',
  `L: RPY 1 0 . 0 77\nL:\nL: ${SHOWN}\nL: …(13 more octets)\nL: END`,
  `L: RPY 0 2 . 266 44\nL: ${CT}\nL:\nL: <ok />\nL: END`,
  `L: RPY 0 3 . 310 44\nL: ${CT}\nL:\nL: <ok />\nL: END`,
];

test.serial('connect --trace and listen --trace: the frames of an echo exchange, exactly, on both sides', async (t) => {
  const server = await startServer(['listen', '--port', '0', '--trace', '--log-level', 'silent']);
  let code: number | string | null = null;
  let connectErr = '';
  try {
    const r = await run(['connect', server.address, '--profile', ECHO_URI, '--message', MESSAGE, '--trace']);
    t.is(r.code, 0, r.stderr);
    t.true(r.stdout.includes(`RPY: ${MESSAGE}`), 'stdout still carries the data');
    t.false(/^[IL]: /m.test(r.stdout), 'the trace is on stderr only');
    connectErr = r.stderr;
  } finally {
    code = await server.stop();
  }
  t.is(code, 0);
  // Each side writes its own frames in order; how the two directions interleave is up to the network.
  for (const [side, trace] of [['connect', connectErr], ['listen', server.stderr()]] as const) {
    const b = blocks(trace);
    t.deepEqual(b.filter((x) => x.startsWith('I:')), EXPECTED_I, `${side}: initiator frames`);
    t.deepEqual(b.filter((x) => x.startsWith('L:')), EXPECTED_L, `${side}: listener frames`);
    t.is(b.length, EXPECTED_I.length + EXPECTED_L.length, `${side}: nothing else`);
  }
  // Each SEQ on a data channel says which window state produced it.
  t.regex(connectErr, /^# flow channel 1: window 65536, unread 0, /m);
  // The listener names the session it traces.
  t.regex(server.stderr(), /^# session \d+ opened with 127\.0\.0\.1:\d+$/m);
  t.regex(server.stderr(), /^# session \d+ closed$/m);
  // The server's first stdout line is still the contract.
  t.regex(server.firstLine, /^listening on 127\.0\.0\.1:\d+$/);
});

test.serial('a trace of PLAIN and SCRAM over TLS shows neither the password nor its encoding', async (t) => {
  const pki = testPki();
  const password = 'trace-secret-pw-4711';
  const users = join(pki.dir, 'ops-trace-users.json');
  writeFileSync(users, serializeUsersFile(new Map([['alice', await createUserEntry(password, 4096)]])), { mode: 0o600 });
  const server = await startServer(['listen', '--port', '0', '--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey, '--sasl-users', users, '--trace', '--trace-octets', '256', '--log-level', 'silent']);
  const traces: string[] = [];
  try {
    for (const mech of ['PLAIN', 'SCRAM-SHA-256']) {
      const r = await run(['connect', server.address, '--tls-ca', pki.paths.ca, '--server-name', 'localhost', '--sasl', mech, '--user', 'alice', '--password', 'env:PW', '--profile', ECHO_URI, '--message', 'hi', '--trace', '--trace-octets', '256'], 60_000, { env: { PW: password } });
      t.is(r.code, 0, r.stderr);
      t.regex(r.stderr, /^I: MSG 0 1 \. \d+ \d+$/m, `${mech}: traced after TLS too`);
      traces.push(r.stderr);
    }
  } finally {
    await server.stop();
  }
  traces.push(server.stderr());
  const plainB64 = Buffer.from(`\0alice\0${password}`).toString('base64');
  for (const text of traces) {
    t.false(text.includes(password));
    t.false(text.includes(plainB64.slice(0, 16)));
    t.false(text.includes(Buffer.from(password).toString('base64').slice(0, 12)));
  }
  t.regex(traces[0] as string, /<blob>\*\*\*/, 'the PLAIN initial response is masked');
  t.regex(traces[1] as string, /…\(\d+ octets not shown\)/, 'the SCRAM channel payloads are hidden');
});

test('--trace-octets: a bad value is a usage error, from a flag or a variable', async (t) => {
  const flag = await run(['connect', '127.0.0.1:1', '--profile', ECHO_URI, '--trace', '--trace-octets', '999']);
  t.is(flag.code, 2);
  t.regex(flag.stderr, /invalid --trace-octets "999": expected an integer from 0 to 256/);
  const env = await run(['listen', '--port', '0', '--trace'], 60_000, { env: { BEEPSTREAM_LISTEN_TRACE_OCTETS: 'x' } });
  t.is(env.code, 2);
  t.regex(env.stderr, /environment variable BEEPSTREAM_LISTEN_TRACE_OCTETS: invalid --trace-octets "x"/);
});
