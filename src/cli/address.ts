/**
 * Parsing and printing of `HOST:PORT` for the CLI.
 *
 * @module
 */
import { BeepOperationError, ErrorCodes } from '../errors.js';

/** A parsed endpoint. */
export interface Endpoint {
  host: string;
  port: number;
}

/**
 * A CLI argument or configuration value was invalid; the message says what is
 * wrong. A {@link BeepOperationError} with code `BEEP_ERR_USAGE`; the CLI
 * prints it as `beepstream: MESSAGE` and exits with status 2.
 */
export class UsageError extends BeepOperationError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.USAGE, message, options);
  }
}

/** Parse a port: an integer in `min..65535`. */
export function parsePort(text: string, min = 1): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < min || Number(text) > 65535) {
    throw new UsageError(`invalid port ${JSON.stringify(text)}: expected an integer from ${min} to 65535`);
  }
  return Number(text);
}

/** Parse `HOST:PORT`, `[IPV6]:PORT`; `minPort` 0 admits port 0 (a listener that picks a free port). */
export function parseEndpoint(text: string, minPort = 1): Endpoint {
  const m = /^\[([0-9A-Fa-f:.]+)\]:([^:]+)$/.exec(text) ?? /^([^:\s]+):([^:]+)$/.exec(text);
  if (!m) throw new UsageError(`invalid address ${JSON.stringify(text)}: expected HOST:PORT (or [IPV6]:PORT)`);
  return { host: m[1] as string, port: parsePort(m[2] as string, minPort) };
}

/** Where `connect` goes: a TCP endpoint, or a Unix domain socket path. */
export type Target = Endpoint | { path: string };

/** Parse `HOST:PORT`, `[IPV6]:PORT` or `unix:PATH` (a Unix domain socket). */
export function parseTarget(text: string): Target {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path.length === 0 || path.includes('\0')) throw new UsageError(`invalid address ${JSON.stringify(text)}: expected unix:PATH`);
    return { path };
  }
  return parseEndpoint(text);
}

/** Format an endpoint as `HOST:PORT`, bracketing IPv6 literals. */
export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parse a positive integer option. */
export function parsePositiveInt(name: string, text: string, max = Number.MAX_SAFE_INTEGER, min = 1): number {
  if (!/^[0-9]{1,16}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`invalid ${name} ${JSON.stringify(text)}: expected an integer from ${min} to ${max}`);
  }
  return Number(text);
}
