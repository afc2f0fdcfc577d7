// Drives the Aduana dashboard in Debian's headless Chromium through
// playwright-core (no browser download) and checks what a user sees.
//
//   node check.mjs pages BASE_URL EXPECTED.json ARTIFACTS_DIR
//   node check.mjs auth  BASE_URL USER PASSWORD ARTIFACTS_DIR
//
// Exits non-zero with a message naming the failed check. The expected
// numbers come from SQL run by the Rust test on the same warehouse.

import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const CHROMIUM = process.env.ADUANA_CHROMIUM || '/usr/bin/chromium';
// This machine's network is closed: Chromium must not try to phone home.
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

/// A page that records console errors and failed requests.
async function open(context, errors) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  return page;
}

async function visit(page, url, errors, shots, name) {
  const response = await page.goto(url, { waitUntil: 'load' });
  check(response.status() === 200, `${url}: status ${response.status()}`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  check(errors.length === 0, `${url}: ${errors.join('; ')}`);
}

const figure = (page, label) =>
  page.locator(`[data-figure="${label}"] b`).first().innerText();
/// A figure shown with thousands separators, as a number.
const count = async (page, label) => Number((await figure(page, label)).replace(/,/g, ''));

/// The cells of one column of the first table `tableSelector` matches, as
/// exact values: a cell shown rounded or cut keeps its whole value in its title.
async function columnTexts(page, tableSelector, column) {
  const table = page.locator(tableSelector).first();
  const headers = await table.locator('thead th').evaluateAll(
    (ths) => ths.map((th) => th.dataset.column));
  const index = headers.indexOf(column);
  check(index >= 0, `no column ${column} in ${tableSelector} (${headers})`);
  return table.locator('tbody tr').evaluateAll(
    (trs, i) => trs.map((tr) => tr.children[i].getAttribute('title') ?? tr.children[i].textContent), index);
}

/// The cells of one column as the reader sees them.
async function columnShown(page, tableSelector, column) {
  const table = page.locator(tableSelector).first();
  const headers = await table.locator('thead th').evaluateAll(
    (ths) => ths.map((th) => th.dataset.column));
  const index = headers.indexOf(column);
  check(index >= 0, `no column ${column} in ${tableSelector} (${headers})`);
  return table.locator('tbody tr').evaluateAll(
    (trs, i) => trs.map((tr) => tr.children[i].textContent), index);
}

async function pages(base, expected, shots) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1500, height: 1000 } });
    const errors = [];
    const page = await open(context, errors);

    // Overview: publication, charts with their numbers.
    await visit(page, `${base}/`, errors, shots, 'overview');
    // The first screen is the risk, not the run: the headline comes before the publication panel.
    const order = await page.evaluate(() => [...document.querySelectorAll('section[id], div[id]')]
      .map((e) => e.id).filter((id) => id === 'headline' || id === 'publication'));
    check(order[0] === 'headline', `overview: panels in order ${order}`);
    const atRisk = await page.locator('#headline [data-figure="expected revenue at risk"] b').innerText();
    check(/^[1-9][0-9]{0,2}(,[0-9]{3})* GTQ( \([+-][0-9]+% on the month before\))?$/.test(atRisk),
      `overview: expected revenue at risk ${atRisk}`);
    const laneRates = await figure(page, 'hit rate by lane');
    check(/^[a-z()]+ [0-9.]+%( · [a-z()]+ [0-9.]+%)*$/.test(laneRates), `overview: hit rate by lane ${laneRates}`);
    const headlineBox = await page.locator('#headline').boundingBox();
    check(headlineBox.y < 800, `overview: the headline starts at ${headlineBox.y}px, below the first screen`);
    check(await figure(page, 'items scored') === String(expected.scored),
      `overview: items scored ${await figure(page, 'items scored')} != ${expected.scored}`);
    check(await figure(page, 'model version (published scores)') === expected.model_version,
      'overview: model version');
    check(await page.locator('#by-month svg.chart').count() === 4, 'overview: 4 monthly charts');
    check(await page.locator('#lanes svg.chart').count() === 2, 'overview: 2 lane charts');
    check(await page.locator('#monitoring svg.chart').count() === 1, 'overview: monitoring chart');
    check(await page.locator('#offices svg.chart').count() === expected.offices,
      `overview: one chart per office (${expected.offices})`);
    // Offices share one scale: every chart's top tick is the same.
    const tops = await page.locator('#offices svg.chart').evaluateAll((svgs) => svgs.map((svg) =>
      [...svg.querySelectorAll('text.tick[text-anchor="end"]')].map((t) => t.textContent).pop()));
    check(new Set(tops).size === 1, `overview: office charts on different scales: ${tops}`);
    // Selection: model picks against random controls, and the estimate.
    check(await page.locator('#selection svg.chart').count() === 2, 'overview: 2 selection charts');
    check(await figure(page, 'random controls inspected') === String(expected.random_inspected),
      `overview: random controls inspected ${await figure(page, 'random controls inspected')} != ${expected.random_inspected}`);
    // Numbers one click away: the table under a chart opens on a click.
    const details = page.locator('#by-month details').first();
    check(!(await details.locator('table').isVisible()), 'numbers hidden before the click');
    await details.locator('summary').click();
    check(await details.locator('table').isVisible(), 'numbers visible after the click');
    const months = await columnTexts(page, '#by-month details[open] table', 'declarations');
    const total = months.reduce((s, v) => s + Number(v), 0);
    check(total === expected.declarations,
      `overview: declarations per month sum to ${total}, SQL says ${expected.declarations}`);
    // Axes are labelled with units.
    check((await page.locator('#by-month svg .axis-label').allTextContents())
      .some((t) => t.includes('GTQ')), 'overview: currency axis label');

    // Traders: segments and the candidate table.
    await visit(page, `${base}/traders`, errors, shots, 'traders');
    const ids = await columnTexts(page, '#candidates table', 'importer_id');
    check(ids[0] === expected.top_importer, `traders: first row ${ids[0]} != ${expected.top_importer}`);
    const risk = (await columnTexts(page, '#candidates table', 'expected_revenue_at_risk')).map(Number);
    check(risk.every((v, i) => i === 0 || risk[i - 1] >= v), 'traders: sorted by expected revenue at risk');
    check(Number(risk[0]) === expected.top_expected, `traders: top expected ${risk[0]} != ${expected.top_expected}`);
    // Shown with separators and rounded, the exact value on hover.
    const shown = await columnShown(page, '#candidates table', 'expected_revenue_at_risk');
    check(shown.every((v) => /^-?[0-9]{1,3}(,[0-9]{3})*(\.[0-9]+)?$/.test(v)),
      `traders: expected revenue at risk shown as ${shown.slice(0, 5)}`);
    check(shown[0] === Math.round(risk[0]).toLocaleString('en-US') || risk[0] < 1000,
      `traders: top expected shown as ${shown[0]} for ${risk[0]}`);
    const segmentImporters = await columnTexts(page, '#segments details table', 'importers');
    check(segmentImporters.reduce((s, v) => s + Number(v), 0) === expected.latest_importers,
      'traders: importers of the latest month');

    // Sort: click a header twice (descending, then ascending).
    await page.locator('#candidates th[data-column="items"] a').click();
    await page.waitForLoadState('load');
    let items = (await columnTexts(page, '#candidates table', 'items')).map(Number);
    check(items.every((v, i) => i === 0 || items[i - 1] >= v), 'traders: sorted by items, descending');
    check(items[0] === expected.max_items, `traders: most items ${items[0]} != ${expected.max_items}`);
    await page.locator('#candidates th[data-column="items"] a').click();
    await page.waitForLoadState('load');
    items = (await columnTexts(page, '#candidates table', 'items')).map(Number);
    check(items.every((v, i) => i === 0 || items[i - 1] <= v), 'traders: sorted by items, ascending');
    await page.screenshot({ path: join(shots, 'traders-sorted.png'), fullPage: true });

    // Filter: high segment, then an importer id fragment.
    await page.selectOption('select[name="segment"]', 'high');
    await page.click('#apply');
    await page.waitForLoadState('load');
    const segments = await columnTexts(page, '#candidates table', 'segment');
    check(segments.length === Math.min(100, expected.high_candidates) && segments.every((s) => s === 'high'),
      `traders: high filter shows ${segments.length} rows, SQL says ${expected.high_candidates}`);
    await page.selectOption('select[name="segment"]', '');
    await page.fill('input[name="q"]', expected.top_importer);
    await page.click('#apply');
    await page.waitForLoadState('load');
    const found = await columnTexts(page, '#candidates table', 'importer_id');
    check(found.length >= 1 && found.every((id) => id.includes(expected.top_importer)),
      `traders: search for ${expected.top_importer} gave ${found}`);
    await page.screenshot({ path: join(shots, 'traders-filtered.png'), fullPage: true });
    check(errors.length === 0, `traders: ${errors.join('; ')}`);

    // The ranking is readable where auditors work: one text line per row,
    // at least ten rows in its box, the columns read first on screen.
    for (const [width, height] of [[1280, 800], [1920, 1080]]) {
      await page.setViewportSize({ width, height });
      await visit(page, `${base}/traders`, errors, shots, `traders-${width}x${height}`);
      const heights = await page.locator('#candidates tbody tr').evaluateAll(
        (trs) => trs.map((tr) => tr.getBoundingClientRect().height));
      check(heights.length === Math.min(100, expected.candidates), `traders at ${width}x${height}: ${heights.length} rows`);
      const tallest = Math.max(...heights);
      check(tallest <= 30, `traders at ${width}x${height}: a row is ${tallest}px tall`);
      const inBox = await page.locator('#candidates .scroll').evaluate((box) => {
        const r = box.getBoundingClientRect();
        return [...box.querySelectorAll('tbody tr')].filter((tr) => {
          const b = tr.getBoundingClientRect();
          return b.top >= r.top && b.bottom <= r.bottom + 1;
        }).length;
      });
      check(inBox >= 10, `traders at ${width}x${height}: ${inBox} rows visible in the ranking's box`);
      for (const column of ['importer_id', 'name', 'segment', 'expected_revenue_at_risk']) {
        const box = await page.locator(`#candidates th[data-column="${column}"]`).boundingBox();
        check(box !== null && box.x >= 0 && box.x + box.width <= width,
          `traders at ${width}x${height}: column ${column} is off screen (${JSON.stringify(box)})`);
      }
      const names = await columnTexts(page, '#candidates table', 'name');
      check(names.filter((n) => n.trim() !== '').length >= names.length / 2, 'traders: names of importers shown');
    }
    await page.setViewportSize({ width: 1500, height: 1000 });

    // The whole ranking downloads in the page's order; pages walk it.
    const csv = await (await page.request.get(`${base}/traders.csv`)).text();
    const rankingLines = csv.trim().split('\n');
    check(rankingLines.length - 1 === expected.candidates, `traders.csv: ${rankingLines.length - 1} rows, SQL says ${expected.candidates}`);
    check(rankingLines[0].startsWith('importer_id,name,aeo,sector,segment,expected_revenue_at_risk'), `traders.csv header: ${rankingLines[0]}`);
    const rankingParquet = await page.request.get(`${base}/traders.parquet`);
    const magic = (await rankingParquet.body()).subarray(0, 4).toString();
    check(rankingParquet.status() === 200 && magic === 'PAR1', `traders.parquet: ${rankingParquet.status()} ${magic}`);
    // Pages of 25 walk the same order as the download.
    await visit(page, `${base}/traders?rows=25`, errors, shots, 'traders-rows-25');
    const first25 = await columnTexts(page, '#candidates table', 'importer_id');
    check(first25.length === Math.min(25, expected.candidates), `traders?rows=25 shows ${first25.length} rows`);
    check(first25[0] === rankingLines[1].split(',')[0], 'traders page 1 starts where the CSV does');
    await page.locator('#next').click();
    await page.waitForLoadState('load');
    const second = await columnTexts(page, '#candidates table', 'importer_id');
    check(second[0] === rankingLines[26].split(',')[0],
      `traders page 2 starts with ${second[0]}, the CSV's 26th is ${rankingLines[26].split(',')[0]}`);
    check((await page.locator('#pager').innerText()).includes('26–50'), `traders pager: ${await page.locator('#pager').innerText()}`);
    await page.locator('#previous').click();
    await page.waitForLoadState('load');
    check((await columnTexts(page, '#candidates table', 'importer_id'))[0] === first25[0], 'traders: previous page');

    // Trader profile, reached by its link.
    await page.locator(`#candidates a:text-is("${expected.top_importer}")`).first().click();
    await page.waitForLoadState('load');
    check(page.url().endsWith(`/traders/${encodeURIComponent(expected.top_importer)}`), `trader link: ${page.url()}`);
    await page.screenshot({ path: join(shots, 'trader.png'), fullPage: true });
    const identity = await page.locator('#identity').innerText();
    check(identity.includes(expected.top_importer_name) && identity.includes('authorised economic operator'),
      `trader identity: ${identity}`);
    check(errors.length === 0, `trader: ${errors.join('; ')}`);
    check(await count(page, 'items to review (last 12 months)') === expected.trader_flagged,
      `trader: flagged ${await figure(page, 'items to review (last 12 months)')} != ${expected.trader_flagged}`);
    check(await count(page, 'inspections') === expected.trader_inspections, 'trader: inspections');
    // Activity counted over the months the warehouse has, not a fixed 24.
    check(await page.locator('[data-figure="months active (of the last 12 published)"]').count() === 1,
      'trader: months active of the 12 published');
    check(/^[0-9,]+ GTQ$/.test(await figure(page, 'customs value')), `trader: customs value ${await figure(page, 'customs value')}`);
    // Codes carry their HS description.
    const described = await columnTexts(page, '#flags table', 'hs_description');
    check(described.length > 0 && described.every((d) => d.length > 0),
      `trader: flagged items without HS descriptions: ${described.slice(0, 5)}`);
    for (const id of ['activity', 'mix', 'unit-values', 'flags', 'inspections']) {
      check(await page.locator(`#${id}.error`).count() === 0, `trader: panel ${id} failed: ${await page.locator(`#${id}`).innerText()}`);
    }
    check(await page.locator('#activity svg.chart').count() === 3, 'trader: activity charts');
    // Months read as months on time axes.
    const ticks = await page.locator('#activity svg .tick').allTextContents();
    check(ticks.some((t) => /^20[0-9]{2}-[01][0-9]$/.test(t)) && !ticks.some((t) => /^20[0-9]{2}-[01][0-9]-01$/.test(t)),
      `trader: month ticks ${ticks.slice(0, 6)}`);
    check(await page.locator('#mix svg.chart').count() === 2, 'trader: mix charts');
    check(await page.locator('#unit-values svg.chart rect[fill-opacity="0.18"]').count() >= 1,
      'trader: at least one reference band');

    // The audit file downloads, with a header and one line per flagged item.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audit-csv')]);
    const saved = join(shots, `audit_${expected.top_importer}.csv`);
    await download.saveAs(saved);
    const lines = readFileSync(saved, 'utf8').trim().split('\n');
    check(lines[0].startsWith('declaration_id,item_no,declared_on'), `audit file header: ${lines[0]}`);
    check(lines.length - 1 === expected.trader_flagged, `audit file: ${lines.length - 1} items != ${expected.trader_flagged}`);
    const [parquet] = await Promise.all([page.waitForEvent('download'), page.click('#audit-parquet')]);
    await parquet.saveAs(join(shots, `audit_${expected.top_importer}.parquet`));

    // Product view.
    await visit(page, `${base}/products`, errors, shots, 'products');
    await visit(page, `${base}/products/${expected.product}`, errors, shots, 'product');
    check(await page.locator('#description').innerText() === expected.product_description,
      `product: description ${await page.locator('#description').innerText()} != ${expected.product_description}`);
    const origins = await columnTexts(page, '#unit-values details table', 'origin_country');
    check(origins.length === expected.product_groups, `product: ${origins.length} origin rows != ${expected.product_groups}`);
    const deviations = (await columnTexts(page, '#deviations table', 'valuation_deviation')).map(Number);
    check(deviations.length > 0 && deviations.every((v, i) => i === 0 || deviations[i - 1] <= v),
      'product: deviations most negative first');
    check(deviations[0] === expected.product_min_deviation,
      `product: top deviation ${deviations[0]} != ${expected.product_min_deviation}`);

    // A bad HS code is refused with a message naming it.
    const bad = await page.goto(`${base}/products/85AB12`);
    check(bad.status() === 400, `bad HS: status ${bad.status()}`);
    check((await page.locator('main').innerText()).includes('"85AB12" is not an HS6 subheading'), 'bad HS message');
    await page.screenshot({ path: join(shots, 'bad-hs.png') });
  } finally {
    await browser.close();
  }
}

/// Without credentials (or with a wrong password) the server answers 401
/// with a Basic challenge; a headless browser, which cannot prompt, ends the
/// navigation with ERR_INVALID_AUTH_CREDENTIALS. Either way no page shows.
async function refusedIn(context, url) {
  const page = await context.newPage();
  let shown = null;
  try {
    const response = await page.goto(url);
    shown = response.status() === 401 ? null : `status ${response.status()}`;
  } catch (e) {
    check(e.message.includes('ERR_INVALID_AUTH_CREDENTIALS'), `${url}: ${e.message}`);
  }
  check(shown === null, `${url} was not refused: ${shown}`);
  const direct = await context.request.get(url, { failOnStatusCode: false, maxRedirects: 0 });
  check(direct.status() === 401, `${url}: ${direct.status()} to a plain request`);
  check(direct.headers()['www-authenticate']?.startsWith('Basic'), 'asks for Basic credentials');
  return page;
}

async function auth(base, user, password, shots) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const anonymous = await refusedIn(await browser.newContext({ ignoreHTTPSErrors: true }), `${base}/traders`);
    // What the refused visitor sees, kept for a look: when Chromium turned
    // the 401 into its own error page (ERR_INVALID_AUTH_CREDENTIALS), that
    // page sometimes cannot be captured; the refusal itself is checked above.
    await anonymous.screenshot({ path: join(shots, 'refused.png') }).catch((e) => {
      if (!e.message.includes('Unable to capture screenshot')) throw e;
    });
    await refusedIn(await browser.newContext({ ignoreHTTPSErrors: true, httpCredentials: { username: user, password: 'wrong' } }), `${base}/`);
    // Over https the test's self-signed certificate is accepted.
    const signed = await browser.newContext({ ignoreHTTPSErrors: true, httpCredentials: { username: user, password } });
    const errors = [];
    const ok = await open(signed, errors);
    await visit(ok, `${base}/`, errors, shots, 'signed-in');
    await visit(ok, `${base}/traders`, errors, shots, 'signed-in-traders');
  } finally {
    await browser.close();
  }
}

const [mode, base, ...rest] = process.argv.slice(2);
try {
  if (mode === 'pages') {
    const [expectedFile, shots] = rest;
    mkdirSync(shots, { recursive: true });
    await pages(base, JSON.parse(readFileSync(expectedFile, 'utf8')), shots);
  } else if (mode === 'auth') {
    const [user, password, shots] = rest;
    mkdirSync(shots, { recursive: true });
    await auth(base, user, password, shots);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  console.log(`ok ${mode}`);
} catch (e) {
  console.error(`FAILED ${mode}: ${e.message}`);
  process.exit(1);
}
