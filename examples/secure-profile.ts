/**
 * A private profile that only runs on a TLS-tuned, SASL-authenticated
 * session. The server offers TLS (certificates), SASL SCRAM-SHA-256 and the
 * profile; the client shows that starting the profile is refused with 538
 * before TLS and with 530 before authentication, then tunes the session
 * with TLS, authenticates, and uses the profile, which sees who the peer is.
 *
 * Development certificates (a CA and a server certificate for localhost)
 * are generated at run time into a temporary directory with the `openssl`
 * command, by the library's `generateDevPki` — for demos and tests only.
 *
 * Run (after `npm run build`):
 *
 * ```sh
 * node dist/examples/secure-profile.js
 * ```
 *
 * Prints one line and exits 0:
 *
 * ```text
 * secure: refused with 538 before TLS, 530 before SASL; then "hello alice, over TLSv1.3"
 * ```
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  AuthFailureLimiter,
  BeepReplyError,
  authenticate,
  connect,
  createServer,
  createUserEntry,
  defineProfile,
  generateDevPki,
  saslProfiles,
  scramSha256Client,
  scramSha256Server,
  startTls,
  tlsProfile,
  type Session,
} from 'beepstream';

const WHOAMI_URI = 'urn:example:whoami';

/** Replies with the authenticated identity and the TLS version of the session. */
const whoamiProfile = defineProfile({
  uri: WHOAMI_URI,
  // Checked before onStart: 538 until the session is TLS, then 530 until it is authenticated.
  requires: { tls: true, authentication: true },
  async onMessage(msg, res, channel) {
    await msg.dump();
    const { identity, security } = channel.session; // set by the SASL and TLS tuning profiles
    await res.reply(`hello ${identity?.authzid}, over ${security.protocol}`);
  },
});

const pki = generateDevPki();
const password = randomBytes(18).toString('base64url'); // never a literal, never logged
const users = new Map([['alice', await createUserEntry(password)]]); // salted SCRAM keys only

const server = createServer({
  profiles: [
    tlsProfile({ cert: pki.serverCert, key: pki.serverKey }),
    ...saslProfiles({ mechanisms: [scramSha256Server({ store: users })], limiter: new AuthFailureLimiter() }),
    whoamiProfile,
  ],
});
const { port } = await server.listen(0, '127.0.0.1');

/** Try to start the private profile; the reply code of the refusal, or 0 if it started. */
async function tryStart(session: Session): Promise<number> {
  try {
    const channel = await session.startChannel(WHOAMI_URI);
    await channel.close();
    return 0;
  } catch (err) {
    if (err instanceof BeepReplyError) return err.replyCode ?? 0;
    throw err;
  }
}

const session = await connect({ host: '127.0.0.1', port });
try {
  const beforeTls = await tryStart(session); // 538: encryption required

  // TLS tuning: the session restarts over TLS (channels gone, fresh greetings).
  await startTls(session, { ca: pki.ca, serverName: 'localhost' });
  const beforeAuth = await tryStart(session); // 530: authentication required

  // SASL: the server's session now has an identity every profile can see.
  await authenticate(session, scramSha256Client({ username: 'alice', password }));
  const channel = await session.startChannel(WHOAMI_URI);
  const hello = await (await channel.request()).text();

  console.log(`secure: refused with ${beforeTls} before TLS, ${beforeAuth} before SASL; then "${hello}"`);
} finally {
  await session.close();
  await server.close();
  rmSync(pki.dir, { recursive: true, force: true });
}
