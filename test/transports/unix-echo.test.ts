/**
 * The session suite (echo, answers, streaming, close, limits), run again over a Unix domain socket: the same test bodies,
 * with the listener on a socket file in a temporary directory (removed
 * afterwards) and every client connecting to it with `connect({ path })`.
 */
import test from 'ava';
import { checkTransport, useTestTransport } from '../helpers/transport.js';

useTestTransport('unix');
await import('../channels/session.test.js');

test('these tests ran over a Unix domain socket, on both ends', (t) => checkTransport(t, 'unix'));
