/**
 * EXTERNAL (RFC 4422 appendix A): the identity comes from outside SASL — here the
 * client certificate the TLS layer verified. The client's message is the
 * authorization identity it wants (empty: "whatever my certificate says"); a
 * non-empty one must equal the certificate identity or be allowed by `authorize`.
 *
 * @module
 */
import { X509Certificate } from 'node:crypto';
import { BeepError, ErrorCodes } from '../../errors.js';
import { SaslReasons, decodeUtf8, failure, guardedServer } from './common.js';
import type { SaslClientMechanismFactory, SaslContext, SaslServerMechanismFactory, SaslServerStep } from './types.js';

/** Mechanism name of EXTERNAL. */
export const EXTERNAL = 'EXTERNAL';

/**
 * The subject common name of a certificate, or `undefined` when the subject has no
 * CN, more than one, or one that cannot be read unambiguously from Node's RFC 2253
 * style rendering (`\,` escapes are undone; hex escapes are refused).
 */
export function subjectCommonName(cert: X509Certificate): string | undefined {
  const found: string[] = [];
  for (const line of cert.subject.split('\n')) {
    // A multi-valued RDN is rendered "CN=a + UID=b"; split on unescaped " + ".
    for (const ava of line.split(/(?<!\\) \+ /)) {
      if (!ava.startsWith('CN=')) continue;
      const raw = ava.slice(3);
      if (/\\(?![,+"\\<>;= #])/.test(raw)) return undefined;
      found.push(raw.replace(/\\(.)/g, '$1'));
    }
  }
  const [cn] = found;
  return found.length === 1 && cn !== undefined && cn !== '' ? cn : undefined;
}

/** Options of {@link externalServer}. */
export interface ExternalServerOptions {
  /**
   * Maps the verified client certificate to an authentication identity; `undefined`
   * refuses it. Default: the subject CN ({@link subjectCommonName}).
   */
  readonly mapIdentity?: (cert: X509Certificate) => string | undefined | Promise<string | undefined>;
  /** May `authcid` act as a different `authzid`? Without it only the same name is allowed. */
  readonly authorize?: (authcid: string, authzid: string) => boolean | Promise<boolean>;
}

function certificateOf(ctx: SaslContext): X509Certificate | undefined {
  const c = ctx.tlsPeerCertificate;
  if (c === undefined) return undefined;
  if (c instanceof X509Certificate) return c;
  try {
    return new X509Certificate(c);
  } catch {
    return undefined;
  }
}

/** The EXTERNAL server mechanism factory, offered only when the context carries a client certificate. */
export function externalServer(options: ExternalServerOptions = {}): SaslServerMechanismFactory {
  const map = options.mapIdentity ?? subjectCommonName;
  return {
    name: EXTERNAL,
    available: (ctx) => ctx.tlsPeerCertificate !== undefined,
    create(ctx) {
      let asked = false;
      return guardedServer(EXTERNAL, async (input): Promise<SaslServerStep> => {
        const cert = certificateOf(ctx);
        if (cert === undefined) return failure(535, SaslReasons.NO_CERTIFICATE);
        if (input === undefined) {
          if (asked) return failure(535, SaslReasons.MALFORMED);
          asked = true;
          return { status: 'continue', challenge: Buffer.alloc(0) };
        }
        const requested = decodeUtf8(input);
        if (requested === undefined || requested.includes('\0')) return failure(535, SaslReasons.MALFORMED);
        const authcid = await map(cert);
        if (typeof authcid !== 'string' || authcid === '') return failure(535, SaslReasons.NO_CERTIFICATE);
        if (requested === '' || requested === authcid) {
          return { status: 'success', identity: { authcid, mechanism: EXTERNAL } };
        }
        const ok = options.authorize === undefined ? false : await options.authorize(authcid, requested);
        if (ok !== true) return failure(535, SaslReasons.NOT_AUTHORIZED);
        return { status: 'success', identity: { authcid, authzid: requested, mechanism: EXTERNAL } };
      });
    },
  };
}

/** The EXTERNAL client mechanism factory: sends `authzid` (default empty). Offered only over TLS. */
export function externalClient(options: { readonly authzid?: string } = {}): SaslClientMechanismFactory {
  const authzid = options.authzid ?? '';
  if (typeof authzid !== 'string' || authzid.includes('\0')) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, 'externalClient: authzid must be a string without NUL');
  }
  return {
    name: EXTERNAL,
    available: (ctx) => ctx.tls,
    create() {
      let sent = false;
      return {
        name: EXTERNAL,
        async initial() {
          sent = true;
          return Buffer.from(authzid, 'utf8');
        },
        async step(challenge) {
          if (sent || challenge.length > 0) return { status: 'failure', reason: 'unexpected challenge' };
          sent = true;
          return { status: 'continue', response: Buffer.from(authzid, 'utf8') };
        },
        async finish() {
          return { status: 'success' };
        },
      };
    },
  };
}
