/**
 * nginx (the Debian package) as a baseline of the DECADE benchmark group: a
 * foreground child (`daemon off`, one worker process) with a generated
 * configuration in a temporary directory, listening on 127.0.0.1 with TLS 1.3
 * (TLS_AES_128_GCM_SHA256, as the BEEP TLS profile negotiates).
 *
 * - GET `/obj`: the static file module (`sendfile` does not apply under TLS
 *   without kTLS, so nginx reads and encrypts as the others do).
 * - PUT `/obj`: the WebDAV module (`dav_methods PUT`): nginx writes the body
 *   to a temporary file (`client_body_temp_path`, in the same directory) and
 *   renames it into place. It does **not** fsync — the DECADE and node:https
 *   PUTs do — so nginx's PUT promises less durability than theirs.
 *
 * @module
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx'];

/** The nginx binary, or null when it is not installed. */
export function findNginx(): string | null {
  for (const p of CANDIDATES) if (existsSync(p)) return p;
  try {
    return execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** `nginx version: nginx/1.22.1` → `nginx/1.22.1`, and whether the dav module is built in. */
export function nginxInfo(bin: string): { version: string; dav: boolean } {
  // nginx -V writes to stderr.
  const r = spawnSync(bin, ['-V'], { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return { version: /nginx\/[\d.]+/.exec(out)?.[0] ?? 'nginx', dav: out.includes('http_dav_module') };
}

/** A free port on 127.0.0.1 (bound, then released for nginx to take). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A running nginx. */
export interface NginxServer {
  port: number;
  child: ChildProcess;
  /** PIDs of the master and its workers (for their CPU time). */
  pids(): number[];
  stop(): Promise<void>;
}

/** Start nginx serving `dir/www/obj`; `cert`/`key` PEM text. */
export async function startNginx(bin: string, dir: string, cert: string, key: string): Promise<NginxServer> {
  for (const d of ['www', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'cert.pem'), cert);
  writeFileSync(join(dir, 'key.pem'), key, { mode: 0o600 });
  const port = await freePort();
  const user = process.getuid?.() === 0 ? `user ${os.userInfo().username};\n` : '';
  const conf = `${user}daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${join(dir, 'cert.pem')};
    ssl_certificate_key ${join(dir, 'key.pem')};
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    root ${join(dir, 'www')};
    location / {
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
      client_body_buffer_size 1m;
    }
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    if (child.exitCode !== null) break;
    if (await connects(port)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (child.exitCode !== null || !(await connects(port))) {
    child.kill('SIGKILL');
    let log = '';
    try {
      log = readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      /* none */
    }
    throw new Error(`nginx did not start: ${(stderr + log).trim().split('\n').slice(-3).join(' | ')}`);
  }
  const pids = (): number[] => {
    const out = child.pid === undefined ? [] : [child.pid];
    try {
      for (const p of readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)) if (p) out.push(Number(p));
    } catch {
      /* no /proc */
    }
    return out;
  };
  return {
    port,
    child,
    pids,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGQUIT');
      }),
  };
}
