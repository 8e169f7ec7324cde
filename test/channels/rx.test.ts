/**
 * Issue 13: socket reads into reused memory (channels/rx.ts, transports/reads.ts)
 * and the views API that gives it back (IncomingMessage.views).
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { PassThrough } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { connect, createServer, defineProfile, startTls, tlsProfile, type IncomingMessage, type Session } from '../../src/index.js';
import { RxBuffers } from '../../src/channels/rx.js';
import { readInto } from '../../src/transports/index.js';
import { testPki } from '../helpers/certs.js';

test('RxBuffers: reads land in order; a block is reused only once no view into it is held, and never once one was given away', (t) => {
  const rx = new RxBuffers();
  const fill = (n: number, v: number): Buffer => {
    const into = rx.next();
    t.true(into.length >= 64 * 1024, 'a read is offered at least 64 KiB');
    into.fill(v, 0, n);
    return rx.landed(n);
  };
  // Block 1: a view is held (as a message queue would), block 2: nothing held, block 3: given away.
  const a = fill(200 * 1024, 1);
  const first = rx.current;
  first.hold();
  fill(1, 2); // next() rotates: less than 64 KiB left
  t.not(rx.current, first);
  const second = rx.current;
  fill(200 * 1024, 3);
  second.hold();
  const given = second.own(second.buf.subarray(0, 8192));
  const givenBefore = Buffer.from(given);
  t.true(second.given, 'a long view handed out for good gives its block away');
  fill(1, 4); // rotates: the first block is still held, the second given away → a new block
  t.is(rx.allocated, 3);
  t.is(rx.reused, 0);
  t.true(a.every((x) => x === 1), 'the held view is untouched');
  first.release();
  fill(200 * 1024, 5);
  rx.current.hold(); // as a queued message would: no rewinding the third block
  fill(1, 6); // rotates: the first block is free now
  t.is(rx.current, first, 'the released block is reused');
  t.is(rx.reused, 1);
  t.true(given.equals(givenBefore), 'the given-away view is never overwritten');
  // A short view handed out for good is a copy, and the block stays reusable.
  const b = rx.current;
  b.hold();
  const copy = b.own(b.buf.subarray(0, 100));
  t.not(copy.buffer, b.buf.buffer);
  t.false(b.given);
  t.is(b.refs, 0);
});

test('RxBuffers: a read goes to the start of the block, into the block itself, when nothing holds a view into it', (t) => {
  const rx = new RxBuffers();
  const block = rx.current;
  const into1 = rx.next();
  t.is(into1, block.buf, 'the first read goes into the block itself (no view made)');
  into1.fill(1, 0, 100);
  const a = rx.landed(100);
  block.hold(); // a message keeps the view
  const into2 = rx.next();
  t.is(into2.byteOffset - block.buf.byteOffset, 100, 'a held view is never overwritten: the next read goes after it');
  into2.fill(2, 0, 50);
  rx.landed(50);
  t.true(a.every((x) => x === 1));
  block.release();
  t.is(rx.next(), block.buf, 'once nothing is held, reads start over at the front of the same block');
  t.is(rx.allocated, 1);
  // A view given away for good: that block is never written again.
  const g = rx.next();
  g.fill(7, 0, 8192);
  const v = rx.landed(8192);
  block.hold();
  const given = block.own(v);
  const into3 = rx.next();
  t.not(into3.buffer === block.buf.buffer && into3.byteOffset === block.buf.byteOffset, true, 'not rewound over the given-away view');
  into3.fill(9);
  t.true(given.every((x) => x === 7), 'the given-away view is untouched');
});

test('readInto: an accepted TCP socket and a TLS server socket read into reused memory on this Node; another Duplex is left as it is', async (t) => {
  t.timeout(30_000);
  const pki = testPki();
  const payload = randomBytes(3 * 1024 * 1024);
  const viaServer = async (server: net.Server, connected: 'connection' | 'secureConnection', dial: (port: number) => net.Socket): Promise<boolean> => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const got = new Promise<{ took: boolean; data: Buffer }>((resolve) => {
      server.once(connected, (sock: net.Socket) => {
        const parts: Buffer[] = [];
        const buf = Buffer.alloc(64 * 1024);
        const took = readInto(sock, { buffer: () => buf, callback: (n) => void parts.push(Buffer.from(buf.subarray(0, n))) });
        sock.on('data', () => parts.push(Buffer.from('data event')));
        sock.resume();
        sock.once('end', () => {
          resolve({ took, data: Buffer.concat(parts) });
          sock.end();
        });
      });
    });
    const c = dial(port);
    c.end(payload);
    const { took, data } = await got;
    c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    t.true(data.equals(payload), `${connected}: every octet arrived, in order, through the callback only`);
    return took;
  };
  t.true(await viaServer(net.createServer(), 'connection', (port) => net.connect(port, '127.0.0.1')), 'accepted TCP socket');
  const tlsServer = tls.createServer({ cert: pki.serverCert, key: pki.serverKey });
  t.true(await viaServer(tlsServer, 'secureConnection', (port) => tls.connect({ port, host: '127.0.0.1', ca: pki.ca, servername: 'localhost' })), 'TLS server socket');
  t.false(readInto(new PassThrough(), { buffer: () => Buffer.alloc(16), callback: () => undefined }), 'not a socket: false, nothing changed');
});

const WINDOW = 512 * 1024;

async function pair(t: ExecutionContext, onMessage: (msg: IncomingMessage) => Promise<string | Buffer>, tlsOffered = false): Promise<{ client: Session; server: () => Session }> {
  const profile = defineProfile({ uri: 'urn:test:rx', async onMessage(msg, res) { await res.reply(await onMessage(msg)); } });
  const pki = testPki();
  // A fixed 512 KiB window: the octets the reader may hold, and so the blocks they pin, are
  // bounded by it however slowly the (busy) machine runs the handler.
  const limits = { receiveWindow: WINDOW, maxReceiveWindow: WINDOW };
  const srv = createServer({ profiles: tlsOffered ? [tlsProfile({ cert: pki.serverCert, key: pki.serverKey }), profile] : [profile], limits });
  let peer: Session | undefined;
  srv.on('session', (s) => (peer = s));
  const { port } = await srv.listen(0, '127.0.0.1');
  const client = await connect({ host: '127.0.0.1', port });
  t.teardown(async () => {
    client.destroy();
    await srv.close(200).catch(() => undefined);
  });
  return { client, server: () => peer as Session };
}

async function send(client: Session, total: number, seed: number): Promise<{ reply: string; sha: string }> {
  const ch = await client.startChannel('urn:test:rx');
  const { body, reply } = ch.createRequest();
  const h = createHash('sha256');
  for (let sent = 0, i = 0; sent < total; i++) {
    const chunk = Buffer.alloc(Math.min(100_000 + (i % 7) * 9_000, total - sent), (seed + i) & 0xff);
    h.update(chunk);
    sent += chunk.length;
    if (!body.write(chunk)) await new Promise((r) => body.once('drain', r));
  }
  body.end();
  return { reply: await (await reply).text(), sha: h.digest('hex') };
}

test('views(): 64 MiB arrive intact through views, in reused memory (a few blocks, reused thousands of times), at both ends of the session', async (t) => {
  t.timeout(60_000);
  const { client, server } = await pair(t, async (msg) => {
    const h = createHash('sha256');
    for await (const v of msg.views()) h.update(v);
    return h.digest('hex');
  });
  const { reply, sha } = await send(client, 64 * 1024 * 1024, 3);
  t.is(reply, sha);
  const rx = server().rx;
  t.truthy(rx, 'the listener reads into reused memory');
  t.truthy(client.rx, 'the dialling side reads into reused memory too');
  // Unread octets (at most the window) pin at most one block per 192 KiB read into it
  // (a block takes reads until less than 64 KiB is left), plus the one being read into.
  const bound = Math.ceil(WINDOW / (192 * 1024)) + 2;
  t.true((rx?.allocated ?? 99) <= bound, `blocks allocated: ${rx?.allocated} (bound ${bound})`);
  t.true((rx?.reused ?? 0) >= 100, `blocks reused: ${rx?.reused}`);
});

test('chunks kept from a Readable and bodies kept from bytes() stay intact while later reads reuse the memory', async (t) => {
  t.timeout(60_000);
  const kept: Buffer[] = [];
  const { client, server } = await pair(t, async (msg) => {
    if (msg.contentType === 'text/plain') {
      kept.push(await msg.bytes()); // small: copied
      return 'ok';
    }
    await new Promise<void>((resolve, reject) => {
      msg.on('data', (c: Buffer) => kept.push(c)); // long chunks: their blocks are given away
      msg.once('end', resolve);
      msg.once('error', reject);
    });
    return 'ok';
  });
  const ch = await client.startChannel('urn:test:rx');
  const smalls = Array.from({ length: 200 }, (_, i) => Buffer.alloc(50 + i, i & 0xff));
  for (const b of smalls) await ch.request(b, { contentType: 'text/plain' });
  const { sha } = await send(client, 16 * 1024 * 1024, 9);
  // More traffic through the same reused memory after everything above was kept.
  for (const b of smalls) await ch.request(Buffer.alloc(b.length, 0xee), { contentType: 'text/plain' });
  const firstKept = kept.slice(0, 200);
  t.true(firstKept.every((b, i) => b.equals(smalls[i] as Buffer)), 'small bodies kept from bytes() are unchanged');
  const streamed = kept.slice(200, kept.length - 200);
  t.is(createHash('sha256').update(Buffer.concat(streamed)).digest('hex'), sha, 'chunks kept from the Readable are unchanged');
  t.truthy(server().rx);
});

test('TLS tuning: both ends\' TLS sockets read into reused memory too, and data flows', async (t) => {
  t.timeout(60_000);
  const echoBack = async (msg: IncomingMessage): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const v of msg.views()) parts.push(Buffer.from(v));
    return Buffer.concat(parts);
  };
  const { client, server } = await pair(t, echoBack, true);
  await startTls(client, { ca: testPki().ca, serverName: 'localhost' });
  const ch = await client.startChannel('urn:test:rx');
  const payload = randomBytes(5 * 1024 * 1024);
  t.true((await (await ch.request(payload)).bytes()).equals(payload));
  t.true(client.core.security.tls);
  t.truthy(server().rx, 'listener TLS socket');
  t.truthy(client.rx, 'dialling TLS socket');
});
