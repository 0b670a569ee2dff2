import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { quoteIdentifier } from '../db/pool.js';

/**
 * Builds an ITFlow-shaped database from the project's SQL fixtures (test/fixtures), one per
 * schema generation. Used by the demo and by the tests; nothing outside the repository.
 */
export const GENERATIONS = ['2.4.4', '2.6.7'] as const;
export type Generation = (typeof GENERATIONS)[number];

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the project root (package.json).');
    dir = parent;
  }
  return dir;
}

export function fixturePath(generation: Generation): string {
  return join(projectRoot(), 'test', 'fixtures', `itflow-${generation}.sql`);
}

/** The server part of a MySQL URL with a different database name. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Loads the generation's schema into `database` on the server of `serverUrl`. With `reset`
 * (the default) the database is dropped and created afresh; without it, a database that
 * already has ITFlow's tables is left as it is. Returns whether the schema was loaded.
 */
export async function createItflowDatabase(
  serverUrl: string,
  database: string,
  generation: Generation,
  { reset = true, timeZone }: { reset?: boolean; timeZone?: string } = {},
): Promise<boolean> {
  const conn = await mysql.createConnection({ uri: withDatabase(serverUrl, ''), multipleStatements: true });
  try {
    const name = quoteIdentifier(database);
    if (reset) await conn.query(`DROP DATABASE IF EXISTS ${name}`);
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    const [found] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'tickets'",
      [database],
    );
    if (found.length > 0) return false;
    await conn.query(`USE ${name}`);
    await conn.query(readFileSync(fixturePath(generation), 'utf8'));
    if (timeZone) await conn.query('UPDATE settings SET config_timezone = ? WHERE company_id = 1', [timeZone]);
    return true;
  } finally {
    await conn.end();
  }
}

export async function dropDatabase(serverUrl: string, database: string): Promise<void> {
  const conn = await mysql.createConnection({ uri: withDatabase(serverUrl, '') });
  try {
    await conn.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`);
  } finally {
    await conn.end();
  }
}
