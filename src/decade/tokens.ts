/**
 * DECADE tokens (draft-ietf-decade-arch-03 §5.4, §6.1.2): the owner of a
 * storage account grants access to its resources by signing a token, which
 * any holder presents with each operation. A token is a JWS (RFC 7515) in
 * compact form over a JWT claims set (RFC 7519), signed with the account's
 * Ed25519 key (EdDSA, RFC 8037), `typ` `decade+jwt`:
 *
 * | claim | meaning |
 * |---|---|
 * | `iss` | the account (the server holds its public key) |
 * | `jti` | unique id: the byte budget and single use are kept per id |
 * | `exp` | expiry (seconds since the epoch) |
 * | `ops` | operations permitted: `put`, `get`, `stat`, `rm` |
 * | `objs` | objects: names, or name prefixes ending in `*`; absent = every object of the account |
 * | `clients` | client addresses (IP or CIDR) or `id:NAME` (SASL identity); absent = anyone holding it |
 * | `bw` | bandwidth weight 1–64 (the BEEP channel weight of its transfers) |
 * | `budget` | octets it may move, all operations together |
 * | `once` | single use: a second operation with it is refused (replay) |
 *
 * The server checks signature and scope on every operation. A token is a
 * bearer secret: no message, error or log line of this module carries one.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { SignJWT, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import { DecadeError } from './errors.js';
import { parseName } from './names.js';

/** JOSE `typ` of a DECADE token (RFC 8725 §3.11: explicit typing). */
export const TOKEN_TYPE = 'decade+jwt';

/** Longest token accepted, in characters. */
export const MAX_TOKEN_LENGTH = 8192;

/** Operations a token can permit. */
export const OPERATIONS = ['put', 'get', 'stat', 'rm'] as const;

/** One operation. */
export type Operation = (typeof OPERATIONS)[number];

/** Highest bandwidth weight (the BEEP scheduler's channel weight range). */
export const MAX_WEIGHT = 64;

/** What a token grants, as its owner writes it. */
export interface TokenGrant {
  /** The account that signs (`iss`). */
  account: string;
  /** Operations permitted. */
  operations: readonly Operation[];
  /** Object names, or prefixes ending in `*`; omitted: every object of the account. */
  objects?: readonly string[];
  /** Client addresses (IP or CIDR) or `id:NAME`; omitted: any holder. */
  clients?: readonly string[];
  /** Seconds from now until it expires (default 3600). */
  expiresIn?: number;
  /** Bandwidth weight 1–64 (default 1). */
  weight?: number;
  /** Octets it may move in all (default unlimited). */
  budget?: number;
  /** Single use. */
  once?: boolean;
  /** Unique id (default 128 random bits, base64url). */
  id?: string;
}

/** A verified token: what the server enforces. */
export interface TokenScope {
  readonly account: string;
  readonly id: string;
  /** Expiry, seconds since the epoch. */
  readonly expires: number;
  readonly operations: ReadonlySet<Operation>;
  /** Exact names (canonical) and prefixes; null: every object. */
  readonly objects: { readonly names: ReadonlySet<string>; readonly prefixes: readonly string[] } | null;
  /** null: any client. */
  readonly clients: { readonly addresses: BlockList; readonly identities: ReadonlySet<string> } | null;
  readonly weight: number;
  /** Octets in all; null: unlimited. */
  readonly budget: number | null;
  readonly once: boolean;
}

/** An Ed25519 key pair for an account, as JWKs (the private one is a secret). */
export interface AccountKeyPair {
  /** The private key (JWK with `d`); keep it secret. */
  privateJwk: JsonWebKey;
  /** The public key (JWK) the server is configured with. */
  publicJwk: JsonWebKey;
}

/** Make a new Ed25519 key pair for an account. */
export function generateAccountKey(): AccountKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateJwk: privateKey.export({ format: 'jwk' }), publicJwk: publicKey.export({ format: 'jwk' }) };
}

/** Import an Ed25519 public key from a JWK or PEM; throws `BAD_REQUEST` for anything else. */
export function importPublicKey(key: JsonWebKey | string | KeyObject): KeyObject {
  try {
    const k = typeof key === 'string' ? createPublicKey(key) : 'type' in key && typeof (key as KeyObject).asymmetricKeyType === 'string' ? (key as KeyObject) : createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
    if (k.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    return k.type === 'private' ? createPublicKey(k) : k;
  } catch (cause) {
    throw new DecadeError('BAD_REQUEST', 'an account key must be an Ed25519 public key (JWK or PEM)', { cause });
  }
}

/** Import an Ed25519 private key from a JWK or PEM; throws `BAD_REQUEST` for anything else (never quoting it). */
export function importPrivateKey(key: JsonWebKey | string): KeyObject {
  try {
    const k = typeof key === 'string' ? createPrivateKey(key) : createPrivateKey({ key: key as JsonWebKey, format: 'jwk' });
    if (k.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    return k;
  } catch {
    throw new DecadeError('BAD_REQUEST', 'a signing key must be an Ed25519 private key (JWK or PEM)');
  }
}

const ACCOUNT = /^[A-Za-z0-9._@-]{1,128}$/;
const JTI = /^[A-Za-z0-9._~-]{8,128}$/;

/** True for a valid account id: 1–128 of letters, digits, `.`, `_`, `@`, `-`. */
export function isAccountId(s: unknown): s is string {
  return typeof s === 'string' && ACCOUNT.test(s);
}

/** Sign a token granting `grant`, with the account's private key. */
export async function createToken(grant: TokenGrant, privateKey: KeyObject | JsonWebKey | string, now = Date.now()): Promise<string> {
  const key = typeof privateKey === 'object' && 'asymmetricKeyType' in privateKey ? (privateKey as KeyObject) : importPrivateKey(privateKey as JsonWebKey | string);
  const claims = grantClaims(grant);
  const iat = Math.floor(now / 1000);
  const exp = iat + (grant.expiresIn ?? 3600);
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: TOKEN_TYPE })
    .setIssuer(grant.account)
    .setJti(grant.id ?? randomBytes(16).toString('base64url'))
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key);
}

function grantClaims(g: TokenGrant): Record<string, unknown> {
  if (!isAccountId(g.account)) throw new DecadeError('BAD_REQUEST', 'account must be 1-128 of letters, digits, ".", "_", "@", "-"');
  if (g.id !== undefined && !JTI.test(g.id)) throw new DecadeError('BAD_REQUEST', 'token id must be 8-128 URL-safe characters');
  if (g.expiresIn !== undefined && !(Number.isSafeInteger(g.expiresIn) && g.expiresIn > -1e9 && g.expiresIn <= 10 * 365 * 86400)) {
    throw new DecadeError('BAD_REQUEST', 'expiresIn must be a whole number of seconds, at most ten years');
  }
  const out: Record<string, unknown> = { ops: checkOps(g.operations) };
  if (g.objects !== undefined) out.objs = checkObjects(g.objects);
  if (g.clients !== undefined) {
    checkClients(g.clients);
    out.clients = [...g.clients];
  }
  if (g.weight !== undefined) out.bw = checkWeight(g.weight);
  if (g.budget !== undefined) out.budget = checkBudget(g.budget);
  if (g.once) out.once = true;
  return out;
}

function bad(message: string): DecadeError {
  return new DecadeError('TOKEN_INVALID', message);
}

function checkOps(ops: unknown): Operation[] {
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > OPERATIONS.length) throw bad('ops must list one or more of put, get, stat, rm');
  for (const o of ops) if (!(OPERATIONS as readonly string[]).includes(o as string)) throw bad('ops must list one or more of put, get, stat, rm');
  return [...new Set(ops as Operation[])];
}

function checkObjects(objs: unknown): string[] {
  if (!Array.isArray(objs) || objs.length > 1024) throw bad('objs must be a list of at most 1024 names or prefixes');
  return objs.map((o) => {
    if (typeof o !== 'string') throw bad('objs must hold strings');
    if (o.endsWith('*')) {
      if (!o.startsWith('ni:///sha-256;') || o.length > 58) throw bad('an object prefix must start with ni:///sha-256; and end in *');
      return o;
    }
    return parseName(o).name;
  });
}

function checkClients(clients: unknown): { addresses: BlockList; identities: Set<string> } {
  if (!Array.isArray(clients) || clients.length > 1024) throw bad('clients must be a list of at most 1024 entries');
  const addresses = new BlockList();
  const identities = new Set<string>();
  for (const c of clients) {
    if (typeof c !== 'string' || c.length > 256) throw bad('clients must hold strings');
    if (c.startsWith('id:') && c.length > 3) {
      identities.add(c.slice(3));
      continue;
    }
    const slash = c.indexOf('/');
    const addr = slash < 0 ? c : c.slice(0, slash);
    const family = isIP(addr);
    if (family === 0) throw bad('a client is an IP address, a CIDR prefix or id:NAME');
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) addresses.addAddress(addr, type);
    else {
      const bits = Number(c.slice(slash + 1));
      if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || !/^\d+$/.test(c.slice(slash + 1))) throw bad('a client CIDR prefix length is out of range');
      addresses.addSubnet(addr, bits, type);
    }
  }
  return { addresses, identities };
}

function checkWeight(w: unknown): number {
  if (!Number.isInteger(w) || (w as number) < 1 || (w as number) > MAX_WEIGHT) throw bad(`bw must be a whole number from 1 to ${MAX_WEIGHT}`);
  return w as number;
}

function checkBudget(b: unknown): number {
  if (!Number.isSafeInteger(b) || (b as number) < 0) throw bad('budget must be a whole number of octets');
  return b as number;
}

/** Options of {@link verifyToken}. */
export interface VerifyOptions {
  /** The public key of an account, or undefined for an unknown account. */
  keyOf(account: string): KeyObject | undefined;
  /** The time to check expiry against (default now). */
  now?: number;
  /**
   * Tokens already verified with the same `keyOf` (a server's own cache): a
   * token found there skips the signature check; its expiry (and `nbf`) are
   * checked against `now` every time. Only successful verifications are kept.
   */
  cache?: VerifiedTokens;
}

/** Entries a {@link VerifiedTokens} holds by default. */
export const VERIFIED_TOKENS_DEFAULT = 1024;

/**
 * A bounded cache of tokens whose signature and claims verified (least
 * recently used dropped first), keyed by the token's exact text: the same
 * octets under the same keys verify the same way, so a token seen before
 * need not pay for its EdDSA verification again (a relay and its origin see
 * the same token on every fetch; a client makes several operations with one
 * token). What it holds is only what the signature vouches for — the scope;
 * expiry and `nbf` are checked on every lookup, and whatever an operation
 * changes (byte budget, single use, the scope's fit to the operation) is
 * checked per operation as without it. A cache belongs to one set of
 * account keys: {@link DecadeServer} keeps one per server (its keys do not
 * change). Tokens are secrets: the cache lives in memory only.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, { scope: TokenScope; nbf: number | undefined }>();
  /** Lookups answered from the cache (for tests and metrics). */
  hits = 0;

  /** @param max most tokens held (default {@link VERIFIED_TOKENS_DEFAULT}); 0 holds none. */
  constructor(readonly max = VERIFIED_TOKENS_DEFAULT) {
    if (!(Number.isSafeInteger(max) && max >= 0)) throw new RangeError('max must be a whole number ≥ 0');
  }

  /** Tokens held. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The scope of `token` if it verified before and is still within its
   * validity at `now` (ms); undefined if not held. Throws `TOKEN_EXPIRED` (and
   * forgets it) past its expiry, `TOKEN_INVALID` before its `nbf` — as a full
   * verification would.
   */
  lookup(token: string, now: number): TokenScope | undefined {
    const e = this.entries.get(token);
    if (e === undefined) return undefined;
    // As jose does: whole seconds, expired when exp <= now, early when nbf > now.
    const secs = Math.floor(now / 1000);
    if (e.scope.expires <= secs) {
      this.entries.delete(token);
      throw new DecadeError('TOKEN_EXPIRED', 'the token has expired');
    }
    if (e.nbf !== undefined && e.nbf > secs) throw bad('the token signature or claims do not verify');
    // Most recently used last.
    this.entries.delete(token);
    this.entries.set(token, e);
    this.hits++;
    return e.scope;
  }

  /** Remember a token that verified. */
  remember(token: string, scope: TokenScope, nbf: number | undefined): void {
    if (this.max === 0) return;
    this.entries.delete(token);
    this.entries.set(token, { scope, nbf });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** Forget every token. */
  clear(): void {
    this.entries.clear();
  }
}

/**
 * Verify a token's signature, type, expiry and claims, and return its scope.
 * Throws {@link DecadeError}: `TOKEN_EXPIRED` past `exp`, `TOKEN_INVALID` for
 * anything else wrong (not a compact JWS, unknown account, bad signature,
 * another algorithm or type, malformed claims). Messages never contain the token.
 */
export async function verifyToken(token: string, options: VerifyOptions): Promise<TokenScope> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw bad('the token is not a signed DECADE token');
  }
  const cache = options.cache;
  if (cache !== undefined) {
    const hit = cache.lookup(token, options.now ?? Date.now());
    if (hit !== undefined) return hit;
  }
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    throw bad('the token is not a signed DECADE token');
  }
  const key = isAccountId(iss) ? options.keyOf(iss) : undefined;
  if (key === undefined) throw bad('the token names no account of this server');
  let payload: Record<string, unknown>;
  try {
    const r = await jwtVerify(token, key, {
      algorithms: ['EdDSA'],
      typ: TOKEN_TYPE,
      issuer: iss as string,
      requiredClaims: ['jti', 'exp', 'ops'],
      currentDate: new Date(options.now ?? Date.now()),
    });
    payload = r.payload as Record<string, unknown>;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new DecadeError('TOKEN_EXPIRED', 'the token has expired');
    throw bad('the token signature or claims do not verify');
  }
  if (typeof payload.jti !== 'string' || !JTI.test(payload.jti)) throw bad('jti must be 8-128 URL-safe characters');
  if (typeof payload.exp !== 'number') throw bad('exp is required');
  const objs = payload.objs === undefined ? null : checkObjects(payload.objs);
  const scope: TokenScope = Object.freeze({
    account: iss as string,
    id: payload.jti,
    expires: payload.exp,
    operations: new Set(checkOps(payload.ops)),
    objects: objs === null ? null : { names: new Set(objs.filter((o) => !o.endsWith('*'))), prefixes: objs.filter((o) => o.endsWith('*')).map((o) => o.slice(0, -1)) },
    clients: payload.clients === undefined ? null : checkClients(payload.clients),
    weight: payload.bw === undefined ? 1 : checkWeight(payload.bw),
    budget: payload.budget === undefined ? null : checkBudget(payload.budget),
    once: payload.once === undefined ? false : payload.once === true ? true : payload.once === false ? false : (() => { throw bad('once must be a boolean'); })(),
  });
  cache?.remember(token, scope, typeof payload.nbf === 'number' ? payload.nbf : undefined);
  return scope;
}

/** Who is asking: the client's address and, if authenticated, its SASL identity. */
export interface ClientInfo {
  /** IP address of the peer (no port). */
  address: string | undefined;
  /** SASL authorization identity, if the session is authenticated. */
  identity: string | undefined;
}

/**
 * Check that a verified token permits `operation` on `name` (omit for an
 * operation on the account, `stat` of every object) by `client`. Throws
 * `TOKEN_OPERATION`, `TOKEN_OBJECT` or `TOKEN_CLIENT`.
 */
export function checkScope(scope: TokenScope, operation: Operation, name: string | undefined, client: ClientInfo): void {
  if (!scope.operations.has(operation)) throw new DecadeError('TOKEN_OPERATION', `the token does not permit ${operation}`);
  if (scope.objects !== null) {
    const ok = name !== undefined && (scope.objects.names.has(name) || scope.objects.prefixes.some((p) => name.startsWith(p)));
    if (!ok) throw new DecadeError('TOKEN_OBJECT', name === undefined ? `the token is limited to certain objects; ${operation} of the whole account is not permitted` : 'the token does not cover this object');
  }
  if (scope.clients !== null) {
    const c = scope.clients;
    const byId = client.identity !== undefined && c.identities.has(client.identity);
    const family = client.address === undefined ? 0 : isIP(client.address);
    const byAddress = family !== 0 && c.addresses.check(client.address as string, family === 4 ? 'ipv4' : 'ipv6');
    if (!byId && !byAddress) throw new DecadeError('TOKEN_CLIENT', 'the token is not valid for this client');
  }
}

/**
 * The bandwidth weight a token asks for (`bw`, 1 when absent or invalid), read
 * without verifying it: for a client weighting its own sending (PUT). The
 * server never trusts this; it verifies the token first.
 */
export function tokenWeight(token: string): number {
  try {
    const bw = decodeJwt(token).bw;
    return Number.isInteger(bw) && (bw as number) >= 1 && (bw as number) <= MAX_WEIGHT ? (bw as number) : 1;
  } catch {
    return 1;
  }
}

/** Replace every token-looking string (three base64url parts joined by dots) in `text` with `[token]`. */
export function redactTokens(text: string): string {
  return text.replace(/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, '[token]');
}
