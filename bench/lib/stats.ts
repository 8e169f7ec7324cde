/**
 * Small statistics and formatting helpers of the benchmark suite.
 *
 * @module
 */

/** Median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile `p` (0–100) of `sorted` (ascending). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Latency summary (milliseconds) of samples in nanoseconds. */
export function latencySummary(samplesNs: readonly bigint[] | BigInt64Array): { p50: number; p99: number; max: number; count: number } {
  const ms = Float64Array.from(samplesNs as ArrayLike<bigint> & Iterable<bigint>, (v) => Number(v) / 1e6).sort();
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.length ? (ms[ms.length - 1] as number) : Number.NaN, count: ms.length };
}

/** {@link latencySummary} of latencies already in milliseconds (sorted in place). */
export function latencySummaryMs(ms: Float64Array): { p50: number; p99: number; max: number; count: number } {
  ms.sort();
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.length ? (ms[ms.length - 1] as number) : Number.NaN, count: ms.length };
}

/** Format a number for the results table: 3 significant digits, thousands kept whole. */
export function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** Octets in a MiB / GiB, and the decimal megabyte used for MB/s. */
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const MB = 1e6;
