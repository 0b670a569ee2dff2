// /docs in a real browser, against the service as `npm run demo` runs it (its database, its
// key, /docs authorized with demo-admin-key): Swagger UI loads the document without a warning or
// validator banner, shows the operations grouped by tag, and "Try it out" → Execute on
// create.php with the default example is answered 2xx. Screenshots of each step go to
// SCREENSHOT_DIR.
//
//   npx tsx test/browser/docs.ts                                    # starts its own demo
//   BASE_URL=http://127.0.0.1:8080 npx tsx test/browser/docs.ts     # a running `npm run demo`
//
// Without BASE_URL it prepares a demo exactly as `npm run demo` does (src/cli/demo.ts) in
// DATABASE (default rq_docs_browser, rebuilt, dropped at the end) on the MySQL of MYSQL_URL
// (default mysql://root@127.0.0.1:3306/), REDIS_URL, QUEUE_PREFIX (default rqdocsbrowser), and
// serves it on PORT (default 18435). CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR
// (default /work/notes/screens). Not part of `npm test`: it needs Chromium.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { prepareDemo } from '../../src/cli/demo.js';
import { loadConfig } from '../../src/config.js';
import { dropDatabase } from '../../src/demo/itflowDatabase.js';
import { createLogger } from '../../src/logger.js';
import { createRedis, deleteKeysUnder } from '../../src/queue/redis.js';
import { startService } from '../../src/service.js';

const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
const DATABASE = process.env.DATABASE ?? 'rq_docs_browser';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? '/work/notes/screens';
const TAGS = ['commands', 'bulk', 'read', 'status', 'operations'];

/** A demo as `npm run demo` starts it, on its own database, queue prefix and port. */
async function startDemo(): Promise<{ url: string; stop: () => Promise<void> }> {
  const base = loadConfig({
    DATABASE_URL: MYSQL_URL,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    HOST: '127.0.0.1',
    PORT: process.env.PORT ?? '18435',
    QUEUE_PREFIX: process.env.QUEUE_PREFIX ?? 'rqdocsbrowser',
    LOG_LEVEL: 'silent',
  });
  const { config } = await prepareDemo(base, { reset: true, database: DATABASE });
  const service = await startService(config, { intake: true, worker: true }, createLogger('silent'));
  console.log(`demo database ${DATABASE}, queue prefix ${config.QUEUE_PREFIX}, service on ${service.url}`);
  return {
    url: service.url ?? '',
    async stop() {
      await service.close();
      await dropDatabase(MYSQL_URL, DATABASE);
      const redis = createRedis(config, 'blocking', 'docs-browser-check');
      try {
        await deleteKeysUnder(redis, config.QUEUE_PREFIX);
      } finally {
        redis.disconnect();
      }
    },
  };
}

async function screenshot(page: Page, name: string): Promise<void> {
  const path = join(SCREENSHOT_DIR, name);
  await page.screenshot({ path, fullPage: false });
  console.log(`  screenshot: ${path}`);
}

async function main(): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const demo = process.env.BASE_URL ? null : await startDemo();
  const BASE_URL = (process.env.BASE_URL ?? demo?.url ?? '').replace(/\/$/, '');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));

    console.log(`GET ${BASE_URL}/ in a browser`);
    await page.goto(`${BASE_URL}/`);
    assert.equal(new URL(page.url()).pathname, '/docs', 'a browser at / is sent on to /docs');

    console.log('Swagger UI: the document, grouped by tag');
    await page.waitForSelector('.opblock-tag-section', { timeout: 20_000 });
    assert.equal(await page.locator('.errors-wrapper').count(), 0, 'no error or warning box');
    assert.equal(await page.locator('.validator-badge, img[alt*="validator" i]').count(), 0, 'no validator badge');
    const warnings = await page.locator('.information-container').getByText('Warning', { exact: true }).count();
    assert.equal(warnings, 0, 'no warning banner under the title');
    const tags = await page.locator('.opblock-tag-section h3 .nostyle span').allInnerTexts();
    assert.deepEqual(tags, TAGS, 'operations grouped by tag, in order');
    const authorized = await page.locator('.auth-wrapper .authorize.locked').count();
    assert.equal(authorized, 1, 'the demo comes authorized (the Authorize padlock is closed)');
    await screenshot(page, 'docs-overview.png');

    console.log('create.php: Try it out → Execute with the default example');
    const operation = page.locator('#operations-commands-createReply');
    await operation.locator('.opblock-summary-control').click();
    await operation.locator('.opblock-body').waitFor({ timeout: 10_000 });
    await operation.locator('button.try-out__btn').click();
    const body = await operation.locator('.body-param__text').inputValue();
    assert.match(body, /"ticket_id": 1/, 'the default example is in the body field');
    await operation.locator('.body-param__text').scrollIntoViewIfNeeded();
    await screenshot(page, 'docs-create-try-it-out.png');
    await operation.locator('button.execute').click();
    const status = operation.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 15_000 });
    const code = Number((await status.textContent())?.trim());
    const answer = (await operation.locator('.live-responses-table .response-col_description pre').first().textContent()) ?? '';
    console.log(`  answered ${code}: ${answer.replace(/\s+/g, ' ').slice(0, 200)}`);
    await operation.locator('.live-responses-table').scrollIntoViewIfNeeded();
    await screenshot(page, 'docs-create-executed.png');
    assert.ok(code >= 200 && code < 300, `create.php answered ${code}, not 2xx`);
    assert.match(answer, /"success": "True"/);

    assert.deepEqual(pageErrors, [], 'no script errors on the page');
    console.log('ok: /docs renders cleanly and "Try it out" on create.php succeeds');
  } finally {
    await browser.close();
    await demo?.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`FAILED: ${error.message}`);
    process.exit(1);
  },
);
