/**
 * A long-running `beepstream` command (`listen`, `s2cs`) started in the
 * background for the operator tests, with everything it writes kept: the
 * first stdout line (the `listening on HOST:PORT` contract), then all of
 * stdout (log records) and stderr (trace) until it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.js';

/** A started server command. */
export interface Server {
  child: ChildProcess;
  /** The first stdout line. */
  firstLine: string;
  /** `HOST:PORT` from the first line. */
  address: string;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** SIGTERM it and wait for its exit (SIGKILL after 15 s); resolves with the exit code. */
  stop(): Promise<number | string | null>;
}

/** Start `beepstream ARGS` and wait (at most 15 s) for its first stdout line. */
export function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    let started = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`beepstream ${args[0]} printed no first line in time; stderr: ${err}`));
    }, 15000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (!started && nl >= 0) {
        started = true;
        clearTimeout(timer);
        const firstLine = out.slice(0, nl);
        resolve({
          child,
          firstLine,
          address: firstLine.replace(/^listening on /, ''),
          stdout: () => out,
          stderr: () => err,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode ?? child.signalCode);
              const kill = setTimeout(() => child.kill('SIGKILL'), 15000);
              child.once('close', (code, signal) => {
                clearTimeout(kill);
                done(code ?? signal);
              });
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`beepstream ${args[0]} exited early with ${code}; stderr: ${err}`));
      }
    });
  });
}

/** Parse JSON log lines (every stdout line after the first). Throws on a line that is not JSON. */
export function logRecords(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
