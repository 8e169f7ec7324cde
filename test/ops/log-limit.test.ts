/**
 * The per-session log limiter (issue 17): repeated records of one session
 * are aggregated into one line with a count per interval, one session writes
 * at most `perSession` lines plus its close line, and records of the
 * listener itself pass untouched.
 */
import test from 'ava';
import { limitLogs } from '../../src/ops/log-limit.js';

function sink(): { lines: { fields: Record<string, unknown>; msg: unknown }[]; log: Record<"info" | "warn" | "error" | "debug" | "trace" | "fatal", (...a: unknown[]) => void> } {
  const lines: { fields: Record<string, unknown>; msg: unknown }[] = [];
  const rec = (fields: unknown, msg?: unknown): void => void lines.push({ fields: (typeof fields === 'object' ? fields : { msg: fields }) as Record<string, unknown>, msg });
  return { lines, log: { info: rec, warn: rec, error: rec, debug: rec, trace: rec, fatal: rec } };
}

test('one session flooding warnings writes a few lines, a summary with the count, and its close line', (t) => {
  const { lines, log } = sink();
  const l = limitLogs(log, { intervalMs: 60_000 });
  for (let i = 0; i < 25_000; i++) l.warn({ event: 'handler.error', sessionId: 7 }, `failure ${i}`);
  t.is(lines.length, 3, 'perKind lines, the rest counted');
  l.logLimit.flush();
  t.is(lines.length, 4);
  t.like(lines[3]?.fields, { event: 'log.repeated', sessionId: 7, repeatedEvent: 'handler.error', count: 24_997 });
  l.info({ event: 'session.close', sessionId: 7 }, 'closed');
  t.like(lines[4]?.fields, { event: 'session.close', suppressed: 24_997 });
  l.logLimit.stop();
});

test('a session writes at most perSession lines in all, whatever the variety', (t) => {
  const { lines, log } = sink();
  const l = limitLogs(log, { intervalMs: 60_000, perSession: 50 });
  for (let i = 0; i < 10_000; i++) l.warn({ event: `kind.${i}`, sessionId: 1 }, 'x');
  l.logLimit.flush();
  l.info({ event: 'session.close', sessionId: 1 }, 'closed');
  t.is(lines.length, 51);
  for (let i = 0; i < 100; i++) l.info({ event: 'listen' }, 'not a session: untouched');
  t.is(lines.length, 151);
  l.logLimit.stop();
});

test('records of connections without a session are aggregated per address', (t) => {
  const { lines, log } = sink();
  const l = limitLogs(log, { intervalMs: 60_000 });
  for (let port = 1000; port < 6000; port++) l.warn({ event: 'limit', limit: 'maxSessions', remote: `127.0.0.1:${port}` }, 'refused');
  l.logLimit.flush();
  t.is(lines.length, 4);
  t.like(lines[3]?.fields, { event: 'log.repeated', remote: '127.0.0.1', count: 4997 });
  l.logLimit.stop();
});
