/**
 * The life cycles of a session and of its channels as `(state, input) → next`
 * tables (the shape python-hyper/h2's connection state machine has). Every
 * change of `SessionCore.state` and `Channel.state` goes through
 * {@link nextSessionState} and {@link nextChannelState}; `null` means the input
 * does not apply in that state and nothing changes (e.g. a close of a channel
 * that is closed already).
 *
 * @module
 */
import type { ChannelState } from './channel.js';

/** Session life cycle. */
export type SessionState = 'greeting' | 'open' | 'releasing' | 'closed';

/** What happens to a session. */
export type SessionInput =
  /** The peer's positive greeting arrived (RFC 3080 §2.3.1.1). */
  | 'greeted'
  /** We agreed to the peer's `<close number='0'>`: in-flight exchanges finish, no new channel (RFC 3080 §2.3.1.3). */
  | 'releaseAgreed'
  /** Released or terminated. */
  | 'end';

/** What happens to a channel. */
export type ChannelInput =
  /** Bound to its profile: our start was answered, or we accepted the peer's. */
  | 'open'
  /** We agreed to the peer's `<close>`: pending exchanges finish first (RFC 3080 §2.3.1.3). */
  | 'closeAgreed'
  /** Our start was refused or failed: the reserved number is forgotten. */
  | 'abortStart'
  /** Removed: closed by agreement, or the session ended. */
  | 'remove';

const SESSION: { readonly [S in SessionState]: { readonly [I in SessionInput]: SessionState | null } } = {
  greeting: { greeted: 'open', releaseAgreed: 'releasing', end: 'closed' },
  open: { greeted: null, releaseAgreed: 'releasing', end: 'closed' },
  releasing: { greeted: null, releaseAgreed: 'releasing', end: 'closed' },
  closed: { greeted: null, releaseAgreed: null, end: null },
};

const CHANNEL: { readonly [S in ChannelState]: { readonly [I in ChannelInput]: ChannelState | null } } = {
  starting: { open: 'open', closeAgreed: null, abortStart: 'closed', remove: 'closed' },
  // A channel the peer started is created open, then bound to its profile.
  open: { open: 'open', closeAgreed: 'closing', abortStart: null, remove: 'closed' },
  closing: { open: null, closeAgreed: null, abortStart: null, remove: 'closed' },
  closed: { open: null, closeAgreed: null, abortStart: null, remove: null },
};

/** The session state after `input` in `state`, or `null` if the input changes nothing. */
export function nextSessionState(state: SessionState, input: SessionInput): SessionState | null {
  return SESSION[state][input];
}

/** The channel state after `input` in `state`, or `null` if the input changes nothing. */
export function nextChannelState(state: ChannelState, input: ChannelInput): ChannelState | null {
  return CHANNEL[state][input];
}
