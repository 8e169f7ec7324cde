/**
 * The GS2 header (RFC 5801 §4) shared by SCRAM (RFC 5802 §7) and OAUTHBEARER
 * (RFC 7628 §3.1), and the `saslname` escaping of `,` and `=`.
 *
 * @module
 */

/** The channel-binding flag of a GS2 header. */
export type Gs2ChannelBinding =
  /** `n`: the client does not support channel binding. */
  | { readonly flag: 'n' }
  /** `y`: the client supports it but thinks the server does not. */
  | { readonly flag: 'y' }
  /** `p=<cb-name>`: the client requires channel binding of this type. */
  | { readonly flag: 'p'; readonly name: string };

/** A parsed GS2 header. */
export interface Gs2Header {
  /** The channel-binding flag. */
  readonly cbind: Gs2ChannelBinding;
  /** The unescaped authorization identity, if the client gave one. */
  readonly authzid?: string;
  /** The header exactly as sent, both commas included (SCRAM echoes it in `c=`). */
  readonly raw: string;
  /** What follows the header. */
  readonly rest: string;
}

/**
 * Escapes a name for a `saslname` (RFC 5802 §5.1): `=` becomes `=3D` and `,`
 * becomes `=2C`.
 */
export function escapeSaslname(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/**
 * Reverses {@link escapeSaslname}; `undefined` if `s` is not a valid `saslname`
 * (an `=` not followed by `2C` or `3D`, a raw `,`, a NUL, or empty).
 */
export function unescapeSaslname(s: string): string | undefined {
  if (s.length === 0 || s.includes(',') || s.includes('\0')) return undefined;
  if (/=(?!2C|3D)/.test(s)) return undefined;
  return s.replace(/=2C|=3D/g, (m) => (m === '=2C' ? ',' : '='));
}

/** cb-name = 1*(ALPHA / DIGIT / "." / "-") (RFC 5802 §7). */
const CB_NAME = /^[A-Za-z0-9.-]+$/;

/**
 * Parses the GS2 header at the start of `message`; `undefined` if it is malformed.
 * `gs2-header = gs2-cbind-flag "," [ authzid ] ","`, with
 * `authzid = "a=" saslname` (RFC 5801 §4). The non-standard `F,` prefix is refused.
 */
export function parseGs2Header(message: string): Gs2Header | undefined {
  const first = message.indexOf(',');
  if (first < 0) return undefined;
  const second = message.indexOf(',', first + 1);
  if (second < 0) return undefined;
  const flag = message.slice(0, first);
  const az = message.slice(first + 1, second);
  let cbind: Gs2ChannelBinding;
  if (flag === 'n' || flag === 'y') cbind = { flag };
  else if (flag.startsWith('p=') && CB_NAME.test(flag.slice(2))) cbind = { flag: 'p', name: flag.slice(2) };
  else return undefined;
  let authzid: string | undefined;
  if (az.length > 0) {
    if (!az.startsWith('a=')) return undefined;
    authzid = unescapeSaslname(az.slice(2));
    if (authzid === undefined) return undefined;
  }
  const raw = message.slice(0, second + 1);
  const rest = message.slice(second + 1);
  return authzid === undefined ? { cbind, raw, rest } : { cbind, authzid, raw, rest };
}

/** Builds a GS2 header from a flag and an optional authorization identity. */
export function buildGs2Header(cbind: Gs2ChannelBinding, authzid?: string): string {
  const flag = cbind.flag === 'p' ? `p=${cbind.name}` : cbind.flag;
  return `${flag},${authzid === undefined || authzid === '' ? '' : `a=${escapeSaslname(authzid)}`},`;
}
