/**
 * Prometheus metrics of a flows server (FNAA): events in (stored) and out
 * (delivered) per flow, retried duplicates, live subscriptions and the lag
 * of the slowest subscriber per flow. Counters come from the flows
 * `node:diagnostics_channel` events (`beepstream:flows:publish`,
 * `beepstream:flows:deliver`); the gauges are read at scrape time from the
 * server. Labels are flow names (created only by authorized identities) —
 * never an identity, an event or a payload.
 *
 * @module
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Counter, Gauge, type Registry } from 'prom-client';
import { FLOWS_DIAGNOSTICS, type FlowsDeliverEvent, type FlowsPublishEvent, type FlowsServer } from '../flows/index.js';

const FLOW = /^[A-Za-z0-9._-]{1,128}$/;
const label = (flow: string): string => (FLOW.test(flow) ? flow : 'other');

/**
 * Register the flows metrics of `flows` (prefix `prefix`, e.g. `beepstream_`)
 * into `register`; returns the function that unsubscribes and unregisters them.
 */
export function registerFlowsMetrics(register: Registry, flows: FlowsServer, prefix: string): () => void {
  const registers = [register];
  const names = [`${prefix}flows_events_total`, `${prefix}flows_duplicates_total`, `${prefix}flows_subscriptions`, `${prefix}flows_subscriber_lag_events`];
  const events = new Counter({
    name: names[0] as string, help: 'Flow events stored (direction in) and delivered to subscribers (direction out), by flow.', labelNames: ['flow', 'direction'] as const, registers,
  });
  const dups = new Counter({ name: names[1] as string, help: 'Retried events answered as already stored (not stored again), by flow.', labelNames: ['flow'] as const, registers });
  new Gauge({
    name: names[2] as string, help: 'Live flow subscriptions, by flow.', labelNames: ['flow'] as const, registers,
    async collect() {
      const lags = await flows.lag();
      this.reset();
      for (const l of lags) this.set({ flow: label(l.flow) }, l.subscriptions);
    },
  });
  new Gauge({
    name: names[3] as string, help: 'Committed events not yet handed to the slowest live subscription of a flow.', labelNames: ['flow'] as const, registers,
    async collect() {
      // Its own reading: the registry collects the metrics concurrently.
      const lags = await flows.lag();
      this.reset();
      for (const l of lags) this.set({ flow: label(l.flow) }, l.maxLag);
    },
  });
  const onPublish = (m: unknown): void => {
    const e = m as FlowsPublishEvent;
    events.inc({ flow: label(e.flow), direction: 'in' }, e.events);
    if (e.duplicates > 0) dups.inc({ flow: label(e.flow) }, e.duplicates);
  };
  const onDeliver = (m: unknown): void => {
    const e = m as FlowsDeliverEvent;
    events.inc({ flow: label(e.flow), direction: 'out' }, e.events);
  };
  subscribe(FLOWS_DIAGNOSTICS.publish, onPublish);
  subscribe(FLOWS_DIAGNOSTICS.deliver, onDeliver);
  return () => {
    unsubscribe(FLOWS_DIAGNOSTICS.publish, onPublish);
    unsubscribe(FLOWS_DIAGNOSTICS.deliver, onDeliver);
    for (const n of names) register.removeSingleMetric(n);
  };
}
