/**
 * The SciStream control plane over BEEP: the control profile
 * (`urn:beepstream:scistream:control:1`), its messages, the S2CS
 * ({@link createControlServer}) and the clients ({@link S2ucClient},
 * {@link appctrlHello}). Specification: `spec/scistream-control.md`.
 *
 * @module
 */
export * from './errors.js';
export * from './ids.js';
export * from './messages.js';
export * from './options.js';
export * from './registry.js';
export * from './server.js';
export * from './client.js';
export { parseXml, cleanText, MAX_DOCUMENT, type XmlElement, type XmlLimits } from './xml.js';
