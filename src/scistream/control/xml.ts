/**
 * The control profile's use of the one safe XML reader (`src/xml/`): received
 * documents are parsed liberally (either quote, any white space, an XML
 * declaration, comments, CDATA, element and attribute names in any case) but
 * safely — no DOCTYPE or entity declaration, only the five predefined
 * entities and numeric references, UTF-8 only, size and nesting bounded — and
 * a refusal becomes a {@link SciStreamError} `BAD_FORMAT` with the reply code
 * of the {@link XmlError} (500) as its cause. Sent text is escaped and cleaned
 * of what XML cannot carry.
 *
 * @module
 */
import { XmlError, attr, cleanText, escapeAttr, escapeText, parseXml as parseSafeXml, textElement, type XmlElement } from '../../xml/index.js';
import { SciStreamError } from './errors.js';

export { attr, cleanText, escapeAttr, escapeText, textElement, type XmlElement };

/** Bounds on a received document. */
export interface XmlLimits {
  /** Largest document in octets (default 64 KiB). */
  maxBytes?: number;
  /** Deepest element nesting (default 6; control documents need 3). */
  maxDepth?: number;
}

/** Default largest control document, in octets. */
export const MAX_DOCUMENT = 64 * 1024;

/**
 * Parse one control document into its root element (names lower-cased).
 * Throws {@link SciStreamError} `BAD_FORMAT` (reply code 500, the
 * {@link XmlError} as its cause) when it is too large, too deep, not
 * well-formed, not UTF-8, has a DOCTYPE or an unknown entity, or has other
 * than exactly one root element.
 */
export function parseXml(input: string | Uint8Array, limits: XmlLimits = {}): XmlElement {
  try {
    return parseSafeXml(input, { maxBytes: limits.maxBytes ?? MAX_DOCUMENT, maxDepth: limits.maxDepth ?? 6, foldCase: true });
  } catch (err) {
    if (err instanceof XmlError) throw new SciStreamError('BAD_FORMAT', err.message, { replyCode: err.replyCode, cause: err });
    throw err;
  }
}
