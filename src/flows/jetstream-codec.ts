/**
 * The JetStream flow store's message format and small helpers
 * (`jetstream-store.ts`, `spec/flows.md` §7.2): an event as one message body
 * (u32 length, the JSON of its fields, the payload), the errors the store
 * raises, JetStream API error codes.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { FlowsError } from './errors.js';
import type { NewEvent, StoredEvent } from './store.js';

/** base64url of a string's UTF-8 (a subject token). */
export const b64u = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
/** UNAVAILABLE: the store could not `what` (a NATS server failed or JetStream refused). */
export const unavailable = (what: string, cause: unknown): FlowsError =>
  new FlowsError('UNAVAILABLE', `the JetStream flow store could not ${what}`, { cause, beepCode: 'BEEP_ERR_INVALID_STATE' });
/** The JetStream API error code of an error (`err_code`), if it has one. */
export const apiCode = (err: unknown): number | undefined => {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
};
/** JetStream: no such stream. */
export const STREAM_NOT_FOUND = 10059;
/** JetStream refused a publish whose expected last sequence on the subject was not the last one. */
export const WRONG_LAST_SEQUENCE = 10071;

/** SEQUENCE_CONFLICT for event `index` of a batch: its number was stored with another event id. */
export function conflict(index: number, seq: number, producer: string): FlowsError {
  return new FlowsError('SEQUENCE_CONFLICT', `events[${index}]: sequence number ${seq} of producer ${JSON.stringify(producer)} was stored with another event id`, { details: { index, seq } });
}

/** Encode an event's fields and payload as one message body: u32 length, JSON fields, payload. */
export function encodeEvent(e: NewEvent, publisher: string, producer: string): Buffer {
  const meta: Record<string, unknown> = { s: e.seq, i: e.id, n: e.ns, m: e.name, o: e.source, t: e.time, c: e.contentType, x: e.text ? 1 : 0, u: publisher, p: producer };
  if (e.lang !== undefined) meta.l = e.lang;
  if (e.to !== undefined) meta.r = e.to;
  const m = Buffer.from(JSON.stringify(meta), 'utf8');
  const out = Buffer.allocUnsafe(4 + m.length + e.payload.length);
  out.writeUInt32BE(m.length, 0);
  m.copy(out, 4);
  e.payload.copy(out, 4 + m.length);
  return out;
}

/** Decode a message body made by {@link encodeEvent} into the event stored at `offset`. */
export function decodeEvent(data: Uint8Array, offset: number, storedMs: number): StoredEvent {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const n = b.readUInt32BE(0);
  const m = JSON.parse(b.toString('utf8', 4, 4 + n)) as Record<string, string | number>;
  const e: StoredEvent = {
    offset, stored: storedMs, seq: m.s as number, id: m.i as string, ns: m.n as string, name: m.m as string, source: m.o as string, time: m.t as string,
    contentType: m.c as string, text: m.x === 1, payload: Buffer.from(b.subarray(4 + n)), publisher: m.u as string, producer: m.p as string,
  };
  if (m.l !== undefined) e.lang = m.l as string;
  if (m.r !== undefined) e.to = m.r as string;
  return e;
}
