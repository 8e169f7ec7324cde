/**
 * The last events written to each flow of the SQLite store, kept in memory
 * (bounded: 4,096 events, 4 MiB of payload per flow; `spec/flows.md` §7):
 * subscribers woken by a commit read their pages from here, not with a query.
 *
 * @module
 */
import type { ReadResult, StoredEvent } from './store.js';
import type { FlowState } from './sqlite-tables.js';
import { matchesFilters, type TypeFilter } from './wire.js';

/** Events and payload octets kept in memory per flow for fresh pages. */
const RECENT_EVENTS = 4096;
const RECENT_BYTES = 4 * 1024 * 1024;

/** @internal Drop the oldest events kept beyond the bounds. */
export function trimRecent(f: FlowState): void {
  let drop = 0;
  let bytes = f.recentBytes;
  while (drop < f.recent.length && (f.recent.length - drop > RECENT_EVENTS || bytes > RECENT_BYTES)) bytes -= (f.recent[drop++] as StoredEvent).payload.length;
  if (drop === 0) return;
  f.recent = f.recent.slice(drop);
  f.recentBytes = bytes;
}

/**
 * @internal A page from the events kept in memory (what the database would return for
 * the same arguments), or `undefined` when they do not reach back to `from`.
 */
export function readRecent(f: FlowState, from: number, max: number, filters: readonly TypeFilter[], end: number): ReadResult | undefined {
  const head = f.recent[0];
  const start = Math.max(from, f.first);
  if (!head || start < head.offset) return undefined;
  const events: StoredEvent[] = [];
  for (let i = start - head.offset; i < f.recent.length; i++) {
    const e = f.recent[i] as StoredEvent;
    if (e.offset >= end) break;
    if (filters.length === 0 || matchesFilters(filters, e.ns, e.name)) {
      events.push(e);
      if (events.length === max) break;
    }
  }
  const last = events[events.length - 1];
  return { events, next: events.length === max && last ? last.offset + 1 : end };
}
