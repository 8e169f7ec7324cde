/**
 * The ECHO profile: every MSG is answered by a RPY carrying the exact body and
 * entity headers received, streamed through (no buffering of the whole body).
 *
 * @module
 */
import { pipeline } from 'node:stream/promises';
import { defineProfile } from './define.js';
import type { IncomingMessage } from '../channels/index.js';
import type { EntityHeaders } from '../framing/index.js';

/** URI of the echo profile. */
export const ECHO_URI = 'http://xml.resource.org/profiles/NULL/ECHO';

/** Entity headers to send back so a reply carries the same headers as `msg`. */
export function sameHeaders(msg: IncomingMessage): EntityHeaders {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg.headers)) {
    if (k !== 'content-type' && k !== 'content-transfer-encoding') headers[k] = v;
  }
  return { contentType: msg.contentType, transferEncoding: msg.transferEncoding, headers };
}

/** The echo profile. */
export const echoProfile = defineProfile({
  uri: ECHO_URI,
  /** Stream the message back as the reply, with the same entity headers. */
  async onMessage(msg, res) {
    await pipeline(msg.stream(), res.replyStream(sameHeaders(msg)));
  },
});
