/**
 * Memory-management counts over a measured interval, for the rows that
 * explain a throughput or CPU figure: JS heap allocated, young-generation and
 * full (mark-compact) collections, and minor page faults of this process.
 *
 * Allocation is read from V8's own GC profiler: between two collections the
 * heap grows only by what was allocated, so the sum of (used before a GC −
 * used after the previous one), plus the growth since the last, is what the
 * interval allocated (to within what V8 allocates in large-object space
 * between the samples, which is counted the same way).
 *
 * @module
 */
import v8 from 'node:v8';

/** Counts over one interval. */
export interface GcCounts {
  /** Octets of JS heap allocated. */
  allocated: number;
  /** Young-generation collections (scavenges). */
  minorGcs: number;
  /** Full collections (mark-sweep-compact). */
  majorGcs: number;
  /** Minor page faults of the process (`getrusage`). */
  minorFaults: number;
}

interface GcStat {
  gcType: string;
  beforeGC: { heapStatistics: { usedHeapSize: number } };
  afterGC: { heapStatistics: { usedHeapSize: number } };
}

/** Start counting now; `read()` ends the interval (call it once). */
export function gcMeter(): { read(): GcCounts } {
  const profiler = new v8.GCProfiler();
  const faults0 = process.resourceUsage().minorPageFault;
  const used0 = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  return {
    read(): GcCounts {
      const used1 = v8.getHeapStatistics().used_heap_size;
      const data = profiler.stop() as { statistics?: GcStat[] } | undefined;
      let allocated = 0;
      let prev = used0;
      let minorGcs = 0;
      let majorGcs = 0;
      for (const s of data?.statistics ?? []) {
        allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - prev);
        prev = s.afterGC.heapStatistics.usedHeapSize;
        if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkCompact') minorGcs++;
        else if (s.gcType === 'MarkSweepCompact') majorGcs++;
      }
      allocated += Math.max(0, used1 - prev);
      return { allocated, minorGcs, majorGcs, minorFaults: process.resourceUsage().minorPageFault - faults0 };
    },
  };
}
