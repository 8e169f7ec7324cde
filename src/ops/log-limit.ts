/**
 * Bounded logs against hostile peers (issue 17, spec/limits.md "Logs"): a
 * wrapper around a pino-style logger that aggregates repeated records of one
 * session and caps the lines one session can make us write.
 *
 * - Records are grouped by scope: the `sessionId` field, else the host of the
 *   `remote` field (connections refused before a session exists), else none
 *   (passed through untouched: the listener's own records).
 * - Within a scope, each kind of record (`event`, plus `limit` for limit
 *   records) is written at most {@link LogLimitOptions.perKind} times per
 *   interval; the rest are counted and summed up in one `log.repeated` line
 *   at the end of the interval ("… repeated N more times in 10 s").
 * - One session writes at most {@link LogLimitOptions.perSession} lines in
 *   all (summaries included), plus its `session.close` line, which always
 *   passes and carries `suppressed`: the count of lines not written.
 *
 * With the defaults an attacking session writes at most 51 lines, whatever it
 * does; an address without a session at most 4 lines per interval per kind.
 *
 * @module
 */

/** The logging methods wrapped (pino's levels). */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
type Level = (typeof LEVELS)[number];
type LogFn = (...args: unknown[]) => void;

/** Options of {@link limitLogs}. */
export interface LogLimitOptions {
  /** Aggregation interval (ms, default 10 000). */
  intervalMs?: number;
  /** Records of one kind written per scope and interval before they are counted instead (default 3). */
  perKind?: number;
  /** Lines one session may write in all, summaries included; its close line always passes (default 50). */
  perSession?: number;
}

/** Defaults of {@link LogLimitOptions}. */
export const LOG_LIMIT_DEFAULTS: Required<LogLimitOptions> = Object.freeze({ intervalMs: 10_000, perKind: 3, perSession: 50 });

interface Scope {
  /** Lines written in all (sessions only are capped). */
  written: number;
  /** Lines not written, in all. */
  suppressed: number;
  /** Per kind: written this interval, and counted (not written) this interval, with the level to summarise at. */
  kinds: Map<string, { written: number; counted: number; level: Level; fields: Record<string, unknown> }>;
  session: boolean;
}

/**
 * Wrap `log` so that no session can flood it (see the module notes). The
 * returned object is `log` itself for everything but the level methods.
 * `stop()` on the result's `logLimit` property flushes pending summaries and
 * clears the timer (it is unref'd: it never keeps a process alive).
 */
export function limitLogs<L extends object>(log: L, options: LogLimitOptions = {}): L & { logLimit: { flush(): void; stop(): void } } {
  const o = { ...LOG_LIMIT_DEFAULTS, ...options };
  const scopes = new Map<string, Scope>();
  const target = log as unknown as Record<Level, LogFn>;
  let timer: NodeJS.Timeout | null = null;

  const write = (level: Level, args: unknown[]): void => void target[level].apply(log, args);

  const flush = (): void => {
    for (const [key, s] of scopes) {
      for (const [kind, k] of s.kinds) {
        if (k.counted > 0) {
          if (!s.session || s.written < o.perSession) {
            s.written++;
            const fields = { ...k.fields, event: 'log.repeated', repeatedEvent: kind, count: k.counted, intervalMs: o.intervalMs };
            write(k.level, [fields, `${key}: ${kind} repeated ${k.counted} more times in ${o.intervalMs / 1000} s`]);
          }
        }
      }
      s.kinds.clear();
      // Addresses without a session are forgotten once quiet; sessions at their close.
      if (!s.session) scopes.delete(key);
    }
  };

  const arm = (): void => {
    if (timer) return;
    timer = setInterval(() => {
      flush();
      if (scopes.size === 0 && timer) {
        clearInterval(timer);
        timer = null;
      }
    }, o.intervalMs);
    timer.unref();
  };

  const wrap = (level: Level): LogFn =>
    function limited(...args: unknown[]): void {
      const fields = args[0] !== null && typeof args[0] === 'object' ? (args[0] as Record<string, unknown>) : null;
      const sid = fields?.sessionId;
      const remote = typeof fields?.remote === 'string' ? (fields.remote as string) : undefined;
      if (!fields || (sid === undefined && remote === undefined)) return write(level, args);
      const session = sid !== undefined;
      const key = session ? `session ${String(sid)}` : (remote as string).replace(/:\d+$/, '');
      const event = typeof fields.event === 'string' ? fields.event : 'log';
      let s = scopes.get(key);
      if (event === 'session.close') {
        // Always written, with what was left out.
        scopes.delete(key);
        if (!s || s.suppressed === 0) return write(level, args);
        const pending = [...s.kinds.values()].reduce((n, k) => n + k.counted, 0);
        return write(level, [{ ...fields, suppressed: s.suppressed, ...(pending ? { repeatedNotSummarised: pending } : {}) }, ...args.slice(1)]);
      }
      if (!s) {
        s = { written: 0, suppressed: 0, kinds: new Map(), session };
        scopes.set(key, s);
      }
      const kind = typeof fields.limit === 'string' ? `${event}:${fields.limit}` : event;
      let k = s.kinds.get(kind);
      if (!k) {
        k = { written: 0, counted: 0, level, fields: session ? { sessionId: sid } : { remote: key } };
        s.kinds.set(kind, k);
      }
      if (k.written >= o.perKind || (session && s.written >= o.perSession)) {
        k.counted++;
        s.suppressed++;
        arm();
        return;
      }
      k.written++;
      s.written++;
      arm();
      write(level, args);
    };

  const wrapped = new Map<Level, LogFn>(LEVELS.map((l) => [l, wrap(l)]));
  const control = {
    flush,
    stop(): void {
      flush();
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
  return new Proxy(log, {
    get(t, p, r) {
      if (p === 'logLimit') return control;
      if (typeof p === 'string' && wrapped.has(p as Level)) return wrapped.get(p as Level);
      return Reflect.get(t, p, r) as unknown;
    },
  }) as L & { logLimit: { flush(): void; stop(): void } };
}
