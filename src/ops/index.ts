/**
 * Operator tools: Prometheus metrics of BEEP listeners and of an S2CS
 * ({@link createMetrics}, {@link startMetricsServer}), a live status page of
 * an S2CS's SciStream sessions ({@link startStatusServer}), and the
 * throughput sampler both use. Built on the `node:diagnostics_channel`
 * events of the session layer and the S2CS session registry; sessions are
 * named by their non-secret tag, never by uid.
 *
 * @module
 */
export type { OpsServer } from './http.js';
export * from './sampler.js';
export * from './metrics.js';
export * from './status.js';
export * from './endpoints.js';
export * from './log-limit.js';
export { PLOT_COLORS, PLOT_SIZE } from './page.js';
export * from './decade-metrics.js';
