/**
 * Running the real `beepstream` binary in tests: one-shot commands and a
 * listener started in the background.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

/**
 * Bounds for the processes, generous on purpose: a command or a listener that starts in about a
 * second on a quiet machine can take many times that with both cores busy (other test files run
 * at once). They bound a wait; they are not measurements.
 */
export const RUN_TIMEOUT_MS = 60_000;
/** How long a listener may take to print its `listening on` line. */
export const LISTEN_TIMEOUT_MS = 60_000;
/** How long a SIGTERMed child may take to exit before it is SIGKILLed. */
export const STOP_TIMEOUT_MS = 30_000;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `beepstream ARGS` to completion, with optional extra environment and standard input. */
export function run(args: string[], timeoutMs = RUN_TIMEOUT_MS, options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`beepstream ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Start `beepstream listen --port 0`, resolving with the child and the first stdout line. */
export function startListener(extra: string[] = []): Promise<{ child: ChildProcess; firstLine: string; address: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'listen', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`listener did not print its address within ${LISTEN_TIMEOUT_MS} ms`));
    }, LISTEN_TIMEOUT_MS);
    rl.once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, firstLine: line, address: line.replace(/^listening on /, '') });
    });
    child.once('exit', (code) => reject(new Error(`listener exited early with ${code}`)));
  });
}

/** SIGTERM the child; resolves with its exit code, or the name of the signal that ended it. */
export function stop(child: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
    child.kill('SIGTERM');
  });
}

