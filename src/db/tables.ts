import type { Config } from '../config.js';
import { databaseName, quoteIdentifier } from './pool.js';

/** Fully qualified names of the service's own tables (prefix and schema come from config). */
export interface ServiceTables {
  schema: string;
  commands: string;
  migrations: string;
}

export function serviceTables(config: Pick<Config, 'DATABASE_URL' | 'TABLE_PREFIX' | 'SERVICE_SCHEMA'>): ServiceTables {
  const schema = config.SERVICE_SCHEMA ?? databaseName(config.DATABASE_URL);
  const name = (table: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(`${config.TABLE_PREFIX}${table}`)}`;
  return { schema, commands: name('commands'), migrations: name('migrations') };
}
