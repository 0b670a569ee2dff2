import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrate as migrateServiceTables } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { serviceTables } from '../../src/db/tables.js';
import { createItflowDatabase, dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { deleteQueueKeys, testConfig, uniqueName } from '../helpers/harness.js';
import { createMysqlUserWithGrants } from '../helpers/itflow.js';
import { killLeftovers, type ServiceProcess, spawnEntry } from '../helpers/processes.js';

/**
 * Traps an operator meets at start-up, each stopped with one line that says what to do: a
 * MySQL grant the service needs and lacks (named as the GRANT to paste), a REDIS_URL database
 * the server refuses, and `migrate` saying what `npm start` says (no ITFlow tables, no MySQL,
 * a refused CREATE).
 */

/** The grants "Database user" in docs/operations.md lists, for an ITFlow with its SLA clock, tables in the ITFlow database. */
const DOCUMENTED_GRANTS: Array<[string, string]> = [
  ['SELECT', 'api_keys'],
  ['SELECT', 'settings'],
  ['SELECT', 'users'],
  ['SELECT', 'contacts'],
  ['SELECT', 'ticket_statuses'],
  ['SELECT, UPDATE', 'tickets'],
  ['SELECT, INSERT', 'ticket_replies'],
  ['INSERT', 'logs'],
  ['INSERT', 'ticket_history'],
  ['INSERT', 'notifications'],
  ['SELECT', 'companies'],
  ['SELECT', 'ticket_watchers'],
  ['SELECT', 'user_settings'],
  ['INSERT', 'email_queue'],
  ['SELECT', 'user_roles'],
  ['SELECT', 'modules'],
  ['SELECT', 'user_role_permissions'],
  ['SELECT', 'user_client_permissions'],
  ['SELECT', 'slas'],
  ['SELECT, INSERT, UPDATE', 'sla_history'],
  ['CREATE, ALTER, SELECT, INSERT, UPDATE, DELETE', 'rq_commands'],
  ['CREATE, SELECT, INSERT', 'rq_migrations'],
  ['CREATE, SELECT, INSERT', 'rq_external_ids'],
  ['CREATE, SELECT, INSERT, UPDATE', 'rq_key_settings'],
  ['CREATE, ALTER, SELECT, INSERT, UPDATE, DELETE', 'rq_read_replies'],
  ['CREATE, ALTER, SELECT, INSERT, UPDATE', 'rq_read_tickets'],
  ['CREATE, ALTER, SELECT, INSERT, UPDATE', 'rq_read_state'],
  ['CREATE, SELECT, INSERT, DELETE', 'rq_webhooks'],
  ['CREATE, SELECT, INSERT, UPDATE, DELETE', 'rq_hook_outbox'],
];

/** Resolves with how a process ended: its exit code, or 'started' if it came up instead. */
async function outcome(proc: ServiceProcess, started = /started|Server listening/): Promise<number | string> {
  const result = await Promise.race([proc.exited, proc.waitFor(started, 25_000).then(() => 'started')]);
  if (result === 'started') proc.child.kill('SIGKILL');
  return result;
}

/**
 * What a process said besides its info logs: every line that is not a JSON log line, and no
 * error or fatal log line (a refusal is the one line, not a stack of them).
 */
function lines(proc: ServiceProcess): string[] {
  const all = proc.output().trim().split('\n');
  const logs = all.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number });
  expect(logs.filter((log) => log.level >= 50)).toEqual([]);
  return all.filter((line) => !line.startsWith('{'));
}

describe('start-up refusals in one line', () => {
  const database = uniqueName('grants');
  const empty = uniqueName('noitflow');
  const prefix = uniqueName('q');
  const password = 'startup-check-pass';
  let root: mysql.Connection;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    await createItflowDatabase(inject('mysqlUrl'), database, '2.6.7');
    root = await mysql.createConnection({ uri: withDatabase(inject('mysqlUrl'), '') });
    await root.query(`CREATE DATABASE \`${empty}\``);
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await root?.end();
    await dropDatabase(inject('mysqlUrl'), database);
    await dropDatabase(inject('mysqlUrl'), empty);
    await deleteQueueKeys(inject('redisUrl'), prefix);
  });

  /** Environment for a process logging in as a new user holding those grants minus `without`. */
  async function userEnv(without: (grant: [string, string]) => [string, string] | null, db = database) {
    const user = uniqueName('u');
    const grants = DOCUMENTED_GRANTS.map(without).filter((g): g is [string, string] => g !== null);
    cleanups.push(
      await createMysqlUserWithGrants(root, user, password, (account) =>
        grants.map(([privileges, table]) => `GRANT ${privileges} ON \`${db}\`.\`${table}\` TO ${account}`),
      ),
    );
    const url = new URL(withDatabase(inject('mysqlUrl'), db));
    url.username = user;
    url.password = password;
    return { user, env: { ...baseEnv(), DATABASE_URL: url.toString() } };
  }

  const baseEnv = () => ({
    DATABASE_URL: withDatabase(inject('mysqlUrl'), database),
    REDIS_URL: inject('redisUrl'),
    PORT: '0',
    QUEUE_PREFIX: prefix,
    QUEUE_PARTITIONS: '4',
    LOG_LEVEL: 'info',
  });
  const account = (user: string) => `'${user}'@'[^']+'`;
  const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  it('INSERT missing on ticket_replies: npm start stops with one line holding the GRANT to paste', async () => {
    const { user, env } = await userEnv(([p, t]) => (t === 'ticket_replies' ? ['SELECT', t] : [p, t]));
    const proc = spawnEntry('workers/service.ts', env);
    expect(await outcome(proc)).toBe(1);
    expect(lines(proc)).toHaveLength(1);
    expect(lines(proc)[0]).toMatch(
      new RegExp(
        `^The database user ${account(user)} lacks privileges the service needs \\("Database user" in docs/operations.md lists them all\\)\\. As a MySQL admin, run: `,
      ),
    );
    expect(lines(proc)[0]).toMatch(new RegExp(`GRANT INSERT ON ${escapeRegex(database)}\\.ticket_replies TO ${account(user)};`));
    expect(lines(proc)[0]).not.toContain('GRANT SELECT');
  });

  it('several grants missing on ITFlow’s tables, one of them a whole table: one line with a GRANT for each table', async () => {
    const { user, env } = await userEnv(([p, t]) => {
      if (t === 'tickets') return ['SELECT', t];
      if (t === 'logs') return null;
      return [p, t];
    });
    const proc = spawnEntry('workers/worker.ts', env);
    expect(await outcome(proc)).toBe(1);
    expect(lines(proc)).toHaveLength(1);
    const [line] = lines(proc);
    expect(line).toMatch(
      new RegExp(
        `run: GRANT UPDATE ON ${escapeRegex(database)}\\.tickets TO ${account(user)}; GRANT INSERT ON ${escapeRegex(database)}\\.logs TO ${account(user)};$`,
      ),
    );
  });

  it('INSERT missing on the service’s own ledger: the intake stops with its GRANT in one line', async () => {
    const { user, env } = await userEnv(([p, t]) =>
      t === 'rq_commands' ? ['CREATE, ALTER, SELECT, UPDATE, DELETE', t] : [p, t],
    );
    const proc = spawnEntry('workers/intake.ts', env);
    expect(await outcome(proc)).toBe(1);
    expect(lines(proc)).toHaveLength(1);
    expect(lines(proc)[0]).toMatch(
      new RegExp(`run: GRANT INSERT ON ${escapeRegex(database)}\\.rq_commands TO ${account(user)};$`),
    );
  });

  it('CREATE missing on the migrations table: `migrate` and `npm start` each stop with the GRANT in one line', async () => {
    // Tables an earlier start made (MySQL takes a grant without CREATE only on a table that exists).
    const admin = createPool(withDatabase(inject('mysqlUrl'), database), 1);
    await migrateServiceTables(admin, serviceTables(testConfig(database, prefix))).finally(() => admin.end());
    const { user, env } = await userEnv(([p, t]) => (t === 'rq_migrations' ? ['SELECT, INSERT', t] : [p, t]));
    const grant = new RegExp(`GRANT CREATE ON ${escapeRegex(database)}\\.rq_migrations TO ${account(user)};`);
    const migrate = spawnEntry('workers/cli.ts', env, ['migrate']);
    expect(await outcome(migrate)).toBe(1);
    expect(lines(migrate)).toHaveLength(1);
    expect(lines(migrate)[0]).toMatch(grant);
    const start = spawnEntry('workers/service.ts', env);
    expect(await outcome(start)).toBe(1);
    expect(lines(start)).toHaveLength(1);
    expect(lines(start)[0]).toMatch(grant);
  });

  it('REDIS_URL naming a database the server does not have stops start-up with one line', async () => {
    const url = new URL(inject('redisUrl'));
    url.pathname = '/99';
    const proc = spawnEntry('workers/service.ts', { ...baseEnv(), REDIS_URL: url.toString() });
    expect(await outcome(proc)).toBe(1);
    expect(lines(proc)).toEqual([
      `REDIS_URL selects Redis database 99, but the server at ${url.host} has databases 0 to 15 only: use one of those (or raise \`databases\` in redis.conf).`,
    ]);
  });

  it('`migrate` on a database without ITFlow’s tables refuses as `npm start` does, and creates nothing', async () => {
    const env = { ...baseEnv(), DATABASE_URL: withDatabase(inject('mysqlUrl'), empty) };
    const migrate = spawnEntry('workers/cli.ts', env, ['migrate']);
    const start = spawnEntry('workers/service.ts', env);
    expect(await outcome(migrate)).toBe(1);
    expect(await outcome(start)).toBe(1);
    expect(lines(migrate)).toHaveLength(1);
    expect(lines(migrate)[0]).toContain(`Database '${empty}' has no ITFlow tables`);
    expect(lines(migrate)).toEqual(lines(start));
    const [tables] = await root.query<mysql.RowDataPacket[]>(
      'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
      [empty],
    );
    expect(tables).toEqual([]);
  });

  it.each([
    ['MySQL not answering', 'mysql://replyqueue:secret@127.0.0.1:1/itflow'],
    ['a database that does not exist', withDatabase(inject('mysqlUrl'), uniqueName('missing'))],
  ])('`migrate` with %s prints the line `npm start` prints', async (_what, databaseUrl) => {
    const env = { ...baseEnv(), DATABASE_URL: databaseUrl };
    const migrate = spawnEntry('workers/cli.ts', env, ['migrate']);
    const start = spawnEntry('workers/service.ts', env);
    expect(await outcome(migrate)).toBe(1);
    expect(await outcome(start)).toBe(1);
    expect(lines(start)).toHaveLength(1);
    expect(lines(migrate)).toEqual(lines(start));
    expect(migrate.output()).not.toContain('secret');
  });
});
