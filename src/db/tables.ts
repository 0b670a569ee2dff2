import type { Config } from '../config.js';
import { databaseName, quoteIdentifier } from './pool.js';

/** The service's own tables, named from config (prefix and schema). */
export interface ServiceTables {
  schema: string;
  /** Quoted, schema-qualified names, for SQL text. */
  commands: string;
  migrations: string;
  /** Integrations' external ids with the reply each made (never purged). */
  externalIds: string;
  /** Per-API-key settings an admin makes (quiet by default). */
  keySettings: string;
  /** The same tables' bare names, for information_schema and messages. */
  names: { commands: string; migrations: string; externalIds: string; keySettings: string };
}

export function serviceTables(config: Pick<Config, 'DATABASE_URL' | 'TABLE_PREFIX' | 'SERVICE_SCHEMA'>): ServiceTables {
  const schema = config.SERVICE_SCHEMA ?? databaseName(config.DATABASE_URL);
  const names = {
    commands: `${config.TABLE_PREFIX}commands`,
    migrations: `${config.TABLE_PREFIX}migrations`,
    externalIds: `${config.TABLE_PREFIX}external_ids`,
    keySettings: `${config.TABLE_PREFIX}key_settings`,
  };
  const qualified = (table: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  return {
    schema,
    commands: qualified(names.commands),
    migrations: qualified(names.migrations),
    externalIds: qualified(names.externalIds),
    keySettings: qualified(names.keySettings),
    names,
  };
}
