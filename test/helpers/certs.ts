/**
 * Certificates generated for the test run (once per test process), from the
 * library's development PKI generator.
 */
import { generateDevPki, type DevPki } from '../../src/scistream/devcerts.js';

/** The test PKI: see {@link DevPki}. */
export type TestPki = DevPki;

let cached: DevPki | null = null;

/** Generate (once per process) the test PKI. */
export function testPki(): TestPki {
  cached ??= generateDevPki();
  return cached;
}
