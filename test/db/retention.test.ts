import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { idBytes, utcTimestamp } from '../../src/apply/ledger.js';
import { newCommandId } from '../../src/commands/commandId.js';
import { loadConfig } from '../../src/config.js';
import { migrate } from '../../src/db/migrate.js';
import { lockName } from '../../src/db/namedLock.js';
import { createPool } from '../../src/db/pool.js';
import { purgeLedger, purgeLockName, purgeStatement } from '../../src/db/retention.js';
import { serviceTables } from '../../src/db/tables.js';
import { dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { uniqueName } from '../helpers/harness.js';

// Ledger retention: rows accepted more than COMMAND_RETENTION_DAYS ago are deleted by a range of
// the primary key (command ids are UUIDv7, their first 48 bits the acceptance time), so a purge
// reads about the rows it deletes however large the ledger is, and one process purges at a time.

const DAY = 86_400_000;
const RETENTION_DAYS = 7;
const TOTAL = 200_000;
const OLD = 2_000;

describe('ledger retention', () => {
  const database = uniqueName('retention');
  const config = () => loadConfig({ DATABASE_URL: withDatabase(inject('mysqlUrl'), database) });
  const tables = () => serviceTables(config());
  let pool: mysql.Pool;
  const now = Date.now();

  /** Ledger rows accepted at the given times, as the worker writes them (ids made at acceptance). */
  async function addRows(acceptedAt: number[]): Promise<void> {
    for (let start = 0; start < acceptedAt.length; start += 10_000) {
      const rows = acceptedAt.slice(start, start + 10_000).map((at, i) => {
        const stamp = utcTimestamp(at);
        return [idBytes(newCommandId(at)), 1 + (i % 5), null, null, 1 + (i % 1000), stamp, stamp, 'applied', i, null, null, 1];
      });
      await pool.query(
        `INSERT INTO ${tables().commands} (command_id, api_key_id, idempotency_key, fingerprint, ticket_id, accepted_at_utc,
           finished_at_utc, status, insert_id, http_status, error, attempts) VALUES ?`,
        [rows],
      );
    }
  }

  const count = async (where: string, params: unknown[] = []) => {
    const [[row]] = (await pool.query(`SELECT COUNT(*) AS n FROM ${tables().commands} WHERE ${where}`, params)) as unknown as [
      [{ n: number }],
    ];
    return Number(row.n);
  };

  /** Rows the session's handlers read (index and table reads of every kind). */
  const rowsRead = async (db: mysql.Pool) => {
    const [rows] = (await db.query("SHOW SESSION STATUS LIKE 'Handler_read%'")) as unknown as [
      Array<{ Variable_name: string; Value: string }>,
    ];
    return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
  };
  const readsDuring = async (work: (db: mysql.Pool) => Promise<unknown>) => {
    // One connection, so the purge and the counters are the same session.
    const db = createPool(config().DATABASE_URL, 1);
    try {
      const before = await rowsRead(db);
      const result = await work(db);
      const after = await rowsRead(db);
      const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
      const total = Object.values(delta).reduce((a, b) => a + b, 0);
      return { result, delta, total };
    } finally {
      await db.end();
    }
  };

  beforeAll(async () => {
    const admin = await mysql.createConnection({ uri: inject('mysqlUrl') });
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.end();
    pool = createPool(config().DATABASE_URL, 4);
    await migrate(pool, tables());
    // 2,000 rows ten days old (one a second), the rest spread over the last six days.
    const old = Array.from({ length: OLD }, (_, i) => now - 10 * DAY + i * 1000);
    const recent = Array.from({ length: TOTAL - OLD }, (_, i) => now - 6 * DAY + Math.floor((i * 6 * DAY) / TOTAL));
    await addRows([...old, ...recent]);
  });
  afterAll(async () => {
    await pool?.end();
    await dropDatabase(inject('mysqlUrl'), database);
  });

  it('EXPLAIN: the DELETE is a range of the primary key, estimated at about the rows past the retention', async () => {
    const { sql, params } = purgeStatement(tables(), now - RETENTION_DAYS * DAY, 5000);
    const [[plan]] = (await pool.query(`EXPLAIN ${sql}`, params)) as unknown as [[Record<string, unknown>]];
    console.log('EXPLAIN purge DELETE:', JSON.stringify(plan));
    expect(plan).toMatchObject({ type: 'range', key: 'PRIMARY' });
    expect(Number(plan.rows)).toBeLessThan(OLD * 2);
  });

  it('deletes the rows past the retention, reading about as many rows as it deletes; newer rows stay', async () => {
    expect(await count('1')).toBe(TOTAL);
    const { result, delta, total } = await readsDuring((db) => purgeLedger(db, tables(), RETENTION_DAYS));
    console.log('purge of 2,000 rows among 200,000: handler reads', JSON.stringify(delta));
    expect(result).toBe(OLD);
    expect(total).toBeLessThan(OLD + 100);
    expect(await count('accepted_at_utc < ?', [utcTimestamp(now - RETENTION_DAYS * DAY)])).toBe(0);
    expect(await count('1')).toBe(TOTAL - OLD);
  });

  it('purging again, with nothing past the retention, reads almost nothing', async () => {
    const { result, delta, total } = await readsDuring((db) => purgeLedger(db, tables(), RETENTION_DAYS));
    console.log('purge of an empty range among 198,000 rows: handler reads', JSON.stringify(delta));
    expect(result).toBe(0);
    expect(total).toBeLessThan(10);
    expect(await count('1')).toBe(TOTAL - OLD);
  });

  it('two purges at once: while one works, the other skips at once; the first deletes every old row', async () => {
    await addRows(Array.from({ length: 500 }, (_, i) => now - 9 * DAY + i * 1000));
    const [one, two] = [createPool(config().DATABASE_URL, 1), createPool(config().DATABASE_URL, 1)];
    // Someone holds the oldest row, so the first purge is still at work when the second starts.
    const holder = await mysql.createConnection({ uri: config().DATABASE_URL });
    try {
      await holder.query('START TRANSACTION');
      await holder.query(`SELECT command_id FROM ${tables().commands} ORDER BY command_id LIMIT 1 FOR UPDATE`);
      const first = purgeLedger(one, tables(), RETENTION_DAYS);
      let locked = false;
      for (let i = 0; i < 200 && !locked; i++) {
        const [[held]] = (await pool.query('SELECT IS_USED_LOCK(?) AS holder', [
          lockName(purgeLockName(tables())),
        ])) as unknown as [[{ holder: number | null }]];
        locked = held.holder !== null;
        if (!locked) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(locked).toBe(true);
      const startedAt = Date.now();
      expect(await purgeLedger(two, tables(), RETENTION_DAYS)).toBeNull();
      expect(Date.now() - startedAt).toBeLessThan(1000);
      expect(await count('1')).toBe(TOTAL - OLD + 500);
      await holder.query('COMMIT');
      expect(await first).toBe(500);
      expect(await count('1')).toBe(TOTAL - OLD);
    } finally {
      await holder.end();
      await one.end();
      await two.end();
    }
  });
});
