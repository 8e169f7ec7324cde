/**
 * The TLS transport security profile, `http://iana.org/beep/TLS` (RFC 3080
 * §3.1), built on the public profile API: `<ready/>` (piggybacked on the
 * start or as a MSG) → `<proceed/>` or `<error>`; then both peers run the TLS
 * handshake over the same TCP connection and the session is reset (every
 * channel discarded, numbering and windows restarted, fresh greetings — the
 * TLS profile no longer offered).
 *
 * Modes: certificates (server certificate, optional client certificate, CA
 * pinning, hostname check) and TLS-PSK (TLS 1.3 or TLS 1.2 AEAD PSK suites).
 * TLS 1.2 is the floor and only AEAD suites are offered, so a null cipher can
 * never be negotiated.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { BeepError, BeepReplyError, ErrorCodes } from '../errors.js';
import { BEEP_XML } from '../framing/index.js';
import { MgmtSyntaxError, mgmtXml, type Session, tuningOf, type TuningContext, type TransportSecurity } from '../channels/index.js';
import { defineProfile } from './define.js';
import { parseXml } from '../xml/index.js';

/** URI of the TLS profile (RFC 3080 §6.2). */
export const TLS_URI = 'http://iana.org/beep/TLS';

/**
 * Cipher suites offered: TLS 1.3 AEAD suites, then TLS 1.2 ECDHE and PSK
 * suites with AES-GCM or ChaCha20-Poly1305. No NULL, no CBC, no RC4.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'PSK-AES128-GCM-SHA256',
  'PSK-AES256-GCM-SHA384',
  'PSK-CHACHA20-POLY1305',
].join(':');

/** Milliseconds allowed for the TLS handshake (default). */
export const TLS_HANDSHAKE_TIMEOUT = 30_000;

/** PEM text (or several): a certificate chain, key or CA list. */
export type Pem = string | Buffer | readonly (string | Buffer)[];

/** Options of the listening (server) side of the TLS profile. */
export interface TlsServerOptions {
  /** Server certificate chain (PEM). Required unless `psk` is given. */
  cert?: Pem;
  /** Private key of `cert` (PEM). */
  key?: Pem;
  /** CAs to verify client certificates against; with it, clients must present one. */
  ca?: Pem;
  /** Ask for a client certificate but accept a session without one (default: required when `ca` is set). */
  clientCertOptional?: boolean;
  /** TLS-PSK: return the key for an identity, or null to refuse it. */
  psk?: (identity: string) => Uint8Array | null;
  /** Lowest TLS version (default and floor `TLSv1.2`). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Handshake timeout in milliseconds. */
  handshakeTimeout?: number;
}

/** Options of the initiating (client) side of the TLS profile. */
export interface TlsClientOptions {
  /** CAs the server certificate must chain to (default: the system store). */
  ca?: Pem;
  /** Client certificate and key, for servers that ask for one. */
  cert?: Pem;
  key?: Pem;
  /**
   * Name the server certificate must match (and sent as SNI and as the
   * `serverName` of the start). Default: the host connected to.
   */
  serverName?: string;
  /** TLS-PSK identity and key (the identity must not reveal secrets). */
  psk?: { identity: string; key: Uint8Array };
  /** Lowest TLS version (default and floor `TLSv1.2`). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Highest TLS version (default `TLSv1.3`). */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Send `<ready/>` as a MSG on an opened channel instead of piggybacking it on the start. */
  readyAsMessage?: boolean;
  /** Handshake timeout in milliseconds. */
  handshakeTimeout?: number;
}

/** Largest TLS profile element accepted, in octets. */
const MAX_TLS_ELEMENT = 4096;

/**
 * Parse a TLS profile element: `ready`, `proceed` or `error` (RFC 3080 §7.2),
 * with the one safe XML reader (`src/xml/`). Throws {@link MgmtSyntaxError}
 * (500 malformed, 501 unexpected element).
 */
export function parseTlsElement(content: Uint8Array | string | undefined): { kind: 'ready' | 'proceed'; version: string } | { kind: 'error'; code: number; diagnostic: string } {
  const el = mgmtXml(() => parseXml(content ?? '', { maxBytes: MAX_TLS_ELEMENT }));
  if (el.name === 'ready' || el.name === 'proceed') return { kind: el.name, version: el.attrs.get('version') ?? '1' };
  if (el.name === 'error') {
    const code = Number(el.attrs.get('code'));
    return { kind: 'error', code: Number.isInteger(code) ? code : 0, diagnostic: el.text.trim() };
  }
  throw new MgmtSyntaxError(501, `unexpected element <${el.name.slice(0, 32)}>`);
}

/** The first line of an OpenSSL error (the rest is its internal trace). */
function firstLine(message: string): string {
  return message.split('\n')[0]?.replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:/, '').replace(/:\.\.\/deps\/openssl\S*/, '') ?? message;
}

function checkCipher(s: tls.TLSSocket): void {
  // Belt and braces on top of the cipher list: refuse anything but an AEAD suite.
  const c = s.getCipher()?.name ?? '';
  if (!/GCM|CHACHA20|CCM/.test(c) || /NULL/i.test(c)) throw new BeepError(ErrorCodes.TRANSPORT, `refusing negotiated cipher ${c}`);
}

function securityOf(s: tls.TLSSocket, pskIdentity?: string): TransportSecurity {
  const out: TransportSecurity = { tls: true };
  const proto = s.getProtocol();
  if (proto) out.protocol = proto;
  const c = s.getCipher()?.name;
  if (c) out.cipher = c;
  if (s.authorized) {
    const peer = s.getPeerCertificate(true);
    if (peer && peer.raw) {
      out.peerCertificate = new Uint8Array(peer.raw);
      const cn = peer.subject?.CN;
      if (typeof cn === 'string') out.peerCommonName = cn;
      else {
        try {
          const x = new X509Certificate(peer.raw);
          const m = /CN=([^\n,]+)/.exec(x.subject);
          if (m) out.peerCommonName = m[1] as string;
        } catch {
          /* no CN */
        }
      }
    }
  }
  if (pskIdentity !== undefined) out.pskIdentity = pskIdentity;
  return out;
}

/** Wait for a TLS socket's handshake, with a timeout; never leaves listeners behind. */
function handshake(s: tls.TLSSocket, event: 'secure' | 'secureConnect', timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new BeepError(ErrorCodes.TRANSPORT, `TLS handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      s.off(event, ok);
      s.off('error', fail);
      s.off('close', closed);
    };
    const ok = (): void => {
      cleanup();
      resolve();
    };
    const fail = (err: Error): void => {
      cleanup();
      s.destroy();
      reject(err instanceof BeepError ? err : new BeepError(ErrorCodes.TRANSPORT, `TLS handshake failed: ${firstLine(err.message)}`, { cause: err }));
    };
    const closed = (): void => fail(new BeepError(ErrorCodes.TRANSPORT, 'TLS handshake failed: connection closed'));
    s.once(event, ok);
    s.once('error', fail);
    s.once('close', closed);
  });
}

function serverUpgrade(tuning: TuningContext, options: TlsServerOptions, context: tls.TlsOptions): void {
  let pskIdentity: string | undefined;
  const requireClientCert = options.ca !== undefined && !options.clientCertOptional;
  void tuning
    .resetTransport(
      (raw: Duplex) =>
        new Promise((resolve, reject) => {
          // A non-listening tls.Server takes the raw socket as if it had just
          // connected, so Node's own client-certificate checks apply.
          const server = tls.createServer({
            ...context,
            requestCert: options.ca !== undefined,
            rejectUnauthorized: requireClientCert,
            handshakeTimeout: options.handshakeTimeout ?? TLS_HANDSHAKE_TIMEOUT,
            ...(options.psk
              ? {
                  pskCallback: (_socket: tls.TLSSocket, identity: string) => {
                    const key = options.psk?.(identity) ?? null;
                    if (key) pskIdentity = identity;
                    return key;
                  },
                }
              : {}),
          });
          const done = (err: Error | null, s?: tls.TLSSocket): void => {
            raw.off('close', onClose);
            server.removeAllListeners();
            if (err) {
              raw.destroy();
              reject(err instanceof BeepError ? err : new BeepError(ErrorCodes.TRANSPORT, `TLS handshake failed: ${firstLine(err.message)}`, { cause: err }));
              return;
            }
            try {
              checkCipher(s as tls.TLSSocket);
            } catch (e) {
              s?.destroy();
              reject(e);
              return;
            }
            resolve({ socket: s as tls.TLSSocket, security: securityOf(s as tls.TLSSocket, pskIdentity) });
          };
          const onClose = (): void => done(new BeepError(ErrorCodes.TRANSPORT, 'TLS handshake failed: connection closed (client certificate missing or not trusted?)'));
          raw.once('close', onClose);
          server.once('secureConnection', (s: tls.TLSSocket) => done(null, s));
          server.once('tlsClientError', (err: Error) => done(err));
          server.emit('connection', raw);
        }),
    )
    .catch(() => undefined); // the session reports the failure through its 'close' event
}

/**
 * The TLS profile for the side that accepts TLS starts (usually the
 * listener). Offered only while the session is not yet TLS.
 */
export function tlsProfile(options: TlsServerOptions) {
  if (!options.psk && !(options.cert && options.key)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'the TLS profile needs cert and key, or psk');
  }
  const context: tls.TlsOptions = {
    ...(options.cert ? { cert: options.cert as string } : {}),
    ...(options.key ? { key: options.key as string } : {}),
    ...(options.ca ? { ca: options.ca as string } : {}),
    minVersion: options.minVersion ?? 'TLSv1.2',
    ciphers: TLS_CIPHERS,
  };
  // Fail at configuration time, not at the first handshake, on a bad cert or key.
  tls.createSecureContext(context);
  const tuningFrom = (t: TuningContext | undefined): TuningContext => {
    // Always set for a profile defined with `tuning: true`.
    if (!t) throw new BeepError(ErrorCodes.INVALID_STATE, 'the TLS profile must be a tuning profile');
    return t;
  };
  return defineProfile({
    uri: TLS_URI,
    tuning: true,
    /** Offered only while the session is not yet TLS. */
    advertise: (session) => !session.security.tls,
    /** `<ready/>` piggybacked on the start: reply `<proceed/>`, then run the handshake (RFC 3080 §3.1.3.1). */
    onStart({ content, session, tuning }) {
      if (session.security.tls) return { accept: false, code: 550, diagnostic: 'TLS is already in place' };
      if (content === undefined || content.length === 0) return { accept: true }; // <ready/> will come as a MSG
      let el;
      try {
        el = parseTlsElement(content);
      } catch (err) {
        return { accept: false, code: err instanceof MgmtSyntaxError ? err.replyCode : 500, diagnostic: 'expected <ready />' };
      }
      if (el.kind !== 'ready') return { accept: false, code: 501, diagnostic: 'expected <ready />' };
      // RFC 3080 §3.1.3.1: reply <proceed/>, then both peers start the handshake.
      return {
        accept: true,
        content: '<proceed />',
        /** Once `<proceed/>` is out: the server side of the handshake, then the tuning reset. */
        afterReply: () => serverUpgrade(tuningFrom(tuning), options, context),
      };
    },
    /** `<ready/>` as a MSG on an open TLS channel: reply `<proceed/>`, then run the handshake. */
    async onMessage(msg, res, channel) {
      let el;
      try {
        el = parseTlsElement(await msg.bytes(4096));
      } catch {
        await res.error(500, 'expected <ready />');
        return;
      }
      if (el.kind !== 'ready') {
        await res.error(501, 'expected <ready />');
        return;
      }
      if (channel.session.security.tls) {
        await res.error(550, 'TLS is already in place');
        return;
      }
      const sent = res.reply('<proceed />', { contentType: BEEP_XML, hold: true });
      await sent;
      serverUpgrade(tuningFrom(channel.tuning), options, context);
    },
  });
}

/**
 * Tune a session with TLS as the initiator (RFC 3080 §3.1): ask for TLS,
 * handshake, and wait for the fresh greeting over TLS. Rejects — and the
 * session is gone — if the handshake fails (wrong key, untrusted or
 * mismatched certificate); rejects with {@link BeepReplyError} and leaves the
 * session usable if the peer refuses TLS.
 */
export async function startTls(session: Session, options: TlsClientOptions = {}): Promise<void> {
  const tuning = tuningOf(session);
  const startOpts = options.serverName === undefined ? {} : { serverName: options.serverName };
  let proceed;
  if (options.readyAsMessage) {
    const ch = await session.startChannel(TLS_URI, startOpts);
    let reply;
    try {
      reply = await ch.request('<ready />', { contentType: BEEP_XML, hold: true });
    } catch (err) {
      tuning.resumeOutput();
      throw err;
    }
    proceed = parseTlsElement(await reply.bytes(4096));
  } else {
    const ch = await session.startChannel(TLS_URI, { ...startOpts, content: '<ready />', hold: true });
    proceed = parseTlsElement(ch.startContent);
  }
  if (proceed.kind === 'error') {
    tuning.resumeOutput();
    throw new BeepReplyError(ErrorCodes.START_REFUSED, proceed.code, proceed.diagnostic);
  }
  if (proceed.kind !== 'proceed') {
    const e = new BeepError(ErrorCodes.BAD_REPLY, 'expected <proceed /> from the TLS profile', { origin: 'remote' });
    session.destroy(e);
    throw e;
  }
  const host = tuning.session.transport?.remoteAddress;
  await tuning.resetTransport(async (raw) => {
    const psk = options.psk;
    const servername = options.serverName;
    const s = tls.connect({
      socket: raw,
      ...(servername !== undefined && !/^[0-9.]+$|:/.test(servername) ? { servername } : {}),
      ...(options.ca ? { ca: options.ca as string } : {}),
      ...(options.cert ? { cert: options.cert as string } : {}),
      ...(options.key ? { key: options.key as string } : {}),
      minVersion: options.minVersion ?? 'TLSv1.2',
      maxVersion: options.maxVersion ?? 'TLSv1.3',
      ciphers: TLS_CIPHERS,
      rejectUnauthorized: true,
      ...(psk
        ? { pskCallback: () => ({ identity: psk.identity, psk: psk.key as unknown as DataView }), checkServerIdentity: () => undefined }
        : { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(servername ?? host ?? 'localhost', cert) }),
    });
    await handshake(s, 'secureConnect', options.handshakeTimeout ?? TLS_HANDSHAKE_TIMEOUT);
    checkCipher(s);
    return { socket: s, security: securityOf(s, psk?.identity) };
  });
  await session.whenGreeted();
}
