/**
 * Waiting for SIGINT or SIGTERM in a long-running command.
 *
 * @module
 */

/**
 * Install SIGINT and SIGTERM handlers now and return a promise that resolves
 * on the first of them. Install before printing anything a supervisor waits
 * for: a signal sent right after must never meet the default action (exit).
 * `stop()` resolves it early and removes the handlers (e.g. on a setup failure).
 */
export function untilSignal(signal?: AbortSignal): { stopped: Promise<void>; stop: () => void } {
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  signal?.addEventListener('abort', stop, { once: true });
  return { stopped, stop };
}
