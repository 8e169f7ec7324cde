/**
 * An echo server: the bundled ECHO profile served over a real TCP socket.
 *
 * Run (after `npm run build`):
 *
 * ```sh
 * node dist/examples/echo-server.js [PORT]     # PORT defaults to $PORT, else 0 (a free port)
 * ```
 *
 * The first line printed is `listening on 127.0.0.1:PORT`; then start
 * `node dist/examples/echo-client.js 127.0.0.1:PORT` in another terminal.
 * Ctrl-C (SIGINT) or SIGTERM releases every session, prints `closed` and
 * exits 0.
 *
 * @module
 */
import { createServer, echoProfile } from 'beepstream';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const server = createServer({ profiles: [echoProfile] });
const address = await server.listen(port, '127.0.0.1');
console.log(`listening on ${address.address}:${address.port}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Release every session (they get a chance to close cleanly), then stop listening.
    void server.close().then(() => console.log('closed'));
  });
}
