/**
 * The hostile-XML table (`hostile-table.ts`) through every caller that parses
 * received XML: each must give the same verdict — refused with reply code
 * 500 and the same reason, or accepted with the same decoded text — and each
 * refusal must be a BeepError carrying the XmlError behind it.
 */
import test from 'ava';
import { Buffer } from 'node:buffer';
import { BeepError } from '../../src/errors.js';
import { XmlError, xmlErrorOf } from '../../src/xml/index.js';
import { CALLERS, HOSTILE } from './hostile-table.js';

const bytes = (d: string | Uint8Array): Uint8Array => (typeof d === 'string' ? Buffer.from(d, 'utf8') : d);

for (const c of HOSTILE) {
  test(`hostile XML: ${c.name} — the same verdict from every caller`, (t) => {
    const outcomes: string[] = [];
    for (const caller of CALLERS) {
      const doc = bytes(c.doc(caller.wrap));
      let text: string | undefined;
      let error: unknown;
      try {
        text = caller.parse(doc);
      } catch (err) {
        error = err;
      }
      if (c.verdict.accept) {
        t.is(error, undefined, `${caller.name} refused: ${String(error)}`);
        if (text !== undefined && c.verdict.text !== undefined) t.is(text, c.verdict.text, `${caller.name}: decoded text`);
        outcomes.push(`${caller.name}: accepted`);
      } else {
        t.true(error instanceof BeepError, `${caller.name}: ${error === undefined ? 'accepted it' : `threw a non-BeepError ${String(error)}`}`);
        const xml = xmlErrorOf(error);
        t.true(xml instanceof XmlError, `${caller.name}: the XmlError is the error or its cause`);
        t.is(xml?.reason, c.verdict.reason, `${caller.name}: reason (${xml?.message})`);
        t.is(xml?.replyCode, 500, `${caller.name}: XML reply code`);
        t.is((error as BeepError).replyCode, 500, `${caller.name}: the caller's reply code`);
        outcomes.push(`${caller.name}: ${xml?.reason} ${(error as BeepError).replyCode}`);
      }
    }
    // Every caller was exercised (none skipped).
    t.is(outcomes.length, CALLERS.length);
  });
}

test('hostile XML: every caller is in the table run, and each accepts its own wrapped document', (t) => {
  t.true(CALLERS.length >= 8);
  for (const caller of CALLERS) t.notThrows(() => caller.parse(bytes(caller.wrap('plain text'))), caller.name);
});
