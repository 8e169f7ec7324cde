/**
 * A real `beepstream flows serve` process for tests that kill it: started on
 * port 0 over TLS (the test PKI) with the test users, on a given SQLite file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ExecutionContext } from 'ava';
import { serializeUsersFile } from '../../src/profiles/index.js';
import { BIN, LISTEN_TIMEOUT_MS, STOP_TIMEOUT_MS } from '../helpers/cli.js';
import { pki, users } from './harness.js';

/** A running server process. */
export interface ServeProcess {
  child: ChildProcess;
  port: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/** Write the test users to `dir/users.json`; returns its path. */
export function writeUsers(dir: string): string {
  const path = join(dir, 'users.json');
  writeFileSync(path, serializeUsersFile(users));
  return path;
}

/** Start `flows serve` on `data` (TLS with the test PKI unless `insecure`); killed (SIGKILL) when the test ends if still running. */
export function startServe(t: ExecutionContext, dir: string, data: string, extra: string[] = [], insecure = false): Promise<ServeProcess> {
  const usersFile = writeUsers(dir);
  const tls = insecure ? ['--insecure'] : ['--tls-cert', pki.paths.serverCert, '--tls-key', pki.paths.serverKey];
  const child = spawn(process.execPath, [BIN, 'flows', 'serve', '--port', '0', '--users', usersFile, '--data', data, ...tls, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }
  });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flows serve did not print its address within ${LISTEN_TIMEOUT_MS} ms; stderr: ${stderr}`));
    }, LISTEN_TIMEOUT_MS);
    rl.once('line', (line) => {
      clearTimeout(timer);
      const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
      if (!m) return reject(new Error(`unexpected first line ${JSON.stringify(line)}; stderr: ${stderr}`));
      resolve({ child, port: Number(m[1]), exited });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`flows serve exited early with ${code}; stderr: ${stderr}`));
    });
  });
}
