/**
 * {@link XmlError}: a received XML document was refused, with the RFC 3080 §8
 * reply code to answer with (500 for the document, 501 for a parameter) and a
 * stable `reason`.
 *
 * @module
 */
import { BeepOperationError, ErrorCodes, type BeepErrorOptions } from '../errors.js';

/**
 * Why a document was refused. Stable: tests and programs may switch on it.
 *
 * - `too-large`: over the byte limit;
 * - `encoding`: not UTF-8 (invalid octets, or another `encoding` declared);
 * - `doctype`: a DOCTYPE, ENTITY, ELEMENT, ATTLIST or NOTATION declaration (never expanded);
 * - `entity`: an entity reference other than the five predefined ones, or a bare `&`;
 * - `char`: a character XML 1.0 cannot carry (NUL, C0 controls but TAB/LF/CR,
 *   U+FFFE/U+FFFF, a lone surrogate), literally or as a character reference;
 * - `too-deep`: elements nested deeper than the depth limit;
 * - `root`: not exactly one root element, or content outside it;
 * - `malformed`: not well-formed (unterminated or mismatched tags, duplicate
 *   attributes, `<` in an attribute value, `]]>` in text…);
 * - `parameter`: well-formed, but an element or attribute the caller needs is
 *   missing or invalid (reply code 501).
 */
export type XmlErrorReason = 'too-large' | 'encoding' | 'doctype' | 'entity' | 'char' | 'too-deep' | 'root' | 'malformed' | 'parameter';

/**
 * A received XML document was refused. `code` is `BEEP_ERR_XML_SYNTAX` (reply
 * code 500: the document as a whole) or `BEEP_ERR_XML_PARAMETER` (reply code
 * 501: an element or attribute); `reason` says why. The message never quotes
 * more than a few characters of the input.
 */
export class XmlError extends BeepOperationError {
  /** Why the document was refused. */
  readonly reason: XmlErrorReason;
  /** The RFC 3080 §8 reply code to answer with: 500 (syntax) or 501 (parameter). */
  declare readonly replyCode: 500 | 501;

  /** A refusal for `reason`; reply code 501 for `parameter`, 500 otherwise. */
  constructor(reason: XmlErrorReason, message: string, options: Omit<BeepErrorOptions, 'replyCode' | 'scope'> = {}) {
    const parameter = reason === 'parameter';
    super(parameter ? ErrorCodes.XML_PARAMETER : ErrorCodes.XML_SYNTAX, message, { ...options, replyCode: parameter ? 501 : 500 });
    this.reason = reason;
  }
}

/** The {@link XmlError} behind `err`: `err` itself or the first in its `cause` chain (at most 8 deep). */
export function xmlErrorOf(err: unknown): XmlError | undefined {
  let e: unknown = err;
  for (let i = 0; i < 8 && e !== null && typeof e === 'object'; i++) {
    if (e instanceof XmlError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
