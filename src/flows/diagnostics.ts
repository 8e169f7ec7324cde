/**
 * The flows server's `node:diagnostics_channel` events, for metrics
 * (`src/ops/` counts them; nothing is published when nobody listens).
 * Payloads carry flow names and counts only — never an identity, an event or
 * a payload.
 *
 * @module
 */
import { channel } from 'node:diagnostics_channel';

/** Names of the flows diagnostics channels. */
export const FLOWS_DIAGNOSTICS = Object.freeze({
  /** A publish was stored: {@link FlowsPublishEvent}. */
  publish: 'beepstream:flows:publish',
  /** Events were handed to a subscriber's channel: {@link FlowsDeliverEvent}. */
  deliver: 'beepstream:flows:deliver',
});

/** Published on `beepstream:flows:publish` once a batch is durable. */
export interface FlowsPublishEvent {
  flow: string;
  /** Events newly stored. */
  events: number;
  /** Events of the batch that were retries of stored ones. */
  duplicates: number;
}

/** Published on `beepstream:flows:deliver` after each ANS to a subscriber. */
export interface FlowsDeliverEvent {
  flow: string;
  /** Events in the ANS. */
  events: number;
}

/** @internal */
export const publishChannel = channel(FLOWS_DIAGNOSTICS.publish);
/** @internal */
export const deliverChannel = channel(FLOWS_DIAGNOSTICS.deliver);
