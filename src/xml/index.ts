/**
 * The one safe XML reader and writer of beepstream, used by every caller
 * (channel 0, the TLS and SASL profiles, SciStream control and data, DECADE):
 * bounded size and depth, UTF-8 only, no DOCTYPE or entity declarations, only
 * the five predefined entities and numeric character references decoded — the
 * same way for text and attribute values —, escaping for text and attributes,
 * and one error, {@link XmlError}, carrying the reply code to answer with.
 * `spec/xml.md` is the description of what is accepted.
 *
 * @module
 */
export { XmlError, xmlErrorOf, type XmlErrorReason } from './error.js';
export { escapeAttr, escapeText, cleanText, hasNonXmlChar, attr, textElement } from './escape.js';
export {
  parseXml,
  parseDocument,
  readDocument,
  decodeEntities,
  scanXmlShape,
  childOf,
  DEFAULT_XML_MAX_BYTES,
  DEFAULT_XML_MAX_DEPTH,
  type XmlElement,
  type XmlLimits,
  type XmlParseOptions,
} from './parse.js';
