/**
 * The ceiling of the `scistream-*` cases (`node-tls`): the Node TLS socket
 * alone, in the same four-process topology as the S2DS pair.
 *
 * ```
 * consumer app ──TCP──▶ relay (client) ══ node:tls, TLS 1.3 PSK, TLS_AES_128_GCM_SHA256 ══▶ relay (server) ──TCP──▶ producer app
 * ```
 *
 * Each relay is one Node process (a bench worker) that does nothing but
 * move octets between an application TCP socket and a `tls.TLSSocket`, both
 * ways, with the S2DS's own `pump` (so the ceiling writes as few times as the
 * S2DS do): one TLS connection per application connection (as stunnel),
 * the same uid-derived PSK and identity as the S2DS (`derivePsk`), the same
 * protocol and suite the S2DS negotiate (checked on every connection). No
 * BEEP, no multiplexing, no flow control of its own: what Node's TLS socket
 * and its stream plumbing cost is all there is, so no Node program speaking
 * TLS on each leg can do better than this on the same machine in the same
 * minutes.
 *
 * @module
 */
import net from 'node:net';
import tls from 'node:tls';
import { derivePsk } from '../../src/scistream/data/psk.js';
import { pump } from '../../src/scistream/data/pump.js';
import { SocketSource } from '../../src/scistream/data/source.js';

/** The one suite and protocol the relays allow (the S2DS negotiate the same). */
export const RELAY_CIPHER = 'TLS_AES_128_GCM_SHA256';
export const RELAY_PROTOCOL = 'TLSv1.3';

/** A running relay end. */
export interface TlsRelay {
  /** The port it accepts on (127.0.0.1). */
  port: number;
  /** What it runs, for the progress line. */
  info: string;
  /** Connections that failed (handshake, wrong suite, socket error). */
  failures(): number;
  /** Stop accepting and destroy every connection. */
  close(): void;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/**
 * Start one relay end. `server`: the producer facility (accepts TLS, connects
 * to the producer application at `peer`); `client`: the consumer facility
 * (accepts the consumer application, connects with TLS to `peer`).
 */
export async function startTlsRelay(side: 'server' | 'client', uid: string, peer: string): Promise<TlsRelay> {
  const { identity, key } = derivePsk(uid);
  const target = hostPort(peer);
  const live = new Set<net.Socket>();
  let failed = 0;
  const track = (s: net.Socket): void => {
    live.add(s);
    s.once('close', () => live.delete(s));
  };
  /**
   * Application → TLS: the S2DS's own source (the application socket read
   * into 1 MiB slabs, reads side by side joined, a slab reused once its
   * writes completed), each chunk written to the
   * TLS socket, waiting for its `drain` only past 1 MiB queued. TLS →
   * application: the S2DS's pump (zero-copy, every chunk of one turn in one
   * vectored write, pause past 1 MiB queued). So the ceiling reads and
   * writes as the S2DS do, without BEEP; an error on either side ends both.
   */
  const couple = (app: net.Socket, secure: tls.TLSSocket): void => {
    track(app);
    track(secure);
    const kill = (): void => {
      failed++;
      app.destroy();
      secure.destroy();
    };
    app.on('error', kill);
    secure.on('error', kill);
    // Slabs are reused once the TLS socket's write of them completed, as the S2DS's are once the
    // BEEP session says so (onReleased): the ceiling keeps that trick too.
    const source = new SocketSource(app, { onEnd: () => undefined, recycle: true });
    let written = 0;
    const forward = async (): Promise<void> => {
      for await (const chunk of source) {
        if (secure.destroyed) return;
        const end = (written += chunk.length);
        if (!secure.write(chunk, () => source.released(end)) && secure.writableLength >= 1024 * 1024) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              secure.off('drain', done);
              secure.off('close', done);
              resolve();
            };
            secure.on('drain', done);
            secure.on('close', done);
          });
        }
      }
      if (!secure.destroyed) secure.end();
    };
    // Nothing was read from the application socket yet (this runs as it is made).
    source.start();
    void forward();
    pump(secure, app, { onEnd: () => app.end() });
  };
  const checkSuite = (s: tls.TLSSocket): boolean => {
    const ok = s.getProtocol() === RELAY_PROTOCOL && s.getCipher()?.standardName === RELAY_CIPHER;
    if (!ok) {
      failed++;
      s.destroy();
    }
    return ok;
  };
  const tlsOptions = { ciphers: RELAY_CIPHER, minVersion: RELAY_PROTOCOL, maxVersion: RELAY_PROTOCOL } as const;
  let server: net.Server;
  if (side === 'server') {
    const srv = tls.createServer({
      ...tlsOptions,
      allowHalfOpen: true,
      pskCallback: (_s: tls.TLSSocket, id: string) => (id === identity ? key : null),
    });
    srv.on('secureConnection', (secure: tls.TLSSocket) => {
      if (!checkSuite(secure)) return;
      const app = net.connect({ ...target, allowHalfOpen: true });
      app.setNoDelay(true);
      couple(app, secure);
    });
    srv.on('tlsClientError', () => void failed++);
    server = srv;
  } else {
    server = net.createServer({ allowHalfOpen: true }, (app) => {
      app.setNoDelay(true);
      const secure = tls.connect({
        ...target,
        ...tlsOptions,
        pskCallback: () => ({ identity, psk: key as unknown as DataView }),
        checkServerIdentity: () => undefined,
      });
      secure.once('secureConnect', () => checkSuite(secure));
      couple(app, secure);
    });
  }
  const port = await listen(server);
  return {
    port,
    info: `node:tls ⇄ node:tls: ${RELAY_PROTOCOL} ${RELAY_CIPHER} PSK, one TLS connection per application connection, the S2DS's pump both ways, no BEEP`,
    failures: () => failed,
    close(): void {
      server.close();
      for (const s of live) s.destroy();
    },
  };
}
