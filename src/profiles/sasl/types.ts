/**
 * The SASL mechanism interface (RFC 4422 §3): small, transport-independent
 * state machines that the BEEP SASL tuning profiles drive.
 *
 * A server mechanism consumes client data one step at a time and answers with a
 * challenge, a success (with the authenticated identity) or a failure carrying an
 * RFC 3080 §8 reply code. A client mechanism produces the initial response, answers
 * challenges, and checks the server's final data. Neither side ever throws on bad
 * peer input: every problem becomes a `failure` result whose `reason` is a fixed,
 * generic text that never carries a password, token, key, proof or salt-derived
 * secret.
 *
 * @module
 */
import type { X509Certificate } from 'node:crypto';

/** Channel-binding types a SASL context may carry (RFC 5929, RFC 9266). */
export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point' | 'tls-unique';

/** Channel-binding data of the transport (RFC 5056). */
export interface ChannelBinding {
  /** The binding type, e.g. `tls-exporter` (RFC 9266). */
  readonly type: ChannelBindingType;
  /** The binding octets, computed from the TLS session by the transport. */
  readonly data: Uint8Array;
}

/**
 * What the profile knows about the transport when a mechanism is created. The
 * profile builds one per authentication exchange.
 */
export interface SaslContext {
  /** The session is protected by TLS (RFC 3080 §3.1 tuning done). */
  readonly tls: boolean;
  /**
   * The peer's TLS certificate, as an `X509Certificate` or DER octets. The profile
   * passes it only once the TLS layer has verified it against its trust anchors:
   * EXTERNAL trusts it as is.
   */
  readonly tlsPeerCertificate?: X509Certificate | Uint8Array;
  /** Channel-binding data of the TLS session, if the transport can provide it. */
  readonly channelBinding?: ChannelBinding;
  /** The mechanisms this server advertised (SCRAM uses it to detect downgrades, RFC 5802 §6). */
  readonly advertisedMechanisms?: readonly string[];
  /** The peer's network address, for logging and rate limiting. */
  readonly remoteAddress?: string;
}

/** The identity a successful exchange established. */
export interface SaslIdentity {
  /** Authentication identity: whose credentials were proven. */
  readonly authcid: string;
  /** Authorization identity the client asked to act as, when it asked for one. */
  readonly authzid?: string;
  /** The mechanism that authenticated it, e.g. `SCRAM-SHA-256`. */
  readonly mechanism: string;
  /** OAuth scopes granted to the token (OAUTHBEARER only). */
  readonly scope?: readonly string[];
  /** The trace token an ANONYMOUS client sent (RFC 4505 §2), if any. */
  readonly trace?: string;
}

/**
 * RFC 3080 §8 reply codes a mechanism may fail with:
 * 454 temporary failure (retry later), 534 mechanism too weak / not enabled,
 * 535 authentication failure, 538 encryption required first.
 */
export type SaslFailureCode = 454 | 534 | 535 | 538;

/** One server step: a challenge, or a final outcome. */
export type SaslServerStep =
  | { readonly status: 'continue'; readonly challenge: Buffer }
  | { readonly status: 'success'; readonly identity: SaslIdentity; readonly additional?: Buffer }
  | { readonly status: 'failure'; readonly code: SaslFailureCode; readonly reason: string };

/** The failure variant of {@link SaslServerStep}. */
export type SaslServerFailure = Extract<SaslServerStep, { status: 'failure' }>;

/** The server side of one authentication exchange. */
export interface SaslServerMechanism {
  /** The registered mechanism name, e.g. `SCRAM-SHA-256`. */
  readonly name: string;
  /**
   * Consume client data. `undefined` means the client sent no initial response
   * (the mechanism then usually answers with an empty challenge); an empty buffer is
   * an empty response. Never rejects: bad input yields a `failure`. After a final
   * outcome every further call yields a failure.
   */
  step(input: Buffer | undefined): Promise<SaslServerStep>;
}

/** Creates a {@link SaslServerMechanism} per exchange; the profile holds one per mechanism name. */
export interface SaslServerMechanismFactory {
  /** The registered mechanism name. */
  readonly name: string;
  /** Whether the mechanism may be offered in this context (e.g. PLAIN only over TLS). */
  available(ctx: SaslContext): boolean;
  /** A fresh server state machine for one exchange. */
  create(ctx: SaslContext): SaslServerMechanism;
}

/** One client step: the response to a challenge, or giving up. */
export type SaslClientStep =
  | { readonly status: 'continue'; readonly response: Buffer }
  | { readonly status: 'failure'; readonly reason: string };

/** The client's verdict on the server's final outcome. */
export type SaslClientOutcome = { readonly status: 'success' } | { readonly status: 'failure'; readonly reason: string };

/** The client side of one authentication exchange. */
export interface SaslClientMechanism {
  /** The registered mechanism name. */
  readonly name: string;
  /** The initial response to send with the mechanism choice, or `undefined` for none. */
  initial(): Promise<Buffer | undefined>;
  /** Answer a server challenge. Never rejects: bad input yields a `failure`. */
  step(challenge: Buffer): Promise<SaslClientStep>;
  /**
   * The server reported success, with `additional` data if it sent any. Verifies what
   * the mechanism requires (SCRAM: the server signature, RFC 5802 §3); a `failure`
   * means the server is not trusted and the session must not be used.
   */
  finish(additional: Buffer | undefined): Promise<SaslClientOutcome>;
}

/** Creates a {@link SaslClientMechanism} per exchange. */
export interface SaslClientMechanismFactory {
  /** The registered mechanism name. */
  readonly name: string;
  /** Whether the mechanism can run in this context (e.g. SCRAM-PLUS needs channel binding). */
  available(ctx: SaslContext): boolean;
  /** A fresh client state machine for one exchange. */
  create(ctx: SaslContext): SaslClientMechanism;
}
