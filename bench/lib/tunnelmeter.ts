/**
 * What the runner adds to the server's `report` in a `tunnel` case
 * (`scistream-*`): the CPU time, system calls and collections of the two
 * processes in the middle between the client's `mark` and `report`.
 *
 * @module
 */
import type { GcCounts } from './gcmeter.js';
import type { Tunnel, TunnelSample } from './tunnel.js';

/** Per tunnel end (`out`: consumer facility, `in`: producer facility), between `mark` and `report`. */
export interface TunnelEnds {
  /** CPU seconds (/proc/PID/stat, all threads). */
  outCpu: number;
  inCpu: number;
  /** The system (kernel) part of each. */
  outSys: number;
  inSys: number;
  /** Write-like and read-like system calls (`syscw`, `syscr` of /proc/PID/io). */
  outSyscw: number;
  inSyscw: number;
  outSyscr: number;
  inSyscr: number;
  /** Node tunnel processes only: their collections and page faults (`gcmeter.ts`). */
  gcOut?: GcCounts;
  gcIn?: GcCounts;
}

/** What rides along in the server's report. */
export interface TunnelReport {
  /** CPU seconds of every tunnel process. */
  tunnelCpu: number;
  tunnelEnds: TunnelEnds;
}

/** Metrics per GiB from {@link TunnelEnds} (consumer facility `Out`, producer facility `In`). */
export function perEnd(e: TunnelEnds, gib: number): Record<string, number> {
  return {
    cpuOutPerGiB: e.outCpu / gib,
    cpuInPerGiB: e.inCpu / gib,
    sysOutPerGiB: e.outSys / gib,
    sysInPerGiB: e.inSys / gib,
    writesOutPerGiB: e.outSyscw / gib,
    writesInPerGiB: e.inSyscw / gib,
    readsOutPerGiB: e.outSyscr / gib,
    readsInPerGiB: e.inSyscr / gib,
    ...(e.gcOut ? { fullGcsOutPerGiB: e.gcOut.majorGcs / gib, youngGcsOutPerGiB: e.gcOut.minorGcs / gib } : {}),
    ...(e.gcIn ? { fullGcsInPerGiB: e.gcIn.majorGcs / gib, youngGcsInPerGiB: e.gcIn.minorGcs / gib } : {}),
  };
}

/**
 * Meter one tunnel: `mark()` when the client marks the start, `report()`
 * when it asks for the report (resolves once the Node ends have answered).
 */
export function tunnelMeter(tunnel: Tunnel): { mark(): Promise<void>; report(): Promise<TunnelReport> } {
  let cpu0 = 0;
  let ends0: TunnelSample | null = null;
  return {
    async mark(): Promise<void> {
      cpu0 = tunnel.cpuSeconds();
      ends0 = tunnel.sample();
      await tunnel.gc('mark');
    },
    async report(): Promise<TunnelReport> {
      const tunnelCpu = tunnel.cpuSeconds() - cpu0;
      const e1 = tunnel.sample();
      const e0 = ends0 ?? e1;
      const gc = await tunnel.gc('report');
      return {
        tunnelCpu,
        tunnelEnds: {
          outCpu: e1.out.cpu - e0.out.cpu,
          inCpu: e1.in.cpu - e0.in.cpu,
          outSys: e1.out.sys - e0.out.sys,
          inSys: e1.in.sys - e0.in.sys,
          outSyscw: e1.out.syscw - e0.out.syscw,
          inSyscw: e1.in.syscw - e0.in.syscw,
          outSyscr: e1.out.syscr - e0.out.syscr,
          inSyscr: e1.in.syscr - e0.in.syscr,
          ...(gc.out ? { gcOut: gc.out } : {}),
          ...(gc.in ? { gcIn: gc.in } : {}),
        },
      };
    },
  };
}
