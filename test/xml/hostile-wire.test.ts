/**
 * The hostile-XML table on the wire: the refusals of `hostile-table.ts` sent
 * to real listeners over real sockets, as peers would send them — on channel
 * 0 from a raw-socket peer (RFC 3080 §2.3.1.5: ERR 500, the session goes on),
 * and on a SciStream control channel over TLS + SASL (ERR BAD_FORMAT with
 * reply code 500). Documents too large for the first window of channel 0
 * (4096 octets, RFC 3081 §3.1.1) are left to `hostile.test.ts`.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { BEEP_XML } from '../../src/framing/mime.js';
import { CONTROL_URI, SciStreamError, toSciStreamError } from '../../src/scistream/control/index.js';
import { BEEP_XML_HEAD, ECHO, errorCode, harness } from '../helpers/raw-peer.js';
import { login, startS2cs } from '../scistream/control/harness.js';
import { HOSTILE } from './hostile-table.js';

const bytes = (d: string | Uint8Array): Buffer => (typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d));
const refusals = HOSTILE.filter((c) => !c.verdict.accept);

test('hostile XML on channel 0 from a raw peer: every refusal in the table is ERR 500, and the session carries on', async (t) => {
  const h = await harness(t);
  const p = await h.ready();
  p.autoAck(0, 65536); // the server's ERRs on channel 0 need window from us
  const wrap = (inner: string): string => `<start number='1'><profile uri='${ECHO}' />${inner}</start>`;
  let sent = 0;
  for (const c of refusals) {
    const doc = bytes(c.doc(wrap));
    if (doc.length + BEEP_XML_HEAD.length > 4000) continue;
    const r = await p.expectReply(0, p.request(0, Buffer.concat([Buffer.from(BEEP_XML_HEAD), doc])));
    t.is(r.type, 'ERR', `${c.name}: ${r.text.slice(0, 120)}`);
    t.is(errorCode(r.body), 500, c.name);
    sent++;
  }
  t.true(sent >= refusals.length - 2, `${sent} of ${refusals.length} sent`);
  // Nothing was started or expanded: channel 1 is free, and echo works on it.
  await p.startChannel(1, ECHO);
  t.true(await p.echo(1, 'still here'));
  t.deepEqual(p.violations, []);
  t.deepEqual(h.handlerErrors, []);
});

test('hostile XML on a SciStream control channel (TLS + SASL): every refusal in the table is ERR BAD_FORMAT with reply code 500', async (t) => {
  const { port, s2cs } = await startS2cs(t);
  const session = await login(t, port, 'alice');
  const ch = await session.startChannel(CONTROL_URI);
  const wrap = (inner: string): string => `<release uid='0123456789abcdef0123456789abcdef'>${inner}</release>`;
  let sent = 0;
  for (const c of refusals) {
    const doc = bytes(c.doc(wrap));
    if (doc.length > 60_000) continue;
    const err = await t.throwsAsync(ch.request(doc, { contentType: BEEP_XML }));
    const e = toSciStreamError(err);
    t.true(e instanceof SciStreamError, `${c.name}: ${String(err)}`);
    t.is((e as SciStreamError).code, 'BAD_FORMAT', c.name);
    t.is((e as SciStreamError).replyCode, 500, `${c.name}: ${(e as Error).message}`);
    sent++;
  }
  t.is(sent, refusals.length - 1, 'all but the 1 MiB document (over the control channel limit)');
  t.is(s2cs.registry.size, 0);
});
