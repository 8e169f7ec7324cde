/**
 * A real DNS server on 127.0.0.1 (UDP, an ephemeral port) serving a test
 * zone, built on the dns2 package: the records given, NXDOMAIN for names not
 * in the zone, NOERROR with no answer (NODATA) for a known name without the
 * type asked, and SERVFAIL for names listed in `servfail`. It counts queries
 * so tests can see that the resolver really asked it.
 */
import dns2 from 'dns2';

const { Packet } = dns2;

/** Records of one name. */
export interface ZoneEntry {
  srv?: { priority: number; weight: number; port: number; target: string }[];
  txt?: string[][];
  a?: string[];
}

/** A running test DNS server. */
export interface TestDns {
  /** `127.0.0.1:port`, for `createResolver({ servers: [server] })`. */
  server: string;
  port: number;
  /** Queries received, as `TYPE name`. */
  queries: string[];
  /** Replace or add a name's records. */
  set(name: string, entry: ZoneEntry): void;
  close(): Promise<void>;
}

/** Start a DNS server for `zone` (names without trailing dots, any case). */
export async function startTestDns(zone: Record<string, ZoneEntry>, servfail: readonly string[] = []): Promise<TestDns> {
  const records = new Map<string, ZoneEntry>(Object.entries(zone).map(([k, v]) => [k.toLowerCase(), v]));
  const queries: string[] = [];
  const server = dns2.createServer({
    udp: true,
    handle: (request, send) => {
      const q = request.questions[0];
      if (!q) return void send(Packet.createErrorResponseFromRequest(request, Packet.RCODE.FORMERR));
      const name = q.name.toLowerCase().replace(/\.$/, '');
      const typeName = Object.entries(Packet.TYPE).find(([, v]) => v === q.type)?.[0] ?? String(q.type);
      queries.push(`${typeName} ${name}`);
      if (servfail.includes(name)) return void send(Packet.createErrorResponseFromRequest(request, Packet.RCODE.SERVFAIL));
      const entry = records.get(name);
      if (!entry) return void send(Packet.createErrorResponseFromRequest(request, Packet.RCODE.NXDOMAIN));
      const response = Packet.createResponseFromRequest(request);
      const answers = response.answers as unknown[]; // dns2 encodes plain record objects
      response.header.aa = 1;
      const base = { name: q.name, class: Packet.CLASS.IN, ttl: 60 };
      if (q.type === Packet.TYPE.SRV) for (const s of entry.srv ?? []) answers.push({ ...base, type: Packet.TYPE.SRV, ...s });
      if (q.type === Packet.TYPE.TXT) for (const t of entry.txt ?? []) answers.push({ ...base, type: Packet.TYPE.TXT, data: t });
      if (q.type === Packet.TYPE.A) for (const a of entry.a ?? []) answers.push({ ...base, type: Packet.TYPE.A, address: a });
      send(response);
    },
  });
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  const port = (addresses.udp as { port: number }).port;
  return {
    server: `127.0.0.1:${port}`,
    port,
    queries,
    set: (name, entry) => void records.set(name.toLowerCase(), entry),
    close: async () => {
      await server.close();
    },
  };
}
