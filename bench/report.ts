/**
 * Turning the medians of a run into result rows (the issue's targets, each
 * against a baseline measured in the same run) and a markdown table.
 *
 * @module
 */
import { fmt } from './lib/stats.js';
import { DECADE_SPECS } from './decade/specs.js';

/** One row of `bench/results/latest.json`. */
export interface ResultRow {
  name: string;
  value: number | null;
  unit: string;
  baseline: string | null;
  baselineValue: number | null;
  /** beepstream ÷ baseline (for every metric, whichever direction is better). */
  ratio: number | null;
  target: string | null;
  /** null: no target on this row, or a ratio target whose baseline did not run. */
  met: boolean | null;
}

/** Medians by case, implementation and metric. */
export type Medians = Record<string, Record<string, Record<string, number> | undefined> | undefined>;

/** A target on a row. */
export type Target =
  | { kind: 'ratio'; op: '>=' | '<='; v: number }
  | { kind: 'abs'; op: '>=' | '<='; v: number; unit: string };

/** Rows of one metric of one case. */
export interface Spec {
  caseId: string;
  metric: string;
  name: string;
  unit: string;
  /**
   * Baselines in row order; the target is checked on the row it is attached
   * to. `baseline: null`: a beepstream-only row (always shown when the case ran).
   */
  rows: { baseline: string | null; target?: Target }[];
  /** Whose value the row shows (default `beepstream`), e.g. a ceiling against a baseline. */
  subject?: string;
}

/** A beepstream-only row, optionally with an absolute target. */
const alone = (target?: Target): { baseline: null; target?: Target }[] => [target ? { baseline: null, target } : { baseline: null }];

const ALL_BULK = ['raw-tcp', 'tls1.3-aes128gcm', 'tls1.2-psk-aes128gcm', 'http2', 'yamux'];
const MUX = ['raw-tcp', 'http2', 'yamux'];
const plain = (names: string[]): { baseline: string }[] => names.map((baseline) => ({ baseline }));
/** The baselines of the scistream-* cases: the reference data plane, and the ceiling (node:tls alone). */
const TUNNELS = ['stunnel', 'node-tls'];

const SPECS: Spec[] = [
  {
    caseId: 'bulk-1',
    metric: 'mbps',
    name: 'bulk 1 ch: throughput',
    unit: 'MB/s',
    rows: [
      { baseline: 'raw-tcp', target: { kind: 'ratio', op: '>=', v: 0.85 } },
      { baseline: 'http2', target: { kind: 'ratio', op: '>=', v: 2 } },
      { baseline: 'yamux', target: { kind: 'ratio', op: '>=', v: 4 } },
      ...plain(['tls1.3-aes128gcm', 'tls1.2-psk-aes128gcm']),
    ],
  },
  { caseId: 'bulk-1', metric: 'cpuPerGiB', name: 'bulk 1 ch: CPU, both processes', unit: 'CPU s/GiB', rows: plain(ALL_BULK) },
  { caseId: 'bulk-1', metric: 'stallsPerGiB', name: 'bulk 1 ch: window stalls per GiB (both sides)', unit: '1/GiB', rows: alone() },
  { caseId: 'bulk-1', metric: 'seqsPerGiB', name: 'bulk 1 ch: SEQs per GiB (both sides)', unit: '1/GiB', rows: alone() },
  {
    caseId: 'bulk-1',
    metric: 'recvFaultsPerGiB',
    name: 'bulk 1 ch: receiver minor page faults per GiB',
    unit: '1/GiB',
    rows: [{ baseline: 'raw-tcp', target: { kind: 'ratio', op: '<=', v: 2 } }, ...plain(['http2'])],
  },
  {
    caseId: 'bulk-1',
    metric: 'recvMajorGcsPerGiB',
    name: 'bulk 1 ch: receiver full GCs per GiB',
    unit: '1/GiB',
    rows: [{ baseline: 'raw-tcp', target: { kind: 'abs', op: '<=', v: 0, unit: '/GiB' } }, ...plain(['http2'])],
  },
  { caseId: 'bulk-1', metric: 'recvMinorGcsPerGiB', name: 'bulk 1 ch: receiver young-generation GCs per GiB', unit: '1/GiB', rows: plain(['raw-tcp', 'http2']) },
  {
    caseId: 'bulk-1-window',
    metric: 'mbps',
    name: 'bulk 1 ch, library defaults ÷ fixed 16 MiB window: throughput',
    unit: 'MB/s',
    rows: [{ baseline: 'beepstream-16MiB', target: { kind: 'ratio', op: '>=', v: 1 } }],
  },
  {
    caseId: 'bulk-1-window',
    metric: 'stallsPerGiB',
    name: 'bulk 1 ch, library defaults: window stalls per GiB',
    unit: '1/GiB',
    rows: [{ baseline: 'beepstream-16MiB', target: { kind: 'abs', op: '<=', v: 10, unit: '/GiB' } }],
  },
  { caseId: 'bulk-1-window', metric: 'idleStallsPerGiB', name: 'bulk 1 ch, library defaults: stalls that left the receiver idle, per GiB', unit: '1/GiB', rows: plain(['beepstream-16MiB']) },
  { caseId: 'bulk-1-window', metric: 'seqsPerGiB', name: 'bulk 1 ch, library defaults: SEQs per GiB', unit: '1/GiB', rows: plain(['beepstream-16MiB']) },
  { caseId: 'bulk-8', metric: 'mbps', name: 'bulk 8 ch: aggregate throughput', unit: 'MB/s', rows: plain(MUX) },
  { caseId: 'bulk-8', metric: 'stallsPerGiB', name: 'bulk 8 ch: window stalls per GiB (both sides)', unit: '1/GiB', rows: alone() },
  { caseId: 'bulk-8', metric: 'seqsPerGiB', name: 'bulk 8 ch: SEQs per GiB (both sides)', unit: '1/GiB', rows: alone() },
  { caseId: 'bulk-8', metric: 'fairness', name: 'bulk 8 ch: last ÷ first to finish', unit: '×', rows: plain(MUX) },
  {
    caseId: 'bulk-64',
    metric: 'mbps',
    name: 'bulk 64 ch: aggregate throughput',
    unit: 'MB/s',
    rows: [{ baseline: 'raw-tcp', target: { kind: 'ratio', op: '>=', v: 0.8 } }, ...plain(['http2', 'yamux'])],
  },
  {
    caseId: 'bulk-64',
    metric: 'fairness',
    name: 'bulk 64 ch: last ÷ first to finish',
    unit: '×',
    rows: [{ baseline: 'raw-tcp', target: { kind: 'abs', op: '<=', v: 1.1, unit: '' } }, ...plain(['http2', 'yamux'])],
  },
  {
    caseId: 'rr-1',
    metric: 'rps',
    name: '100 B req/resp, 1 ch: round trips',
    unit: '1/s',
    rows: [{ baseline: 'http2', target: { kind: 'ratio', op: '>=', v: 1 } }, ...plain(['raw-tcp', 'yamux'])],
  },
  { caseId: 'rr-1', metric: 'p50', name: '100 B req/resp, 1 ch: p50 latency', unit: 'ms', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  {
    caseId: 'rr-1',
    metric: 'clientHeapPerMsg',
    name: '100 B req/resp, 1 ch: JS heap allocated per message, client',
    unit: 'B',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 1536, unit: 'B' } }, ...plain(['raw-tcp'])],
  },
  {
    caseId: 'rr-1',
    metric: 'serverHeapPerMsg',
    name: '100 B req/resp, 1 ch: JS heap allocated per message, server',
    unit: 'B',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 1536, unit: 'B' } }, ...plain(['raw-tcp'])],
  },
  { caseId: 'rr-1', metric: 'clientCpuUsPerRt', name: '100 B req/resp, 1 ch: CPU per round trip, client', unit: 'µs', rows: plain(['http2', 'raw-tcp']) },
  { caseId: 'rr-1', metric: 'serverCpuUsPerRt', name: '100 B req/resp, 1 ch: CPU per round trip, server', unit: 'µs', rows: plain(['http2', 'raw-tcp']) },
  { caseId: 'rr-1', metric: 'p99', name: '100 B req/resp, 1 ch: p99 latency', unit: 'ms', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  {
    caseId: 'rr-64',
    metric: 'rps',
    name: '100 B req/resp, 64 ch: round trips',
    unit: '1/s',
    rows: [{ baseline: 'http2', target: { kind: 'ratio', op: '>=', v: 1 } }, ...plain(['raw-tcp', 'yamux'])],
  },
  { caseId: 'rr-64', metric: 'p50', name: '100 B req/resp, 64 ch: p50 latency', unit: 'ms', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  { caseId: 'rr-64', metric: 'p99', name: '100 B req/resp, 64 ch: p99 latency', unit: 'ms', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  {
    caseId: 'churn',
    metric: 'perSecond',
    name: 'churn: start + exchange + close',
    unit: 'channels/s',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '>=', v: 15_000, unit: '/s' } }, ...plain(['yamux'])],
  },
  {
    caseId: 'scale-channels',
    metric: 'serverHeap',
    name: 'idle channel: heap, server side',
    unit: 'B/channel',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 2048, unit: 'B' } }, ...plain(['yamux'])],
  },
  {
    caseId: 'scale-channels',
    metric: 'clientHeap',
    name: 'idle channel: heap, client side',
    unit: 'B/channel',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 2048, unit: 'B' } }, ...plain(['yamux'])],
  },
  { caseId: 'scale-channels', metric: 'serverRss', name: 'idle channel: RSS, server side', unit: 'B/channel', rows: plain(['http2', 'yamux']) },
  { caseId: 'scale-channels', metric: 'clientRss', name: 'idle channel: RSS, client side', unit: 'B/channel', rows: plain(['http2', 'yamux']) },
  {
    caseId: 'scale-sessions',
    metric: 'serverHeap',
    name: 'idle session: heap, server side',
    unit: 'B/session',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 32768, unit: 'B' } }, ...plain(['raw-tcp', 'yamux'])],
  },
  {
    caseId: 'scale-sessions',
    metric: 'clientHeap',
    name: 'idle session: heap, client side',
    unit: 'B/session',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 32768, unit: 'B' } }, ...plain(['raw-tcp', 'yamux'])],
  },
  { caseId: 'scale-sessions', metric: 'serverRss', name: 'idle session: RSS, server side', unit: 'B/session', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  { caseId: 'scale-sessions', metric: 'clientRss', name: 'idle session: RSS, client side', unit: 'B/session', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  { caseId: 'slow-reader', metric: 'bulkMBps', name: 'slow reader beside: bulk channel throughput', unit: 'MB/s', rows: alone() },
  { caseId: 'slow-reader', metric: 'bulkAloneMBps', name: 'slow reader: the same bulk channel alone (mean of before and after), same session', unit: 'MB/s', rows: alone() },
  {
    caseId: 'slow-reader',
    metric: 'bulkRatio',
    name: 'slow reader: bulk beside it ÷ bulk alone',
    unit: '×',
    rows: alone({ kind: 'abs', op: '>=', v: 0.9, unit: '×' }),
  },
  { caseId: 'slow-reader', metric: 'slowPeakBufferedKiB', name: 'slow reader (1 MB/s): peak octets held unread at the receiver', unit: 'KiB', rows: alone() },
  { caseId: 'slow-reader', metric: 'serverPeakRssMiB', name: 'slow reader: receiver peak RSS growth', unit: 'MiB', rows: alone() },
  {
    caseId: 'control',
    metric: 'p99',
    name: 'control reply under 8-ch bulk: p99',
    unit: 'ms',
    rows: [{ baseline: 'http2', target: { kind: 'abs', op: '<=', v: 5, unit: 'ms' } }, ...plain(['raw-tcp', 'yamux'])],
  },
  { caseId: 'control', metric: 'p50', name: 'control reply under 8-ch bulk: p50', unit: 'ms', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  { caseId: 'control', metric: 'bulkMBps', name: 'control case: bulk throughput alongside', unit: 'MB/s', rows: plain(['http2', 'raw-tcp', 'yamux']) },
  {
    caseId: 'control',
    metric: 'bulkRatio',
    name: 'control case: bulk beside control ÷ the same bulk alone (mean of before and after)',
    unit: '×',
    rows: [{ baseline: null, target: { kind: 'abs', op: '>=', v: 0.8, unit: '×' } }, ...plain(['http2', 'raw-tcp', 'yamux'])],
  },
  {
    caseId: 'scistream-1',
    metric: 'mbps',
    name: 'SciStream data path, 1 conn: throughput',
    unit: 'MB/s',
    rows: [{ baseline: 'stunnel', target: { kind: 'ratio', op: '>=', v: 1.5 } }, ...plain(['node-tls'])],
  },
  { caseId: 'scistream-1', subject: 'node-tls', metric: 'mbps', name: 'SciStream data path, 1 conn: the ceiling (node-tls, node:tls alone) against stunnel', unit: 'MB/s', rows: plain(['stunnel']) },
  { caseId: 'scistream-1', metric: 'cpuPerGiB', name: 'SciStream data path, 1 conn: CPU, all 4 processes', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-1', metric: 'cpuTunnelPerGiB', name: 'SciStream data path, 1 conn: CPU, the 2 tunnel processes', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-1', metric: 'cpuOutPerGiB', name: 'SciStream data path, 1 conn: CPU, consumer-side tunnel process', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-1', metric: 'cpuInPerGiB', name: 'SciStream data path, 1 conn: CPU, producer-side tunnel process', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-1', metric: 'writesOutPerGiB', name: 'SciStream data path, 1 conn: write syscalls, consumer-side tunnel process', unit: '1/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-1', metric: 'writesInPerGiB', name: 'SciStream data path, 1 conn: write syscalls, producer-side tunnel process', unit: '1/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-1', metric: 'fullGcsOutPerGiB', name: 'SciStream data path, 1 conn: full GCs, consumer-side tunnel process', unit: '1/GiB', rows: plain(['node-tls']) },
  { caseId: 'scistream-1', metric: 'fullGcsInPerGiB', name: 'SciStream data path, 1 conn: full GCs, producer-side tunnel process', unit: '1/GiB', rows: plain(['node-tls']) },
  {
    caseId: 'scistream-8',
    metric: 'mbps',
    name: 'SciStream data path, 8 conn: aggregate throughput',
    unit: 'MB/s',
    rows: [{ baseline: 'stunnel', target: { kind: 'ratio', op: '>=', v: 1.5 } }, ...plain(['node-tls'])],
  },
  { caseId: 'scistream-8', subject: 'node-tls', metric: 'mbps', name: 'SciStream data path, 8 conn: the ceiling (node-tls, node:tls alone) against stunnel', unit: 'MB/s', rows: plain(['stunnel']) },
  { caseId: 'scistream-8', metric: 'cpuPerGiB', name: 'SciStream data path, 8 conn: CPU, all 4 processes', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-8', metric: 'cpuTunnelPerGiB', name: 'SciStream data path, 8 conn: CPU, the 2 tunnel processes', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-8', metric: 'cpuOutPerGiB', name: 'SciStream data path, 8 conn: CPU, consumer-side tunnel process', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-8', metric: 'cpuInPerGiB', name: 'SciStream data path, 8 conn: CPU, producer-side tunnel process', unit: 'CPU s/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-8', metric: 'writesOutPerGiB', name: 'SciStream data path, 8 conn: write syscalls, consumer-side tunnel process', unit: '1/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-8', metric: 'writesInPerGiB', name: 'SciStream data path, 8 conn: write syscalls, producer-side tunnel process', unit: '1/GiB', rows: plain(TUNNELS) },
  { caseId: 'scistream-8', metric: 'fullGcsOutPerGiB', name: 'SciStream data path, 8 conn: full GCs, consumer-side tunnel process', unit: '1/GiB', rows: plain(['node-tls']) },
  { caseId: 'scistream-8', metric: 'fullGcsInPerGiB', name: 'SciStream data path, 8 conn: full GCs, producer-side tunnel process', unit: '1/GiB', rows: plain(['node-tls']) },
  { caseId: 'scistream-8', metric: 'fairness', name: 'SciStream data path, 8 conn: last ÷ first to finish', unit: '×', rows: plain(TUNNELS) },
  ...DECADE_SPECS,
];

function targetText(t: Target, baseline: string): string {
  const op = t.op === '>=' ? '≥' : '≤';
  return t.kind === 'ratio' ? `${op} ${t.v}× ${baseline}` : `${op} ${t.v.toLocaleString('en-US')}${t.unit ? ` ${t.unit}` : ''}`;
}

function check(t: Target, value: number | null, ratio: number | null): boolean {
  const x = t.kind === 'ratio' ? ratio : value;
  if (x === null || Number.isNaN(x)) return false;
  return t.op === '>=' ? x >= t.v : x <= t.v;
}

/** Build the result rows for whatever cases ran. */
export function buildRows(medians: Medians): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const spec of SPECS) {
    const byImpl = medians[spec.caseId];
    if (!byImpl) continue;
    const value = byImpl[spec.subject ?? 'beepstream']?.[spec.metric] ?? null;
    for (const r of spec.rows) {
      if (r.baseline === null && value === null) continue; // a beepstream-only metric this run did not produce
      const b = r.baseline === null ? undefined : byImpl[r.baseline];
      if (r.baseline !== null && b === undefined && !r.target) continue; // baseline not run and nothing to check
      const baselineValue = b?.[spec.metric] ?? null;
      const ratio = value !== null && baselineValue !== null && baselineValue !== 0 ? value / baselineValue : null;
      rows.push({
        name: spec.name,
        value,
        unit: spec.unit,
        baseline: r.baseline,
        baselineValue,
        ratio,
        target: r.target ? targetText(r.target, r.baseline ?? '') : null,
        // A ratio target whose baseline did not run (skipped, failed) is not judged.
        met: r.target && !(r.target.kind === 'ratio' && baselineValue === null) ? check(r.target, value, ratio) : null,
      });
    }
  }
  return rows;
}

/** The short table: only the rows that carry a target. */
export function targetsTable(rows: readonly ResultRow[]): string {
  const out = ['| target | beepstream | baseline | ratio | met? |', '|---|---:|---|---:|:-:|'];
  for (const r of rows) {
    if (!r.target) continue;
    const isRatio = /\d× /.test(r.target);
    const base = isRatio ? `${r.baseline} ${fmt(r.baselineValue)}` : '';
    const ratio = isRatio && r.ratio !== null ? `${r.ratio.toFixed(2)}×` : '';
    out.push(`| ${r.name}: ${r.target} | ${fmt(r.value)} ${r.unit} | ${base} | ${ratio} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`);
  }
  return out.join('\n');
}

/** The markdown table of `rows`. */
export function markdownTable(rows: readonly ResultRow[]): string {
  const out = ['| case | beepstream | baseline | baseline value | ratio | target | met? |', '|---|---:|---|---:|---:|---|:-:|'];
  let last = '';
  for (const r of rows) {
    const label = `${r.name} (${r.unit})`;
    const first = label !== last;
    last = label;
    out.push(
      `| ${first ? label : '〃'} | ${first ? fmt(r.value) : ''} | ${r.baseline ?? ''} | ${fmt(r.baselineValue)} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ${r.target ?? ''} | ${r.met === null ? (r.target ? '—' : '') : r.met ? 'yes' : '**no**'} |`,
    );
  }
  return out.join('\n');
}
