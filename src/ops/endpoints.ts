/**
 * What the CLI starts for `--metrics HOST:PORT` and `--status HOST:PORT`:
 * the metrics collection with its HTTP endpoint, and the status page — as
 * one object with the lines to print and one `close()`.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../errors.js';
import type { BeepServer } from '../channels/index.js';
import type { S2cs } from '../scistream/index.js';
import type { FlowsServer } from '../flows/index.js';
import type { OpsServer } from './http.js';
import { createMetrics, startMetricsServer, type Metrics, type NamedServer } from './metrics.js';
import { startStatusServer } from './status.js';

/** Options of {@link startOpsEndpoints}. */
export interface OpsEndpointsOptions {
  /** Serve `/metrics` here. */
  metrics?: { host: string; port: number };
  /** Serve the status page here (needs `s2cs`). */
  status?: { host: string; port: number };
  /** BEEP listeners to measure. */
  servers?: readonly (BeepServer | NamedServer)[];
  /** The S2CS to measure and show. */
  s2cs?: S2cs;
  /** Milliseconds between throughput samples (default 1000). */
  sampleMs?: number;
  /** A flows server (FNAA) to measure. */
  flows?: FlowsServer;
}

/** Running operator endpoints. */
export interface OpsEndpoints {
  /** One line per endpoint, e.g. `metrics on http://127.0.0.1:9464/metrics`, `status page on http://127.0.0.1:8080/`. */
  readonly lines: readonly string[];
  /** The metrics, when `--metrics` was given. */
  readonly metrics?: Metrics;
  /** Stop every endpoint and the metrics collection. */
  close(): Promise<void>;
}

/** Start the endpoints asked for; on a failure, what was started is closed again and the error thrown. */
export async function startOpsEndpoints(o: OpsEndpointsOptions): Promise<OpsEndpoints> {
  const lines: string[] = [];
  const servers: OpsServer[] = [];
  let metrics: Metrics | undefined;
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close()));
    metrics?.close();
  };
  try {
    if (o.metrics) {
      metrics = createMetrics({ ...(o.servers ? { servers: o.servers } : {}), ...(o.s2cs ? { s2cs: o.s2cs } : {}), ...(o.sampleMs ? { sampleMs: o.sampleMs } : {}), ...(o.flows ? { flows: o.flows } : {}) });
      const m = await startMetricsServer({ ...o.metrics, metrics });
      servers.push(m);
      lines.push(`metrics on ${m.url}`);
    }
    if (o.status) {
      if (!o.s2cs) throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'the status page needs an S2CS (option s2cs)');
      const s = await startStatusServer({ ...o.status, s2cs: o.s2cs, ...(o.sampleMs ? { sampleMs: o.sampleMs } : {}) });
      servers.push(s);
      lines.push(`status page on ${s.url}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { lines, ...(metrics ? { metrics } : {}), close };
}
