/**
 * The live status page in a real browser: an S2CS pair carries a paced
 * SciStream session, the status server of the producer facility serves the
 * page, Debian Chromium (driven by playwright-core; `npm test` installs it when missing) loads it, shows the
 * session by tag with its state, and draws its throughput on a canvas — the
 * screenshot of the canvas is decoded and must hold the plotted line. The
 * uid never reaches the page or the API. About 10 s; bounded at 3 min under load.
 */
import test from 'ava';
import { request } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { PNG } from 'pngjs';
import { newUid, sessionTag } from '../../src/scistream/control/index.js';
import { PLOT_COLORS, PLOT_SIZE, STATUS_CSP, startStatusServer, type SessionsDocument } from '../../src/ops/index.js';
import { chromiumExecutable } from '../helpers/chromium.js';
import { MiB, consumerStream, login, openSession, producerApp, startFacilities, within } from '../scistream/roles-harness.js';

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A raw GET with a chosen Host header (fetch will not let us set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

const hex = (c: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];

test.serial('the status page shows a running session by tag, its state, and a rendered throughput plot; never the uid', async (t) => {
  t.timeout(180_000); // generous: two busy cores slow Chromium's start a lot
  const started = Date.now();
  const { prod, cons } = await startFacilities(t);
  const [prodU, consU, appctrl] = await Promise.all([login(t, prod), login(t, cons), login(t, prod, 'appctrl')]);
  // Paced at 2 MiB/s each way: data keeps moving for the whole test (bounded: 16 MiB at most).
  const rate = 2 * MiB;
  const producer = await producerApp(t, 16 * MiB);
  const uid = newUid();
  const tag = sessionTag(uid);
  const s = await within(openSession({ prodU, consU, appctrl }, { uid, numConn: 1, producer: producer.address, rate }), 60_000, 'session set up');
  const status = await startStatusServer({ host: '127.0.0.1', port: 0, s2cs: prod, sampleMs: 250 });
  t.teardown(() => status.close());
  await consumerStream(t, s.listeners[0] as string, 0, 0, 16 * MiB);

  // The API: by tag, with samples; the uid nowhere.
  const api = await fetch(status.url + 'api/sessions');
  t.is(api.status, 200);
  t.regex(api.headers.get('content-type') ?? '', /^application\/json/);
  const apiText = await api.text();
  t.false(apiText.includes(uid), 'the API never carries the uid');
  const doc = JSON.parse(apiText) as SessionsDocument;
  t.is(doc.sessions.length, 1);
  t.is(doc.sessions[0]?.tag, tag);
  t.is(doc.sessions[0]?.state, 'active');
  t.is(doc.sessions[0]?.owner, 'scientist');
  t.is(doc.window, 120);

  // Hardening of the HTTP side.
  const home = await fetch(status.url);
  t.is(home.headers.get('content-security-policy'), STATUS_CSP);
  t.regex(STATUS_CSP, /default-src 'none'/);
  t.notRegex(STATUS_CSP, /unsafe/);
  t.is(home.headers.get('x-content-type-options'), 'nosniff');
  await home.arrayBuffer();
  t.is((await fetch(status.url + 'nothing')).status, 404);
  t.is((await fetch(status.url, { method: 'POST', body: 'x' })).status, 405);
  t.is(await getWithHost(status.url, 'rebound.example.com'), 403, 'a foreign Host header is refused (DNS rebinding)');
  t.is(await getWithHost(status.url, `localhost:${status.address.split(':')[1]}`), 200);

  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: chromiumExecutable(), headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    const problems: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
    page.on('pageerror', (e) => problems.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(status.url, { timeout: 30_000 });
    // The session appears, by tag, with its state, and its plot has samples to draw.
    // Polled from here: waitForFunction evaluates with eval(), which the page's CSP rightly forbids.
    // (The probe is a function run through DevTools; `globalThis` because this test has no DOM types.)
    const probe = (tg: string): { state: string | null; samples: number } => {
      const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null; querySelector(s: string): { textContent: string | null; dataset: Record<string, string> } | null } | null } }).document;
      const card = doc.querySelector(`article[data-tag="${tg}"]`);
      return { state: card?.querySelector('.state')?.textContent ?? null, samples: Number(card?.querySelector('canvas')?.dataset.samples ?? 0) };
    };
    let seen = { state: null as string | null, samples: 0 };
    for (const until = Date.now() + 45_000; Date.now() < until; await page.waitForTimeout(200)) {
      seen = await page.evaluate(probe, tag);
      if (seen.state === 'active' && seen.samples >= 4) break;
    }
    t.is(seen.state, 'active', 'the page shows the session by its tag, active');
    t.true(seen.samples >= 4, `the plot has samples (${seen.samples})`);
    t.is(await page.locator(`article[data-tag="${tag}"] .tag`).textContent(), tag);
    // Let a poll with several non-zero samples render, then look at the canvas.
    await page.waitForTimeout(1200);
    const png = PNG.sync.read(await page.locator(`canvas[data-tag="${tag}"]`).screenshot({ timeout: 30_000 }));
    t.is(png.width, PLOT_SIZE.width + 2, 'the canvas and its 1 px border');
    const targets = [hex(PLOT_COLORS.toConsumer), hex(PLOT_COLORS.toProducer)];
    let line = 0;
    let raised = 0;
    const baseline = png.height - 1 - 24 - 10; // ten pixels above the x axis
    for (let y = 0; y < png.height; y++) {
      for (let x = 0; x < png.width; x++) {
        const i = (y * png.width + x) * 4;
        const [r, g, b] = [png.data[i] as number, png.data[i + 1] as number, png.data[i + 2] as number];
        if (targets.some(([tr, tg, tb]) => Math.abs(r - tr) + Math.abs(g - tg) + Math.abs(b - tb) < 90)) {
          line++;
          if (y < baseline) raised++;
        }
      }
    }
    t.log(`plot: ${line} line pixels, ${raised} above the axis; ${png.width}×${png.height}`);
    t.true(line >= 40, `the throughput line is drawn (${line} pixels of its colour)`);
    t.true(raised >= 20, `the line rises above zero (${raised} pixels)`);
    const html = await page.content();
    t.false(html.includes(uid), 'the page never contains the uid');
    t.true(html.includes(tag));
    t.deepEqual(problems, [], 'no script error and no CSP violation');
    t.true(requests.every((u) => u.startsWith(status.url)), 'no external resource is loaded');
  } finally {
    await browser?.close();
  }
  t.log(`took ${Date.now() - started} ms`);
});
