// A real ITFlow for the itflow scenario, installed the way `npm run conformance` installs one
// (conformance/php.ts and itflow.ts): a scratch copy of the checkout served by `php -S`, ITFlow's
// setup wizard into a scratch database, then an agent, a client, SMTP, an SLA where ITFlow has
// SLAs and an API key (running as the admin) through ITFlow's own pages. The hot tickets come
// from ITFlow's New Ticket form; the spread tickets are copies of the first of them written by
// SQL (see addSpreadTickets).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mysql, { type Connection } from 'mysql2/promise';
import { addTicket, ItflowUi, prepareWorld } from '../conformance/itflow.js';
import { CannotRun, checkCheckout, checkPhp, freePort, removeCopy, servePhp } from '../conformance/php.js';
import { withDatabase } from '../src/demo/itflowDatabase.js';

export interface ItflowInstall {
  phpUrl: string;
  /** The PHP version serving it. */
  php: string;
  database: string;
  databaseUrl: string;
  /** An open connection to the ITFlow database (dateStrings). */
  db: Connection;
  apiKey: string;
  clientId: number;
  hotTickets: number[];
  spreadTickets: number[];
  /** Stops PHP; drops the database and removes the copy unless kept. */
  cleanUp(): Promise<void>;
}

export interface InstallOptions {
  checkout: string;
  /** The MariaDB/MySQL server (root, no password, as the conformance tool's wizard step uses). */
  mysqlUrl: string;
  /** PHP_CLI_SERVER_WORKERS of the server. */
  phpWorkers: number;
  hotTickets: number;
  spreadTickets: number;
  keep: boolean;
  log: (line: string) => void;
}

const ADMIN_EMAIL = 'admin@bench.example';
const PASSWORD = 'Bench-Passw0rd';
const TIME_ZONE = 'America/New_York';

/** The path the scenario measures; ITFlow ≤ 2.4.6 (v26.07 and older) has no such endpoint. */
export const ITFLOW_REPLY_PATH = '/api/v1/ticket_replies/create.php';

export async function installItflow(o: InstallOptions): Promise<ItflowInstall> {
  const php = checkPhp();
  checkCheckout(o.checkout);
  if (!existsSync(join(o.checkout, ITFLOW_REPLY_PATH))) {
    throw new CannotRun(`${o.checkout} has no ${ITFLOW_REPLY_PATH.slice(1)} (ITFlow ≥ 2.4.7 has it)`);
  }
  const database = `itflow_bench_php_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: o.mysqlUrl }).catch((error: Error) => {
    throw new CannotRun(`cannot reach MariaDB/MySQL at ${o.mysqlUrl}: ${error.message}`);
  });
  const cleanups: Array<() => Promise<unknown>> = [() => admin.end()];
  const cleanUp = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {});
  };
  try {
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    if (!o.keep) cleanups.push(() => admin.query(`DROP DATABASE \`${database}\``));
    const server = await servePhp(o.checkout, await freePort(), null, o.phpWorkers);
    if (!o.keep) cleanups.push(async () => removeCopy(server.root));
    cleanups.push(() => server.stop());
    o.log(`ITFlow ${o.checkout} (PHP ${php}): setup wizard into ${database}, served from ${server.root}…`);

    const ui = new ItflowUi(server.url, server.errorLog);
    await ui.runSetupWizard({ database, timeZone: TIME_ZONE, adminEmail: ADMIN_EMAIL, password: PASSWORD });
    await ui.logIn(ADMIN_EMAIL, PASSWORD);
    const databaseUrl = withDatabase(o.mysqlUrl, database);
    const db = await mysql.createConnection({ uri: databaseUrl, dateStrings: true });
    cleanups.push(() => db.end());
    const world = await prepareWorld(ui, db, PASSWORD);
    if (!world.keysRunAsUser) throw new CannotRun(`${o.checkout} is ITFlow ≤ 2.4.6: its keys do not run as a user`);

    o.log(`ITFlow: ${o.hotTickets} tickets through its New Ticket form, ${o.spreadTickets} copies of the first by SQL…`);
    const hotTickets: number[] = [];
    for (let i = 1; i <= o.hotTickets; i++) {
      hotTickets.push((await addTicket(ui, db, world, `Bench hot ticket ${i}`)).id);
    }
    const spreadTickets = await addSpreadTickets(db, hotTickets[0] as number, o.spreadTickets);
    if (o.keep) cleanups.unshift(async () => o.log(`kept: database ${database}, ITFlow copy ${server.root}`));
    return {
      phpUrl: server.url,
      php,
      database,
      databaseUrl,
      db,
      apiKey: world.apiKey,
      clientId: world.clientId,
      hotTickets,
      spreadTickets,
      cleanUp,
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/**
 * `count` tickets as ITFlow's New Ticket form writes them: copies of the row it wrote for
 * `template` (same client, contact, agent, priority, status, dates), each with the next ticket
 * number (settings.config_ticket_next_number, moved on as ITFlow moves it), its own subject and
 * a url key made as ITFlow's randomString(32) makes one. The form's other rows (history, watcher,
 * mail) are not copied: a reply does not read them.
 */
async function addSpreadTickets(db: Connection, template: number, count: number): Promise<number[]> {
  const [[row]] = (await db.query('SELECT * FROM tickets WHERE ticket_id = ?', [template])) as unknown as [
    Array<Record<string, unknown>>,
  ];
  const [[settings]] = (await db.query(
    'SELECT config_ticket_next_number AS next FROM settings WHERE company_id = 1',
  )) as unknown as [Array<{ next: number }>];
  const { ticket_id: _id, ...columns } = row as Record<string, unknown>;
  const names = Object.keys(columns);
  const first = Number(settings?.next);
  const [[before]] = (await db.query('SELECT MAX(ticket_id) AS id FROM tickets')) as unknown as [Array<{ id: number }>];
  for (let start = 0; start < count; start += 500) {
    const rows = Array.from({ length: Math.min(500, count - start) }, (_, i) =>
      names.map((name) => {
        const n = start + i;
        if (name === 'ticket_number') return first + n;
        if (name === 'ticket_subject') return `Bench spread ticket ${n + 1}`;
        if (name === 'ticket_url_key') return randomBytes(24).toString('base64url');
        return columns[name];
      }),
    );
    await db.query(`INSERT INTO tickets (${names.map((n) => `\`${n}\``).join(', ')}) VALUES ?`, [rows]);
  }
  await db.query('UPDATE settings SET config_ticket_next_number = ? WHERE company_id = 1', [first + count]);
  const [ids] = (await db.query('SELECT ticket_id AS id FROM tickets WHERE ticket_id > ? ORDER BY ticket_id', [
    Number(before?.id),
  ])) as unknown as [Array<{ id: number }>];
  return ids.map((r) => Number(r.id));
}
