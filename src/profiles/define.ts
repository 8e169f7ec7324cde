/**
 * The profile registration API. A profile author writes one module that calls
 * {@link defineProfile} and hands the result to `createServer({ profiles })`
 * or `connect({ profiles })`; nothing else of the library needs touching.
 *
 * @module
 */
import { BeepError, ErrorCodes } from '../errors.js';
import type { ChannelProfile } from '../channels/index.js';

export { type ChannelProfile, type StartRequest, type StartDecision, type CloseRequest, type CloseDecision, Responder, type ReplyOptions } from '../channels/index.js';

/** What a profile author writes: see {@link ChannelProfile} for each hook. */
export type ProfileDefinition = ChannelProfile;

const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"'`{}|\\^]+$/;

/**
 * Validate and freeze a profile definition. The URI must be absolute
 * (RFC 3080 §2.3.1.2: it "authoritatively identifies the profile").
 *
 * @example
 * ```ts
 * export const echo = defineProfile({
 *   uri: 'http://xml.resource.org/profiles/NULL/ECHO',
 *   async onMessage(msg, res) { await res.reply(await msg.bytes(), { contentType: msg.contentType }); },
 * });
 * ```
 */
export function defineProfile<T extends ProfileDefinition>(definition: T): Readonly<T> {
  if (typeof definition?.uri !== 'string' || !URI.test(definition.uri)) {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `profile uri must be an absolute URI, got ${JSON.stringify(definition?.uri)}`);
  }
  for (const hook of ['onStart', 'onOpen', 'onMessage', 'onCloseRequest', 'onClosed'] as const) {
    const h = definition[hook];
    if (h !== undefined && typeof h !== 'function') {
      throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `profile ${definition.uri}: ${hook} must be a function`);
    }
  }
  const a = definition.advertise;
  if (a !== undefined && typeof a !== 'boolean' && typeof a !== 'function') {
    throw new BeepError(ErrorCodes.INVALID_ARGUMENT, `profile ${definition.uri}: advertise must be a boolean or a function`);
  }
  return Object.freeze({ ...definition });
}
