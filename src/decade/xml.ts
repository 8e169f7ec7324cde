/**
 * The DRP profile's and SDT's use of the one safe XML reader (`src/xml/`):
 * names lower-cased, a DOCTYPE or entity declaration refused before parsing,
 * only the five predefined entities and numeric references decoded, UTF-8
 * only, size and nesting bounded; a refusal becomes a {@link DecadeError}
 * `BAD_REQUEST` with the reply code of the {@link XmlError} (500) as its
 * cause. Sent values are escaped.
 *
 * @module
 */
import { XmlError, attr, escapeAttr, escapeText, parseXml as parseSafeXml, type XmlElement } from '../xml/index.js';
import { DecadeError } from './errors.js';

export { attr, escapeAttr, escapeText, type XmlElement };

/** Largest DRP document accepted, in octets (tokens travel in it, and a status listing comes back in it). */
export const MAX_XML = 64 * 1024;

/** Largest status answer accepted by a client, in octets. */
export const MAX_STATUS_XML = 16 * 1024 * 1024;

/**
 * Parse one document into its root element. Throws {@link DecadeError}
 * `BAD_REQUEST` (reply code 500, the {@link XmlError} as its cause) when it is
 * too large or too deep, not well-formed, not UTF-8, has a DOCTYPE or an
 * unknown entity, or not exactly one root.
 */
export function parseXml(input: string | Uint8Array, maxBytes = MAX_XML, maxDepth = 4): XmlElement {
  try {
    return parseSafeXml(input, { maxBytes, maxDepth, foldCase: true });
  } catch (err) {
    // DRP documents carry tokens: the refusal names the reason only, never a fragment of the input.
    if (err instanceof XmlError) throw new DecadeError('BAD_REQUEST', `XML document refused (${err.reason})`, { replyCode: err.replyCode, cause: err });
    throw err;
  }
}
