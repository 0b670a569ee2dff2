// /dashboard in a real browser, against a service this script starts with real work in it: an
// import applied and one still queued (chunks in the lanes), single commands waiting, commands
// refused by the worker (recent failures), and dead letters — a single command and a chunk's —
// made by holding ticket_replies locked past their attempts — some carrying an external_id —, a
// quiet key, external ids held, and read.php listings through the read projection and around it.
// It signs in with a technician's key
// (refused) and the admin key, opens a lane's chunks, shows a dead letter, replays a chunk's from
// the page, lets a worker apply it, and checks the reply rows. Screenshots of each step go to
// SCREENSHOT_DIR; the page must run without a script error or a Content-Security-Policy report.
//
//   npx tsx test/browser/dashboard.ts
//
// DATABASE (default rq_dashboard_browser, created afresh and dropped at the end) on the MySQL of
// MYSQL_URL (default mysql://root@127.0.0.1:3306/), REDIS_URL, PORT (default 18434), QUEUE_PREFIX
// (default rqdashbrowser), CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (default
// /work/notes/screens), KEEP=1 to leave the service running afterwards for a look by hand. Not
// part of `npm test`: it needs Chromium.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { chromium, type Locator, type Page } from 'playwright-core';
import { setQuiet, withKeySettings } from '../../src/cli/keys.js';
import { loadConfig } from '../../src/config.js';
import { createItflowDatabase, dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { DEMO_KEYS, seedDemoData } from '../../src/demo/seed.js';
import { runImport } from '../../src/import/run.js';
import { createLogger } from '../../src/logger.js';
import { createRedis, deleteKeysUnder } from '../../src/queue/redis.js';
import { type RunningService, startService } from '../../src/service.js';

const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
const DATABASE = process.env.DATABASE ?? 'rq_dashboard_browser';
const PORT = process.env.PORT ?? '18434';
const PREFIX = process.env.QUEUE_PREFIX ?? 'rqdashbrowser';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? '/work/notes/screens';
const KEEP = process.env.KEEP === '1';

const config = loadConfig({
  DATABASE_URL: withDatabase(MYSQL_URL, DATABASE),
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  HOST: '127.0.0.1',
  PORT,
  QUEUE_PREFIX: PREFIX,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
});
const BASE_URL = `http://127.0.0.1:${PORT}`;
const logger = createLogger(config.LOG_LEVEL);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function post(path: string, body: unknown): Promise<any> {
  const response = await fetch(`${BASE_URL}/api/v1/tickets/replies/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': DEMO_KEYS.admin },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as { data?: Array<{ command_id?: string }> };
  assert.ok(response.status < 300, `${path} answered ${response.status}: ${JSON.stringify(answer)}`);
  return answer;
}

async function dashboardApi(path: string): Promise<any> {
  const response = await fetch(`${BASE_URL}/dashboard/api/${path}`, { headers: { 'X-API-Key': DEMO_KEYS.admin } });
  return response.json();
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; last: ${JSON.stringify(value).slice(0, 300)}`);
    await sleep(250);
  }
}

const startWorker = (env: Partial<typeof config> = {}) =>
  startService({ ...config, ...env }, { intake: false, worker: true }, logger);

/** An NDJSON file of `lines` replies spread over `tickets`, as an import would send it. */
function importFile(dir: string, name: string, lines: number, tickets: number[]): string {
  const path = join(dir, name);
  const rows = Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      ticket_id: tickets[i % tickets.length],
      ticket_reply: `Imported note ${i + 1} from ${name}`,
      created_at: '2025-06-01 09:00:00',
    }),
  );
  writeFileSync(path, `${rows.join('\n')}\n`);
  return path;
}

async function sendImport(file: string, wait: boolean): Promise<void> {
  const summary = await runImport({
    file,
    format: 'ndjson',
    url: BASE_URL,
    apiKey: DEMO_KEYS.admin,
    batchSize: 1000,
    concurrency: 4,
    wait,
    dryRun: false,
    maxPending: 50_000,
    report: () => {},
    stopped: () => false,
  });
  console.log(`  import ${file}: queued ${summary.queued}, applied ${summary.applied}, rejected ${summary.rejected}`);
}

/** The service, with the work the dashboard is to show. */
async function prepare(dir: string): Promise<{ intake: RunningService; deadIds: string[]; tickets: number[] }> {
  console.log(`Database ${DATABASE}, queue prefix ${PREFIX}, service on ${BASE_URL}`);
  await createItflowDatabase(MYSQL_URL, DATABASE, '2.6.7', { reset: true });
  await seedDemoData(config.DATABASE_URL);
  const redis = createRedis(config, 'blocking', 'dashboard-check');
  await deleteKeysUnder(redis, PREFIX);
  redis.disconnect();
  const db = await mysql.createConnection({ uri: config.DATABASE_URL });
  // More open Acme tickets than the demo's six, so an import spreads over several lanes.
  const extra = Array.from({ length: 14 }, (_, i) => i + 7);
  for (const id of extra) {
    await db.query(
      `INSERT INTO tickets (ticket_id, ticket_prefix, ticket_number, ticket_subject, ticket_details, ticket_status,
                            ticket_client_id, ticket_created_by, ticket_url_key)
       VALUES (?, 'TCK-', ?, ?, 'Imported history', 2, 1, 1, ?)`,
      [id, id, `Migrated ticket ${id}`, `url${id}`],
    );
  }
  const tickets = [1, 2, 3, 4, ...extra];
  const intake = await startService(config, { intake: true, worker: false }, logger);
  // The reporting key quiet by default, as `npm run cli -- keys quiet 3` makes it.
  await withKeySettings(config, (pool, tables) => setQuiet(pool, tables, [3], true));

  console.log(
    'An import applied, and two replies with external ids; replies refused by the worker (ticket 6 closed after they were accepted)',
  );
  let worker = await startWorker();
  await post('create.php', { ticket_id: 1, ticket_reply: 'Synced from the PSA.', external_id: 'psa-note-1001' });
  await post('create.php', { ticket_id: 2, ticket_reply: 'Synced from the PSA too.', external_id: 'psa-note-1002' });
  await sendImport(importFile(dir, 'helpdesk-history-2024.ndjson', 1500, tickets), true);
  await until(
    'the external ids',
    async () => (await db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM rq_external_ids'))[0][0]?.n,
    (n) => Number(n) === 2,
  );
  await worker.close();
  const refused: string[] = [];
  for (const [i, text] of ['Certificate renewed.', 'Added the new SAN.', 'Closing note'].entries()) {
    refused.push(
      (await post('create.php', { ticket_id: 6, ticket_reply: text, external_id: `psa-cert-${i + 1}` })).data[0].command_id,
    );
  }
  await db.query('UPDATE tickets SET ticket_status = 5, ticket_closed_at = NOW() WHERE ticket_id = 6');
  worker = await startWorker();
  await until(
    'the refused commands',
    () => dashboardApi('failures?hours=1'),
    (f) => f.total >= refused.length,
  );
  await worker.close();
  await db.query('UPDATE tickets SET ticket_status = 2, ticket_closed_at = NULL WHERE ticket_id = 6');

  console.log('Dead letters: ticket_replies held locked while a worker runs out of attempts');
  await db.query('LOCK TABLES ticket_replies READ');
  const chunk = await post('bulk.php', [
    { ticket_id: 1, ticket_reply: 'Rebooted the NAS; backup job rerun.' },
    { ticket_id: 1, ticket_reply: 'Backup verified.', status: 4 },
    { ticket_id: 1, ticket_reply: 'Weekly restore test scheduled.' },
  ]);
  const single = await post('create.php', {
    ticket_id: 2,
    ticket_reply: 'Laptop imaged and enrolled.',
    public_reply_type: 1,
    external_id: 'psa-laptop-42',
  });
  const deadIds = [...chunk.data.map((d: { command_id: string }) => d.command_id), single.data[0].command_id];
  worker = await startWorker({
    APPLY_MAX_ATTEMPTS: 2,
    APPLY_LOCK_WAIT_SECONDS: 1,
    APPLY_BACKOFF_MS: 100,
    APPLY_MAX_BACKOFF_MS: 100,
  });
  await until(
    'the dead letters',
    () => dashboardApi('dead-letters'),
    (d) => d.total >= deadIds.length,
  );
  await worker.close();
  await db.query('UNLOCK TABLES');
  await db.end();

  console.log('Queued work with no worker: an import in chunks, and single commands');
  await sendImport(importFile(dir, 'acme-backfill.ndjson', 2400, tickets), false);
  for (const [ticket, text] of [
    [3, 'ISP confirmed a fault on the line.'],
    [3, 'Failover link is up.'],
    [2, 'Shipped to the new starter.'],
  ] as const) {
    await post('create.php', { ticket_id: ticket, ticket_reply: text });
  }
  await sleep(3000); // so the oldest waiting command has an age to show

  console.log('read.php: two ticket pages through the read projection, a reply_id from ITFlow’s tables');
  for (const query of ['ticket_id=1', 'ticket_id=2', 'reply_id=1']) {
    const response = await fetch(`${BASE_URL}/api/v1/tickets/replies/read.php?${query}`, {
      headers: { 'X-API-Key': DEMO_KEYS.admin },
    });
    assert.equal(response.status, 200, `read.php?${query}`);
    const source = response.headers.get('x-read-source');
    assert.equal(source, query.startsWith('ticket') ? 'projection' : 'itflow', `read.php?${query} answered from ${source}`);
  }
  return { intake, deadIds, tickets };
}

/** The text a user sees in `locator`: rendered, hidden parts left out. */
// biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText() is the rendered text, which is the point here.
const seen = (locator: Locator) => locator.innerText();

async function shoot(target: Page | Locator, name: string, fullPage = false): Promise<void> {
  const path = join(SCREENSHOT_DIR, name);
  if ('goto' in target) await target.screenshot({ path, fullPage });
  else await target.screenshot({ path });
  console.log(`  screenshot: ${path}`);
}

async function check(deadIds: string[]): Promise<void> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });

    console.log('Sign-in: /dashboard asks for a key; a technician’s is refused');
    await page.goto(`${BASE_URL}/dashboard`);
    assert.equal(new URL(page.url()).pathname, '/dashboard/');
    await page.locator('#login').waitFor();
    await shoot(page, 'dashboard-login.png');
    await page.fill('#key', DEMO_KEYS.acmeTechnician);
    await page.click('#login button[type=submit]');
    await page.locator('#login-error').waitFor();
    assert.match(await seen(page.locator('#login-error')), /for administrators/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
    await shoot(page, 'dashboard-refused.png');
    // The expected 403 shows in the console as a failed resource load; that one is not a problem.
    problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('403')));

    console.log('The admin key: tiles, lanes, dead letters, failures, imports');
    await page.fill('#key', DEMO_KEYS.admin);
    await page.click('#login button[type=submit]');
    // Every panel is drawn once the page says when it was updated.
    await page.locator('#refreshed', { hasText: 'updated' }).waitFor();
    const tile = (label: string) => page.locator('.tile', { hasText: label }).locator('.tile-value');
    assert.equal(await seen(tile('Dead letters')), '2', 'two dead jobs: the chunk and the single command');
    assert.match(await seen(tile('Oldest waiting')), /^\d+ s$/);
    assert.equal(await page.locator('#dead tbody tr').count(), deadIds.length, 'each dead command on its own row');
    assert.match(await seen(page.locator('#who')), /Signed in as Ada Admin/);
    assert.ok(Number((await seen(tile('Not applied yet'))).replace(/,/g, '')) > 0);
    await shoot(page, 'dashboard-overview.png', true);

    console.log('The read projection, the API keys, and external ids on failed commands');
    assert.match(await seen(page.locator('#projection-state')), /read\.php serves from it/);
    const projection = await seen(page.locator('#projection'));
    assert.match(projection, /Listings from the projection\n2\n/);
    assert.match(projection, /Listings from ITFlow’s tables\n1\n/);
    assert.match(projection, /reply_id from ITFlow’s tables: a reply_id/);
    assert.match(projection, /Replies behind the watermark\n0\n/);
    await shoot(page.locator('#projection-card'), 'dashboard-projection.png');
    const keyRow = (name: string) => seen(page.locator('#keys tbody tr', { hasText: name }));
    assert.equal(await page.locator('#keys tbody tr').count(), 3);
    assert.match(await keyRow('Demo admin integration'), /Ada Admin user #1\s+2099-12-31\s+notifies\s+2$/);
    assert.match(await keyRow('Demo reporting'), /quiet\s+0$/);
    assert.match(await seen(page.locator('#keys-card .hint')), /npm run cli -- keys quiet ID…/);
    await shoot(page.locator('#keys-card'), 'dashboard-keys.png');
    assert.match(await seen(page.locator('#dead')), /external id psa-laptop-42/);
    assert.match(await seen(page.locator('#failures')), /external id psa-cert-3/);

    console.log('A lane’s jobs: chunks with the commands they carry');
    await page.locator('#lanes tbody tr', { hasText: 'replies-003' }).getByRole('button', { name: 'Jobs' }).click();
    await page.locator('#lane-detail table tbody tr').first().waitFor();
    const laneText = await seen(page.locator('#lane-detail'));
    assert.match(laneText, /chunk/);
    assert.match(laneText, /single command/);
    await shoot(page.locator('#lanes-card'), 'dashboard-lane-chunks.png');

    console.log('A dead letter shown, then its chunk replayed from the page');
    const chunkRow = page.locator('#dead tbody tr', { hasText: 'chunk' }).first();
    await chunkRow.getByRole('button', { name: 'Show' }).click();
    await page.locator('#dead-detail .reply-body').waitFor();
    assert.match(await seen(page.locator('#dead-detail .reply-body')), /Rebooted the NAS|Backup verified|Weekly restore/);
    await page.locator('#dead-detail summary').click();
    assert.match(await seen(page.locator('#dead-detail pre')), /"ticketId": 1,/);
    await shoot(page.locator('#dead-card'), 'dashboard-dead-letter.png');
    await chunkRow.getByRole('button', { name: 'Replay' }).click();
    await page.locator('dialog#confirm[open]').waitFor();
    assert.match(await seen(page.locator('#confirm-text')), /goes back whole/);
    await shoot(page, 'dashboard-replay-confirm.png');
    await page.click('#confirm-ok');
    await page.locator('.notice.banner').waitFor();
    assert.match(await seen(page.locator('.notice.banner')), /with the 2 other command\(s\) of its chunk/);
    await page.locator('#dead tbody tr', { hasText: 'chunk' }).first().waitFor({ state: 'detached' });
    assert.equal(await seen(tile('Dead letters')), '1');
    await shoot(page, 'dashboard-replayed.png');

    console.log('A worker applies the replayed chunk (and the queued import); the page follows');
    const worker = await startWorker();
    try {
      const chunkIds = deadIds.slice(0, 3);
      const db = await mysql.createConnection({ uri: config.DATABASE_URL });
      try {
        await until(
          'the replayed chunk to be applied',
          async () =>
            (
              await db.query<mysql.RowDataPacket[]>(
                "SELECT COUNT(*) AS n FROM rq_commands WHERE status = 'applied' AND command_id IN (?)",
                [chunkIds.map((id) => Buffer.from(id.replace(/-/g, ''), 'hex'))],
              )
            )[0][0]?.n,
          (n) => Number(n) === 3,
        );
        const [replies] = await db.query<mysql.RowDataPacket[]>(
          "SELECT ticket_reply FROM ticket_replies WHERE ticket_reply IN ('Rebooted the NAS; backup job rerun.', 'Backup verified.', 'Weekly restore test scheduled.')",
        );
        assert.equal(replies.length, 3, 'the replayed chunk’s three replies are in ITFlow');
      } finally {
        await db.end();
      }
      await until(
        'the lanes to empty',
        () => dashboardApi('queues'),
        (q) => q.backlog === 0,
        60_000,
      );
    } finally {
      await worker.close();
    }
    await sleep(31_000); // the imports' finished counts are cached for 30 s
    await page.click('#refresh');
    await page.locator('.tile', { hasText: 'Not applied yet' }).locator('.tile-value', { hasText: /^0$/ }).waitFor();
    await shoot(page, 'dashboard-drained.png', true);
    await shoot(page.locator('#failures-card'), 'dashboard-failures.png');
    await shoot(page.locator('#imports-card'), 'dashboard-imports.png');
    assert.match(await seen(page.locator('#imports')), /Finished 2,400 line\(s\) of 2,400 \(100 %\)/);

    assert.deepEqual(problems, [], 'no script error or CSP report on the page');
    console.log('ok: the dashboard signs in, shows the lanes, chunks, dead letters, failures and imports, and replays');
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-dashboard-check-'));
  let intake: RunningService | null = null;
  try {
    const prepared = await prepare(dir);
    intake = prepared.intake;
    await check(prepared.deadIds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (KEEP && intake) {
      console.log(`KEEP=1: the service stays up at ${BASE_URL}/dashboard/ (key ${DEMO_KEYS.admin}); Ctrl-C to stop.`);
    } else {
      await intake?.close();
      await dropDatabase(MYSQL_URL, DATABASE);
      const redis = createRedis(config, 'blocking', 'dashboard-check');
      await deleteKeysUnder(redis, PREFIX);
      redis.disconnect();
    }
  }
}

main().then(
  () => {
    if (!KEEP) process.exit(0);
  },
  (error: Error) => {
    console.error(`FAILED: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
