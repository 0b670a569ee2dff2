// Whether the service's MySQL user holds the privileges it needs, asked of the server itself:
// each one is tried with a statement that needs it and matches no row (`… WHERE FALSE`), so a
// grant on the table, on the database, a global one or one through a role all count exactly as
// MySQL counts them — reading SHOW GRANTS would have to re-implement that. What is missing is
// told as the GRANT statements an admin pastes.
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';

export type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface Needed {
  schema: string;
  table: string;
  privileges: Privilege[];
  /** A column the INSERT and UPDATE probes name (any column of the table will do). */
  column?: string;
}

/** The user lacks privileges the service needs; the message holds the GRANT statements that fix it. */
export class MissingGrants extends Error {}

/** MySQL's "command denied" for a table and for a column. */
const DENIED = new Set([1142, 1143]);

/**
 * The privileges among `needed` the user lacks, by table. A table that does not exist (MySQL
 * says so only to a user with some privilege there) is not a grant problem: the schema checks
 * report it. The probing connection is closed afterwards rather than reused, and waits at most
 * a few seconds for a table another session holds locked (a backup's LOCK TABLES): a probe that
 * cannot tell counts as granted, and the work itself will say more later.
 */
export async function missingPrivileges(pool: Pool, needed: Needed[]): Promise<Needed[]> {
  const conn = await pool.getConnection();
  try {
    await conn.query('SET SESSION lock_wait_timeout = 5');
    // Rolled back, so even a statement-based binary log never records the probes.
    await conn.query('START TRANSACTION');
    const missing: Needed[] = [];
    for (const need of needed) {
      const lacking: Privilege[] = [];
      for (const privilege of need.privileges) if (await denied(conn, need, privilege)) lacking.push(privilege);
      if (lacking.length > 0) missing.push({ ...need, privileges: lacking });
    }
    await conn.query('ROLLBACK');
    return missing;
  } finally {
    conn.destroy();
  }
}

async function denied(conn: PoolConnection, need: Needed, privilege: Privilege): Promise<boolean> {
  const table = `${identifier(need.schema)}.${identifier(need.table)}`;
  const column = identifier(need.column ?? 'id');
  const probe = {
    SELECT: `SELECT 1 FROM ${table} WHERE FALSE`,
    INSERT: `INSERT INTO ${table} (${column}) SELECT NULL FROM DUAL WHERE FALSE`,
    UPDATE: `UPDATE ${table} SET ${column} = NULL WHERE FALSE`,
    DELETE: `DELETE FROM ${table} WHERE FALSE`,
  }[privilege];
  try {
    await conn.query(probe);
    return false;
  } catch (error) {
    return DENIED.has((error as { errno?: number }).errno ?? 0);
  }
}

/** The account MySQL matched this connection to ('name'@'host'), as a GRANT names it. */
export async function currentAccount(pool: Pool): Promise<string> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT CURRENT_USER() AS account');
  const text = String(rows[0]?.account ?? '');
  const at = text.lastIndexOf('@');
  return at < 0 ? `'${text}'` : account(text.slice(0, at), text.slice(at + 1));
}

function account(user: string, host: string): string {
  return `'${user.replaceAll("'", "''")}'@'${host.replaceAll("'", "''")}'`;
}

/** One GRANT statement per table, in the order given. */
export function grantStatements(missing: Needed[], to: string): string {
  return missing
    .map(
      ({ schema, table, privileges }) => `GRANT ${privileges.join(', ')} ON ${identifier(schema)}.${identifier(table)} TO ${to};`,
    )
    .join(' ');
}

/** The one line telling the operator what to grant. */
export async function missingGrantsError(pool: Pool, missing: Needed[]): Promise<MissingGrants> {
  const to = await currentAccount(pool);
  return new MissingGrants(
    `The database user ${to} lacks privileges the service needs ("Database user" in docs/operations.md lists them all). ` +
      `As a MySQL admin, run: ${grantStatements(missing, to)}`,
  );
}

/**
 * The GRANT that would have let a refused statement run, read from MySQL's message: "CREATE
 * command denied to user 'u'@'h' for table `db`.`t`" (MariaDB; MySQL writes 't' or 'db.t'), or
 * "Access denied for user 'u'@'h' to database 'db'" (CREATE DATABASE). Null when the message
 * says neither.
 */
export function grantForDenial(error: { errno?: number; message?: string }, schema: string): string | null {
  const message = error.message ?? '';
  const command = /^(\w+) command denied to user '(.*)'@'(.*)' for table [`'](.+)[`']$/.exec(message);
  if (command) {
    const [, privilege, user, host, name] = command as unknown as [string, string, string, string, string];
    const parts = name.split(/`?\.`?/);
    const [db, table] = parts.length === 2 ? (parts as [string, string]) : [schema, name];
    return `GRANT ${privilege} ON ${identifier(db)}.${identifier(table)} TO ${account(user, host)};`;
  }
  const database = /^Access denied for user '(.*)'@'(.*)' to database '(.+)'$/.exec(message);
  if (database) {
    const [, user, host, db] = database as unknown as [string, string, string, string];
    return `GRANT CREATE ON ${identifier(db)}.* TO ${account(user, host)};`;
  }
  return null;
}

/** A name as a statement shows it: bare when it can be, in backquotes otherwise. */
function identifier(name: string): string {
  return /^[A-Za-z0-9_$]+$/.test(name) && !/^\d+$/.test(name) ? name : `\`${name.replaceAll('`', '``')}\``;
}
