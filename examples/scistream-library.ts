/**
 * SciStream as a library: a whole streaming session on loopback, in one
 * process, with the real roles.
 *
 * - Two S2CS (`startS2cs`), a producer facility and a consumer facility,
 *   each owning its S2DS; control sessions are TLS-tuned (development
 *   certificates from `generateDevPki`, which needs the `openssl` command)
 *   and SCRAM-SHA-256 authenticated.
 * - The user client (S2UC) and the application controller connect with
 *   `connectControl`; the S2UC REQUESTs both sides, the application
 *   controller says HELLO with the producer application's endpoint, the
 *   consumer side gets the producer side's listeners (UPDATETARGETS).
 * - A producer application (a TCP server) and a consumer application (a
 *   TCP client connecting to the consumer S2DS) exchange 1 MiB each way
 *   through the tunnel — BEEP over TLS-PSK between the two S2DS — and check
 *   every byte with SHA-256. Then RELEASE on both facilities.
 *
 * Run (after `npm run build`):
 *
 * ```sh
 * node dist/examples/scistream-library.js
 * ```
 *
 * Prints one line and exits 0:
 *
 * ```text
 * scistream: 1048576 octets each way through the tunnel, SHA-256 match at both ends; released
 * ```
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import net from 'node:net';
import {
  appctrlHello,
  connectControl,
  createUserEntry,
  generateDevPki,
  newUid,
  scramSha256Client,
  startS2cs,
  type S2cs,
  type S2ucClient,
} from 'beepstream';

const SIZE = 1024 * 1024;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const toProducer = randomBytes(SIZE); // what the consumer application sends
const toConsumer = randomBytes(SIZE); // what the producer application sends

/** Write `data` to `socket`, end our direction, and collect everything the other side sends until its end. */
function exchange(socket: net.Socket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
    socket.end(data);
  });
}

// The facilities: an S2CS with its S2DS each, on free loopback ports.
const pki = generateDevPki();
const password = randomBytes(18).toString('base64url');
const users = new Map([['scientist', await createUserEntry(password)]]);
const producerFacility = await startS2cs({ port: 0, cert: pki.serverCert, key: pki.serverKey, users });
const consumerFacility = await startS2cs({ port: 0, cert: pki.serverCert, key: pki.serverKey, users });

// The producer application listens (half-open allowed: each direction ends on its own).
let producerGot: Promise<Buffer> | undefined;
const producerApp = net.createServer({ allowHalfOpen: true }, (socket) => {
  producerGot = exchange(socket, toConsumer);
});
await new Promise<void>((resolve) => producerApp.listen(0, '127.0.0.1', resolve));
const producerPort = (producerApp.address() as net.AddressInfo).port;

/** A control connection to a facility: TLS (verified against the dev CA), then SCRAM-SHA-256. */
const login = (facility: S2cs): Promise<S2ucClient> => {
  const port = Number(facility.address.slice(facility.address.lastIndexOf(':') + 1));
  return connectControl({ host: '127.0.0.1', port, ca: pki.ca, serverName: 'localhost', sasl: scramSha256Client({ username: 'scientist', password }) });
};

const s2ucProducer = await login(producerFacility);
const s2ucConsumer = await login(consumerFacility);
const appController = await login(producerFacility);
try {
  const uid = newUid(); // 128 bits from a CSPRNG: names the session, and keys its data-plane PSK

  // Producer side: REQUEST waits for the application controller's HELLO.
  const [producerSide] = await Promise.all([
    s2ucProducer.request({ uid, role: 'PROD', numConn: 1 }),
    appctrlHello(appController.session, { uid, role: 'PROD', prodListeners: [`127.0.0.1:${producerPort}`] }),
  ]);
  // Consumer side: REQUEST completes once UPDATETARGETS gives it the producer side's listeners.
  const [consumerSide] = await Promise.all([
    s2ucConsumer.request({ uid, role: 'CONS', numConn: 1 }),
    s2ucConsumer.update({ uid, role: 'CONS', remoteListeners: producerSide.listeners }),
  ]);

  // The consumer application connects to the consumer S2DS: the tunnel.
  const [host, port] = (consumerSide.listeners[0] as string).split(':') as [string, string];
  const consumer = net.connect({ host, port: Number(port), allowHalfOpen: true });
  const consumerGot = await exchange(consumer, toProducer);
  const producerReceived = await (producerGot as Promise<Buffer>);

  const ok = sha256(consumerGot) === sha256(toConsumer) && sha256(producerReceived) === sha256(toProducer);
  await Promise.all([s2ucProducer.release(uid), s2ucConsumer.release(uid)]);
  console.log(`scistream: ${consumerGot.length} octets each way through the tunnel, SHA-256 ${ok ? 'match' : 'MISMATCH'} at both ends; released`);
  if (!ok) process.exitCode = 1;
} finally {
  for (const client of [s2ucProducer, s2ucConsumer, appController]) await client.session.close().catch(() => client.session.destroy());
  await new Promise<void>((resolve) => producerApp.close(() => resolve()));
  await producerFacility.close();
  await consumerFacility.close();
  rmSync(pki.dir, { recursive: true, force: true });
}
