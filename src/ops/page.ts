/**
 * The status page: one self-contained HTML document (inline CSS and script,
 * no external resource) that polls `api/sessions` every second and draws one
 * throughput plot per SciStream session on a `<canvas>`.
 *
 * Everything from the server is put into the DOM with `textContent` (never
 * markup), so no value can inject into the page; the status server's
 * Content-Security-Policy admits only this exact style and script (by hash)
 * and same-origin fetches.
 *
 * @module
 */

/** Colours of the two plotted directions (the tests look for them). */
export const PLOT_COLORS = Object.freeze({ toConsumer: '#1565c0', toProducer: '#e65100' });

/** Size of each plot in CSS pixels. */
export const PLOT_SIZE = Object.freeze({ width: 640, height: 200 });

/** @internal The stylesheet of the page. */
export const PAGE_STYLE = `
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
body { margin: 0; background: #f4f5f7; color: #1d1f23; }
header { background: #1d2b3a; color: #fff; padding: 12px 20px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .meta { font-size: 13px; opacity: .8; }
main { padding: 16px 20px; display: grid; gap: 16px; }
.empty { color: #666; font-style: italic; }
article { background: #fff; border: 1px solid #d8dce1; border-radius: 6px; padding: 12px 16px; max-width: 680px; }
article h2 { font-size: 16px; margin: 0 0 8px; font-family: ui-monospace, monospace; display: flex; gap: 10px; align-items: center; }
.state { font-family: system-ui, sans-serif; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #e3e6ea; }
.state.active { background: #d6f5dd; color: #1a6b30; }
.state.pending, .state.setup { background: #fff1c7; color: #7a5b00; }
.state.releasing, .state.closed { background: #f6d8d8; color: #8a1f1f; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; font-size: 13px; }
dt { color: #5b626b; }
dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-all; }
canvas { display: block; border: 1px solid #e3e6ea; }
.legend { font-size: 12px; display: flex; gap: 14px; margin-top: 4px; }
.sw { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 4px; }
.sw.toConsumer { background: ${PLOT_COLORS.toConsumer}; }
.sw.toProducer { background: ${PLOT_COLORS.toProducer}; }
`;

/** @internal The script of the page (no template literals inside: it is embedded verbatim). */
export const PAGE_SCRIPT = String.raw`
'use strict';
(function () {
  var W = ${PLOT_SIZE.width}, H = ${PLOT_SIZE.height};
  var COLORS = { toConsumer: '${PLOT_COLORS.toConsumer}', toProducer: '${PLOT_COLORS.toProducer}' };
  var list = document.getElementById('sessions');
  var updated = document.getElementById('updated');
  var server = document.getElementById('server');
  var cards = new Map();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function unit(v, suffix) {
    var u = ['', 'k', 'M', 'G', 'T'], i = 0;
    v = Number(v) || 0;
    while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + u[i] + suffix;
  }
  function rate(v) { return unit(v, 'B/s'); }
  function octets(v) { return unit(v, 'B'); }
  function niceMax(v) {
    if (!(v > 0)) return 1000;
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function makeCard(tag) {
    var a = el('article');
    a.dataset.tag = tag;
    var h = el('h2');
    var name = el('span', 'tag', tag);
    var state = el('span', 'state');
    h.append(name, state);
    var dl = el('dl');
    var fields = {};
    [['role', 'role'], ['owner', 'owner'], ['listeners', 'listeners'], ['connections', 'connections (open / total)'],
     ['octets', 'octets (to consumer / to producer)'], ['now', 'throughput now']].forEach(function (f) {
      dl.append(el('dt', '', f[1]));
      fields[f[0]] = el('dd');
      dl.append(fields[f[0]]);
    });
    var canvas = el('canvas');
    canvas.dataset.tag = tag;
    canvas.setAttribute('aria-label', 'throughput of session ' + tag);
    var legend = el('div', 'legend');
    [['toConsumer', 'to consumer'], ['toProducer', 'to producer']].forEach(function (d) {
      var s = el('span');
      s.append(el('span', 'sw ' + d[0]), document.createTextNode(d[1]));
      legend.append(s);
    });
    a.append(h, dl, canvas, legend);
    return { root: a, state: state, fields: fields, canvas: canvas };
  }

  function fill(card, s) {
    card.state.textContent = s.state;
    card.state.className = 'state ' + String(s.state).replace(/[^a-z]/g, '');
    card.fields.role.textContent = s.role || '—';
    card.fields.owner.textContent = s.owner || '—';
    card.fields.listeners.textContent = (s.listeners || []).join(', ') || '—';
    card.fields.connections.textContent = s.connections.open + ' / ' + s.connections.total + (s.numConn ? ' (num_conn ' + s.numConn + ')' : '');
    card.fields.octets.textContent = octets(s.octets.toConsumer) + ' / ' + octets(s.octets.toProducer);
    card.fields.now.textContent = rate(s.throughput.toConsumer) + ' to consumer, ' + rate(s.throughput.toProducer) + ' to producer';
  }

  function draw(canvas, s, doc) {
    var dpr = window.devicePixelRatio || 1;
    if (canvas.width !== W * dpr) { canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = W + 'px'; canvas.style.height = H + 'px'; }
    var g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    var L = 70, R = W - 12, T = 22, B = H - 24;
    var span = doc.sampleMs * doc.window, now = doc.now;
    var samples = s.samples || [], max = 0;
    canvas.dataset.samples = String(samples.length);
    samples.forEach(function (p) { max = Math.max(max, p.toConsumer, p.toProducer); });
    var top = niceMax(max);
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    g.textBaseline = 'middle';
    for (var i = 0; i <= 4; i++) {
      var y = B - (B - T) * i / 4;
      g.strokeStyle = i === 0 ? '#444444' : '#e4e6e9';
      g.beginPath(); g.moveTo(L, y + 0.5); g.lineTo(R, y + 0.5); g.stroke();
      g.fillStyle = '#444444';
      g.textAlign = 'right';
      g.fillText(rate(top * i / 4), L - 6, y);
    }
    g.strokeStyle = '#444444';
    g.beginPath(); g.moveTo(L + 0.5, T); g.lineTo(L + 0.5, B); g.stroke();
    g.textBaseline = 'top';
    g.textAlign = 'center';
    [1, 0.5, 0].forEach(function (f) {
      var x = R - (R - L) * f;
      g.fillText(f === 0 ? 'now' : '-' + Math.round(span * f / 1000) + ' s', x, B + 6);
    });
    function px(t) { return R - (R - L) * Math.min(1, Math.max(0, (now - t) / span)); }
    function py(v) { return B - (B - T) * Math.min(1, v / top); }
    ['toProducer', 'toConsumer'].forEach(function (k) {
      if (samples.length === 0) return;
      g.strokeStyle = COLORS[k];
      g.lineWidth = 2;
      g.lineJoin = 'round';
      g.beginPath();
      samples.forEach(function (p, j) {
        if (j === 0) g.moveTo(px(p.t), py(p[k])); else g.lineTo(px(p.t), py(p[k]));
      });
      if (samples.length === 1) g.lineTo(px(samples[0].t) - 2, py(samples[0][k]));
      g.stroke();
    });
    g.lineWidth = 1;
    g.fillStyle = '#222222';
    g.textAlign = 'left';
    g.textBaseline = 'top';
    g.fillText('now: ' + rate(s.throughput.toConsumer) + ' to consumer, ' + rate(s.throughput.toProducer) + ' to producer', L + 6, 4);
  }

  function render(doc) {
    server.textContent = doc.server ? 'S2CS ' + doc.server : '';
    updated.textContent = 'updated ' + new Date(doc.now).toLocaleTimeString();
    var seen = new Set();
    doc.sessions.forEach(function (s) {
      var tag = String(s.tag);
      seen.add(tag);
      var card = cards.get(tag);
      if (!card) { card = makeCard(tag); cards.set(tag, card); list.append(card.root); }
      fill(card, s);
      draw(card.canvas, s, doc);
    });
    cards.forEach(function (card, tag) { if (!seen.has(tag)) { card.root.remove(); cards.delete(tag); } });
    var empty = document.getElementById('empty');
    empty.hidden = doc.sessions.length !== 0;
  }

  function poll() {
    fetch('api/sessions', { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(render)
      .catch(function (e) { updated.textContent = 'update failed: ' + (e && e.message ? e.message : e); })
      .finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
`;

/** @internal The page, with the style and script above inline. */
export function pageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>beepstream status</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header><h1>beepstream · SciStream sessions</h1><span class="meta" id="server"></span><span class="meta" id="updated">loading…</span></header>
<main id="sessions"><p class="empty" id="empty" hidden>No SciStream session right now.</p></main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
