#!/usr/bin/env node
// Browser test of the Locust 2.47 web UI during a run with Go workers (issue 5).
// Started by scripts/browser-test.sh, which runs the fake Zeno API, the master
// and two zeno-worker processes. With Debian's headless Chromium, driven by
// playwright-core, it checks that:
//   1. the Statistics table shows the four request names with counts > 0;
//   2. the Workers tab lists both workers (ids equal to the master's);
//   3. the Zeno tab shows TTFB values for the four names and quota values
//      ("used / quota") for every key prefix;
// and saves screenshots to --out (stats-table.png, workers-tab.png,
// zeno-tab.png; failure.png on failure). Exit 0 when all checks pass.
//
// Usage: node zeno-tab.js --url http://127.0.0.1:PORT --out DIR
//          [--workers 2] [--prefixes a,b] [--timeout-ms 45000]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const REQUEST_NAMES = ['quick_query', 'analysis_query', 'conversation_start', 'conversation_followup'];
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
  '--disable-quic', '--disable-component-update', '--disable-sync',
];

function parseArgs(argv) {
  const o = { url: '', out: 'artifacts/browser', workers: 2, prefixes: [], timeoutMs: 45000,
    chromium: process.env.CHROMIUM_BIN || '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`missing value for ${k}`);
    if (k === '--url') o.url = v.replace(/\/+$/, '');
    else if (k === '--out') o.out = v;
    else if (k === '--workers') o.workers = Number(v);
    else if (k === '--prefixes') o.prefixes = v.split(',').filter(Boolean);
    else if (k === '--timeout-ms') o.timeoutMs = Number(v);
    else if (k === '--chromium') o.chromium = v;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!o.url) throw new Error('--url is required');
  return o;
}

// readTable returns the first visible MUI table as {headers, rows: [{header: text}]}.
async function readTable(page) {
  return page.evaluate(() => {
    const t = [...document.querySelectorAll('table')].find((el) => el.offsetParent !== null);
    if (!t) return null;
    const headers = [...t.querySelectorAll('thead th')].map((th) => th.innerText.replace(/\s+/g, ' ').trim());
    const rows = [...t.querySelectorAll('tbody tr')].map((tr) => {
      const cells = [...tr.querySelectorAll('td')].map((td) => td.innerText.replace(/\s+/g, ' ').trim());
      return Object.fromEntries(headers.map((h, i) => [h, cells[i] ?? '']));
    });
    return { headers, rows };
  });
}

// poll calls check() until it returns a truthy value or the deadline passes;
// it then throws with the last reason check() gave via its argument.
async function poll(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let reason = 'not checked';
  for (;;) {
    const r = await check((msg) => { reason = msg; });
    if (r) return r;
    if (Date.now() > deadline) throw new Error(`${what}: ${reason} (after ${timeoutMs} ms)`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

// shot takes a settled screenshot: no tab-indicator transition, no hover ripple.
async function shot(page, target, file) {
  await page.mouse.move(5, 880);
  await page.waitForTimeout(400);
  await target.screenshot({ path: file, animations: 'disabled' });
}

const num = (s) => (s === '' || s === undefined || s === null ? NaN : Number(s));

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  fs.mkdirSync(opt.out, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'zeno-chromium-'));
  const passed = [];
  // Hard bound on the whole script, whatever hangs.
  const guard = setTimeout(() => {
    console.error(`browser test: overall timeout (${opt.timeoutMs + 60000} ms)`);
    process.exit(2);
  }, opt.timeoutMs + 60000);

  const ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opt.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
    timeout: 30000,
  });
  let page;
  try {
    page = ctx.pages()[0] || (await ctx.newPage());
    page.setDefaultTimeout(15000);
    await page.goto(`${opt.url}/`, { waitUntil: 'domcontentloaded' });
    await page.getByRole('tab', { name: /statistics/i }).waitFor();

    // 1. Statistics: the four request names with counts.
    await page.getByRole('tab', { name: /statistics/i }).click();
    const stats = await poll('Statistics table', opt.timeoutMs, async (why) => {
      const t = await readTable(page);
      if (!t) return why('no table'), null;
      const missing = REQUEST_NAMES.filter((n) => !t.rows.some((r) => r.Name === n && num(r['# Requests']) > 0));
      if (missing.length) return why(`no row with a count > 0 for ${missing.join(', ')}; rows: ${JSON.stringify(t.rows.map((r) => [r.Name, r['# Requests']]))}`), null;
      return t;
    });
    const counts = Object.fromEntries(REQUEST_NAMES.map((n) => [n, num(stats.rows.find((r) => r.Name === n)['# Requests'])]));
    await shot(page, page.locator('table').first(), path.join(opt.out, 'stats-table.png'));
    console.log(`ok   statistics table: ${JSON.stringify(counts)}`);
    passed.push('statistics');

    // 2. Workers tab: both workers, the same ids the master reports.
    const api = await (await page.request.get(`${opt.url}/stats/requests`)).json();
    const masterIds = (api.workers || []).map((w) => w.id).sort();
    if (masterIds.length !== opt.workers) throw new Error(`master reports ${masterIds.length} workers, want ${opt.workers}`);
    await page.getByRole('tab', { name: /workers/i }).click();
    const workers = await poll('Workers tab', opt.timeoutMs, async (why) => {
      const t = await readTable(page);
      if (!t || !t.headers.includes('Worker')) return why(`no workers table (headers ${t && t.headers})`), null;
      const ids = t.rows.map((r) => r.Worker).sort();
      if (JSON.stringify(ids) !== JSON.stringify(masterIds)) return why(`workers ${JSON.stringify(ids)}, master has ${JSON.stringify(masterIds)}`), null;
      const bad = t.rows.filter((r) => !/^(running|spawning)$/.test(r.State) || !(num(r['# users']) > 0));
      if (bad.length) return why(`workers not running with users: ${JSON.stringify(bad)}`), null;
      return t;
    });
    await shot(page, page, path.join(opt.out, 'workers-tab.png'));
    console.log(`ok   workers tab: ${workers.rows.map((r) => `${r.Worker} ${r.State} ${r['# users']} users`).join('; ')}`);
    passed.push('workers');

    // 3. Zeno tab: TTFB for the four names, quota for every prefix.
    await page.getByRole('tab', { name: /^zeno$/i }).click();
    await page.waitForURL(/tab=zeno/);
    const zeno = await poll('Zeno tab', opt.timeoutMs, async (why) => {
      const t = await readTable(page);
      if (!t || !t.headers.includes('TTFB p50 (ms)')) return why(`no Zeno table (headers ${t && t.headers})`), null;
      const byName = Object.fromEntries(t.rows.map((r) => [r.Name, r]));
      for (const n of [...REQUEST_NAMES, 'Aggregated']) {
        const r = byName[n];
        if (!r) return why(`no row ${n}`), null;
        for (const c of ['# Requests', 'TTFB p50 (ms)', 'TTFB p95 (ms)', 'First line p50 (ms)']) {
          const v = num(r[c]);
          if (!(v > 0 && v < 60000)) return why(`${n} ${c} = ${JSON.stringify(r[c])}`), null;
        }
        if (num(r['TTFB p95 (ms)']) < num(r['TTFB p50 (ms)'])) return why(`${n}: TTFB p95 < p50`), null;
      }
      const quota = t.rows.filter((r) => r.Name.startsWith('quota '));
      for (const p of opt.prefixes) {
        if (!quota.some((r) => r.Name === `quota ${p}`)) return why(`no quota row for ${p}`), null;
      }
      if (!quota.length) return why('no quota rows'), null;
      for (const r of quota) {
        const m = /^(\d+) \/ (\d+)$/.exec(r.Value);
        if (!m || !(Number(m[1]) > 0) || !(Number(m[2]) >= Number(m[1]))) return why(`${r.Name} value ${JSON.stringify(r.Value)}`), null;
      }
      // The rows keep the plugin's order: the request names first, then
      // Aggregated, then quota and conversation rows (not sorted by name).
      const order = t.rows.slice(0, 5).map((r) => r.Name);
      if (JSON.stringify(order) !== JSON.stringify([...REQUEST_NAMES, 'Aggregated'])) return why(`row order ${JSON.stringify(order)}`), null;
      return t;
    });
    await page.mouse.move(5, 880);
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(opt.out, 'zeno-tab.png'), fullPage: true, animations: 'disabled' });
    const agg = zeno.rows.find((r) => r.Name === 'Aggregated');
    console.log(`ok   zeno tab: Aggregated ${agg['# Requests']} requests, TTFB p50/p95/p99 ${agg['TTFB p50 (ms)']}/${agg['TTFB p95 (ms)']}/${agg['TTFB p99 (ms)']} ms; ` +
      zeno.rows.filter((r) => r.Name.startsWith('quota ')).map((r) => `${r.Name} ${r.Value}`).join('; '));
    passed.push('zeno');

    // 4. The tab's numbers are the plugin's: /zeno/stats agrees on the prefixes.
    const snap = await (await page.request.get(`${opt.url}/zeno/stats`)).json();
    const uiPrefixes = zeno.rows.filter((r) => r.Name.startsWith('quota ')).map((r) => r.Name.slice(6)).sort();
    if (JSON.stringify(Object.keys(snap.quota).sort()) !== JSON.stringify(uiPrefixes)) {
      throw new Error(`/zeno/stats prefixes ${Object.keys(snap.quota)} != tab ${uiPrefixes}`);
    }
    console.log(`ok   /zeno/stats: ${snap.messages} reports from ${snap.workers} workers, prefixes ${uiPrefixes.join(', ')}`);
    passed.push('zeno-json');
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(opt.out, 'failure.png'), fullPage: true }).catch(() => {});
    console.error(`FAIL ${e.message}`);
    console.log(`browser: ${passed.length} passed, 1 failed`);
    process.exitCode = 1;
  } finally {
    await ctx.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
    clearTimeout(guard);
  }
  if (!process.exitCode) console.log(`browser: ${passed.length} passed, 0 failed`);
}

main().catch((e) => {
  console.error(`FAIL ${e.stack || e}`);
  process.exit(1);
});
