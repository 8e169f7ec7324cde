/**
 * TLS and SASL for the CLI: the listener's tuning profiles built from its
 * options, and the client's tuning steps.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { ChannelProfile, Session } from '../channels/index.js';
import { tlsProfile, startTls, TLS_URI, type TlsClientOptions, saslProfiles, authenticate, saslUri, SASL_URI_PREFIX, AuthFailureLimiter, anonymousClient, anonymousServer, externalClient, externalServer, jwksValidator, loadUsersFile, oauthBearerClient, oauthBearerServer, plainClient, plainServer, scramSha256Client, scramSha256Server, type SaslClientMechanismFactory, type SaslServerMechanismFactory } from '../profiles/index.js';
import { UsageError } from './address.js';
import { parseHexKey, readPemFile, readPskFile, readSecret } from './secrets.js';

/** Security options of `listen`. */
export interface ListenSecurityOptions {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsPskFile?: string;
  requireTls?: boolean;
  saslUsers?: string;
  allowAnonymous?: boolean;
  jwks?: string;
  issuer?: string;
  audience?: string;
  /** How each option was given, for messages (a flag, a variable or a config key; default the flag). */
  nameOf?: (attr: string) => string;
}

/** The tuning profiles a listener serves, from its options (validated). */
export async function listenerTuning(o: ListenSecurityOptions): Promise<{ profiles: ChannelProfile[]; requireTls: boolean; summary: string[] }> {
  const profiles: ChannelProfile[] = [];
  const summary: string[] = [];
  const n = o.nameOf ?? ((attr: string): string => `--${attr.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (o.tlsCa !== undefined && o.tlsCert === undefined) throw new UsageError('--tls-ca needs --tls-cert and --tls-key');
  const psk = o.tlsPskFile === undefined ? undefined : readPskFile(n('tlsPskFile'), o.tlsPskFile);
  const tlsOn = o.tlsCert !== undefined || psk !== undefined;
  if (o.requireTls && !tlsOn) throw new UsageError('--require-tls needs --tls-cert/--tls-key or --tls-psk-file');
  if (tlsOn) {
    profiles.push(
      tlsProfile({
        ...(o.tlsCert !== undefined ? { cert: readPemFile(n('tlsCert'), o.tlsCert, 'certificate'), key: readPemFile(n('tlsKey'), o.tlsKey as string, 'key') } : {}),
        ...(o.tlsCa !== undefined ? { ca: readPemFile(n('tlsCa'), o.tlsCa, 'certificate'), clientCertOptional: true } : {}),
        ...(psk ? { psk: (id: string) => psk.get(id) ?? null } : {}),
      }),
    );
    summary.push(`tls${o.tlsCert ? ' certificate' : ''}${psk ? ` psk (${psk.size} identities)` : ''}${o.requireTls ? ' required' : ''}`);
  }
  const mechanisms: SaslServerMechanismFactory[] = [];
  if (o.saslUsers !== undefined) {
    let store;
    try {
      store = await loadUsersFile(o.saslUsers);
    } catch (err) {
      throw new UsageError(`${n('saslUsers')}: ${(err as Error).message}`);
    }
    mechanisms.push(scramSha256Server({ store }), plainServer({ store }));
  }
  if (o.tlsCa !== undefined) mechanisms.push(externalServer());
  if (o.jwks !== undefined) {
    if (!o.issuer || !o.audience) throw new UsageError('--jwks needs --issuer and --audience');
    mechanisms.push(oauthBearerServer({ validateToken: jwksValidator({ jwks: o.jwks, issuer: o.issuer, audience: o.audience }) }));
  } else if (o.issuer !== undefined || o.audience !== undefined) {
    throw new UsageError('--issuer and --audience go with --jwks');
  }
  if (o.allowAnonymous) mechanisms.push(anonymousServer({ enabled: true }));
  if (mechanisms.length > 0) {
    profiles.push(...saslProfiles({ mechanisms, limiter: new AuthFailureLimiter() }));
    summary.push(`sasl ${mechanisms.map((m) => m.name).join(' ')}`);
  }
  return { profiles, requireTls: o.requireTls === true, summary };
}

/** Security options of `connect`. */
export interface ConnectSecurityOptions {
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  serverName?: string;
  pskIdentity?: string;
  pskKey?: string;
  sasl?: string;
  user?: string;
  password?: string;
  token?: string;
  authzid?: string;
}

const MECHS = ['SCRAM-SHA-256', 'PLAIN', 'ANONYMOUS', 'EXTERNAL', 'OAUTHBEARER'];

/** Validate the client's security options before connecting; returns the tuning to run. */
export function clientTuning(o: ConnectSecurityOptions): (session: Session, out: (line: string) => void) => Promise<void> {
  if ((o.pskIdentity === undefined) !== (o.pskKey === undefined)) throw new UsageError('--psk-identity and --psk-key go together');
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const wantTls = o.tls === true || o.pskIdentity !== undefined || o.tlsCa !== undefined || o.tlsCert !== undefined;
  let tlsOptions: TlsClientOptions | null = null;
  if (wantTls) {
    tlsOptions = {
      ...(o.tlsCa !== undefined ? { ca: readPemFile('--tls-ca', o.tlsCa, 'certificate') } : {}),
      ...(o.tlsCert !== undefined ? { cert: readPemFile('--tls-cert', o.tlsCert, 'certificate'), key: readPemFile('--tls-key', o.tlsKey as string, 'key') } : {}),
      ...(o.serverName !== undefined ? { serverName: o.serverName } : {}),
      ...(o.pskIdentity !== undefined ? { psk: { identity: o.pskIdentity, key: parseHexKey('--psk-key', readSecret('--psk-key', o.pskKey as string)) } } : {}),
    };
  }
  let mech: SaslClientMechanismFactory | null = null;
  if (o.sasl !== undefined) {
    const name = o.sasl.toUpperCase();
    if (!MECHS.includes(name)) throw new UsageError(`--sasl: expected one of ${MECHS.join(', ')}`);
    const authz = o.authzid === undefined ? {} : { authzid: o.authzid };
    const needUser = (): { username: string; password: string } => {
      if (o.user === undefined || o.password === undefined) throw new UsageError(`--sasl ${name} needs --user and --password`);
      return { username: o.user, password: readSecret('--password', o.password) };
    };
    switch (name) {
      case 'SCRAM-SHA-256':
        mech = scramSha256Client({ ...needUser(), ...authz });
        break;
      case 'PLAIN':
        mech = plainClient({ ...needUser(), ...authz });
        break;
      case 'ANONYMOUS':
        mech = anonymousClient(o.user === undefined ? {} : { trace: o.user });
        break;
      case 'EXTERNAL':
        mech = externalClient(authz);
        break;
      case 'OAUTHBEARER': {
        if (o.token === undefined) throw new UsageError('--sasl OAUTHBEARER needs --token');
        mech = oauthBearerClient({ token: readSecret('--token', o.token), ...authz });
        break;
      }
    }
  } else if (o.user !== undefined || o.password !== undefined || o.token !== undefined) {
    throw new UsageError('--user, --password and --token go with --sasl');
  }
  return async (session, out) => {
    if (tlsOptions) {
      requireOffered(session, TLS_URI, 'TLS');
      await startTls(session, tlsOptions);
      const s = session.handle.security;
      out(`tls: ${s.protocol ?? '?'} ${s.cipher ?? '?'}${s.pskIdentity ? ` psk ${s.pskIdentity}` : ''}`);
      out('greeting:');
      for (const p of session.peerProfiles) out(`  profile ${p}`);
    }
    if (mech) {
      requireOffered(session, saslUri(mech.name), `SASL ${mech.name}`);
      await authenticate(session, mech);
      out(`authenticated with ${mech.name}${o.user && mech.name !== 'ANONYMOUS' ? ` as ${o.user}` : ''}`);
    }
  };
}

/**
 * Fail clearly when the listener's greeting does not offer a tuning profile
 * we are about to start (the start would only say `550 all requested
 * profiles are unsupported`).
 */
export function requireOffered(session: Session, uri: string, what: string): void {
  if (session.peerProfiles.includes(uri)) return;
  const sasl = session.peerProfiles.filter((p) => p.startsWith(SASL_URI_PREFIX)).map((p) => p.slice(SASL_URI_PREFIX.length));
  const offered = what.startsWith('SASL') ? (sasl.length ? ` (it offers SASL ${sasl.join(', ')})` : ' (it offers no SASL mechanism)') : '';
  throw new UsageError(`the listener does not offer ${what}: its greeting lists no ${uri}${offered}`);
}

/**
 * Read a password for `users add`: from a secret spec; on a terminal, after a
 * prompt on standard error, twice, without echo; else all of standard input
 * (one trailing newline dropped), with nothing printed.
 */
export async function readPasswordInput(spec: string | undefined, prompt = 'password: '): Promise<string> {
  if (spec !== undefined) return readSecret('--password', spec);
  if (process.stdin.isTTY) {
    const pw = await readHidden(prompt);
    if (pw === '') throw new UsageError('empty password');
    const again = await readHidden('again: ');
    if (again !== pw) throw new UsageError('the passwords differ');
    return pw;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (pw === '') throw new UsageError('no password on standard input (or give --password env:NAME / file:PATH)');
  return pw;
}

/**
 * Read one line from the terminal with echo off (raw mode), after `prompt` on standard error.
 * Echo goes off before the prompt shows: whatever is typed once the prompt is visible is
 * never echoed, however fast it comes.
 */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err: Error | null): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new UsageError('interrupted'));
        if (ch === '\u0004') return done(text === '' ? new UsageError('no password given') : null);
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else if (ch >= ' ') text += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}
