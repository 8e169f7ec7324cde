/**
 * A GET of an upload under way gets the octets as they arrive (spec/decade.md
 * §5: the draft's MUST), whenever it joins: before the upload's first octet,
 * or after some octets arrived while nobody was reading.
 *
 * How a GET finds an upload: the server opens it when a PUT's MSG begins — on
 * its first frame, once the entity-header block is there (RFC 3080 §2.2: a
 * message's payload may be split over frames anywhere). This library's own
 * client never sends a frame without body octets, so the PUTs here are
 * written by a scripted raw BEEP peer, which decides exactly which octets
 * have reached the server when the GET joins and which are held back.
 */
import test, { type ExecutionContext } from 'ava';
import { JetStreamDecadeStore, nameOf, SDT_URI, type DecadeStore } from '../../src/decade/index.js';
import { RawPeer, type RawMessage } from '../helpers/raw-peer.js';
import { startNats } from '../helpers/nats.js';
import { octets, sha, startDecade, startDecadeOn, until, type Harness } from '../helpers/decade.js';

/** A PUT written frame by frame by a raw BEEP peer on its own connection. */
interface RawPut {
  /** Send `octets` of the body (in frames the server's window allows); `last` ends the message. */
  send(octets: Buffer, last: boolean): Promise<void>;
  /** The server's reply to the PUT. */
  reply(): Promise<RawMessage>;
  peer: RawPeer;
}

/** Open an SDT channel and send a PUT's header block alone (more `*`), plus `first` octets if given. */
async function rawPut(t: ExecutionContext, port: number, token: string, name: string, size: number, first?: Buffer): Promise<RawPut> {
  const peer = await RawPeer.connect(port);
  t.teardown(() => peer.destroy());
  await peer.greet();
  await peer.startChannel(1, SDT_URI);
  const msgno = peer.nextMsgno(1);
  const head = Buffer.from(`Content-Type: application/octet-stream\r\nDECADE-Op: PUT\r\nDECADE-Name: ${name}\r\nDECADE-Size: ${size}\r\nDECADE-Token: ${token}\r\n\r\n`);
  const send = async (octets: Buffer, last: boolean): Promise<void> => {
    // One frame per step, at most 16 KiB and what the server's window allows (bounded: each
    // step sends at least one octet, and every wait is).
    let off = 0;
    for (let steps = 0; steps <= octets.length && (off < octets.length || (steps === 0 && last)); steps++) {
      if (off < octets.length) await peer.waitWindow(1, 1);
      const n = Math.min(octets.length - off, 16 * 1024, peer.serverEdge(1) - peer.seq(1));
      peer.msg(1, msgno, octets.subarray(off, off + n), !(last && off + n === octets.length));
      off += n;
    }
  };
  await peer.waitWindow(1, head.length + (first?.length ?? 0));
  peer.msg(1, msgno, first === undefined ? head : Buffer.concat([head, first]), true);
  return { send, reply: () => peer.expectReply(1, msgno), peer };
}

/** Read a GET's chunks in the background, counting what arrived. */
function readAll(chunks: AsyncGenerator<Buffer>): { got: Buffer[]; received: () => number; error: () => unknown; ended: () => boolean; done: Promise<void> } {
  const got: Buffer[] = [];
  let received = 0;
  let error: unknown;
  let ended = false;
  const done = (async () => {
    try {
      for await (const chunk of chunks) {
        got.push(chunk);
        received += chunk.byteLength;
      }
      ended = true;
    } catch (err) {
      error = err;
    }
  })();
  return { got, received: () => received, error: () => error, ended: () => ended, done };
}

test('a GET joining an upload before its first octet reached the server gets each piece as it arrives, then the whole object verified', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  const PIECE = 1000;
  const PIECES = 12;
  const h = await startDecade(t);
  const { c, token } = await h.session();
  const data = octets(PIECE * PIECES, 31);
  const name = nameOf(data).name;

  const put = await rawPut(t, h.port, token, name, data.length);
  await until('the server to open the upload on the header block', () => c.status(token, name).then((s) => s.objects[0]?.state === 'uploading', () => false));
  t.is((await c.status(token, name)).objects[0]?.size, data.length, 'the upload is known by its declared size before any octet');

  // The GET joins now: not one octet of the object has reached the server.
  const { range, chunks } = await c.getChunks(token, name);
  t.is(range.state, 'uploading');
  t.is(range.length, data.length);
  const r = readAll(chunks);
  for (let i = 0; i < PIECES; i++) {
    await put.send(data.subarray(i * PIECE, (i + 1) * PIECE), i === PIECES - 1);
    // The next piece leaves only once the GET has this one.
    await until(`the GET to receive piece ${i} before piece ${i + 1} is sent`, () => r.received() >= (i + 1) * PIECE || r.error() !== undefined, 30_000);
    t.is(r.error(), undefined, `no read error at piece ${i}`);
    t.false(r.ended() && i < PIECES - 1, 'the GET does not end before the upload does');
  }
  const created = await put.reply();
  t.is(created.type, 'RPY', created.text);
  t.regex(created.body, /<created [^>]*new=.true./);
  await r.done;
  t.is(r.error(), undefined);
  t.true(r.ended(), 'the GET ended once the upload was verified');
  t.is(sha(Buffer.concat(r.got)), sha(data), 'the GET received the object, whole and in order');
  t.deepEqual(put.peer.violations, []);
  t.is(sha(await c.get(token, name)), sha(data), 'and the object is stored');
});

/**
 * The first octets arrive while nobody reads (so they are not kept in memory
 * for readers: a later reader reads them back from the store's writer); a
 * GET joins; more octets arrive — fewer than a staging buffer — and the rest
 * is held back until the GET has the first octets. A server that handed
 * octets to its writer only when a 1 MiB staging buffer filled would leave
 * the first octets in the JetStream writer's unpublished partial chunk for
 * ever (a JetStream chunk is readable once published): the GET would never
 * get them, and the PUT would wait for it.
 */
async function lateReader(t: ExecutionContext, h: Harness<DecadeStore>): Promise<void> {
  const { c, token } = await h.session();
  const FIRST = 10_000;
  const MORE = 300_000; // past one 256 KiB JetStream chunk, short of a 1 MiB staging buffer
  const data = octets(FIRST + MORE + 100_000, 32);
  const name = nameOf(data).name;
  // The header block and the first octets in one frame: the server opens the upload and takes
  // them in before it can answer any other connection's request.
  const put = await rawPut(t, h.port, token, name, data.length, data.subarray(0, FIRST));
  await until('the server to open the upload', () => c.status(token, name).then((s) => s.objects[0]?.state === 'uploading', () => false));
  const { range, chunks } = await c.getChunks(token, name);
  t.is(range.state, 'uploading');
  const r = readAll(chunks);
  await put.send(data.subarray(FIRST, FIRST + MORE), false);
  await until('the GET to receive the first octets while the rest of the upload is held back', () => r.received() >= FIRST || r.error() !== undefined, 30_000);
  t.is(r.error(), undefined);
  t.false(r.ended(), 'the GET has not ended: the upload is incomplete');
  await put.send(data.subarray(FIRST + MORE), true);
  const created = await put.reply();
  t.is(created.type, 'RPY', created.text);
  await r.done;
  t.is(r.error(), undefined);
  t.is(sha(Buffer.concat(r.got)), sha(data), 'the GET received the object, whole and in order');
  t.deepEqual(put.peer.violations, []);
}

test('file store: a GET joining after the first octets arrived unread gets them while the upload is still incomplete', async (t) => {
  t.timeout(120_000); // a bound on every wait below (not a measurement)
  await lateReader(t, await startDecade(t));
});

test('jetstream store: a GET joining after the first octets arrived unread gets them while the upload is still incomplete (octets reach the writer per piece once someone reads)', async (t) => {
  t.timeout(180_000); // a bound on every wait below (not a measurement)
  const nats = await startNats((fn) => t.teardown(fn), 1);
  const store = new JetStreamDecadeStore({ servers: nats.servers, bucket: `early${process.pid}`, timeoutMs: 20_000 });
  await lateReader(t, await startDecadeOn(t, store));
});
