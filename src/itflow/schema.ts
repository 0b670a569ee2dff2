// Which ITFlow the service is pointed at, read from information_schema at start-up.
//
// - `per-key-scope` (ITFlow ≤ 2.4.6): api_keys.api_key_client_id scopes a key (0 = all).
// - `key-runs-as-user` (ITFlow ≥ 2.4.7): api_keys.api_key_user_id; the key has that user's
//   role permissions and client allow/deny lists.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { missingGrantsError, missingPrivileges, type Needed } from '../db/grants.js';

export type KeyModel = 'per-key-scope' | 'key-runs-as-user';

export interface ItflowSchema {
  database: string;
  keyModel: KeyModel;
  /** tickets has ticket_response_due_at & co (ITFlow's optional SLAs). */
  hasSla: boolean;
  /** user_client_permissions has permission_type (deny lists, ITFlow ≥ 2.4.6). */
  hasClientDenyLists: boolean;
  /** Indexes on ticket_replies (name → columns), for planning read-side queries. */
  replyIndexes: Record<string, string[]>;
  /** settings.config_current_database_version, for logs. */
  databaseVersion: string | null;
  /**
   * The server hands a multi-row INSERT consecutive ids (innodb_autoinc_lock_mode 0 or 1,
   * auto_increment_increment 1), so a batch's replies can share one INSERT and still each
   * learn their own ticket_reply_id.
   */
  consecutiveInsertIds: boolean;
  /**
   * The server takes `FOR UPDATE SKIP LOCKED` (MariaDB ≥ 10.6, MySQL ≥ 8.0), so a batch can pass
   * over a ticket row another session holds instead of waiting for it.
   */
  skipLocked: boolean;
  /**
   * ITFlow's SLA clock (≥ 2.6): sla_history intervals, slas with resolution minutes, statuses that
   * pause the clock, resolution alert stages, business hours in settings. Without it, no interval
   * or deadline is ever written.
   */
  slaClock: boolean;
  /** Which of the tables ITFlow's client emails come from are there. */
  mail: { queue: boolean; attachments: boolean; watchers: boolean; signatures: boolean; company: boolean };
  /**
   * The handlers of ITFlow ≥ 2.4.7 (keys run as users): ticket_history rows for status changes,
   * a moving-into-Resolved check, setTicketFirstResponse; the older ones write none of that and
   * time a close's 'Ticket closed.' reply at one minute.
   */
  newerHandlers: boolean;
}

/** The database is reachable but holds no ITFlow schema (or a schema we do not know). */
export class NotAnItflowDatabase extends Error {}

/**
 * ITFlow tables the service reads or writes beside a reply (client mail, SLA clock), and the
 * column that shows this ITFlow has them (null: every ITFlow the service supports has them).
 */
const EXPECTED_TABLES: Array<{ table: string; shownBy: [string, string] | null }> = [
  { table: 'email_queue', shownBy: null },
  { table: 'ticket_watchers', shownBy: null },
  { table: 'user_settings', shownBy: null },
  { table: 'companies', shownBy: null },
  { table: 'slas', shownBy: ['tickets', 'ticket_sla_id'] }, // ITFlow's database 2.5.0
  { table: 'sla_history', shownBy: ['ticket_statuses', 'ticket_status_pauses_sla'] }, // 2.5.1
];

/**
 * Tables this ITFlow has that the service's MySQL user cannot see. information_schema lists only
 * what a user holds a privilege on (and MySQL answers "access denied" alike for a table that is
 * not there), so a missing grant would pass for an older ITFlow and switch the SLA clock or the
 * client mail off without a word; the columns of the tables the user does see tell them apart.
 */
function hiddenTables(visible: Map<string, Set<string>>): string[] {
  return EXPECTED_TABLES.filter(
    ({ table, shownBy }) => !visible.has(table) && (shownBy === null || visible.get(shownBy[0])?.has(shownBy[1]) === true),
  ).map(({ table }) => table);
}

/**
 * The privileges the service uses on ITFlow's tables ("Database user" in docs/operations.md),
 * with the column each write names: on every ITFlow, where keys run as users, and where ITFlow
 * has its SLA tables. Checked at start-up, so a missing one stops the service instead of failing
 * every command it applies.
 */
const EVERY_ITFLOW: Array<Omit<Needed, 'schema'>> = [
  { table: 'api_keys', privileges: ['SELECT'] },
  { table: 'settings', privileges: ['SELECT'] },
  { table: 'users', privileges: ['SELECT'] },
  { table: 'contacts', privileges: ['SELECT'] },
  { table: 'ticket_statuses', privileges: ['SELECT'] },
  { table: 'tickets', privileges: ['SELECT', 'UPDATE'], column: 'ticket_status' },
  { table: 'ticket_replies', privileges: ['SELECT', 'INSERT'], column: 'ticket_reply' },
  { table: 'logs', privileges: ['INSERT'], column: 'log_type' },
  { table: 'ticket_history', privileges: ['INSERT'], column: 'ticket_history_description' },
  { table: 'notifications', privileges: ['INSERT'], column: 'notification' },
  { table: 'companies', privileges: ['SELECT'] },
  { table: 'ticket_watchers', privileges: ['SELECT'] },
  { table: 'user_settings', privileges: ['SELECT'] },
  { table: 'email_queue', privileges: ['INSERT'], column: 'email_recipient' },
];
const KEYS_RUN_AS_USERS: Array<Omit<Needed, 'schema'>> = [
  { table: 'user_roles', privileges: ['SELECT'] },
  { table: 'modules', privileges: ['SELECT'] },
  { table: 'user_role_permissions', privileges: ['SELECT'] },
  { table: 'user_client_permissions', privileges: ['SELECT'] },
];
const SLA_TABLES: Array<Omit<Needed, 'schema'>> = [
  { table: 'slas', privileges: ['SELECT'] },
  { table: 'sla_history', privileges: ['SELECT', 'INSERT', 'UPDATE'], column: 'sla_history_ended_at' },
];

/** Stops with the GRANT statements to run when the user lacks a privilege the service uses on ITFlow's tables. */
async function requireItflowGrants(pool: Pool, database: string, keyModel: KeyModel, visible: Map<string, Set<string>>) {
  const needed = [
    ...EVERY_ITFLOW,
    ...(keyModel === 'key-runs-as-user' ? KEYS_RUN_AS_USERS : []),
    // Hidden SLA tables were refused above; absent ones mean an ITFlow without them.
    ...SLA_TABLES.filter(({ table }) => visible.has(table)),
  ].map((need) => ({ ...need, schema: database }));
  const missing = await missingPrivileges(pool, needed);
  if (missing.length > 0) throw await missingGrantsError(pool, missing);
}

const REQUIRED: Record<string, string[]> = {
  tickets: [
    'ticket_id',
    'ticket_prefix',
    'ticket_number',
    'ticket_subject',
    'ticket_status',
    'ticket_client_id',
    'ticket_created_by',
    'ticket_assigned_to',
    'ticket_updated_at',
    'ticket_resolved_at',
    'ticket_closed_at',
    'ticket_closed_by',
    'ticket_first_response_at',
  ],
  ticket_replies: [
    'ticket_reply_id',
    'ticket_reply',
    'ticket_reply_type',
    'ticket_reply_time_worked',
    'ticket_reply_created_at',
    'ticket_reply_updated_at',
    'ticket_reply_archived_at',
    'ticket_reply_by',
    'ticket_reply_ticket_id',
  ],
  ticket_statuses: ['ticket_status_id', 'ticket_status_name', 'ticket_status_active'],
  api_keys: ['api_key_id', 'api_key_name', 'api_key_secret', 'api_key_expire'],
  logs: [
    'log_type',
    'log_action',
    'log_description',
    'log_ip',
    'log_user_agent',
    'log_created_at',
    'log_client_id',
    'log_user_id',
    'log_entity_id',
  ],
  ticket_history: [
    'ticket_history_status',
    'ticket_history_description',
    'ticket_history_created_at',
    'ticket_history_ticket_id',
  ],
  notifications: [
    'notification_type',
    'notification',
    'notification_action',
    'notification_timestamp',
    'notification_client_id',
    'notification_user_id',
    'notification_entity_id',
  ],
  settings: ['company_id', 'config_timezone'],
};

const REQUIRED_FOR_USER_KEYS: Record<string, string[]> = {
  users: ['user_id', 'user_name', 'user_type', 'user_status', 'user_archived_at', 'user_role_id'],
  user_roles: ['role_id', 'role_is_admin'],
  modules: ['module_id', 'module_name'],
  user_role_permissions: ['user_role_id', 'module_id', 'user_role_permission_level'],
  user_client_permissions: ['user_id', 'client_id'],
};

const SLA_COLUMNS = [
  'ticket_response_due_at',
  'ticket_resolution_due_at',
  'ticket_response_sla_met',
  'ticket_resolution_sla_met',
];

export async function detectSchema(pool: Pool, database: string): Promise<ItflowSchema> {
  const [columnRows] = await pool.query<RowDataPacket[]>(
    'SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?',
    [database],
  );
  const columns = new Map<string, Set<string>>();
  for (const row of columnRows) {
    const table = String(row.t);
    if (!columns.has(table)) columns.set(table, new Set());
    columns.get(table)?.add(String(row.c));
  }

  if (!columns.has('tickets') || !columns.has('ticket_replies') || !columns.has('api_keys')) {
    throw new NotAnItflowDatabase(
      `Database '${database}' has no ITFlow tables (tickets, ticket_replies, api_keys). ` +
        'Point DATABASE_URL at your ITFlow database, or run `npm run demo` to create and use a demo one.',
    );
  }

  const hidden = hiddenTables(columns);
  if (hidden.length > 0) {
    throw new NotAnItflowDatabase(
      `The service's MySQL user cannot see ITFlow's ${hidden.join(', ')} in database '${database}'; without ` +
        `${hidden.length === 1 ? 'it' : 'them'} it would not write what ITFlow writes (client email, SLA clock). ` +
        "Grant what 'Database user' in docs/operations.md lists (or update ITFlow if it lacks them), then start again.",
    );
  }

  const apiKeyColumns = columns.get('api_keys') ?? new Set();
  let keyModel: KeyModel;
  if (apiKeyColumns.has('api_key_user_id')) keyModel = 'key-runs-as-user';
  else if (apiKeyColumns.has('api_key_client_id')) keyModel = 'per-key-scope';
  else
    throw new NotAnItflowDatabase(
      `Database '${database}': api_keys has neither api_key_user_id nor api_key_client_id; this ITFlow version is not supported.`,
    );

  // Before the columns: a table the user holds no privilege on shows no columns at all.
  await requireItflowGrants(pool, database, keyModel, columns);

  const required = keyModel === 'key-runs-as-user' ? { ...REQUIRED, ...REQUIRED_FOR_USER_KEYS } : REQUIRED;
  const missing: string[] = [];
  for (const [table, cols] of Object.entries(required)) {
    const present = columns.get(table);
    for (const col of cols) if (!present?.has(col)) missing.push(`${table}.${col}`);
  }
  if (missing.length > 0) {
    throw new NotAnItflowDatabase(
      `Database '${database}' looks like ITFlow but lacks ${missing.join(', ')}. Update ITFlow's database, then start again.`,
    );
  }

  const ticketColumns = columns.get('tickets') ?? new Set();
  const [indexRows] = await pool.query<RowDataPacket[]>(
    `SELECT INDEX_NAME AS i, COLUMN_NAME AS c FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'ticket_replies' ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [database],
  );
  const replyIndexes: Record<string, string[]> = {};
  for (const row of indexRows) {
    const name = String(row.i);
    replyIndexes[name] = [...(replyIndexes[name] ?? []), String(row.c)];
  }

  const [versionRows] = await pool.query<RowDataPacket[]>(
    columns.get('settings')?.has('config_current_database_version')
      ? 'SELECT config_current_database_version AS v FROM settings WHERE company_id = 1'
      : 'SELECT NULL AS v',
  );

  const [autoinc] = await pool.query<RowDataPacket[]>(
    'SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step',
  );

  const has = (table: string, ...cols: string[]) => cols.every((c) => columns.get(table)?.has(c) === true);
  const slaClock =
    has('sla_history', 'sla_history_started_at', 'sla_history_ended_at', 'sla_history_minutes', 'sla_history_ticket_id') &&
    has('slas', 'sla_id', 'sla_resolution_minutes') &&
    has('tickets', 'ticket_sla_id', 'ticket_created_at', 'ticket_archived_at', 'ticket_resolution_sla_alert_stage') &&
    has('ticket_statuses', 'ticket_status_pauses_sla') &&
    has('settings', 'config_business_days', 'config_business_hours_start', 'config_business_hours_end');
  return {
    database,
    keyModel,
    skipLocked: await takesSkipLocked(pool),
    slaClock: SLA_COLUMNS.every((c) => ticketColumns.has(c)) && slaClock,
    mail: {
      queue:
        has('email_queue', 'email_recipient', 'email_subject', 'email_content') &&
        has('tickets', 'ticket_contact_id', 'ticket_url_key'),
      attachments: has('email_queue', 'email_attachments'),
      watchers: has('ticket_watchers', 'watcher_email', 'watcher_ticket_id'),
      signatures: has('user_settings', 'user_id', 'user_config_signature'),
      company: has('companies', 'company_name', 'company_phone', 'company_phone_country_code'),
    },
    newerHandlers: keyModel === 'key-runs-as-user',
    hasSla: SLA_COLUMNS.every((c) => ticketColumns.has(c)),
    hasClientDenyLists: columns.get('user_client_permissions')?.has('permission_type') ?? false,
    replyIndexes,
    databaseVersion: versionRows[0]?.v == null ? null : String(versionRows[0].v),
    consecutiveInsertIds: Number(autoinc[0]?.mode) <= 1 && Number(autoinc[0]?.step) === 1,
  };
}

/** Whether the server parses `FOR UPDATE SKIP LOCKED` (asked, not inferred from a version string). */
async function takesSkipLocked(pool: Pool): Promise<boolean> {
  try {
    await pool.query('SELECT ticket_id FROM tickets WHERE 1 = 0 FOR UPDATE SKIP LOCKED');
    return true;
  } catch (error) {
    if ((error as { errno?: number }).errno === 1064) return false; // a syntax error: no SKIP LOCKED here
    throw error;
  }
}
