/**
 * Every implementation under test, by name. Each worker process loads only
 * the one it runs.
 *
 * @module
 */
import type { Impl } from '../lib/adapter.js';

/** Names of every implementation, beepstream first. */
export const IMPL_NAMES = ['beepstream', 'raw-tcp', 'tls1.3-aes128gcm', 'tls1.2-psk-aes128gcm', 'http2', 'yamux'] as const;

/** Load an implementation by name. */
export async function loadImpl(name: string): Promise<Impl> {
  switch (name) {
    case 'beepstream':
      return (await import('./beep.js')).beepImpl;
    case 'raw-tcp':
      return (await import('./net.js')).tcpImpl;
    case 'tls1.3-aes128gcm':
      return (await import('./net.js')).tls13Impl;
    case 'tls1.2-psk-aes128gcm':
      return (await import('./net.js')).tls12PskImpl;
    case 'http2':
      return (await import('./http2.js')).http2Impl;
    case 'yamux':
      return (await import('./yamux.js')).yamuxImpl;
    case 'stunnel':
      throw new Error('stunnel is a tunnel of the scistream-* cases (lib/tunnel.ts), run by the runner, not by a worker');
    default:
      throw new Error(`unknown implementation ${JSON.stringify(name)}`);
  }
}
