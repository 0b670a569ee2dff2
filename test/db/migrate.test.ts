import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readLedger } from '../../src/apply/ledger.js';
import { loadConfig } from '../../src/config.js';
import { LATEST_MIGRATION, migrate, migrations } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { serviceTables } from '../../src/db/tables.js';
import { createItflowDatabase, dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { uniqueName } from '../helpers/harness.js';

/**
 * The service's own tables: created by an idempotent migration that two processes may run at
 * once, upgraded in place (a ledger written by migration 1 keeps its rows through migration 2),
 * and never touching ITFlow's tables.
 */
describe('migrations', () => {
  const database = uniqueName('migrate');
  let pool: mysql.Pool;
  const config = () => loadConfig({ DATABASE_URL: withDatabase(inject('mysqlUrl'), database) });

  beforeAll(async () => {
    await createItflowDatabase(inject('mysqlUrl'), database, '2.6.7');
    pool = createPool(config().DATABASE_URL, 4);
  });
  afterAll(async () => {
    await pool?.end();
    await dropDatabase(inject('mysqlUrl'), database);
  });

  it('upgrades a ledger written by migration 1, keeping its rows, and leaves ITFlow’s tables alone', async () => {
    const tables = serviceTables(config());
    const itflowBefore = await pool.query('SHOW CREATE TABLE ticket_replies');
    // A ledger as migration 1 left it, with one finished command.
    await pool.query(
      `CREATE TABLE ${tables.migrations} (version INT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at_utc DATETIME NOT NULL)`,
    );
    for (const sql of (migrations[0] as (typeof migrations)[0]).statements(tables)) await pool.query(sql);
    await pool.query(`INSERT INTO ${tables.migrations} VALUES (1, 'command ledger', UTC_TIMESTAMP())`);
    const id = '0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b';
    await pool.query(
      `INSERT INTO ${tables.commands} (command_id, api_key_id, idempotency_key, fingerprint, ticket_id, accepted_at_utc, finished_at_utc, status, insert_id)
       VALUES (?, 7, 'key-1', ?, 42, '2026-11-01 10:00:00.000', '2026-11-01 10:00:01.000', 'applied', 99)`,
      [id, 'ab'.repeat(32)],
    );

    expect(await migrate(pool, tables)).toEqual({
      applied: ['2 ledger keys in 16 bytes, retention by primary key'],
      version: LATEST_MIGRATION,
    });
    expect(await readLedger(pool, tables, id)).toMatchObject({
      outcome: { status: 'applied', insertId: 99 },
      apiKeyId: 7,
      ticketId: 42,
    });
    const [[fingerprint]] = (await pool.query(`SELECT HEX(fingerprint) AS f FROM ${tables.commands}`)) as unknown as [
      [{ f: string }],
    ];
    expect(fingerprint.f.toLowerCase()).toBe('ab'.repeat(32));
    expect(await pool.query('SHOW CREATE TABLE ticket_replies')).toEqual(itflowBefore);
  });

  it('is a no-op when run again', async () => {
    expect(await migrate(pool, serviceTables(config()))).toEqual({ applied: [], version: LATEST_MIGRATION });
  });

  it('on a fresh database, two processes migrating at once apply each step once', async () => {
    const fresh = uniqueName('migrate2');
    await createItflowDatabase(inject('mysqlUrl'), fresh, '2.4.4');
    const freshConfig = loadConfig({ DATABASE_URL: withDatabase(inject('mysqlUrl'), fresh) });
    const [one, two] = [createPool(freshConfig.DATABASE_URL, 2), createPool(freshConfig.DATABASE_URL, 2)];
    try {
      const tables = serviceTables(freshConfig);
      const results = await Promise.all([migrate(one, tables), migrate(two, tables)]);
      expect(results.flatMap((r) => r.applied).sort()).toEqual(migrations.map((m) => `${m.version} ${m.name}`).sort());
      const [recorded] = await one.query(`SELECT version FROM ${tables.migrations} ORDER BY version`);
      expect(recorded).toEqual(migrations.map((m) => ({ version: m.version })));
    } finally {
      await one.end();
      await two.end();
      await dropDatabase(inject('mysqlUrl'), fresh);
    }
  });
});
