/**
 * The result rows of the DECADE benchmark group (added to the runner's rows
 * by `report.ts`).
 *
 * @module
 */
import type { Spec } from '../report.js';

const both = [{ baseline: 'node-https' }, { baseline: 'nginx' }];

/** Rows of decade-put, decade-get and decade-relay. */
export const DECADE_SPECS: Spec[] = [
  {
    caseId: 'decade-put',
    metric: 'mbps',
    name: 'DECADE PUT, 1 object over TLS: throughput',
    unit: 'MB/s',
    rows: [{ baseline: 'faster-baseline', target: { kind: 'ratio', op: '>=', v: 0.9 } }, ...both],
  },
  { caseId: 'decade-put', metric: 'cpuPerGiB', name: 'DECADE PUT: CPU, client + server', unit: 'CPU s/GiB', rows: both },
  { caseId: 'decade-put', metric: 'cpuServerPerGiB', name: 'DECADE PUT: CPU, server', unit: 'CPU s/GiB', rows: both },
  {
    caseId: 'decade-get',
    metric: 'mbps',
    name: 'DECADE GET, 1 object over TLS: throughput',
    unit: 'MB/s',
    rows: [{ baseline: 'faster-baseline', target: { kind: 'ratio', op: '>=', v: 0.9 } }, ...both],
  },
  { caseId: 'decade-get', metric: 'cpuPerGiB', name: 'DECADE GET: CPU, client + server', unit: 'CPU s/GiB', rows: both },
  { caseId: 'decade-get', metric: 'cpuServerPerGiB', name: 'DECADE GET: CPU, server', unit: 'CPU s/GiB', rows: both },
  {
    caseId: 'decade-relay',
    metric: 'ttfbMs',
    name: 'DECADE GET through a relay server: time to first octet',
    unit: 'ms',
    rows: [{ baseline: 'direct', target: { kind: 'ratio', op: '<=', v: 2 } }],
  },
  {
    caseId: 'decade-relay',
    metric: 'seconds',
    name: 'DECADE GET through a relay server: total time',
    unit: 's',
    rows: [{ baseline: 'direct', target: { kind: 'ratio', op: '<=', v: 1.2 } }],
  },
  { caseId: 'decade-relay', metric: 'mbps', name: 'DECADE GET through a relay server: throughput', unit: 'MB/s', rows: [{ baseline: 'direct' }] },
  { caseId: 'decade-relay', metric: 'cpuPerGiB', name: 'DECADE GET through a relay server: CPU, client + servers', unit: 'CPU s/GiB', rows: [{ baseline: 'direct' }] },
  { caseId: 'decade-relay', metric: 'cpuServerPerGiB', name: 'DECADE GET through a relay server: CPU, servers (relay row: origin + relay)', unit: 'CPU s/GiB', rows: [{ baseline: 'direct' }] },
  { caseId: 'decade-relay', metric: 'cpuOriginPerGiB', name: 'DECADE GET through a relay server: CPU, the origin (direct: cpuServerPerGiB)', unit: 'CPU s/GiB', rows: [{ baseline: null }] },
  { caseId: 'decade-relay', metric: 'cpuRelayPerGiB', name: 'DECADE GET through a relay server: CPU, the relay', unit: 'CPU s/GiB', rows: [{ baseline: null }] },
  {
    caseId: 'decade-weights',
    metric: 'weightRatio',
    name: 'DECADE: two GETs on one connection, token weights 3:1: octet share',
    unit: '×',
    rows: [{ baseline: null }],
  },
  {
    caseId: 'decade-weights',
    metric: 'shareErrorPct',
    name: 'DECADE: weights 3:1, share off 3:1 by',
    unit: '%',
    rows: [{ baseline: null, target: { kind: 'abs', op: '<=', v: 10, unit: '%' } }],
  },
];
