// The playground in headless Chromium (issue 12's seven checks), against a server started
// by ./run. Usage: node playground.test.mjs <base-url> <artifact-dir> [readme-screenshot]
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, artifacts = 'browser-artifacts', readmeShot] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});

let failed = 0;
async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(e.stack || e).split('\n').slice(0, 6).join('\n     ')}`);
  }
}

/** A page of its own (own cookies), with every request and console error recorded. */
async function open(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const seen = { requests: [], consoleErrors: [] };
  // Anything not for the server under test is recorded and never sent.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    seen.requests.push(url);
    return url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:') ? route.continue() : route.abort();
  });
  // Chromium logs every 4xx answer as a console error; a GraphQL refusal the page asked for
  // (HTTP 400 for a request error, 401) is an answer the page shows, not a page error.
  page.on('console', (m) => {
    const expected = /status of 40[01] /.test(m.text()) && m.location().url === `${origin}/graphql`;
    if (m.type() === 'error' && !expected) seen.consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => seen.consoleErrors.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
  return { context, page, seen };
}

async function signIn(page, email) {
  await page.selectOption('#account', email);
  await page.click('#signin');
  await page.waitForFunction((e) => document.querySelector('#who').textContent.includes(e), email, { timeout: 20000 });
}

async function runQuery(page) {
  await page.click('[data-tab="result"]');
  await page.evaluate(() => (document.querySelector('#status').textContent = 'waiting'));
  await page.click('#run');
  await page.waitForFunction(() => /^HTTP \d+/.test(document.querySelector('#status').textContent), null, { timeout: 20000 });
  return { status: await page.textContent('#status'), body: JSON.parse(await page.textContent('#result')) };
}

async function setQuery(page, query) {
  await page.evaluate((q) => {
    const view = document.querySelector('#query .cm-content').cmView.view;
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: q } });
  }, query);
}

const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) });
const { page, seen } = await open({ width: 1280, height: 720 });

await check('1. a coach signs in with the cookie session and the dashboard shows coach-only fields', async () => {
  await signIn(page, 'coach1@acme.test');
  const cookies = await page.context().cookies();
  assert.ok(cookies.some((c) => c.name === '__Host-coachgraph_session' && c.secure && c.httpOnly), 'session cookie kept');
  await page.selectOption('#example', { label: 'coach_dashboard (COACH)' });
  const { status, body } = await runQuery(page);
  assert.match(status, /^HTTP 200/);
  assert.equal(body.errors, undefined);
  const nodes = body.data.coachees.nodes;
  assert.equal(nodes.length, 6);
  assert.ok(nodes[0].coachNotes.length > 0, 'coach notes (COACH_ONLY) are shown');
  assert.ok('draftInsights' in nodes[0].sessions.nodes[0], 'draft insights (COACH_ONLY) are shown');
  await shot(page, '1-coach-dashboard');
});

await check('2. switching to a coachee without signing out: the same query is refused field by field', async () => {
  await signIn(page, 'coachee1@acme.test');
  assert.match(await page.textContent('#who'), /COACHEE/);
  const { status, body } = await runQuery(page);
  assert.match(status, /^HTTP 400/);
  assert.equal(body.data, undefined);
  assert.ok(body.errors.every((e) => e.extensions.code === 'GRAPHQL_VALIDATION_FAILED'));
  assert.ok(body.errors.some((e) => e.message.includes('Unknown field "coachees"')), JSON.stringify(body.errors));
  assert.match(await page.textContent('#errors'), /GRAPHQL_VALIDATION_FAILED/);
  // The editor's live validation against the coachee's schema marks it too.
  await page.waitForSelector('.cm-lintRange-error', { timeout: 10000 });
  await shot(page, '2-coachee-refused');
});

await check('3. compare mode runs one query as a coach, a coachee and an admin side by side', async () => {
  await page.selectOption('#example', { label: 'compare: one query, three kinds of answer' });
  await page.click('[data-tab="compare"]');
  await page.click('#compare-pick summary');
  await page.check('#compare-accounts input[value="admin1@acme.test"]');
  await page.click('#compare-pick summary');
  await page.click('#compare-run');
  await page.waitForSelector('table.compare', { timeout: 30000 });
  const heads = await page.$$eval('table.compare th', (ths) => ths.map((t) => t.textContent));
  assert.deepEqual(heads.slice(1).map((h) => h.split('@')[0]), ['coach1', 'coachee1', 'admin1']);
  const row = (path) =>
    page.$$eval('table.compare tbody tr', (trs, p) => {
      const tr = trs.find((t) => t.cells[0].textContent === p);
      return tr ? { diff: tr.classList.contains('diff'), cells: [...tr.cells].slice(1).map((c) => [c.className, c.textContent]) } : null;
    }, path);
  const notes = await row('coachees.nodes[0].coachNotes[0].body');
  assert.ok(notes, 'a coach note row');
  assert.equal(notes.cells[0][0], 'cell-value');
  assert.deepEqual(notes.cells[1], ['cell-field', "not in this role's schema"]);
  assert.ok(notes.diff, 'highlighted');
  const email = await row('coach1.email');
  assert.deepEqual(email.cells[1], ['cell-row', 'null · FORBIDDEN']);
  assert.equal(email.cells[0][1], 'coach1@acme.test');
  await shot(page, '3-compare');
  if (readmeShot) await page.screenshot({ path: readmeShot });
});

await check('4. the schema view shows each field with its tag and the roles that see it', async () => {
  await signIn(page, 'coach1@acme.test');
  await page.click('[data-tab="schema"]');
  await page.waitForSelector('#schema-out .type', { timeout: 10000 });
  await page.fill('#schema-filter', 'coachNotes');
  const text = await page.textContent('#schema-out');
  assert.match(text, /COACH:/);
  assert.match(text, /coachNotes: \[CoachNote!\]!\s*COACH_ONLY\s*COACH/);
  await page.fill('#schema-filter', '');
  for (const tag of ['CLIENT_VISIBLE', 'COACH_ONLY']) assert.match(await page.textContent('#schema-out'), new RegExp(tag));
  const download = page.waitForEvent('download');
  await page.click('#sdl-download');
  assert.equal((await download).suggestedFilename(), 'coach.graphql');
  await shot(page, '4-schema');
});

await check('5. the AI agent works with the X-AI-Model and X-AI-Purpose headers, and not without', async () => {
  await signIn(page, 'ai@acme.test');
  await page.selectOption('#example', { label: 'viewer' });
  await page.click('[data-sub="headers"]');
  await page.fill('#headers', '');
  const without = await runQuery(page);
  assert.match(without.status, /^HTTP 400/);
  assert.match(JSON.stringify(without.body), /X-AI-Model/);
  await page.click('#ai-headers');
  assert.match(await page.inputValue('#headers'), /X-AI-Purpose/);
  const withHeaders = await runQuery(page);
  assert.match(withHeaders.status, /^HTTP 200/);
  assert.equal(withHeaders.body.data.viewer.role, 'AI_AGENT');
  await shot(page, '5-ai-agent');
});

await check('6. no request leaves the server under test and the console has no errors', async () => {
  assert.ok(seen.requests.length > 5);
  assert.deepEqual(seen.requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:')), []);
  assert.deepEqual(seen.consoleErrors, []);
});

for (const viewport of [{ width: 1280, height: 720 }, { width: 390, height: 844 }]) {
  await check(`7. at ${viewport.width}x${viewport.height} every control is on screen`, async () => {
    const { context, page: p, seen: s } = await open(viewport);
    await signIn(p, 'coach1@acme.test');
    const phone = viewport.width < 800;
    for (const tab of ['result', 'compare', 'schema']) {
      await p.click(`[data-tab="${tab}"]`);
      const off = await p.$$eval(
        'button, input, select, textarea, summary',
        (els, { w, h, phone }) =>
          els
            // Content of the scrolling panes (type names, account boxes) scrolls; controls do not.
            .filter((e) => e.checkVisibility() && !e.closest('dialog, .schema-out, .compare-out, #compare-accounts'))
            .map((e) => ({ id: e.id || e.textContent.trim().slice(0, 20), r: e.getBoundingClientRect() }))
            .filter(({ r }) => r.left < 0 || r.right > w + 0.5 || r.top < 0 || (!phone && r.bottom > h + 0.5))
            .map(({ id, r }) => `${id} ${Math.round(r.left)},${Math.round(r.top)}-${Math.round(r.right)},${Math.round(r.bottom)}`),
        { w: viewport.width, h: viewport.height, phone },
      );
      assert.deepEqual(off, [], `${tab}: controls off screen`);
      assert.ok((await p.evaluate(() => document.documentElement.scrollWidth)) <= viewport.width, 'no sideways scrolling');
    }
    // On a phone the page scrolls, but signing in and running fit on the first screen.
    for (const id of ['#signin', '#run', '#example']) {
      const r = await p.locator(id).boundingBox();
      assert.ok(r.y + r.height <= viewport.height, `${id} on the first screen`);
    }
    await p.click('[data-tab="result"]');
    await p.click('#run');
    await p.waitForFunction(() => /^HTTP 200/.test(document.querySelector('#status').textContent));
    await p.screenshot({ path: join(artifacts, `7-${viewport.width}x${viewport.height}.png`), fullPage: phone });
    assert.deepEqual(s.consoleErrors, []);
    await context.close();
  });
}

await browser.close();
console.log(failed ? `${failed} check(s) failed; screenshots in ${artifacts}` : `all checks passed; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
