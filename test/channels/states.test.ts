/**
 * The session and channel life-cycle tables (src/channels/states.ts): every
 * (state, input) pair against the transitions RFC 3080 §2.3 and §2.4 allow.
 */
import test from 'ava';
import { nextChannelState, nextSessionState, type ChannelInput, type SessionInput, type SessionState } from '../../src/channels/states.js';
import type { ChannelState } from '../../src/channels/channel.js';

const CHANNEL_STATES: ChannelState[] = ['starting', 'open', 'closing', 'closed'];
const CHANNEL_INPUTS: ChannelInput[] = ['open', 'closeAgreed', 'abortStart', 'remove'];
const SESSION_STATES: SessionState[] = ['greeting', 'open', 'releasing', 'closed'];
const SESSION_INPUTS: SessionInput[] = ['greeted', 'releaseAgreed', 'end'];

test('channel table: exactly these transitions, everything else changes nothing', (t) => {
  const allowed: Record<string, ChannelState> = {
    'starting open': 'open', // our start answered with <profile>
    'starting abortStart': 'closed', // our start refused
    'starting remove': 'closed', // the session ended meanwhile
    'open open': 'open', // a channel the peer started, bound to its profile
    'open closeAgreed': 'closing', // RFC 3080 §2.3.1.3: in-flight exchanges finish before <ok>
    'open remove': 'closed',
    'closing remove': 'closed',
  };
  for (const s of CHANNEL_STATES) {
    for (const i of CHANNEL_INPUTS) t.is(nextChannelState(s, i), allowed[`${s} ${i}`] ?? null, `${s} + ${i}`);
  }
});

test('channel table: closed is final, and every other state can be removed', (t) => {
  for (const i of CHANNEL_INPUTS) t.is(nextChannelState('closed', i), null);
  for (const s of CHANNEL_STATES) if (s !== 'closed') t.is(nextChannelState(s, 'remove'), 'closed');
  // Only a start in flight can be aborted; a closing channel never reopens.
  t.deepEqual(CHANNEL_STATES.filter((s) => nextChannelState(s, 'abortStart') !== null), ['starting']);
  t.is(nextChannelState('closing', 'open'), null);
});

test('session table: greeting → open → releasing → closed; closed is final', (t) => {
  const allowed: Record<string, SessionState> = {
    'greeting greeted': 'open',
    'greeting releaseAgreed': 'releasing',
    'greeting end': 'closed', // refused greeting, or the transport closed
    'open releaseAgreed': 'releasing',
    'open end': 'closed',
    'releasing releaseAgreed': 'releasing', // a second release request while the first finishes
    'releasing end': 'closed',
  };
  for (const s of SESSION_STATES) {
    for (const i of SESSION_INPUTS) t.is(nextSessionState(s, i), allowed[`${s} ${i}`] ?? null, `${s} + ${i}`);
  }
  // A late greeting never turns a releasing session back to open.
  t.is(nextSessionState('releasing', 'greeted'), null);
});
