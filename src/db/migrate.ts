// The service's own tables, created and upgraded in order and recorded in the migrations table.
// Only these tables are ever created or altered: ITFlow's schema is never touched.
//
// A step can fail half-way (a lost connection, a server restart, a missing privilege) after some
// of its statements ran, and DDL cannot be rolled back. So each migration reads the state the
// tables are in (information_schema, which MySQL 8 and MariaDB both have) and runs only what is
// still missing: running it again after any failure completes it. A named lock keeps two
// processes starting together from running the same step at the same time.
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { grantForDenial, MissingGrants, missingGrantsError, missingPrivileges } from './grants.js';
import { withNamedLock } from './namedLock.js';
import { quoteIdentifier } from './pool.js';
import type { ServiceTables } from './tables.js';

interface Migration {
  version: number;
  name: string;
  /** Brings the tables to this version from the previous one, or from wherever a failed run of it stopped. */
  run(conn: PoolConnection, t: ServiceTables): Promise<void>;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'command ledger',
    async run(conn, t) {
      // One row per finished command, written in the same transaction as its effects:
      // the primary key is what makes a re-delivered command a no-op.
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.commands} (
          command_id CHAR(36) NOT NULL,
          api_key_id INT NOT NULL,
          idempotency_key VARCHAR(255) NULL,
          fingerprint CHAR(64) NULL,
          ticket_id INT NOT NULL,
          accepted_at_utc DATETIME(3) NOT NULL,
          finished_at_utc DATETIME(3) NOT NULL,
          status ENUM('applied','failed') NOT NULL,
          insert_id INT NOT NULL DEFAULT 0,
          http_status SMALLINT NULL,
          error VARCHAR(1000) NULL,
          attempts INT NOT NULL DEFAULT 1,
          PRIMARY KEY (command_id),
          UNIQUE KEY idempotency (api_key_id, idempotency_key),
          KEY accepted_at_utc (accepted_at_utc),
          KEY ticket_accepted (ticket_id, accepted_at_utc)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
    },
  },
  {
    version: 2,
    name: 'ledger keys in 16 bytes, retention by primary key',
    // Command ids are time-ordered UUIDs: stored as BINARY(16) they make a primary key (and
    // the secondary indexes that carry it) a fraction of the size, and retention can delete
    // by primary-key range, so the accepted_at index is no longer needed. Measured on the
    // 250-row inserts a worker batch makes: 5.1 ms → 3.3 ms.
    async run(conn, t) {
      const columns = await columnTypes(conn, t.schema, t.names.commands);
      if (columns.get('command_id') === 'binary') return; // the last statement ran: done
      // Binary copies of the two text columns, added unless a failed run added them already.
      const additions = [
        columns.has('command_bin') ? null : 'ADD COLUMN command_bin BINARY(16) NULL FIRST',
        columns.has('fingerprint_bin') ? null : 'ADD COLUMN fingerprint_bin BINARY(32) NULL AFTER fingerprint',
      ].filter((clause) => clause !== null);
      if (additions.length > 0) await conn.query(`ALTER TABLE ${t.commands} ${additions.join(', ')}`);
      // Always (again): rows a worker of the previous release wrote since a failed run filled them need it too.
      await conn.query(
        `UPDATE ${t.commands} SET command_bin = UNHEX(REPLACE(command_id, '-', '')), fingerprint_bin = UNHEX(fingerprint)`,
      );
      const dropIndex = (await indexNames(conn, t.schema, t.names.commands)).has('accepted_at_utc')
        ? 'DROP INDEX accepted_at_utc,'
        : '';
      // One statement, so it happens entirely or not at all (InnoDB's ALTER builds a new table).
      await conn.query(
        `ALTER TABLE ${t.commands}
           DROP PRIMARY KEY, ${dropIndex} DROP COLUMN command_id, DROP COLUMN fingerprint,
           CHANGE command_bin command_id BINARY(16) NOT NULL FIRST,
           CHANGE fingerprint_bin fingerprint BINARY(32) NULL,
           ADD PRIMARY KEY (command_id)`,
      );
    },
  },
  {
    version: 3,
    name: 'external ids and quiet keys',
    async run(conn, t) {
      // The ledger keeps a command's external_id for commands.php (a failed command's too); the
      // table below is what makes it unique, and outlives the ledger's retention.
      const columns = await columnTypes(conn, t.schema, t.names.commands);
      if (!columns.has('external_id')) {
        await conn.query(`ALTER TABLE ${t.commands} ADD COLUMN external_id VARCHAR(255) NULL`);
      }
      // One row per reply (or status change) a command with an external_id made, written in its
      // apply transaction: the primary key is what keeps an external id unique per API key, even
      // when two commands carrying it race. Only applied commands hold one (a failed command
      // made nothing, so its id stays free for a retry), and rows are never purged.
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.externalIds} (
          api_key_id INT NOT NULL,
          external_id VARCHAR(255) NOT NULL,
          command_id BINARY(16) NOT NULL,
          fingerprint BINARY(32) NOT NULL,
          ticket_id INT NOT NULL,
          insert_id INT NOT NULL,
          created_at_utc DATETIME(3) NOT NULL,
          PRIMARY KEY (api_key_id, external_id),
          KEY reply (insert_id, api_key_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
      // What an admin sets per ITFlow API key (npm run cli -- keys quiet): no row is the default.
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.keySettings} (
          api_key_id INT NOT NULL PRIMARY KEY,
          quiet TINYINT(1) NOT NULL DEFAULT 0,
          updated_at_utc DATETIME NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      );
    },
  },
  {
    version: 4,
    name: 'read projection of replies',
    // read.php's own index of ticket_replies (src/read/projection): ITFlow before its 2.6.3 update
    // has no index on a reply's ticket, and none has one on its client. Created empty; a worker's
    // follower fills it (or `npm run cli -- projection rebuild`), and until it has reached the end
    // of ticket_replies read.php reads ITFlow's tables.
    async run(conn, t) {
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.projectionReplies} (
          reply_id INT NOT NULL,
          ticket_id INT NOT NULL,
          client_id INT NOT NULL,
          reply_type VARCHAR(10) NOT NULL,
          reply_by INT NOT NULL,
          created_at DATETIME NULL,
          updated_at DATETIME NULL,
          archived_at DATETIME NULL,
          external_id VARCHAR(255) COLLATE utf8mb4_bin NULL,
          PRIMARY KEY (reply_id),
          KEY ticket_replies (ticket_id, reply_id, archived_at, reply_type),
          KEY client_replies (client_id, reply_id, archived_at, reply_type)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
      );
      // The client each ticket's projected rows were last aligned to: a ticket whose client
      // differs from ITFlow's moved, and its rows follow.
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.projectionTickets} (
          ticket_id INT NOT NULL,
          client_id INT NOT NULL,
          PRIMARY KEY (ticket_id)
        ) ENGINE=InnoDB`,
      );
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.projectionState} (
          id TINYINT NOT NULL,
          watermark INT NOT NULL DEFAULT 0,
          caught_up_at_utc DATETIME(3) NULL,
          reply_sweep_after INT NOT NULL DEFAULT 0,
          ticket_sweep_after INT NOT NULL DEFAULT 0,
          replies_swept_at_utc DATETIME(3) NULL,
          tickets_swept_at_utc DATETIME(3) NULL,
          PRIMARY KEY (id)
        ) ENGINE=InnoDB`,
      );
      await conn.query(`INSERT IGNORE INTO ${t.projectionState} (id) VALUES (1)`);
    },
  },
  {
    version: 5,
    name: 'webhook subscriptions and outbox',
    async run(conn, t) {
      // Subscriptions per ITFlow API key, added by an admin with `cli webhooks add` (src/webhooks/).
      // `secret` holds what signs the deliveries, sealed when WEBHOOK_SECRET_KEY is set (src/webhooks/secrets.ts).
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.webhooks} (
          webhook_id INT UNSIGNED NOT NULL AUTO_INCREMENT,
          api_key_id INT NOT NULL,
          url VARCHAR(2048) NOT NULL,
          events VARCHAR(255) NOT NULL,
          secret VARCHAR(255) NOT NULL,
          created_at_utc DATETIME(3) NOT NULL,
          PRIMARY KEY (webhook_id),
          KEY api_key_id (api_key_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
      // The outbox: one row per event and subscription, written in the transaction that finished the
      // command, then delivered (and retried) by the dispatcher. Indexes are few, as every row is
      // written on the apply path: `due` serves the dispatcher's claim, and the purge and counts by
      // state (a finished row's next_attempt_at_utc is its last attempt's lease), `webhook_state`
      // a webhook's removal and listing, `event_webhook` replays and writing an event once.
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${t.webhookDeliveries} (
          delivery_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
          event_id BINARY(16) NOT NULL,
          webhook_id INT UNSIGNED NOT NULL,
          event_type VARCHAR(40) NOT NULL,
          payload MEDIUMTEXT NOT NULL,
          state ENUM('pending','delivered','failed') NOT NULL DEFAULT 'pending',
          attempts INT NOT NULL DEFAULT 0,
          created_at_utc DATETIME(3) NOT NULL,
          retry_from_utc DATETIME(3) NOT NULL,
          next_attempt_at_utc DATETIME(3) NOT NULL,
          last_attempt_at_utc DATETIME(3) NULL,
          finished_at_utc DATETIME(3) NULL,
          last_status SMALLINT NULL,
          last_error VARCHAR(500) NULL,
          PRIMARY KEY (delivery_id),
          UNIQUE KEY event_webhook (event_id, webhook_id),
          KEY due (state, next_attempt_at_utc),
          KEY webhook_state (webhook_id, state)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
    },
  },
];

export const LATEST_MIGRATION = Math.max(...migrations.map((m) => m.version));

export interface MigrationResult {
  applied: string[];
  version: number;
}

/** A migration the database user was not allowed to run, told with the GRANT that lets it. */
export class MigrationDenied extends MissingGrants {}

const ACCESS_DENIED = new Set(['ER_DBACCESS_DENIED_ERROR', 'ER_TABLEACCESS_DENIED_ERROR', 'ER_SPECIFIC_ACCESS_DENIED_ERROR']);

/**
 * Brings the service's tables up to date, then checks that the database user may use them as a
 * running service does; either failing for want of a privilege throws MissingGrants, whose
 * message holds the GRANT to run.
 */
export async function migrate(pool: Pool, tables: ServiceTables): Promise<MigrationResult> {
  const result = await migrateTables(pool, tables);
  await requireServiceGrants(pool, tables);
  return result;
}

async function migrateTables(pool: Pool, tables: ServiceTables): Promise<MigrationResult> {
  const conn = await pool.getConnection();
  try {
    await createSchemaIfMissing(conn, tables.schema);
    // The lock keeps the name earlier releases used, so an older process and this one still exclude each other.
    const outcome = await withNamedLock(conn, `${tables.schema}.replyqueue.migrate`, 30, () => migrateLocked(conn, tables));
    if (!outcome.locked) throw new Error('Timed out waiting for another process to finish migrating.');
    return outcome.value;
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code && ACCESS_DENIED.has(e.code)) {
      const grant = grantForDenial(e, tables.schema);
      throw new MigrationDenied(
        grant
          ? `Cannot migrate the service's tables: ${e.message}. As a MySQL admin, run: ${grant}`
          : `Cannot migrate the service's tables: ${e.message}. ` +
              'The database user needs the grants "Database user" in docs/operations.md lists.',
      );
    }
    throw error;
  } finally {
    conn.release();
  }
}

/**
 * What a running service does with its own tables: the ledger is read, written and updated, the
 * migrations table and the external ids read and written, the key settings read (`keys quiet`
 * writes them, with the CLI's own connection), the read projection's tables read, written and
 * updated (and its replies deleted when ITFlow's are), webhook subscriptions read and their
 * deliveries written. (DELETE on the ledger, for the retention purge only, is not required: a
 * purge refused it logs an error naming it every hour.)
 */
async function requireServiceGrants(pool: Pool, tables: ServiceTables): Promise<void> {
  const missing = await missingPrivileges(pool, [
    { schema: tables.schema, table: tables.names.commands, privileges: ['SELECT', 'INSERT', 'UPDATE'], column: 'status' },
    { schema: tables.schema, table: tables.names.migrations, privileges: ['SELECT', 'INSERT'], column: 'name' },
    { schema: tables.schema, table: tables.names.externalIds, privileges: ['SELECT', 'INSERT'], column: 'external_id' },
    { schema: tables.schema, table: tables.names.keySettings, privileges: ['SELECT'] },
    // The read projection: a deleted reply's row is deleted too.
    {
      schema: tables.schema,
      table: tables.names.projectionReplies,
      privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
      column: 'client_id',
    },
    {
      schema: tables.schema,
      table: tables.names.projectionTickets,
      privileges: ['SELECT', 'INSERT', 'UPDATE'],
      column: 'client_id',
    },
    {
      schema: tables.schema,
      table: tables.names.projectionState,
      privileges: ['SELECT', 'INSERT', 'UPDATE'],
      column: 'watermark',
    },
    // Webhooks: subscriptions are read by workers; their outbox rows written in the apply transaction and updated by the dispatcher.
    { schema: tables.schema, table: tables.names.webhooks, privileges: ['SELECT'], column: 'url' },
    { schema: tables.schema, table: tables.names.webhookDeliveries, privileges: ['SELECT', 'INSERT', 'UPDATE'], column: 'state' },
  ]);
  if (missing.length > 0) throw await missingGrantsError(pool, missing);
}

async function migrateLocked(conn: PoolConnection, tables: ServiceTables): Promise<MigrationResult> {
  await conn.query(
    `CREATE TABLE IF NOT EXISTS ${tables.migrations} (
      version INT NOT NULL PRIMARY KEY,
      name VARCHAR(200) NOT NULL,
      applied_at_utc DATETIME NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  );
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT version FROM ${tables.migrations}`);
  const done = new Set(rows.map((r) => Number(r.version)));
  const applied: string[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    await migration.run(conn, tables);
    await conn.query(`INSERT INTO ${tables.migrations} (version, name, applied_at_utc) VALUES (?, ?, UTC_TIMESTAMP())`, [
      migration.version,
      migration.name,
    ]);
    applied.push(`${migration.version} ${migration.name}`);
  }
  return { applied, version: LATEST_MIGRATION };
}

/**
 * CREATE DATABASE only when the schema is missing (a SERVICE_SCHEMA not made yet): even with
 * IF NOT EXISTS it needs the CREATE privilege on the database, which a user granted only what
 * the service uses in ITFlow's database does not have.
 */
async function createSchemaIfMissing(conn: PoolConnection, schema: string): Promise<void> {
  const [found] = await conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [schema]);
  if (found.length === 0) await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(schema)}`);
}

/** A table's columns and their types ('char', 'binary', …), as information_schema tells them. */
async function columnTypes(conn: PoolConnection, schema: string, table: string): Promise<Map<string, string>> {
  const [rows] = await conn.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [schema, table],
  );
  return new Map(rows.map((r) => [String(r.name), String(r.type).toLowerCase()]));
}

async function indexNames(conn: PoolConnection, schema: string, table: string): Promise<Set<string>> {
  const [rows] = await conn.query<RowDataPacket[]>(
    'SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [schema, table],
  );
  return new Set(rows.map((r) => String(r.name)));
}
