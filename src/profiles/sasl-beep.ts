/**
 * The SASL family of profiles, `http://iana.org/beep/SASL/<MECHANISM>`
 * (RFC 3080 §4.1), over the transport-independent mechanisms of
 * `./sasl/`: `<blob>` exchanges carrying base64, the initial response
 * piggybacked on the start, further rounds as MSG/RPY, success as
 * `<blob status='complete'>`, failure as ERR `<error>` (or, on the start, a
 * positive reply carrying `<error>`) — both accepted when receiving.
 *
 * On success the session gets its one authenticated identity
 * (`core.identity`), visible to every profile. No SASL security layer is
 * negotiated, so there is no tuning reset.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { BeepError, BeepReplyError, ErrorCodes } from '../errors.js';
import { BEEP_XML } from '../framing/index.js';
import { MgmtSyntaxError, mgmtXml, type Session, type SessionHandle, type TuningContext, type ChannelProfile, diagnostics, type AuthEvent } from '../channels/index.js';
import { escapeText, parseXml, xmlErrorOf } from '../xml/index.js';
import { defineProfile } from './define.js';
import type { AuthFailureLimiter } from './sasl/limiter.js';
import type { SaslClientMechanismFactory, SaslContext, SaslIdentity, SaslServerMechanism, SaslServerMechanismFactory, SaslServerStep } from './sasl/types.js';

/** URI prefix of the SASL profiles (RFC 3080 §4.1.1). */
export const SASL_URI_PREFIX = 'http://iana.org/beep/SASL/';

/** The profile URI of a mechanism. */
export function saslUri(mechanism: string): string {
  return SASL_URI_PREFIX + mechanism;
}

/** A parsed SASL profile element (RFC 3080 §7.3). */
export type SaslElement =
  | { kind: 'blob'; status: 'continue' | 'complete' | 'abort'; data: Buffer }
  | { kind: 'error'; code: number; diagnostic: string };

/** Build a `<blob>`; the content is always base64 (RFC 3080 §4.1.2). */
export function buildBlob(data: Uint8Array | undefined, status?: 'continue' | 'complete' | 'abort'): string {
  const st = status === undefined || status === 'continue' ? '' : ` status='${status}'`;
  if (data === undefined || data.length === 0) return `<blob${st} />`;
  return `<blob${st}>${Buffer.from(data).toString('base64')}</blob>`;
}

/** Largest SASL profile element accepted, in octets. */
const MAX_SASL_ELEMENT = 65536;

/**
 * Parse a `<blob>` or `<error>` (RFC 3080 §7.3) with the one safe XML reader
 * (`src/xml/`). Throws {@link MgmtSyntaxError} (500 malformed, 501 bad status,
 * not base64, unexpected element).
 */
export function parseSaslElement(content: Uint8Array | string): SaslElement {
  const el = mgmtXml(() => parseXml(content, { maxBytes: MAX_SASL_ELEMENT }));
  if (el.name === 'blob') {
    const status = (el.attrs.get('status') ?? 'continue').trim();
    if (status !== 'continue' && status !== 'complete' && status !== 'abort') throw new MgmtSyntaxError(501, 'bad blob status');
    if (el.children.length > 0) throw new MgmtSyntaxError(501, 'a blob holds base64 text, not elements');
    const b64 = el.text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new MgmtSyntaxError(501, 'blob is not base64');
    return { kind: 'blob', status, data: Buffer.from(b64, 'base64') };
  }
  if (el.name === 'error') {
    const code = Number(el.attrs.get('code'));
    return { kind: 'error', code: Number.isInteger(code) ? code : 0, diagnostic: el.text.trim() };
  }
  throw new MgmtSyntaxError(501, `unexpected element <${el.name.slice(0, 32)}>`);
}

/** The tuning context a tuning profile is always given. */
function tuningFrom(t: TuningContext | undefined): TuningContext {
  if (!t) throw new BeepError(ErrorCodes.INVALID_STATE, 'a SASL profile must be a tuning profile');
  return t;
}

function errorXml(code: number, reason: string): string {
  return `<error code='${code}'>${escapeText(reason)}</error>`;
}

function contextOf(session: SessionHandle, advertised: readonly string[]): SaslContext {
  const address = session.transport?.remoteAddress;
  return {
    tls: session.security.tls,
    ...(session.security.peerCertificate ? { tlsPeerCertificate: session.security.peerCertificate } : {}),
    advertisedMechanisms: advertised,
    ...(address ? { remoteAddress: address } : {}),
  };
}

/** Publish `beepstream:auth` (server side) if anyone listens: mechanism, outcome, identity or code and reason; never credentials. */
function publishAuth(session: SessionHandle, mechanism: string, outcome: { identity: string } | { code: number; reason: string }): void {
  if (!diagnostics.auth.hasSubscribers) return;
  const remote = session.remote;
  const e: AuthEvent = 'identity' in outcome
    ? { sessionId: session.id, mechanism, outcome: 'success', identity: outcome.identity }
    : { sessionId: session.id, mechanism, outcome: 'failure', code: outcome.code, reason: outcome.reason };
  diagnostics.auth.publish(remote ? { ...e, remote } : e);
}

/** Options of the server side of the SASL profiles. */
export interface SaslServerOptions {
  /** The mechanisms offered, in order of preference. */
  mechanisms: readonly SaslServerMechanismFactory[];
  /** Counts failures per session and address; past its limits attempts fail with 454. */
  limiter?: AuthFailureLimiter;
  /** Called on every outcome (never with secrets), e.g. for logging. */
  onOutcome?: (event: { mechanism: string; success: boolean; code?: number; authcid?: string; remoteAddress?: string }) => void;
}

/**
 * The server-side SASL profiles, one per mechanism. Each is offered while the
 * session has no identity and the mechanism is available (PLAIN only over
 * TLS unless allowed, ANONYMOUS only where enabled).
 */
export function saslProfiles(options: SaslServerOptions): ChannelProfile[] {
  const names = options.mechanisms.map((m) => m.name);
  // One exchange per channel: the mechanism state lives from start to outcome.
  const exchanges = new WeakMap<SessionHandle, Map<number, SaslServerMechanism>>();
  return options.mechanisms.map((factory) => {
    const finish = (tuning: TuningContext, step: SaslServerStep): { xml: string; ok: boolean; code?: number } => {
      const core = tuning.session;
      const ctx = contextOf(core, names);
      if (step.status === 'continue') return { xml: buildBlob(step.challenge), ok: true };
      if (step.status === 'success') {
        const id: SaslIdentity = step.identity;
        try {
          tuning.setIdentity({ authcid: id.authcid, authzid: id.authzid ?? id.authcid, mechanism: id.mechanism });
        } catch {
          options.onOutcome?.({ mechanism: factory.name, success: false, code: 550, ...(ctx.remoteAddress ? { remoteAddress: ctx.remoteAddress } : {}) });
          publishAuth(core, factory.name, { code: 550, reason: 'the session is already authenticated' });
          return { xml: errorXml(550, 'the session is already authenticated'), ok: false, code: 550 };
        }
        options.onOutcome?.({ mechanism: factory.name, success: true, authcid: id.authcid, ...(ctx.remoteAddress ? { remoteAddress: ctx.remoteAddress } : {}) });
        publishAuth(core, factory.name, { identity: id.authcid });
        return { xml: buildBlob(step.additional, 'complete'), ok: true };
      }
      options.onOutcome?.({ mechanism: factory.name, success: false, code: step.code, ...(ctx.remoteAddress ? { remoteAddress: ctx.remoteAddress } : {}) });
      publishAuth(core, factory.name, { code: step.code, reason: step.reason });
      return { xml: errorXml(step.code, step.reason), ok: false, code: step.code };
    };
    const create = (core: SessionHandle): SaslServerMechanism => {
      const ctx = contextOf(core, names);
      const mech = factory.create(ctx);
      return options.limiter ? options.limiter.guard(mech, { session: core, ...(ctx.remoteAddress ? { address: ctx.remoteAddress } : {}) }) : mech;
    };
    return defineProfile({
      uri: saslUri(factory.name),
      tuning: true,
      advertise: (core) => !core.identity && factory.available(contextOf(core, names)),
      async onStart({ number, content, session, tuning }) {
        if (session.identity) return { accept: false, code: 550, diagnostic: 'the session is already authenticated' };
        if (!factory.available(contextOf(session, names))) {
          return session.security.tls ? { accept: false, code: 534, diagnostic: 'mechanism not available' } : { accept: false, code: 538, diagnostic: 'mechanism requires TLS' };
        }
        const mech = create(session);
        let map = exchanges.get(session);
        if (!map) exchanges.set(session, (map = new Map()));
        map.set(number, mech);
        // Absent initial response (no content) and an empty one (<blob/>) are distinct.
        let input: Buffer | undefined;
        if (content !== undefined && content.length > 0) {
          let el: SaslElement;
          try {
            el = parseSaslElement(content);
          } catch (err) {
            return { accept: true, content: errorXml(xmlErrorOf(err)?.replyCode ?? 500, 'malformed blob') };
          }
          if (el.kind !== 'blob' || el.status === 'abort') return { accept: true, content: errorXml(501, 'expected a blob') };
          input = el.data;
        }
        const out = finish(tuningFrom(tuning), await mech.step(input));
        // RFC 3080 §4.1.1: the channel is created; the outcome rides in the reply.
        return { accept: true, content: out.xml };
      },
      async onMessage(msg, res, channel) {
        const mech = exchanges.get(channel.session)?.get(channel.number);
        let el: SaslElement;
        try {
          el = parseSaslElement(await msg.bytes(65536));
        } catch (err) {
          await res.error(xmlErrorOf(err)?.replyCode ?? 500, 'malformed blob');
          return;
        }
        if (!mech || el.kind !== 'blob') {
          await res.error(550, 'no authentication exchange in progress');
          return;
        }
        if (el.status === 'abort') {
          exchanges.get(channel.session)?.delete(channel.number);
          publishAuth(channel.session, factory.name, { code: 535, reason: 'authentication aborted by the client' });
          await res.error(535, 'authentication aborted by the client');
          return;
        }
        const out = finish(tuningFrom(channel.tuning), await mech.step(el.data));
        if (out.ok) await res.reply(out.xml, { contentType: BEEP_XML });
        else await res.error(Buffer.from(out.xml), { contentType: BEEP_XML });
      },
      onClosed(channel) {
        exchanges.get(channel.session)?.delete(channel.number);
      },
    });
  });
}

/**
 * Authenticate the session as the client with one mechanism (RFC 3080 §4.1).
 * Resolves with the identity the server accepted; rejects with
 * {@link BeepReplyError} (`BEEP_ERR_AUTH`, the server's reply code: 535,
 * 534, 538, 454…) on failure, or `BEEP_ERR_AUTH` when the server cannot be
 * verified (e.g. a wrong SCRAM server signature). The SASL channel is closed
 * afterwards either way. Messages never contain the credentials.
 */
export async function authenticate(session: Session, factory: SaslClientMechanismFactory): Promise<{ authcid?: string; mechanism: string }> {
  const security = session.handle.security;
  const ctx: SaslContext = {
    tls: security.tls,
    ...(security.peerCertificate ? { tlsPeerCertificate: security.peerCertificate } : {}),
  };
  if (!factory.available(ctx)) throw new BeepError(ErrorCodes.AUTH, `mechanism ${factory.name} cannot run on this session${ctx.tls ? '' : ' (it needs TLS)'}`);
  const mech = factory.create(ctx);
  const initial = await mech.initial();
  const ch = await session.startChannel(saslUri(factory.name), initial === undefined ? {} : { content: buildBlob(initial) });
  const fail = (code: number, reason: string): BeepReplyError => new BeepReplyError(ErrorCodes.AUTH, code, reason);
  try {
    let el: SaslElement = ch.startContent === undefined || ch.startContent.length === 0 ? { kind: 'blob', status: 'continue', data: Buffer.alloc(0) } : parseSaslElement(ch.startContent);
    for (let round = 0; round < 32; round++) {
      if (el.kind === 'error') throw fail(el.code, el.diagnostic);
      if (el.status === 'complete') {
        const outcome = await mech.finish(el.data.length > 0 ? el.data : undefined);
        if (outcome.status === 'failure') throw new BeepError(ErrorCodes.AUTH, `server could not be verified: ${outcome.reason}`);
        return { mechanism: factory.name };
      }
      if (el.status === 'abort') throw fail(535, 'the server aborted the exchange');
      const step = await mech.step(el.data);
      if (step.status === 'failure') {
        await ch.request(buildBlob(undefined, 'abort'), { contentType: BEEP_XML }).then((m) => m.dump(), () => undefined);
        throw new BeepError(ErrorCodes.AUTH, `authentication abandoned: ${step.reason}`);
      }
      let reply;
      try {
        reply = await ch.request(buildBlob(step.response), { contentType: BEEP_XML });
      } catch (err) {
        if (err instanceof BeepReplyError) throw fail(err.replyCode ?? 535, err.diagnostic);
        throw err;
      }
      el = parseSaslElement(await reply.bytes(65536));
    }
    throw new BeepError(ErrorCodes.AUTH, 'too many SASL rounds');
  } finally {
    if (ch.state === 'open') await ch.close().catch(() => undefined);
  }
}
