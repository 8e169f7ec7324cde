/**
 * `beepstream decade serve` as a real process for the CLI tests: resolves
 * once it printed its address (first line) and what opening its store swept
 * (second line).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BIN, LISTEN_TIMEOUT_MS } from '../helpers/cli.js';

/** A running `decade serve`. */
export interface Serve { child: ChildProcess; address: string; port: number; lines: string[]; output: () => string }

/** Start `beepstream decade serve ARGS` (give `--port 0`). */
export function serveProcess(args: string[], env: Record<string, string> = {}): Promise<Serve> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'decade', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const lines: string[] = [];
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`decade serve did not start within ${LISTEN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, LISTEN_TIMEOUT_MS);
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length === 2) {
        clearTimeout(timer);
        const address = (lines[0] as string).replace(/^listening on /, '');
        resolve({ child, address, port: Number(address.split(':').pop()), lines, output: () => lines.join('\n') + stderr });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (lines.length < 2) reject(new Error(`decade serve exited early with ${code}: ${stderr}`));
    });
  });
}
