/**
 * Fixtures of the full-stack SciStream tests: REAL components only. Two S2CS
 * started with `startS2cs` (TLS certificates from the test PKI, SCRAM-SHA-256
 * users, real BEEP data servers), control connections opened with
 * `connectControl` (TLS + SASL), a producer application (a `net.Server`
 * with `allowHalfOpen`) and consumer application sockets on 127.0.0.1.
 *
 * The applications speak a tiny protocol so that every byte can be checked
 * at both ends: the consumer connection first sends an 8-octet header
 * (u32 session index, u32 stream index), then its generated data; the
 * producer, once it has the header, sends its own generated data. Both ends
 * hash everything after the header (SHA-256) and record counts and times.
 */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { createUserEntry, scramSha256Client } from '../../src/index.js';
import { type ScramCredentials } from '../../src/profiles/index.js';
import { appctrlHello, type ResponseMessage, type S2ucClient } from '../../src/scistream/control/index.js';
import { connectControl, startS2cs, type S2cs, type S2csOptions } from '../../src/scistream/roles.js';
import { testPki } from '../helpers/certs.js';
import { portReleased } from './control/harness.js';
import { MiB, consumerApp, writeData, within, until, sleep } from './data/helpers.js';

export { MiB, within, until, sleep, portReleased };

export const pki = testPki();
/** A fresh password per run (never a literal in a process listing or a log). */
export const PASSWORD = randomBytes(18).toString('base64');
/** The S2UC's account, the application controller's, and somebody else's. */
export const users = new Map<string, ScramCredentials>();
for (const name of ['scientist', 'appctrl', 'mallory']) users.set(name, await createUserEntry(PASSWORD, 4096));

/** The two facilities of a SciStream session. */
export interface Facilities {
  prod: S2cs;
  cons: S2cs;
}

/** Start a producer-facility and a consumer-facility S2CS (each owning its S2DS) on free loopback ports; closed at teardown. */
export async function startFacilities(t: ExecutionContext, options: Partial<S2csOptions> = {}): Promise<Facilities> {
  const start = async (): Promise<S2cs> => {
    const s = await startS2cs({ host: '127.0.0.1', port: 0, cert: pki.serverCert, key: pki.serverKey, users, ...options });
    t.teardown(() => s.close());
    return s;
  };
  const prod = await start();
  const cons = await start();
  return { prod, cons };
}

/** `host` and port of an S2CS's control listener. */
export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** A control connection (TLS verified against the test CA, SCRAM-SHA-256 as `user`); destroyed at teardown. */
export async function login(t: ExecutionContext, s2cs: S2cs, user = 'scientist', password = PASSWORD): Promise<S2ucClient> {
  const { host, port } = hostPort(s2cs.address);
  const client = await within(
    connectControl({ host, port, ca: pki.ca, serverName: 'localhost', sasl: scramSha256Client({ username: user, password }), timeout: 30_000 }),
    60_000,
    `control login as ${user}`,
  );
  t.teardown(() => client.session.destroy());
  return client;
}

/** The port numbers of `host:port` endpoints. */
export function portsOf(endpoints: readonly string[]): number[] {
  return endpoints.map((e) => Number(e.slice(e.lastIndexOf(':') + 1)));
}

/** Every port the data server of `s2cs` listens on now (from its open paths). */
export function dataPorts(s2cs: S2cs): number[] {
  return s2cs.data.paths.flatMap((p) => portsOf(p.listeners));
}

/** The ports of `ports` this process still holds (empty when all were freed). */
export async function heldPorts(ports: readonly number[]): Promise<number[]> {
  const held: number[] = [];
  for (const p of ports) if (!(await portReleased(p))) held.push(p);
  return held;
}

/** What one end of an application connection saw. */
export interface StreamEnd {
  session: number;
  stream: number;
  socket: net.Socket;
  /** Octets received after the header, and their SHA-256 once the peer's FIN came. */
  received: number;
  receivedSha?: string;
  /** Octets written after the header, and their SHA-256 once all were written. */
  sent: number;
  sentSha?: string;
  gotEnd: boolean;
  /** The first socket error (e.g. ECONNRESET, EPIPE: the connection was reset). */
  error?: string;
  firstByteAt: number;
  lastByteAt: number;
  closedAt: number;
  /** Resolves when the socket closed (never rejects). */
  closed: Promise<void>;
}

function newEnd(socket: net.Socket, session: number, stream: number): StreamEnd {
  const end: StreamEnd = {
    session, stream, socket, received: 0, sent: 0, gotEnd: false, firstByteAt: 0, lastByteAt: 0, closedAt: 0,
    closed: new Promise<void>((resolve) => socket.once('close', () => resolve())),
  };
  void end.closed.then(() => (end.closedAt = performance.now()));
  socket.on('error', (e: NodeJS.ErrnoException) => void (end.error ??= e.code ?? e.message));
  return end;
}

/** Hash what arrives on `socket` (after `skip` octets already taken) into `end`. */
function hashIncoming(socket: net.Socket, end: StreamEnd, first?: Buffer): void {
  const hash = createHash('sha256');
  const take = (d: Buffer): void => {
    if (d.length === 0) return;
    if (end.firstByteAt === 0) end.firstByteAt = performance.now();
    end.lastByteAt = performance.now();
    hash.update(d);
    end.received += d.length;
  };
  if (first) take(first);
  socket.on('data', take);
  socket.once('end', () => {
    end.gotEnd = true;
    end.receivedSha = hash.digest('hex');
  });
}

/** Generate `bytes` octets of `seed` into `socket` (chunk by chunk, with backpressure), then FIN; never rejects. */
function sendData(socket: net.Socket, end: StreamEnd, seed: string, bytes: number): Promise<void> {
  return writeData(socket, seed, bytes, { onProgress: (n) => (end.sent = n) }).then(
    (r) => void (end.sentSha = r.sha256),
    () => undefined,
  );
}

/** A producer application: one `net.Server` (allowHalfOpen) answering every connection with `bytesDown` generated octets. */
export interface ProducerApp {
  server: net.Server;
  address: string;
  port: number;
  ends: StreamEnd[];
  close(): Promise<void>;
}

/** Seeds of the two directions of (session, stream). */
export const seedUp = (session: number, stream: number): string => `up ${session}/${stream}`;
export const seedDown = (session: number, stream: number): string => `down ${session}/${stream}`;

/** Start a producer application on 127.0.0.1 (closed at teardown). */
export async function producerApp(t: ExecutionContext, bytesDown: number): Promise<ProducerApp> {
  const ends: StreamEnd[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onHead = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      if (head.length < 8) return;
      socket.off('data', onHead);
      const end = newEnd(socket, head.readUInt32BE(0), head.readUInt32BE(4));
      ends.push(end);
      hashIncoming(socket, end, head.subarray(8));
      void sendData(socket, end, seedDown(end.session, end.stream), bytesDown);
    };
    socket.on('data', onHead);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const close = (): Promise<void> =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  t.teardown(close);
  return { server, port, address: `127.0.0.1:${port}`, ends, close };
}

/** A consumer application connection to `listener`: sends the header and `bytesUp` generated octets, reads everything. */
export async function consumerStream(t: ExecutionContext, listener: string, session: number, stream: number, bytesUp: number): Promise<StreamEnd> {
  const socket = await within(consumerApp(listener), 30_000, `connect to ${listener}`);
  t.teardown(() => void socket.destroy());
  const end = newEnd(socket, session, stream);
  hashIncoming(socket, end);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(session, 0);
  head.writeUInt32BE(stream, 4);
  socket.write(head);
  void sendData(socket, end, seedUp(session, stream), bytesUp);
  return end;
}

/** Check that a finished stream carried every octet intact both ways (consumer end `c`, producer end `p`). */
export function checkStream(t: ExecutionContext, c: StreamEnd, p: StreamEnd | undefined, bytesUp: number, bytesDown: number): void {
  const what = `session ${c.session} stream ${c.stream}`;
  if (!p) {
    t.fail(`${what}: the producer never got it`);
    return;
  }
  t.true(c.gotEnd && p.gotEnd, `${what}: both ends got FIN`);
  t.is(c.sent, bytesUp, `${what}: consumer sent all`);
  t.is(p.received, bytesUp, `${what}: producer received all`);
  t.is(p.sent, bytesDown, `${what}: producer sent all`);
  t.is(c.received, bytesDown, `${what}: consumer received all`);
  t.truthy(c.sentSha);
  t.is(p.receivedSha, c.sentSha, `${what}: SHA-256 consumer → producer`);
  t.truthy(p.sentSha);
  t.is(c.receivedSha, p.sentSha, `${what}: SHA-256 producer → consumer`);
}

/** The clients of a session: the S2UC on each facility and the producer's application controller. */
export interface Controls {
  prodU: S2ucClient;
  consU: S2ucClient;
  appctrl: S2ucClient;
}

/** The replies that set a session up. */
export interface OpenSession {
  uid: string;
  prod: ResponseMessage;
  cons: ResponseMessage;
  /** The consumer application connects to these (one per stream index). */
  listeners: readonly string[];
}

/**
 * Set a session up as the flow of the spec (§4.2): REQUEST(PROD) with the
 * controller's HELLO, then REQUEST(CONS) with UPDATETARGETS to the
 * producer's listeners.
 */
export async function openSession(
  c: Controls,
  p: { uid: string; numConn: number; producer: string; rate?: number; keep?: boolean },
): Promise<OpenSession> {
  const extra = { ...(p.rate === undefined ? {} : { rate: p.rate }), ...(p.keep ? { keep: true } : {}) };
  const [prod, hello] = await Promise.all([
    c.prodU.request({ uid: p.uid, role: 'PROD', numConn: p.numConn, ...extra }),
    appctrlHello(c.appctrl.session, { uid: p.uid, role: 'PROD', prodListeners: [p.producer] }),
  ]);
  if (prod.state !== 'active' || hello.listeners.join() !== prod.listeners.join()) throw new Error('unexpected producer-side replies');
  const [cons, upd] = await Promise.all([
    c.consU.request({ uid: p.uid, role: 'CONS', numConn: p.numConn, ...extra }),
    c.consU.update({ uid: p.uid, role: 'CONS', remoteListeners: prod.listeners }),
  ]);
  if (cons.state !== 'active' || upd.listeners.join() !== cons.listeners.join()) throw new Error('unexpected consumer-side replies');
  return { uid: p.uid, prod, cons, listeners: cons.listeners };
}

/** The producer end of (session, stream), once it arrived (bounded). */
export async function producerEnd(app: ProducerApp, session: number, stream: number, ms = 30_000): Promise<StreamEnd> {
  const find = (): StreamEnd | undefined => app.ends.find((e) => e.session === session && e.stream === stream);
  await until(() => find() !== undefined, ms, `producer connection of ${session}/${stream}`);
  return find() as StreamEnd;
}
