/**
 * Secrets on the command line: a value may be given as `env:NAME` (read from
 * the environment) or `file:PATH` (read from a file, trailing newline
 * dropped), so it never has to appear in a process listing. A literal value
 * still works but draws a warning. Secrets are never printed.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { UsageError } from './address.js';

/** Resolve a secret option; `name` is used in messages (never the value). */
export function readSecret(name: string, spec: string, warn: (line: string) => void = (l) => process.stderr.write(l + '\n')): string {
  if (spec.startsWith('env:')) {
    const v = process.env[spec.slice(4)];
    if (v === undefined || v === '') throw new UsageError(`${name}: environment variable ${spec.slice(4)} is not set`);
    return v;
  }
  if (spec.startsWith('file:')) {
    let v: string;
    try {
      v = readFileSync(spec.slice(5), 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new UsageError(`${name}: cannot read ${JSON.stringify(spec.slice(5))}`);
    }
    if (v === '') throw new UsageError(`${name}: ${JSON.stringify(spec.slice(5))} is empty`);
    return v;
  }
  warn(`beepstream: warning: ${name} given literally is visible in the process listing; use ${name} env:NAME or ${name} file:PATH`);
  return spec;
}

/** Read a PEM (or any) file named by an option, with a clear error. */
export function readOptionFile(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new UsageError(`${name}: cannot read ${JSON.stringify(path)}`);
  }
}

/**
 * Read a PEM file named by an option and check that it holds what the
 * option needs — one or more certificates, or a private key — so that a
 * wrong file is refused naming the option and the file, not later by
 * OpenSSL (`error:0480006C:PEM routines::no start line`). `name` is how the
 * value was given: a flag (`--tls-ca`), a config key or a variable.
 */
export function readPemFile(name: string, path: string, kind: 'certificate' | 'key'): string {
  const text = readOptionFile(name, path);
  const where = `${name} ${JSON.stringify(path)}`;
  if (kind === 'key') {
    if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) throw new UsageError(`${where}: not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)`);
    try {
      createPrivateKey(text);
    } catch {
      throw new UsageError(`${where}: the PEM private key cannot be read (damaged, or protected by a passphrase)`);
    }
    return text;
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) throw new UsageError(`${where}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`);
  blocks.forEach((b, i) => {
    try {
      new X509Certificate(b);
    } catch {
      throw new UsageError(`${where}: certificate ${i + 1} of ${blocks.length} cannot be read (damaged PEM)`);
    }
  });
  return text;
}

/** Parse a hex key (TLS-PSK), at least 16 octets. */
export function parseHexKey(name: string, hex: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2}){16,}$/.test(hex)) throw new UsageError(`${name}: expected at least 32 hexadecimal digits`);
  return Buffer.from(hex, 'hex');
}

/**
 * Parse a PSK file for `listen`: one `identity:hexkey` per line, `#` comments.
 * Errors name the line, never the key.
 */
export function readPskFile(name: string, path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  readOptionFile(name, path)
    .split(/\r?\n/)
    .forEach((line, i) => {
      const l = line.trim();
      if (l === '' || l.startsWith('#')) return;
      const m = /^([^:\s]{1,128}):((?:[0-9a-fA-F]{2}){16,})$/.exec(l);
      if (!m) throw new UsageError(`${name}: line ${i + 1} is not "identity:hexkey" (at least 32 hex digits)`);
      out.set(m[1] as string, Buffer.from(m[2] as string, 'hex'));
    });
  if (out.size === 0) throw new UsageError(`${name}: no identities in ${JSON.stringify(path)}`);
  return out;
}
