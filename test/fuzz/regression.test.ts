/**
 * Replays the fuzz corpus and crashers (`test/fuzz/corpus/<target>/`,
 * `test/fuzz/crashers/<target>/`) through the oracles of `targets.ts`: each
 * target's own files (the corpus keeps the coverage the fuzzer reached under
 * test; the crashers are regressions of the bugs it found), then every other
 * target's files too, since the inputs of one parser are good probes of the
 * others. Serial: the session target watches process-wide events.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { MgmtSyntaxError, parseMgmt } from '../../src/channels/mgmt.js';
import { SciStreamError } from '../../src/scistream/control/errors.js';
import { parseMessage } from '../../src/scistream/control/messages.js';
import { FUZZ_DIR, inputFiles, type FuzzTarget } from './engine.js';
import { TARGETS } from './targets.js';

const filesOf = (t: FuzzTarget): string[] => ['corpus', 'crashers'].flatMap((kind) => inputFiles(path.join(FUZZ_DIR, kind, t.name)));

async function replay(target: FuzzTarget, files: readonly string[]): Promise<string[]> {
  await target.setup?.();
  const failures: string[] = [];
  for (const f of files) {
    try {
      await target.run(fs.readFileSync(f));
    } catch (err) {
      failures.push(`${path.relative(FUZZ_DIR, f)}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  return failures;
}

for (const target of TARGETS) {
  const own = filesOf(target);
  test.serial(`fuzz ${target.name}: its corpus and crashers (${own.length} inputs)`, async (t) => {
    t.true(inputFiles(path.join(FUZZ_DIR, 'corpus', target.name)).length > 0, 'no corpus');
    t.deepEqual(await replay(target, own), []);
  });
  const others = TARGETS.filter((o) => o !== target).flatMap(filesOf);
  test.serial(`fuzz ${target.name}: the other targets' inputs (${others.length} inputs)`, async (t) => {
    t.deepEqual(await replay(target, others), []);
  });
}

// Found while fuzzing (by review of what the XML targets run first): the
// pre-parse shape scan of channel 0 and SciStream control documents searched
// for the end of every "<" and comment with regular expressions, in time
// quadratic in the size of a 64 KiB document full of unterminated ones
// (about 0.8 s of CPU per message).
test.serial('the XML shape scan is linear: 64 KiB of unterminated tags or comments parse quickly', (t) => {
  for (const doc of ['<a'.repeat(32000), '<!--'.repeat(16000), '<![CDATA['.repeat(7000), `<r>${'<a'.repeat(31000)}</r>`]) {
    for (const [parse, error] of [[parseMgmt, MgmtSyntaxError], [parseMessage, SciStreamError]] as const) {
      // CPU time, not wall time: two busy cores or other test files stretch the wall clock, not
      // the work. Quadratic cost was about 800 ms of CPU here; linear is a few ms.
      const start = process.cpuUsage();
      t.true(t.throws(() => parse(doc)) instanceof error);
      const used = process.cpuUsage(start);
      const ms = (used.user + used.system) / 1000;
      t.true(ms < 400, `${parse.name}(${JSON.stringify(doc.slice(0, 12))}…): ${ms.toFixed(0)} ms of CPU`);
    }
  }
});
