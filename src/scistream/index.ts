/**
 * SciStream over BEEP (`beepstream/scistream`): the control plane (profile,
 * messages, S2CS registry, S2UC client), the data plane (S2DS, data
 * profiles, TLS-PSK), the roles that wire them together, the demo and the
 * development PKI. Wire formats: `spec/scistream-control.md`,
 * `spec/scistream-data.md`.
 *
 * @module beepstream/scistream
 */
export * from './control/index.js';
export * from './data/index.js';
export * from './roles.js';
export * from './demo.js';
export * from './devcerts.js';
export type * from './dataplane.js';
