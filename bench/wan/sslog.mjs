// sslog.mjs PREFIX WARM_S — summarize one scenario run's TCP-level samples (SS_LOG in run.sh) as one JSON line.
// Reads PREFIX.a.ss / PREFIX.b.ss (`ss -tinmH` every ~100 ms in the sender's and receiver's namespaces, each
// batch after a "T <epoch s>" line) and PREFIX.before / PREFIX.after (the namespaces' /proc/net/netstat and
// /proc/net/snmp, the router's /proc/net/dev and `tc -s -j qdisc`, /proc/net/softnet_stat).
// Prints: sender (TCP info at the end of the run, summed over its connections, and loss episodes seen in the
// samples), receiver (unread octets, receive space), counter deltas per namespace (nonzero only) and drops
// on the path. "steady" figures cover the samples from WARM s after the first acknowledged octet on.
import fs from 'node:fs';

const [prefix, warmArg] = process.argv.slice(2);
const WARM = Number(warmArg ?? 2);

// ---------- ss samples ----------
const RATE = /^([\d.]+)([KMG]?)bps$/;
const rate = (s) => { const m = RATE.exec(s); return m ? Number(m[1]) * ({ '': 1, K: 1e3, M: 1e6, G: 1e9 })[m[2]] : undefined; };
function parseInfo(line) {
  const o = {};
  const t = line.trim().split(/\s+/);
  for (let i = 0; i < t.length; i++) {
    const w = t[i];
    if (w === 'send' || w === 'pacing_rate' || w === 'delivery_rate') { o[w] = rate(t[++i]); continue; }
    const c = w.indexOf(':');
    if (c < 0) { o[w] = true; continue; }
    const k = w.slice(0, c), v = w.slice(c + 1);
    if (k === 'skmem') { for (const m of v.matchAll(/([a-z]+)(\d+)/g)) o[`sk_${m[1]}`] = Number(m[2]); continue; }
    if (k === 'retrans') { const [now, tot] = v.split('/'); o.retrans_now = Number(now); o.retrans = Number(tot); continue; }
    if (k === 'rtt') { const [r, v2] = v.split('/'); o.rtt = Number(r); o.rttvar = Number(v2); continue; }
    const ms = /^([\d.]+)ms/.exec(v); // busy:123ms rwnd_limited:45ms(3.1%)
    if (ms && /limited|busy/.test(k)) { o[k] = Number(ms[1]); continue; }
    o[k] = /^-?[\d.]+$/.test(v) ? Number(v) : v;
  }
  return o;
}
function readSs(file) {
  const samples = []; // { t, socks: Map(key -> {recvq, sendq, ...info}) }
  let cur = null, head = null;
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { return samples; }
  for (const line of text.split('\n')) {
    if (line.startsWith('T ')) { cur = { t: Number(line.slice(2)), socks: new Map() }; samples.push(cur); head = null; continue; }
    if (!cur || !line.trim()) continue;
    if (/^\s/.test(line) && head) { Object.assign(head, parseInfo(line)); head = null; continue; }
    const f = line.trim().split(/\s+/); // State Recv-Q Send-Q Local Peer  (or without State when filtered by state)
    const off = /^\d+$/.test(f[0]) ? 0 : 1;
    head = { recvq: Number(f[off]), sendq: Number(f[off + 1]) };
    cur.socks.set(`${f[off + 2]} ${f[off + 3]}`, head);
  }
  return samples;
}
const med = (a) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); return s.length ? s[s.length >> 1] : undefined; };
const sum = (a) => a.reduce((x, y) => x + (y ?? 0), 0);

const A = readSs(`${prefix}.a.ss`), B = readSs(`${prefix}.b.ss`);
const tFirst = A.find((s) => [...s.socks.values()].some((k) => (k.bytes_acked ?? 0) > 0))?.t;
const steadyFrom = tFirst === undefined ? Infinity : tFirst + WARM;

function sender() {
  if (!A.length) return null;
  const keys = new Set(A.flatMap((s) => [...s.socks.keys()]));
  const last = new Map(), atSteady = new Map();
  const episodes = { all: 0, steady: 0 }; // ssthresh newly set or lowered between two samples: a loss episode (cwnd reduction)
  const cwnd = [], cwndSteady = [], sendq = [], notsent = [], drate = [];
  for (const k of keys) {
    let prev;
    for (const s of A) {
      const x = s.socks.get(k);
      if (!x) continue;
      if (prev && x.ssthresh !== undefined && (prev.ssthresh === undefined || x.ssthresh < prev.ssthresh)) { episodes.all++; if (s.t >= steadyFrom) episodes.steady++; }
      if (s.t < steadyFrom) atSteady.set(k, x);
      prev = x; last.set(k, x);
    }
  }
  for (const s of A) {
    const xs = [...s.socks.values()];
    if (!xs.length) continue;
    cwnd.push(sum(xs.map((x) => x.cwnd)));
    if (s.t >= steadyFrom) { cwndSteady.push(sum(xs.map((x) => x.cwnd))); drate.push(sum(xs.map((x) => x.delivery_rate))); }
    sendq.push(sum(xs.map((x) => x.sendq)));
    notsent.push(sum(xs.map((x) => x.notsent)));
  }
  const L = [...last.values()], S = [...atSteady.values()];
  const tot = (f, xs = L) => sum(xs.map(f));
  const mss = L[0]?.mss ?? 1448;
  return {
    conns: keys.size, samples: A.length, cc: L.find((x) => x.cubic) ? 'cubic' : L.find((x) => x.bbr) ? 'bbr' : undefined,
    bytes_acked: tot((x) => x.bytes_acked), bytes_acked_steady: tot((x) => x.bytes_acked) - tot((x) => x.bytes_acked, S),
    retrans_segs: tot((x) => x.retrans), retrans_segs_steady: tot((x) => x.retrans) - tot((x) => x.retrans, S),
    bytes_retrans: tot((x) => x.bytes_retrans),
    loss_episodes: episodes.all, loss_episodes_steady: episodes.steady,
    busy_ms: tot((x) => x.busy), rwnd_limited_ms: tot((x) => x.rwnd_limited), sndbuf_limited_ms: tot((x) => x.sndbuf_limited),
    rwnd_limited_ms_steady: tot((x) => x.rwnd_limited) - tot((x) => x.rwnd_limited, S),
    sndbuf_limited_ms_steady: tot((x) => x.sndbuf_limited) - tot((x) => x.sndbuf_limited, S),
    cwnd_max_pkts: Math.max(0, ...cwnd), cwnd_med_steady_pkts: med(cwndSteady), mss,
    ssthresh_last: tot((x) => x.ssthresh), delivery_rate_med_steady: med(drate),
    sendq_max: Math.max(0, ...sendq), sendq_med: med(sendq), notsent_med: med(notsent),
    sndbuf_max: Math.max(0, ...A.flatMap((s) => [...s.socks.values()].map((x) => x.sk_tb ?? 0))),
    minrtt_ms: Math.min(...L.map((x) => x.minrtt ?? Infinity)),
  };
}
function receiver() {
  if (!B.length) return null;
  const rq = [], rqSteady = [];
  let rcvSpace = 0, rb = 0, rcvSsthresh = 0;
  for (const s of B) {
    const xs = [...s.socks.values()];
    if (!xs.length) continue;
    rq.push(sum(xs.map((x) => x.recvq)));
    if (s.t >= steadyFrom) rqSteady.push(sum(xs.map((x) => x.recvq)));
    rcvSpace = Math.max(rcvSpace, sum(xs.map((x) => x.rcv_space)));
    rcvSsthresh = Math.max(rcvSsthresh, sum(xs.map((x) => x.rcv_ssthresh)));
    rb = Math.max(rb, sum(xs.map((x) => x.sk_rb)));
  }
  return { samples: B.length, recvq_max: Math.max(0, ...rq), recvq_med: med(rq), recvq_max_steady: Math.max(0, ...rqSteady), recvq_med_steady: med(rqSteady),
    rcv_space_max: rcvSpace, rcv_ssthresh_max: rcvSsthresh, rcvbuf_max: rb };
}

// ---------- counters ----------
function readSnap(file) {
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { return null; }
  const out = { ns: {}, dev: {}, tc: [], softnetDrops: 0 };
  let sec = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith('== ')) { sec = l.slice(3).split(' '); continue; }
    if (!sec) continue;
    if (sec[1] === 'netstat') {
      // pairs of lines "Prefix: names..." / "Prefix: values..."
      const n = lines[i + 1];
      if (!l.includes(':') || !n || n.split(':')[0] !== l.split(':')[0]) continue;
      const names = l.split(':')[1].trim().split(/\s+/), vals = n.split(':')[1].trim().split(/\s+/);
      const p = l.split(':')[0];
      const o = (out.ns[sec[0]] ??= {});
      names.forEach((k, j) => { const v = Number(vals[j]); if (Number.isFinite(v)) o[`${p}${k}`] = v; });
      i++;
    } else if (sec[1] === 'dev') {
      const m = /^\s*([^:\s]+):\s*(.*)$/.exec(l);
      if (!m) continue;
      const v = m[2].trim().split(/\s+/).map(Number);
      out.dev[m[1]] = { rx_packets: v[1], rx_drop: v[3], tx_packets: v[9], tx_drop: v[11] };
    } else if (sec[1] === 'tc') {
      try { out.tc = JSON.parse(l); } catch {}
    } else if (sec[0] === 'softnet') {
      const f = l.trim().split(/\s+/);
      if (f.length > 1) out.softnetDrops += parseInt(f[1], 16);
    }
  }
  return out;
}
function counters() {
  const b = readSnap(`${prefix}.before`), a = readSnap(`${prefix}.after`);
  if (!a || !b) return null;
  const ns = {};
  for (const [n, o] of Object.entries(a.ns)) {
    const d = {};
    for (const [k, v] of Object.entries(o)) { const x = v - (b.ns[n]?.[k] ?? 0); if (x !== 0 && !/^(Ip|Icmp|IcmpMsg|Udp|UdpLite)|Tcp(CurrEstab|RtoAlgorithm|RtoMin|RtoMax|MaxConn)$/.test(k)) d[k] = x; }
    ns[n] = d;
  }
  const dev = {};
  for (const [n, o] of Object.entries(a.dev)) {
    const p = b.dev[n] ?? {};
    dev[n] = { rx_drop: o.rx_drop - (p.rx_drop ?? 0), tx_drop: o.tx_drop - (p.tx_drop ?? 0), tx_packets: o.tx_packets - (p.tx_packets ?? 0) };
  }
  const qd = {};
  for (const q of a.tc) {
    const p = b.tc.find((x) => x.dev === q.dev && x.handle === q.handle && x.kind === q.kind) ?? {};
    if (q.kind === 'noqueue') continue;
    qd[`${q.dev}:${q.kind}`] = { drops: (q.drops ?? 0) - (p.drops ?? 0), overlimits: (q.overlimits ?? 0) - (p.overlimits ?? 0), packets: (q.packets ?? 0) - (p.packets ?? 0) };
  }
  return { ns, dev, qdisc: qd, softnet_drops: a.softnetDrops - b.softnetDrops };
}

console.log(JSON.stringify({ sender: sender(), receiver: receiver(), counters: counters() }));
