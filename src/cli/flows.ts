/**
 * `beepstream flows …`: the FNAA (`flows serve`) and the FNUA commands
 * (`create`, `describe`, `list`, `delete`, `publish`, `subscribe`).
 *
 * A CLI role like the other commands: it reuses the CLI's option helpers
 * (`src/cli/`: security options, config files, usage errors, signals) so the
 * flags mean the same as for `listen` and `connect`. Bad arguments are a
 * `UsageError` (exit 2); a refusal by the server a {@link FlowsError} (exit 1,
 * printed as `beepstream: error 537: NOT_AUTHORIZED: …`).
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Buffer } from 'node:buffer';
import { Command, Option } from 'commander';
import { connect } from '../channels/index.js';
import { UsageError, parseEndpoint, parsePositiveInt } from './address.js';
import { clientTuning } from './security.js';
import { untilSignal } from './signals.js';
import { FlowsClient, toFlowsError, FlowsError, checkFlowName, parseEventType, type EventInit, type FlowEvent, type FlowInfo, type SubscribeFrom, type AclChange, type FlowAcl } from '../flows/index.js';
import { runFlowsDemo } from './flows-demo.js';
import { FLOWS_DEFAULT_PORT, addServeCommand, ids } from './flows-serve.js';

export { FLOWS_DEFAULT_PORT };

/** Options every client command takes. */
interface ClientFlags {
  server: string;
  tlsCa?: string;
  serverName?: string;
  insecure?: boolean;
  user?: string;
  password?: string;
  json?: boolean;
}

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--server <host:port>', 'the FNAA to talk to', `127.0.0.1:${FLOWS_DEFAULT_PORT}`)
    .option('--tls-ca <file>', 'trust only this CA for the server certificate')
    .option('--server-name <name>', 'name the server certificate must match (default: the host)')
    .option('--insecure', 'no TLS (only against `flows serve --insecure`: development and tests)')
    .option('--user <name>', 'SCRAM-SHA-256 user name (required)')
    .option('--password <secret>', 'its password: env:NAME or file:PATH (a literal value shows in the process listing)')
    .option('--json', 'print JSON instead of text');
}

/** Connect, tune and authenticate as the flags say. */
async function open(f: ClientFlags): Promise<FlowsClient> {
  const at = parseEndpoint(f.server);
  if (f.user === undefined || f.password === undefined) throw new UsageError('--user and --password are required (SCRAM-SHA-256)');
  const tune = clientTuning({
    ...(f.insecure ? {} : { tls: true }),
    ...(f.tlsCa !== undefined ? { tlsCa: f.tlsCa } : {}),
    ...(f.serverName !== undefined ? { serverName: f.serverName } : {}),
    sasl: 'SCRAM-SHA-256',
    user: f.user,
    password: f.password,
  });
  if (f.insecure && (f.tlsCa !== undefined || f.serverName !== undefined)) throw new UsageError('--insecure goes without --tls-ca and --server-name');
  let session;
  try {
    session = await connect({ host: at.host, port: at.port });
  } catch (err) {
    throw toFlowsError(err);
  }
  try {
    await tune(session, () => undefined);
  } catch (err) {
    session.destroy();
    if (err instanceof UsageError) throw err;
    const e = toFlowsError(err);
    if (e instanceof FlowsError && e.replyCode >= 530 && e.replyCode <= 538) throw new FlowsError('NOT_AUTHORIZED', `authentication failed: ${e.text}`, { origin: 'remote', replyCode: e.replyCode, cause: err });
    throw e;
  }
  return new FlowsClient(session);
}

async function withClient<T>(f: ClientFlags, fn: (c: FlowsClient) => Promise<T>): Promise<T> {
  const c = await open(f);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

function flowArg(name: string): string {
  try {
    return checkFlowName(name);
  } catch (err) {
    throw new UsageError(`invalid flow name ${JSON.stringify(name)}: ${(err as FlowsError).text.replace(/^flow: /, '')}`);
  }
}

function printFlow(f: FlowInfo): string {
  return [
    `flow ${f.name}${f.description ? ` — ${f.description}` : ''}`,
    `  created ${f.created}; events ${f.events} (offsets ${f.firstOffset}–${f.nextOffset - 1}); next offset ${f.nextOffset}`,
    `  publish: ${f.acl.publish.join(', ') || '(nobody)'}; subscribe: ${f.acl.subscribe.join(', ') || '(nobody)'}; admin: ${f.acl.admin.join(', ')}`,
    ...(f.retention?.maxAgeSeconds !== undefined || f.retention?.maxBytes !== undefined
      ? [`  retention: ${[f.retention.maxAgeSeconds !== undefined ? `max age ${f.retention.maxAgeSeconds} s` : '', f.retention.maxBytes !== undefined ? `max ${f.retention.maxBytes} octets` : ''].filter(Boolean).join(', ')}`]
      : []),
  ].join('\n');
}

/** Parse `--from`: start, end, acked, an offset, or an RFC 3339 time. */
export function parseFromOption(text: string): SubscribeFrom {
  if (text === 'start' || text === 'end' || text === 'acked') return text;
  if (/^[0-9]{1,15}$/.test(text) && Number(text) >= 1) return { offset: Number(text) };
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i.test(text) && !Number.isNaN(Date.parse(text))) return { time: text };
  throw new UsageError(`invalid --from ${JSON.stringify(text)}: expected start, end, acked, an offset (1, 2…) or an RFC 3339 time`);
}

/** An event as `subscribe` prints it: one JSON object per line (payload as `data` or `data64`). */
export function eventLine(e: FlowEvent): string {
  const { data, ...rest } = e;
  return JSON.stringify(typeof data === 'string' ? { ...rest, data } : { ...rest, data64: Buffer.from(data).toString('base64') });
}

/** Parse one JSON line of `publish` input into an event (`defaults` fill type and source). */
export function parseEventLine(line: string, n: number, defaults: { type?: string; source?: string }): EventInit {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    throw new UsageError(`line ${n}: not valid JSON`);
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new UsageError(`line ${n}: expected a JSON object`);
  const r = o as Record<string, unknown>;
  const str = (k: string): string | undefined => {
    if (r[k] === undefined) return undefined;
    if (typeof r[k] !== 'string') throw new UsageError(`line ${n}: "${k}" must be a string`);
    return r[k] as string;
  };
  const type = str('type') ?? defaults.type;
  const source = str('source') ?? defaults.source;
  if (type === undefined) throw new UsageError(`line ${n}: no "type" (give it in the line or with --type)`);
  if (source === undefined) throw new UsageError(`line ${n}: no "source" (give it in the line or with --source)`);
  const d = str('data');
  const d64 = str('data64');
  if ((d === undefined) === (d64 === undefined)) throw new UsageError(`line ${n}: give exactly one of "data" (text) and "data64" (base64)`);
  const e: EventInit = { type, source, data: d ?? new Uint8Array(Buffer.from(d64 as string, 'base64')) };
  for (const k of ['id', 'time', 'contentType', 'lang'] as const) {
    const v = str(k);
    if (v !== undefined) e[k] = v;
  }
  if (r.seq !== undefined) {
    if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) throw new UsageError(`line ${n}: "seq" must be an integer ≥ 1`);
    e.seq = r.seq;
  }
  return e;
}

/** Add `flows` and its subcommands to the program. */
export function addFlowsCommands(program: Command): void {
  const flows = program.command('flows').description('event flows over BEEP (spec/flows.md): an FNAA (serve) and its user agent commands');

  flows
    .command('demo')
    .description('the flow main job in one command, on embedded defaults: a server (TLS, SCRAM, SQLite in a temporary directory), a publisher, two durable subscribers (one with a type filter); exits 0 when every check passed')
    .option('--events <n>', 'events to publish', '10000')
    .action(async (f: { events: string }) => {
      process.exitCode = await runFlowsDemo(f);
    });

  addServeCommand(flows);

  clientOptions(flows.command('create').description('create a flow; you are its admin').argument('<flow>', 'flow name'))
    .option('--description <text>', 'free text')
    .option('--publish <ids>', 'comma-separated identities that may publish (default: you; * for everyone)')
    .option('--subscribe <ids>', 'comma-separated identities that may subscribe (default: you)')
    .option('--admin <ids>', 'further admins (comma-separated)')
    .option('--max-age <seconds>', 'retention: keep events at most this long')
    .option('--max-bytes <octets>', 'retention: keep at most this much payload (oldest events go first)')
    .action(async (name: string, f: ClientFlags & { description?: string; publish?: string; subscribe?: string; admin?: string; maxAge?: string; maxBytes?: string }) => {
      const flow = flowArg(name);
      const acl: Record<string, string[]> = {};
      for (const k of ['publish', 'subscribe', 'admin'] as const) {
        const v = ids(f[k], `--${k}`);
        if (v) acl[k] = v;
      }
      const retention: { maxAgeSeconds?: number; maxBytes?: number } = {};
      for (const [flag, v, k] of [['--max-age', f.maxAge, 'maxAgeSeconds'], ['--max-bytes', f.maxBytes, 'maxBytes']] as const) {
        if (v === undefined) continue;
        if (!/^[1-9]\d{0,15}$/.test(v)) throw new UsageError(`${flag} must be a positive integer, not ${JSON.stringify(v)}`);
        retention[k] = Number(v);
      }
      const info = await withClient(f, (c) => c.create(flow, { ...(f.description !== undefined ? { description: f.description } : {}), acl, ...(Object.keys(retention).length > 0 ? { retention } : {}) }));
      process.stdout.write(f.json ? `${JSON.stringify(info)}\n` : `created ${printFlow(info)}\n`);
    });

  clientOptions(flows.command('describe').description('describe a flow').argument('<flow>', 'flow name')).action(async (name: string, f: ClientFlags) => {
    const flow = flowArg(name);
    const info = await withClient(f, (c) => c.describe(flow));
    process.stdout.write(f.json ? `${JSON.stringify(info)}\n` : `${printFlow(info)}\n`);
  });

  clientOptions(flows.command('list').description('list the flows you hold a permission on')).action(async (f: ClientFlags) => {
    const list = await withClient(f, (c) => c.list());
    process.stdout.write(f.json ? `${JSON.stringify(list)}\n` : list.map((x) => `${x.name}\t${x.events} events\t${x.description}\n`).join(''));
  });

  const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
  clientOptions(
    flows
      .command('acl')
      .description('change a flow\'s ACL (admin; spec/flows.md §5.1): --set replaces a list, then --grant adds and --revoke removes; live subscriptions follow at once')
      .argument('<flow>', 'flow name'),
  )
    .option('--set <perm=ids>', 'replace a list: publish=, subscribe= or admin= then comma-separated identities (repeatable)', collect)
    .option('--grant <perm=ids>', 'add identities to a list (repeatable)', collect)
    .option('--revoke <perm=ids>', 'remove identities from a list (repeatable)', collect)
    .action(async (name: string, f: ClientFlags & { set?: string[]; grant?: string[]; revoke?: string[] }) => {
      const flow = flowArg(name);
      const change: AclChange = {};
      for (const how of ['set', 'grant', 'revoke'] as const) {
        for (const item of f[how] ?? []) {
          const m = /^(publish|subscribe|admin)=(.*)$/.exec(item);
          if (!m) throw new UsageError(`--${how} ${JSON.stringify(item)}: expected publish=IDS, subscribe=IDS or admin=IDS`);
          const perm = m[1] as keyof FlowAcl;
          const list = ids(m[2], `--${how} ${perm}`) as string[];
          const to = (change[how] ??= {});
          to[perm] = [...(to[perm] ?? []), ...list];
        }
      }
      if (Object.keys(change).length === 0) throw new UsageError('flows acl: give at least one --set, --grant or --revoke');
      const info = await withClient(f, (c) => c.acl(flow, change));
      process.stdout.write(f.json ? `${JSON.stringify(info)}\n` : `${printFlow(info)}\n`);
    });

  clientOptions(flows.command('delete').description('delete a flow and its events (admin)').argument('<flow>', 'flow name')).action(async (name: string, f: ClientFlags) => {
    const flow = flowArg(name);
    await withClient(f, (c) => c.delete(flow));
    process.stdout.write(f.json ? `${JSON.stringify({ deleted: flow })}\n` : `deleted ${flow}\n`);
  });

  clientOptions(
    flows
      .command('publish')
      .description('publish events read as JSON lines ({"type": "{ns}name", "source": "host", "data": "text"} or "data64") from standard input or --file')
      .argument('<flow>', 'flow name'),
  )
    .requiredOption('--producer <id>', 'producer id: sequence numbers continue from the last one the server stored for it')
    .option('--file <path>', 'read the JSON lines from this file instead of standard input')
    .option('--type <{ns}name>', 'type of lines that give none')
    .option('--source <host>', 'source of lines that give none (default: your user name)')
    .option('--batch <n>', 'events per publish request', '500')
    .action(async (name: string, f: ClientFlags & { producer: string; file?: string; type?: string; source?: string; batch: string }) => {
      const flow = flowArg(name);
      const batchSize = parsePositiveInt('--batch', f.batch, 10_000);
      if (f.type !== undefined) {
        try {
          parseEventType(f.type);
        } catch {
          throw new UsageError(`invalid --type ${JSON.stringify(f.type)}: expected {namespace-URI}local-name`);
        }
      }
      const defaults = { ...(f.type !== undefined ? { type: f.type } : {}), source: f.source ?? f.user };
      const input = f.file === undefined || f.file === '-' ? process.stdin : createReadStream(f.file);
      if (f.file !== undefined && f.file !== '-') {
        await new Promise<void>((resolve, reject) => {
          (input as ReturnType<typeof createReadStream>).once('open', () => resolve());
          input.once('error', () => reject(new UsageError(`--file: cannot read ${JSON.stringify(f.file)}`)));
        });
      }
      const result = await withClient(f, async (c) => {
        const producer = await c.producer(flow, f.producer);
        let pending: EventInit[] = [];
        let count = 0;
        let duplicates = 0;
        let first = 0;
        let last = 0;
        const send = async (): Promise<void> => {
          if (pending.length === 0) return;
          const r = await producer.publish(pending);
          count += pending.length;
          duplicates += r.duplicates;
          if (first === 0) first = r.offsets[0] ?? 0;
          last = r.offsets[r.offsets.length - 1] ?? last;
          pending = [];
        };
        let n = 0;
        try {
          for await (const line of createInterface({ input, crlfDelay: Infinity })) {
            n++;
            if (line.trim() === '') continue;
            pending.push(parseEventLine(line, n, defaults));
            if (pending.length >= batchSize) await send();
          }
          await send();
        } catch (err) {
          if (err instanceof UsageError && count > 0) throw new UsageError(`${err.message} (${count} events before it were published)`);
          throw err;
        }
        return { flow, producer: f.producer, events: count, duplicates, firstOffset: first, lastOffset: last, lastSeq: producer.seq };
      });
      process.stdout.write(f.json ? `${JSON.stringify(result)}\n` : `published ${result.events} events to ${flow}${result.events ? ` (offsets ${result.firstOffset}–${result.lastOffset}${result.duplicates ? `, ${result.duplicates} already stored` : ''})` : ''}\n`);
    });

  clientOptions(
    flows
      .command('subscribe')
      .description('print a flow\'s events as JSON lines; with --consumer, acknowledge each batch once printed (resume with --from acked)')
      .argument('<flow>', 'flow name'),
  )
    .option('--from <where>', 'start, end, acked (with --consumer), an offset, or an RFC 3339 time', 'end')
    .option('--consumer <name>', 'durable consumer name: the server keeps its acknowledged position')
    .addOption(new Option('--type <{ns}name...>', 'only these types ({ns}* for a whole namespace)'))
    .option('--limit <n>', 'stop after this many events')
    .option('--no-follow', 'stop at the end of the flow instead of waiting for new events')
    .action(async (name: string, f: ClientFlags & { from: string; consumer?: string; type?: string[]; limit?: string; follow: boolean }) => {
      const flow = flowArg(name);
      const from = parseFromOption(f.from);
      if (from === 'acked' && f.consumer === undefined) throw new UsageError('--from acked needs --consumer');
      const limit = f.limit === undefined ? Infinity : parsePositiveInt('--limit', f.limit);
      for (const t of f.type ?? []) {
        try {
          parseEventType(t.endsWith('}*') ? `${t.slice(0, -1)}x` : t);
        } catch {
          throw new UsageError(`invalid --type ${JSON.stringify(t)}: expected {namespace-URI}local-name or {namespace-URI}*`);
        }
      }
      await withClient(f, async (c) => {
        const { stopped, stop } = untilSignal();
        const sub = await c.subscribe(flow, { from, follow: f.follow, ...(f.consumer !== undefined ? { consumer: f.consumer } : {}), ...(f.type ? { types: f.type } : {}) });
        void stopped.then(() => sub.close());
        let n = 0;
        let unacked = 0;
        try {
          for await (const e of sub) {
            process.stdout.write(`${eventLine(e)}\n`);
            n++;
            unacked++;
            if (n >= limit) break;
            if (f.consumer !== undefined && unacked >= 256) {
              await sub.ack(e.offset);
              unacked = 0;
            }
          }
          if (f.consumer !== undefined && unacked > 0) await sub.ack();
        } finally {
          stop();
          await sub.close();
        }
      });
    });
}
