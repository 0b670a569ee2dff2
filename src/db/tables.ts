import type { Config } from '../config.js';
import { databaseName, quoteIdentifier } from './pool.js';

/** The service's own tables, named from config (prefix and schema). */
export interface ServiceTables {
  schema: string;
  /** Quoted, schema-qualified names, for SQL text. */
  commands: string;
  migrations: string;
  /** Webhook subscriptions, and their outbox: one row per event and subscription (src/webhooks/). */
  webhooks: string;
  webhookDeliveries: string;
  /** The same tables' bare names, for information_schema and messages. */
  names: { commands: string; migrations: string; webhooks: string; webhookDeliveries: string };
}

export function serviceTables(config: Pick<Config, 'DATABASE_URL' | 'TABLE_PREFIX' | 'SERVICE_SCHEMA'>): ServiceTables {
  const schema = config.SERVICE_SCHEMA ?? databaseName(config.DATABASE_URL);
  const names = {
    commands: `${config.TABLE_PREFIX}commands`,
    migrations: `${config.TABLE_PREFIX}migrations`,
    webhooks: `${config.TABLE_PREFIX}webhooks`,
    webhookDeliveries: `${config.TABLE_PREFIX}webhook_deliveries`,
  };
  const qualified = (table: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  return {
    schema,
    commands: qualified(names.commands),
    migrations: qualified(names.migrations),
    webhooks: qualified(names.webhooks),
    webhookDeliveries: qualified(names.webhookDeliveries),
    names,
  };
}
