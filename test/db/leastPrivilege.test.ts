import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { idBytes, readLedger, utcTimestamp } from '../../src/apply/ledger.js';
import { migrateCommand } from '../../src/cli/migrate.js';
import { newCommandId } from '../../src/commands/commandId.js';
import type { Config } from '../../src/config.js';
import { LATEST_MIGRATION, migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { purgeLedger } from '../../src/db/retention.js';
import { serviceTables } from '../../src/db/tables.js';
import { createItflowDatabase, dropDatabase, GENERATIONS, type Generation, withDatabase } from '../../src/demo/itflowDatabase.js';
import { createLogger } from '../../src/logger.js';
import { type RunningService, startService } from '../../src/service.js';
import { deleteQueueKeys, httpRequest, testConfig, uniqueName } from '../helpers/harness.js';
import {
  addContact,
  addSla,
  addTicket,
  addWatcher,
  createMysqlUserWithGrants,
  repliesOf,
  seedWorld,
  setMailSettings,
  ticketRow,
  type World,
} from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, ITFLOW_READ } from '../helpers/paths.js';
import { V1_LEDGER } from './v1Ledger.js';

// The service run by a MySQL user holding exactly the grants docs/operations.md lists ("Database user"),
// read from that page itself: it starts, migrates a fresh database and upgrades a ledger of the
// previous release, applies a command that writes a reply and resolves a ticket, logs a wrong
// key, answers reads, and purges the ledger. A purge refused its privilege says so in an error.

const OPERATIONS = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
const DAY = 86_400_000;

/** The ```sql blocks of docs/operations.md of GRANT statements, by their opening comment. */
function readmeGrants(comment: RegExp): string[] {
  const block = [...OPERATIONS.matchAll(/^```sql\n([\s\S]*?)^```\s*$/gm)]
    .map((m) => m[1] as string)
    .find((text) => comment.test(text.split('\n')[0] ?? ''));
  if (!block) throw new Error(`docs/operations.md has no sql block starting with ${comment}`);
  return block
    .split('\n')
    .filter((line) => !line.startsWith('--') && line.trim() !== '')
    .map((line) => line.replace(/;\s*$/, ''));
}

/** The statements of docs/operations.md for this generation and layout, with its names replaced by the test's. */
function grantsFor(generation: Generation, layout: 'itflow' | 'schema', names: { database: string; schema?: string }) {
  const statements = [
    ...readmeGrants(/ITFlow's tables, every ITFlow version/),
    ...(generation === '2.4.4' ? [] : readmeGrants(/ITFlow ≥ 2\.4\.7 also/)),
    ...(generation === '2.4.4' ? [] : readmeGrants(/ITFlow with its SLA clock/)),
    ...readmeGrants(layout === 'itflow' ? /the service's tables in the ITFlow database/ : /in a schema of their own/),
  ];
  return (account: string) =>
    statements.map((s) =>
      s
        .replaceAll("'replyqueue'@'%'", account)
        .replaceAll('replyqueue.*', `\`${names.schema}\`.*`)
        .replaceAll(/\bitflow\./g, `\`${names.database}\`.`),
    );
}

/** pino lines written by a service, parsed. */
function capturedLogger() {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const logger = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe.each(GENERATIONS)('a database user with only the grants docs/operations.md lists (ITFlow %s)', (generation) => {
  const database = uniqueName(`lp${generation.replace(/\./g, '')}`);
  const password = 'least-privilege-pass';
  let root: mysql.Connection;
  let admin: mysql.Pool;
  let world: World;
  const cleanups: Array<() => Promise<unknown>> = [];

  /** A user of this test's own with `grants`, and the service configuration that logs in as it. */
  async function userConfig(grants: (account: string) => string[], env: Record<string, string> = {}) {
    const user = uniqueName('u');
    cleanups.push(await createMysqlUserWithGrants(root, user, password, grants));
    const url = new URL(withDatabase(inject('mysqlUrl'), database));
    url.username = user;
    url.password = password;
    const prefix = uniqueName('q');
    cleanups.push(() => deleteQueueKeys(inject('redisUrl'), prefix));
    return testConfig(database, prefix, { ...env, DATABASE_URL: url.toString() });
  }

  async function start(config: Config, logger = createLogger('silent')): Promise<RunningService> {
    const service = await startService(config, { intake: true, worker: true }, logger);
    cleanups.push(() => service.close());
    return service;
  }

  /** One old ledger row (accepted `daysAgo` days ago, its id made then), written as the worker writes it. */
  async function oldLedgerRow(table: string, daysAgo: number, textId = false): Promise<string> {
    const at = Date.now() - daysAgo * DAY;
    const id = newCommandId(at);
    await admin.query(
      `INSERT INTO ${table} (command_id, api_key_id, fingerprint, ticket_id, accepted_at_utc, finished_at_utc, status, insert_id)
       VALUES (?, 1, NULL, 1, ?, ?, 'applied', 5)`,
      [textId ? id : idBytes(id), utcTimestamp(at), utcTimestamp(at)],
    );
    return id;
  }

  beforeAll(async () => {
    await createItflowDatabase(inject('mysqlUrl'), database, generation);
    root = await mysql.createConnection({ uri: withDatabase(inject('mysqlUrl'), '') });
    admin = createPool(withDatabase(inject('mysqlUrl'), database), 2);
    world = await seedWorld(admin, generation);
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await admin?.end();
    await root?.end();
    await dropDatabase(inject('mysqlUrl'), database);
  });

  it('tables in the ITFlow database: migrates a fresh database, applies a reply that resolves a ticket, logs a wrong key, reads, purges', async () => {
    const config = await userConfig(grantsFor(generation, 'itflow', { database }));
    const service = await start(config);
    const url = service.url as string;
    const tables = serviceTables(config);
    expect(await migrateCommand(config)).toMatch(/up to date/);

    const ticket = await addTicket(admin, generation, { clientId: world.clientA, assignedTo: world.agent, status: 2 });
    const created = await httpRequest(
      url,
      'POST',
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Fixed, resolving.', status: 4 },
      { 'X-API-Key': world.keys.all, Prefer: 'wait=10' },
    );
    expect(created.status).toBe(201);
    const commandId = created.body.data[0].command_id;
    const [reply] = await repliesOf(admin, ticket);
    expect(reply).toMatchObject({ ticket_reply: 'Fixed, resolving.', ticket_reply_by: world.author });
    expect(await ticketRow(admin, ticket)).toMatchObject({ ticket_status: 4, ticket_resolved_at: expect.any(String) });
    const [[audit]] = (await admin.query(
      `SELECT (SELECT COUNT(*) FROM logs WHERE log_type = 'Ticket' AND log_entity_id = ?) AS logs,
              (SELECT COUNT(*) FROM ticket_history WHERE ticket_history_ticket_id = ?) AS history,
              (SELECT COUNT(*) FROM notifications WHERE notification_user_id = ? AND notification_action LIKE ?) AS notifications`,
      [ticket, ticket, world.agent, `%ticket_id=${ticket}%`],
    )) as unknown as [[{ logs: number; history: number; notifications: number }]];
    expect(Object.fromEntries(Object.entries(audit).map(([k, v]) => [k, Number(v)]))).toEqual({
      logs: 2,
      history: generation === '2.4.4' ? 0 : 1, // ITFlow 2.4.4's resolve writes no ticket_history
      notifications: 1,
    });
    expect(await readLedger(admin, tables, commandId)).toMatchObject({
      outcome: { status: 'applied', insertId: reply?.ticket_reply_id },
    });

    const status = await httpRequest(url, 'GET', `${COMMANDS}?command_id=${commandId}`, undefined, {
      'X-API-Key': world.keys.all,
    });
    expect(status.body.data[0]).toMatchObject({ status: 'applied', insert_id: reply?.ticket_reply_id });
    const read = await httpRequest(url, 'GET', `${ITFLOW_READ}?ticket_id=${ticket}`, undefined, { 'X-API-Key': world.keys.all });
    expect(read.status).toBe(200);
    expect(read.body.data).toHaveLength(1);

    const bulk = await httpRequest(
      url,
      'POST',
      BULK,
      [
        { ticket_id: ticket, ticket_reply: 'One more.' },
        { ticket_id: ticket, ticket_reply: 'And another.' },
      ],
      { 'X-API-Key': world.keys.all, Prefer: 'wait=10' },
    );
    expect(bulk.body.data.map((item: { status: string }) => item.status)).toEqual(['applied', 'applied']);
    // The purge's premise: every id the service made carries its acceptance time in its first 48 bits.
    const [ids] = (await admin.query(
      `SELECT CONV(LEFT(HEX(command_id), 12), 16, 10) AS id_ms, HEX(command_id) AS hex, accepted_at_utc FROM ${tables.commands}`,
    )) as unknown as [Array<{ id_ms: string; hex: string; accepted_at_utc: string }>];
    expect(ids).toHaveLength(3);
    for (const row of ids) {
      expect(row.hex[12]).toBe('7');
      expect(Math.abs(Number(row.id_ms) - Date.parse(`${row.accepted_at_utc.replace(' ', 'T')}Z`))).toBeLessThan(1000);
    }

    const wrong = await httpRequest(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { 'X-API-Key': 'not-a-key' });
    expect(wrong.status).toBe(401);
    const [failed] = (await admin.query("SELECT log_action FROM logs WHERE log_type = 'API'")) as unknown as [unknown[]];
    expect(failed).toEqual([{ log_action: 'Failed' }]);

    const old = await oldLedgerRow(tables.commands, 30);
    const userPool = createPool(config.DATABASE_URL, 1);
    try {
      expect(await purgeLedger(userPool, tables, config.COMMAND_RETENTION_DAYS)).toBe(1);
    } finally {
      await userPool.end();
    }
    expect(await readLedger(admin, tables, old)).toBeNull();
    expect(await readLedger(admin, tables, commandId)).not.toBeNull();
  });

  it('ITFlow’s mail tables (and its SLA clock where it has one): a Public + email reply queues the mail; a pause and a resume keep the clock', async () => {
    await setMailSettings(admin);
    const config = await userConfig(grantsFor(generation, 'itflow', { database }), { ITFLOW_BASE_URL: 'itflow.example.com' });
    const url = (await start(config)).url as string;
    const contact = await addContact(admin, { name: 'Casey Client', email: 'casey@client.example', clientId: world.clientA });
    const started = '2026-01-05 09:00:00';
    const sla = generation === '2.4.4' ? undefined : await addSla(admin, { response: 60, resolution: 480 });
    const ticket = await addTicket(admin, generation, {
      clientId: world.clientA,
      contactId: contact,
      ...(sla ? { slaId: sla, createdAt: started, resolutionDueAt: '2026-01-05 17:00:00' } : {}),
    });
    await addWatcher(admin, ticket, 'watcher@client.example');
    // The interval ITFlow opens when a ticket is raised on an SLA.
    if (sla)
      await admin.query('INSERT INTO sla_history (sla_history_started_at, sla_history_ticket_id) VALUES (?, ?)', [
        started,
        ticket,
      ]);
    const send = async (body: object) => {
      const answer = await httpRequest(
        url,
        'POST',
        CREATE,
        { ticket_id: ticket, ...body },
        {
          'X-API-Key': world.keys.all,
          Prefer: 'wait=10',
        },
      );
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    };

    await send({ ticket_reply: 'We are on it.', public_reply_type: 2 });
    const [mail] = (await admin.query('SELECT email_recipient FROM email_queue ORDER BY email_id')) as unknown as [
      Array<{ email_recipient: string }>,
    ];
    expect(mail.map((m) => m.email_recipient)).toEqual(['casey@client.example', 'watcher@client.example']);

    if (sla) {
      await admin.query(
        "INSERT INTO ticket_statuses (ticket_status_id, ticket_status_name, ticket_status_color, ticket_status_pauses_sla) VALUES (6, 'Waiting on Client', '#aaa', 1)",
      );
      await send({ status: 6 });
      await send({ status: 2 });
      const [intervals] = (await admin.query(
        'SELECT sla_history_ended_at AS ended FROM sla_history WHERE sla_history_ticket_id = ? ORDER BY sla_history_id',
        [ticket],
      )) as unknown as [Array<{ ended: string | null }>];
      expect(intervals.map((i) => i.ended === null)).toEqual([false, true]);
    }
  });

  it('refuses to start, naming the table, when a grant on one of ITFlow’s mail or SLA tables is missing', async () => {
    const table = generation === '2.4.4' ? 'ticket_watchers' : 'sla_history';
    const all = grantsFor(generation, 'itflow', { database });
    const config = await userConfig((account) => all(account).filter((grant) => !grant.includes(`.${table} `)));
    await expect(start(config)).rejects.toThrow(
      `The service's MySQL user cannot see ITFlow's ${table} in database '${database}'`,
    );
  });

  it('SERVICE_SCHEMA holding a ledger of the previous release: upgrades it, writes to it, purges it', async () => {
    const schema = uniqueName('svc');
    cleanups.push(() => dropDatabase(inject('mysqlUrl'), schema));
    await root.query(`CREATE DATABASE \`${schema}\``);
    const config = await userConfig(grantsFor(generation, 'schema', { database, schema }), { SERVICE_SCHEMA: schema });
    const tables = serviceTables(config);
    for (const sql of V1_LEDGER(tables)) await admin.query(sql);
    const old = await oldLedgerRow(tables.commands, 30, true);
    const kept = await oldLedgerRow(tables.commands, 1, true);

    const service = await start(config);
    const [[version]] = (await admin.query(`SELECT MAX(version) AS v FROM ${tables.migrations}`)) as unknown as [[{ v: number }]];
    expect(version.v).toBe(LATEST_MIGRATION);
    const ticket = await addTicket(admin, generation, { clientId: world.clientA });
    const created = await httpRequest(
      service.url as string,
      'POST',
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Into the service schema.' },
      { 'X-API-Key': world.keys.all, Prefer: 'wait=10' },
    );
    expect(created.status).toBe(201);
    expect(await readLedger(admin, tables, created.body.data[0].command_id)).toMatchObject({ outcome: { status: 'applied' } });

    // The worker purged at start-up, as this user; the upgraded rows kept their ids and times.
    for (let i = 0; i < 100 && (await readLedger(admin, tables, old)) !== null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await readLedger(admin, tables, old)).toBeNull();
    expect(await readLedger(admin, tables, kept)).toMatchObject({ outcome: { status: 'applied', insertId: 5 } });
  });

  it('SERVICE_SCHEMA not created yet: the service creates it', async () => {
    const schema = uniqueName('svcnew');
    cleanups.push(() => dropDatabase(inject('mysqlUrl'), schema));
    const config = await userConfig(grantsFor(generation, 'schema', { database, schema }), { SERVICE_SCHEMA: schema });
    await start(config);
    const [found] = (await admin.query(
      'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1',
      [schema],
    )) as unknown as [unknown[]];
    expect(found).toEqual(
      [
        'rq_commands',
        'rq_external_ids',
        'rq_hook_outbox',
        'rq_key_settings',
        'rq_migrations',
        'rq_read_replies',
        'rq_read_state',
        'rq_read_tickets',
        'rq_webhooks',
      ].map((t) => ({ t })),
    );
  });

  it('without DELETE on the ledger, the purge logs an error naming the missing privilege', async () => {
    const withoutDelete = grantsFor(generation, 'itflow', { database });
    const config = await userConfig((account) =>
      withoutDelete(account).map((grant) =>
        grant.includes('.rq_commands ') ? grant.replace('UPDATE, DELETE ON', 'UPDATE ON') : grant,
      ),
    );
    const tables = serviceTables(config);
    await migrate(admin, tables);
    const old = await oldLedgerRow(tables.commands, 30);
    const { logger, lines } = capturedLogger();
    await start(config, logger);
    let refusal: (typeof lines)[number] | undefined;
    for (let i = 0; i < 100 && !refusal; i++) {
      refusal = lines.find((line) => line.msg.startsWith('could not purge the ledger'));
      if (!refusal) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refusal).toMatchObject({ level: 50, privilege: 'DELETE' });
    expect(refusal?.msg).toContain(`lacks DELETE on ${database}.rq_commands`);
    expect(await readLedger(admin, tables, old)).not.toBeNull();
  });
});
