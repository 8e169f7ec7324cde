/**
 * The progress bar of `connect --file`: its formatting, its redraw rate,
 * and silence when standard error is not a terminal or with `--quiet`.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ECHO_URI } from '../../src/index.js';
import { formatDuration, formatOctets, formatProgress, Progress, PROGRESS_INTERVAL_MS } from '../../src/cli/progress.js';
import { run, startListener, stop } from '../helpers/cli.js';

test('formatOctets and formatDuration', (t) => {
  t.is(formatOctets(0), '0 B');
  t.is(formatOctets(1023), '1023 B');
  t.is(formatOctets(1536), '1.5 KiB');
  t.is(formatOctets(10 * 1024 * 1024), '10.0 MiB');
  t.is(formatOctets(3 * 1024 ** 3), '3.0 GiB');
  t.is(formatOctets(NaN), '?');
  t.is(formatDuration(0), '0:00');
  t.is(formatDuration(4.4), '0:04');
  t.is(formatDuration(61), '1:01');
  t.is(formatDuration(3725), '1:02:05');
  t.is(formatDuration(Infinity), '--:--');
});

test('formatProgress: bar, percentage, octets, rate and ETA', (t) => {
  const MiB = 1024 * 1024;
  t.is(formatProgress({ done: 0, total: 10 * MiB, elapsedMs: 0 }), '[------------------------]   0.0%  0 B / 10.0 MiB  ? B/s  ETA --:--');
  t.is(formatProgress({ done: 4.2 * MiB, total: 10 * MiB, elapsedMs: 2000 }), '[##########--------------]  42.0%  4.2 MiB / 10.0 MiB  2.1 MiB/s  ETA 0:03');
  t.is(formatProgress({ done: 10 * MiB, total: 10 * MiB, elapsedMs: 4000, label: '2/3' }), '2/3 [########################] 100.0%  10.0 MiB / 10.0 MiB  2.5 MiB/s  ETA 0:00');
  t.is(formatProgress({ done: 512, total: 0, elapsedMs: 1000, width: 4 }), '[????]     ?%  512 B  512 B/s  ETA --:--');
  t.is(formatProgress({ done: 5, total: 10, elapsedMs: 1000, width: 10 }), '[#####-----]  50.0%  5 B / 10 B  5 B/s  ETA 0:01');
});

/** A fake terminal: records writes. */
function tty(isTTY: boolean): { writes: string[]; write(s: string): boolean; isTTY: boolean } {
  const writes: string[] = [];
  return { writes, isTTY, write: (s: string) => (writes.push(s), true) };
}

test('Progress redraws at most every 100 ms, always at the end, and erases its line', (t) => {
  let now = 0;
  const term = tty(true);
  const p = new Progress(1000, { stream: term, now: () => now });
  t.true(p.enabled);
  for (let i = 0; i < 100; i++) {
    now += 7; // 700 ms of 10-octet steps
    p.add(10);
  }
  t.is(p.done, 1000);
  // Draws at t=7 (first), then every ≥100 ms, and the final one at 1000 octets.
  t.is(term.writes.length, 8, 'at t = 7, 112, 217, 322, 427, 532, 637 and the end at 700');
  for (const w of term.writes) t.regex(w, /^\r.*\x1b\[K$/);
  t.regex(term.writes.at(-1) as string, /100\.0%/);
  p.finish();
  t.is(term.writes.at(-1), '\r\x1b[K');
  t.is(PROGRESS_INTERVAL_MS, 100);
});

test('Progress is silent when the stream is not a terminal, and with quiet', async (t) => {
  for (const [term, quiet] of [[tty(false), false], [tty(true), true]] as const) {
    const p = new Progress(100, { stream: term, quiet });
    t.false(p.enabled);
    let seen = 0;
    await pipeline(Readable.from([Buffer.alloc(60), Buffer.alloc(40)]), p.counter(), new Writable({ write: (c: Buffer, _e, cb) => ((seen += c.length), cb()) }));
    t.is(seen, 100, 'the counter passes everything through');
    t.is(p.done, 100);
    p.finish();
    t.deepEqual(term.writes, []);
  }
});

test('connect --file with stderr not a terminal: no progress noise', async (t) => {
  const { child, address } = await startListener(['--log-level', 'silent']);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'beepstream-ops-progress-'));
    const path = join(dir, 'data.bin');
    writeFileSync(path, randomBytes(2 * 1024 * 1024));
    const r = await run(['connect', address, '--profile', ECHO_URI, '--file', path, '--count', '2']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stderr, '');
    t.false(r.stdout.includes('\r') || r.stdout.includes('%'));
    t.is(r.stdout.split('\n').filter((l) => l.startsWith('RPY: (2097152 octets, sha256 ')).length, 2);
  } finally {
    await stop(child);
  }
});
