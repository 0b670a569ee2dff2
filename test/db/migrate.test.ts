import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { readLedger } from '../../src/apply/ledger.js';
import { loadConfig } from '../../src/config.js';
import { LATEST_MIGRATION, migrate, migrations } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';
import { type ServiceTables, serviceTables } from '../../src/db/tables.js';
import { createItflowDatabase, dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { uniqueName } from '../helpers/harness.js';
import { V1_LEDGER } from './v1Ledger.js';

// The service's own tables: created by an idempotent migration that two processes may run at
// once, upgraded in place (a ledger written by migration 1 keeps its rows through migration 2),
// resumed where a failed run stopped, and never touching ITFlow's tables.

/** Migration 2 as its release ran it: three statements, any of which a crash or a lost connection may follow. */
const V2_STATEMENTS = (t: ServiceTables) => [
  `ALTER TABLE ${t.commands} ADD COLUMN command_bin BINARY(16) NULL FIRST, ADD COLUMN fingerprint_bin BINARY(32) NULL AFTER fingerprint`,
  `UPDATE ${t.commands} SET command_bin = UNHEX(REPLACE(command_id, '-', '')), fingerprint_bin = UNHEX(fingerprint)`,
  `ALTER TABLE ${t.commands}
     DROP PRIMARY KEY, DROP INDEX accepted_at_utc, DROP COLUMN command_id, DROP COLUMN fingerprint,
     CHANGE command_bin command_id BINARY(16) NOT NULL FIRST,
     CHANGE fingerprint_bin fingerprint BINARY(32) NULL,
     ADD PRIMARY KEY (command_id)`,
];

/** Ledger rows written by a release of migration 1: command id, key, fingerprint (or none), insert id. */
const V1_ROWS: Array<[string, number, string | null, number]> = [
  ['0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b', 7, 'ab'.repeat(32), 99],
  ['0193a1b2-c3d5-7000-8000-000000000001', 7, null, 100],
  ['0193a1b2-c3d6-7fff-bfff-ffffffffffff', 8, '0f'.repeat(32), 101],
];

async function insertV1Row(db: mysql.Pool, t: ServiceTables, [id, keyId, fingerprint, insertId]: (typeof V1_ROWS)[number]) {
  await db.query(
    `INSERT INTO ${t.commands} (command_id, api_key_id, idempotency_key, fingerprint, ticket_id, accepted_at_utc, finished_at_utc, status, insert_id)
     VALUES (?, ?, ?, ?, 42, '2026-11-01 10:00:00.000', '2026-11-01 10:00:01.000', 'applied', ?)`,
    [id, keyId, `key-${insertId}`, fingerprint, insertId],
  );
}

const createTable = async (db: mysql.Pool, table: string) => {
  const [[row]] = (await db.query(`SHOW CREATE TABLE ${table}`)) as unknown as [[{ 'Create Table': string }]];
  return row['Create Table'];
};

describe('migrations', () => {
  const database = uniqueName('migrate');
  const freshSchema = uniqueName('mfresh');
  let pool: mysql.Pool;
  const config = () => loadConfig({ DATABASE_URL: withDatabase(inject('mysqlUrl'), database) });
  const tables = () => serviceTables(config());
  const migration2 = `2 ${(migrations[1] as (typeof migrations)[1]).name}`;
  /** The ledger's definition as a fresh installation gets it, in a schema of its own. */
  let freshLedger: string;

  beforeAll(async () => {
    await createItflowDatabase(inject('mysqlUrl'), database, '2.6.7');
    pool = createPool(config().DATABASE_URL, 4);
    const fresh = serviceTables({ ...config(), SERVICE_SCHEMA: freshSchema });
    await migrate(pool, fresh);
    freshLedger = await createTable(pool, fresh.commands);
  });
  afterAll(async () => {
    await pool?.end();
    await dropDatabase(inject('mysqlUrl'), database);
    await dropDatabase(inject('mysqlUrl'), freshSchema);
  });

  describe('upgrading a ledger written by migration 1', () => {
    beforeEach(async () => {
      await pool.query(`DROP TABLE IF EXISTS ${tables().commands}, ${tables().migrations}`);
      for (const sql of V1_LEDGER(tables())) await pool.query(sql);
      for (const row of V1_ROWS) await insertV1Row(pool, tables(), row);
    });

    it.each([
      [0, 'before migration 2 started'],
      [1, 'after it added the binary columns'],
      [2, 'after it filled them'],
      [3, 'after it converted the table, before recording version 2'],
    ])(
      'completes from the state %i statement(s) in (%s), two processes at once: rows intact, version 2 recorded once',
      async (k) => {
        const t = tables();
        const itflowBefore = await pool.query('SHOW CREATE TABLE ticket_replies');
        for (const sql of V2_STATEMENTS(t).slice(0, k)) await pool.query(sql);
        // A worker of the previous release wrote one more row after the failed run.
        const late: (typeof V1_ROWS)[number] = ['0193a1b2-c3d7-7abc-9def-0123456789ab', 9, 'cd'.repeat(32), 102];
        const lateRows = k === 1 || k === 2 ? [late] : [];
        for (const row of lateRows) await insertV1Row(pool, t, row);

        const other = createPool(config().DATABASE_URL, 1);
        try {
          const results = await Promise.all([migrate(pool, t), migrate(other, t)]);
          // Migration 2, and every later one (they were never applied to this ledger).
          expect(results.flatMap((r) => r.applied)).toEqual([
            migration2,
            ...migrations.slice(2).map((m) => `${m.version} ${m.name}`),
          ]);
          expect(results.map((r) => r.version)).toEqual([LATEST_MIGRATION, LATEST_MIGRATION]);
        } finally {
          await other.end();
        }

        for (const [id, keyId, fingerprint, insertId] of [...V1_ROWS, ...lateRows]) {
          expect(await readLedger(pool, t, id)).toMatchObject({
            outcome: { status: 'applied', insertId },
            apiKeyId: keyId,
            ticketId: 42,
          });
          const [[row]] = (await pool.query(`SELECT HEX(fingerprint) AS f FROM ${t.commands} WHERE insert_id = ?`, [
            insertId,
          ])) as unknown as [[{ f: string | null }]];
          expect(row.f?.toLowerCase() ?? null).toBe(fingerprint);
        }
        const [recorded] = await pool.query(`SELECT version FROM ${t.migrations} ORDER BY version`);
        expect(recorded).toEqual(migrations.map((m) => ({ version: m.version })));
        expect(await createTable(pool, t.commands)).toBe(freshLedger);
        expect(await pool.query('SHOW CREATE TABLE ticket_replies')).toEqual(itflowBefore);
      },
    );
  });

  it('is a no-op when run again', async () => {
    await migrate(pool, tables());
    expect(await migrate(pool, tables())).toEqual({ applied: [], version: LATEST_MIGRATION });
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
      expect(await createTable(one, tables.commands)).toBe(freshLedger);
    } finally {
      await one.end();
      await two.end();
      await dropDatabase(inject('mysqlUrl'), fresh);
    }
  });
});
