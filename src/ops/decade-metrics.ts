/**
 * Prometheus metrics of DECADE servers, from the events they publish on the
 * `beepstream:decade:operation` diagnostics channel
 * ({@link DECADE_DIAGNOSTICS_CHANNEL}): operations by kind and outcome, and
 * object octets moved. Labels come from fixed vocabularies (operation,
 * outcome code, whether a fetch from an origin) — never a name, an account,
 * an address or a token.
 *
 * @module
 */
import dc from 'node:diagnostics_channel';
import { Counter, type Registry } from 'prom-client';
import { DECADE_CODES, DECADE_DIAGNOSTICS_CHANNEL, OPERATIONS, type DecadeEvent } from '../decade/index.js';
import { METRIC_PREFIX } from './metrics.js';

/** DECADE metrics being collected. */
export interface DecadeMetrics {
  /** Stop collecting and unregister them. */
  close(): void;
}

const OUTCOMES = new Set<string>(['CREATED', 'OK', ...DECADE_CODES]);
const OPS = new Set<string>(OPERATIONS);

/**
 * Count the DECADE operations of every server in this process into
 * `register`: `beepstream_decade_operations_total{op,outcome,via}` and
 * `beepstream_decade_octets_total{op,via}` (`via`: `client`, or `origin` for
 * an object fetched from another server).
 */
export function collectDecadeMetrics(register: Registry): DecadeMetrics {
  const p = `${METRIC_PREFIX}decade_`;
  const ops = new Counter({
    name: `${p}operations_total`, help: 'DECADE operations finished, by operation, outcome (CREATED, OK or the DECADE error code) and whether a fetch from an origin.',
    labelNames: ['op', 'outcome', 'via'] as const, registers: [register],
  });
  const octets = new Counter({
    name: `${p}octets_total`, help: 'Object octets moved by DECADE operations (PUT received, GET sent, fetched from an origin).',
    labelNames: ['op', 'via'] as const, registers: [register],
  });
  const onEvent = (msg: unknown): void => {
    const e = msg as DecadeEvent;
    const op = OPS.has(e.op) ? e.op : 'other';
    const via = e.op === 'put' && e.source !== undefined ? 'origin' : 'client';
    ops.inc({ op, outcome: OUTCOMES.has(e.outcome) ? e.outcome : 'other', via });
    if (e.octets > 0) octets.inc({ op, via }, e.octets);
  };
  dc.subscribe(DECADE_DIAGNOSTICS_CHANNEL, onEvent);
  return {
    close() {
      dc.unsubscribe(DECADE_DIAGNOSTICS_CHANNEL, onEvent);
      register.removeSingleMetric(`${p}operations_total`);
      register.removeSingleMetric(`${p}octets_total`);
    },
  };
}
