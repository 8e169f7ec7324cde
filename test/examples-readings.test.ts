/**
 * Runs the example profile's own tests (`examples/readings-profile.test.ts`,
 * the test `docs/writing-a-profile.md` walks through) as part of the suite:
 * importing the module registers its tests with ava.
 */
import '../examples/readings-profile.test.js';
