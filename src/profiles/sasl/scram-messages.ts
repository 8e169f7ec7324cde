/**
 * Parsers for the four SCRAM messages (RFC 5802 §7). Each returns `undefined` for
 * anything the grammar does not allow; mandatory attributes are positional, unknown
 * extensions are ignored, and the reserved `m=` extension is refused (RFC 5802 §5.1).
 *
 * @module
 */
import { decodeBase64 } from './common.js';
import { parseGs2Header, unescapeSaslname, type Gs2Header } from './gs2.js';

/** `printable = %x21-2B / %x2D-7E` — any visible ASCII except `,` (RFC 5802 §7). */
const NONCE = /^[\x21-\x2B\x2D-\x7E]+$/;
/** `attr-val = ALPHA "=" value`, `value = 1*value-char` (no NUL, no `,`). */
const EXTENSION = /^[A-Za-z]=[^,\0]+$/;
/** `posit-number = %x31-39 *DIGIT`. */
const POSITIVE = /^[1-9][0-9]*$/;

/** Splits `k=v,k=v`, checking that every mandatory attribute comes first, in order. */
function attributes(s: string, mandatory: readonly string[]): { values: string[]; extensions: string[] } | undefined {
  if (s.includes('\0')) return undefined;
  const parts = s.split(',');
  if (parts.length < mandatory.length) return undefined;
  const values: string[] = [];
  for (let i = 0; i < mandatory.length; i++) {
    const part = parts[i] ?? '';
    const key = `${mandatory[i] ?? ''}=`;
    if (!part.startsWith(key)) return undefined;
    values.push(part.slice(key.length));
  }
  const extensions = parts.slice(mandatory.length);
  for (const ext of extensions) {
    // reserved-mext: a server MUST fail if it sees `m=` (RFC 5802 §5.1).
    if (!EXTENSION.test(ext) || ext.startsWith('m=')) return undefined;
  }
  return { values, extensions };
}

/** A parsed client-first-message. */
export interface ClientFirst {
  /** The GS2 header (channel-binding flag and authzid). */
  readonly gs2: Gs2Header;
  /** client-first-message-bare, as sent (part of AuthMessage). */
  readonly bare: string;
  /** The unescaped user name, before SASLprep. */
  readonly username: string;
  /** The client nonce. */
  readonly nonce: string;
}

/** Parses `gs2-header client-first-message-bare`. */
export function parseClientFirst(message: string): ClientFirst | undefined {
  const gs2 = parseGs2Header(message);
  if (gs2 === undefined) return undefined;
  const a = attributes(gs2.rest, ['n', 'r']);
  if (a === undefined) return undefined;
  const [name = '', nonce = ''] = a.values;
  const username = unescapeSaslname(name);
  if (username === undefined || !NONCE.test(nonce)) return undefined;
  return { gs2, bare: gs2.rest, username, nonce };
}

/** A parsed server-first-message. */
export interface ServerFirst {
  /** The combined nonce (client nonce + server nonce). */
  readonly nonce: string;
  /** The user's salt. */
  readonly salt: Buffer;
  /** The iteration count. */
  readonly iterations: number;
}

/** Parses `r=…,s=…,i=…[,ext]`. */
export function parseServerFirst(message: string): ServerFirst | undefined {
  const a = attributes(message, ['r', 's', 'i']);
  if (a === undefined) return undefined;
  const [nonce = '', salt64 = '', iter = ''] = a.values;
  const salt = decodeBase64(salt64);
  if (!NONCE.test(nonce) || salt === undefined || salt.length === 0 || !POSITIVE.test(iter)) return undefined;
  const iterations = Number(iter);
  if (!Number.isSafeInteger(iterations)) return undefined;
  return { nonce, salt, iterations };
}

/** A parsed client-final-message. */
export interface ClientFinal {
  /** The decoded `c=` value: GS2 header followed by channel-binding data. */
  readonly channelBinding: Buffer;
  /** The combined nonce. */
  readonly nonce: string;
  /** client-final-message-without-proof, as sent (part of AuthMessage). */
  readonly withoutProof: string;
  /** The decoded ClientProof. */
  readonly proof: Buffer;
}

/** Parses `c=…,r=…[,ext],p=…`; the proof must come last. */
export function parseClientFinal(message: string): ClientFinal | undefined {
  const cut = message.lastIndexOf(',p=');
  if (cut < 0) return undefined;
  const withoutProof = message.slice(0, cut);
  const proof = decodeBase64(message.slice(cut + 3));
  const a = attributes(withoutProof, ['c', 'r']);
  if (a === undefined || proof === undefined || proof.length === 0) return undefined;
  const [cb64 = '', nonce = ''] = a.values;
  const channelBinding = decodeBase64(cb64);
  if (channelBinding === undefined || channelBinding.length === 0 || !NONCE.test(nonce)) return undefined;
  return { channelBinding, nonce, withoutProof, proof };
}

/** A parsed server-final-message: the verifier, or a server error. */
export type ServerFinal = { readonly verifier: Buffer } | { readonly error: string };

/** Parses `v=…[,ext]` or `e=…[,ext]`. */
export function parseServerFinal(message: string): ServerFinal | undefined {
  if (message.startsWith('e=')) {
    const a = attributes(message, ['e']);
    const [error = ''] = a?.values ?? [];
    // server-error-value = "invalid-encoding" / … / server-error-value-ext (RFC 5802 §7).
    return a !== undefined && /^[\x21-\x2B\x2D-\x7E]{1,64}$/.test(error) ? { error } : undefined;
  }
  const a = attributes(message, ['v']);
  if (a === undefined) return undefined;
  const verifier = decodeBase64(a.values[0] ?? '');
  return verifier === undefined || verifier.length === 0 ? undefined : { verifier };
}
