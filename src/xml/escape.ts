/**
 * Writing XML safely: escaping of attribute values and character data, and
 * cleaning of human text that may hold characters XML cannot carry.
 *
 * @module
 */

/**
 * Escape text for an attribute value quoted with `'` or `"`: `& < > ' "` as
 * the predefined entities, TAB, CR and LF as character references (so
 * attribute-value normalisation cannot turn them into spaces).
 */
export function escapeAttr(s: string): string {
  return s.replace(/[&<>'"\r\n\t]/g, (c) => {
    switch (c) {
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      case "'": return '&apos;';
      case '"': return '&quot;';
      default: return `&#${c.charCodeAt(0)};`;
    }
  });
}

/** Escape character data: `& < >` as entities, CR as `&#13;` (XML end-of-line handling would turn a literal CR into LF). */
export function escapeText(s: string): string {
  return s.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

// Characters XML 1.0 cannot carry even escaped (C0 controls other than TAB, LF, CR; U+FFFE, U+FFFF).
// eslint-disable-next-line no-control-regex
const NON_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Whether `s` holds a character XML 1.0 cannot carry, even escaped (a C0 control other than TAB/LF/CR, U+FFFE, U+FFFF, a lone surrogate). */
export function hasNonXmlChar(s: string): boolean {
  NON_XML.lastIndex = 0;
  LONE_SURROGATE.lastIndex = 0;
  return NON_XML.test(s) || LONE_SURROGATE.test(s);
}

/**
 * Make human text sendable: lone surrogates and characters XML cannot carry
 * become U+FFFD, and the text is cut to `max` UTF-16 units (never inside a
 * surrogate pair).
 */
export function cleanText(s: string, max = Infinity): string {
  let t = s.replace(LONE_SURROGATE, '\uFFFD').replace(NON_XML, '\uFFFD');
  if (t.length > max) {
    let end = max;
    const c = t.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end--;
    t = t.slice(0, end);
  }
  return t;
}

/** An attribute ` name='value'`, escaped, with a leading space; nothing for `undefined` or `null`. */
export function attr(name: string, value: string | number | boolean | undefined | null): string {
  return value === undefined || value === null ? '' : ` ${name}='${escapeAttr(String(value))}'`;
}

/** An element `<name>text</name>` with escaped text. */
export function textElement(name: string, text: string): string {
  return `<${name}>${escapeText(text)}</${name}>`;
}
