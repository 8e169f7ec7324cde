/**
 * The storage interface of the flows server: one durable, append-only log per
 * flow, producer sequence state (duplicate suppression, gap detection) and
 * consumer positions. The embedded default is `sqlite-store.ts`; another
 * backend (e.g. NATS JetStream) implements the same interface.
 *
 * Contract, for every implementation:
 * - `append` checks a batch against the producer's sequence numbers in call
 *   order (calls for one producer are settled in the order they were made)
 *   and resolves once the events are durable (on disk, or on a quorum of
 *   replicas: they survive a power loss); it rejects if they could not be
 *   made durable. The server acknowledges a publish only after that.
 * - `pages` yields only events that a crash of the server process cannot
 *   take back (written to the log; the SQLite store with `deliver:
 *   'durable'`, and JetStream: durable). A consumer position (`ack`) is
 *   durable only with every event before it.
 * - A producer's sequence numbers are contiguous per (flow, publisher,
 *   producer): a number already stored is a duplicate (its offset is
 *   returned again, nothing stored), one beyond the next is a gap
 *   (SEQUENCE_GAP, nothing of the batch stored).
 *
 * @module
 */
import type { Buffer } from 'node:buffer';
import type { FlowAcl, FlowInfo, FlowRetention, TypeFilter } from './wire.js';

/** An event to append (validated, type normalized). */
export interface NewEvent {
  seq: number;
  id: string;
  ns: string;
  name: string;
  source: string;
  time: string;
  contentType: string;
  lang?: string;
  /** The user the event is routed to, if any. */
  to?: string;
  /** The payload was sent as text (UTF-8). */
  text: boolean;
  payload: Buffer;
}

/** An event as stored. */
export interface StoredEvent extends NewEvent {
  offset: number;
  /** When it was stored (ms since the epoch). */
  stored: number;
  producer: string;
  publisher: string;
}

/** What `append` did, once durable. */
export interface AppendResult {
  /** The offset of each event of the batch, in order (a duplicate gets the offset it was stored at). */
  offsets: number[];
  /** How many events of the batch were already stored (retries). */
  duplicates: number;
}

/** A page of a flow read from the store. */
export interface ReadResult {
  /** Committed events from the start offset on that pass the filters, in offset order. */
  events: StoredEvent[];
  /** Where the next read continues (past every event examined, matching or not). */
  next: number;
}

/** Options of {@link FlowStore.pages}. */
export interface PagesOptions {
  /** Events per page at most. */
  max: number;
  /** Only events passing these (none: every event). */
  filters: readonly TypeFilter[];
  /** Keep waiting for new events at the end (true), or end there (false). */
  follow: boolean;
  /** Ends the iteration. */
  signal: AbortSignal;
}

/** Storage of flows. See the module documentation for the contract. */
export interface FlowStore {
  /** Which backend (`sqlite`, `jetstream`), for status pages. */
  readonly kind: string;
  /** Create a flow; throws FLOW_EXISTS. Durable when it resolves. */
  createFlow(name: string, description: string, acl: FlowAcl, retention?: FlowRetention): Promise<FlowInfo>;
  /** Describe a flow, or `undefined`. */
  describe(name: string): Promise<FlowInfo | undefined>;
  /** Every flow, by name. */
  list(): Promise<FlowInfo[]>;
  /** Replace a flow's ACL; throws FLOW_NOT_FOUND. Durable when it resolves, with the flow as it is then. */
  setAcl(name: string, acl: FlowAcl): Promise<FlowInfo>;
  /** Delete a flow and its events; false when there was none. Durable when it resolves. */
  deleteFlow(name: string): Promise<boolean>;
  /** Append a batch (see the module documentation); throws FLOW_NOT_FOUND, SEQUENCE_GAP, SEQUENCE_CONFLICT, UNAVAILABLE. */
  append(flow: string, publisher: string, producer: string, events: readonly NewEvent[]): Promise<AppendResult>;
  /** The last sequence number stored for a producer of a publisher, 0 if none. */
  lastSeq(flow: string, publisher: string, producer: string): Promise<number>;
  /**
   * Committed events from offset `from` on, page by page, in offset order.
   * Ends when the flow is deleted, the store closes, `signal` aborts, or
   * (`follow: false`) at the end of the flow. The next page is read only
   * when the consumer asks for it: a slow consumer holds the reading back.
   */
  pages(flow: string, from: number, options: PagesOptions): AsyncIterable<ReadResult>;
  /** The offset after the last committed event. */
  committedNext(flow: string): Promise<number>;
  /** The offset of the first event stored at or after `ms` (ms since the epoch), or `committedNext`. */
  offsetAtTime(flow: string, ms: number): Promise<number>;
  /** Record that `consumer` processed everything up to `offset`; resolves with the position kept (never decreases) once durable. */
  ack(flow: string, consumer: string, offset: number): Promise<number>;
  /** The last acknowledged offset of a consumer, 0 if none. */
  acked(flow: string, consumer: string): Promise<number>;
  /**
   * Counters of the store's work so far, by name (e.g. `commits`, `rows`,
   * `syncs`), for operators and benchmarks (`flows serve --stats`); optional.
   */
  stats?(): Record<string, number>;
  /** Flush what is pending and close. */
  close(): Promise<void>;
}
