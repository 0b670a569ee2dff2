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
  /** The read projection (src/read/projection): one row per reply, the client each ticket's rows carry, the follower's place. */
  projectionReplies: string;
  projectionTickets: string;
  projectionState: string;
  /** Webhook subscriptions, and their outbox: one row per event and subscription (src/webhooks/). */
  webhooks: string;
  webhookDeliveries: string;
  /** The same tables' bare names, for information_schema and messages. */
  names: TableNames;
}

/** The service's tables' bare names under a prefix. */
function tableNames(prefix: string) {
  // At most 12 characters after a prefix of up to 48: MySQL's identifiers end at 64.
  return {
    commands: `${prefix}commands`,
    migrations: `${prefix}migrations`,
    externalIds: `${prefix}external_ids`,
    keySettings: `${prefix}key_settings`,
    projectionReplies: `${prefix}read_replies`,
    projectionTickets: `${prefix}read_tickets`,
    projectionState: `${prefix}read_state`,
    webhooks: `${prefix}webhooks`,
    webhookDeliveries: `${prefix}hook_outbox`,
  };
}

type TableNames = ReturnType<typeof tableNames>;

export function serviceTables(config: Pick<Config, 'DATABASE_URL' | 'TABLE_PREFIX' | 'SERVICE_SCHEMA'>): ServiceTables {
  const schema = config.SERVICE_SCHEMA ?? databaseName(config.DATABASE_URL);
  const names = tableNames(config.TABLE_PREFIX);
  const qualified = (table: string) => `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  return {
    schema,
    commands: qualified(names.commands),
    migrations: qualified(names.migrations),
    externalIds: qualified(names.externalIds),
    keySettings: qualified(names.keySettings),
    projectionReplies: qualified(names.projectionReplies),
    projectionTickets: qualified(names.projectionTickets),
    projectionState: qualified(names.projectionState),
    webhooks: qualified(names.webhooks),
    webhookDeliveries: qualified(names.webhookDeliveries),
    names,
  };
}
