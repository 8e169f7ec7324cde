/**
 * Every DECADE parser refuses arbitrary input with a DecadeError, never
 * anything else (property tests), and the XML reader refuses DOCTYPE and
 * entity declarations before anything is expanded.
 */
import test from 'ava';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';
import {
  buildCreated, buildDrpRequest, buildRange, buildStatus, isDecadeError, parseCreated, parseDrpRequest, parseName, parseRange, parseStatus, verifyToken,
} from '../../src/decade/index.js';

const inputs = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u).toString('latin1')),
  fc.constantFrom('<status/>', "<status token='x'/>", "<delete token='x'/>", "<delete token='x' name='y'/>", '<status token="a" name="&bogus;"/>', '<a><b><c><d><e/></d></c></b></a>', "<range size='-1'/>", "<created size='99999999999999999999'/>"),
  fc.tuple(fc.constantFrom('status', 'delete', 'range', 'created', 'x'), fc.dictionary(fc.constantFrom('token', 'name', 'size', 'offset', 'length', 'used'), fc.string({ maxLength: 20 }), { maxKeys: 4 }))
    .map(([n, a]) => `<${n}${Object.entries(a).map(([k, v]) => ` ${k}='${v.replace(/['<&]/g, '')}'`).join('')} />`),
);

for (const [name, parse] of [
  ['parseDrpRequest', (s: string) => parseDrpRequest(Buffer.from(s))],
  ['parseRange', (s: string) => parseRange(Buffer.from(s))],
  ['parseCreated', (s: string) => parseCreated(Buffer.from(s))],
  ['parseStatus', (s: string) => parseStatus(Buffer.from(s))],
  ['parseName', (s: string) => parseName(s)],
] as const) {
  test(`property: ${name} returns or throws a DecadeError, nothing else`, (t) => {
    fc.assert(
      fc.property(inputs, (s) => {
        try {
          parse(s);
          return true;
        } catch (err) {
          return isDecadeError(err);
        }
      }),
      { numRuns: 1000 },
    );
    t.pass();
  });
}

test('property: verifyToken rejects arbitrary strings with TOKEN_INVALID', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.string({ maxLength: 200 }), fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((p) => p.join('.').replace(/[+/=]/g, '_'))), async (s) => {
      try {
        await verifyToken(s, { keyOf: () => undefined });
        return false;
      } catch (err) {
        return isDecadeError(err, 'TOKEN_INVALID');
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('DOCTYPE and entity declarations are refused before parsing (BAD_REQUEST, 500)', (t) => {
  for (const doc of [
    '<!DOCTYPE x [<!ENTITY a "aaaa">]><status token="&a;"/>',
    '<?xml version="1.0"?><!DOCTYPE status SYSTEM "file:///etc/passwd"><status token="t"/>',
  ]) {
    const err = t.throws(() => parseDrpRequest(Buffer.from(doc)));
    t.true(isDecadeError(err, 'BAD_REQUEST'));
    t.is((err as { replyCode?: number }).replyCode, 500);
  }
});

test('documents built here parse back to what was built; values are escaped', (t) => {
  const name = 'ni:///sha-256;f4OxZX_x_FO5LcGBSKHWXfwtSx-j1ncoSt3SABJtkGk';
  t.deepEqual(parseDrpRequest(Buffer.from(buildDrpRequest({ kind: 'delete', token: "a'b<c&d", name }))), { kind: 'delete', token: "a'b<c&d", name });
  t.deepEqual(parseCreated(Buffer.from(buildCreated({ name, size: 12, fresh: true }))), { name, size: 12, fresh: true });
  const r = { name, size: 100, offset: 10, length: 90, type: 'text/plain', state: 'uploading' as const };
  t.deepEqual(parseRange(Buffer.from(buildRange(r))), r);
  const s = {
    account: 'alice', used: 5, quota: 10, available: 5,
    objects: [{ name, size: 5, type: 'a/b', created: Date.UTC(2026, 0, 1), expires: null, gets: 1, puts: 2, state: 'complete' as const }],
  };
  t.deepEqual(parseStatus(Buffer.from(buildStatus(s))), s);
});
