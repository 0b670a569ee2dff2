// API keys and what they may do, resolved from ITFlow's own tables in both generations. The same
// SQL serves the intake (by secret, through a short cache) and the worker (by id, inside the
// transaction that applies a command, never cached), so both apply one set of rules.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../cache.js';
import { Forbidden } from '../errors.js';
import type { ItflowClock } from './clock.js';
import type { ItflowSchema, KeyModel } from './schema.js';
import { ALL_CLIENTS, type ClientScope } from './scope.js';

/** module_support permission levels, as ITFlow's roles define them. */
export const READ = 1;
export const WRITE = 2;

/** What a valid API key may do. */
export interface Principal {
  keyId: number;
  keyName: string;
  keyModel: KeyModel;
  /** The user the key runs as; 0 for per-key-scope keys (ITFlow's ticket_reply_by for them). */
  userId: number;
  /** Who the audit trail names: the user's name, or the key for per-key-scope keys. */
  actorName: string;
  /** An admin-level key: the user's role is an admin role (≥ 2.4.7), or a key for every client (≤ 2.4.6). */
  isAdmin: boolean;
  /** module_support level: 1 read, 2 write, 3 full. */
  supportLevel: number;
  scope: ClientScope;
}

/** A key resolved: what it may do, ITFlow's 403 for it, or null when unknown or expired. */
export type Resolution = { principal: Principal } | { forbidden: string } | null;

/** A key with its user, and one of the user's client permissions (null when it has none): one row each. */
interface KeyRow extends RowDataPacket {
  api_key_id: number;
  api_key_name: string;
  api_key_secret: string;
  owner: number;
  user_id: number | null;
  user_name: string | null;
  user_type: number | null;
  user_status: number | null;
  user_archived_at: string | null;
  role_is_admin: number | null;
  support_level: number | null;
  permission_client_id: number | null;
  permission_type: string | null;
}

/** A statement and its parameters, to run alone or in a multi-statement round trip. */
export interface KeyStatement {
  sql: string;
  params: unknown[];
}

/**
 * Reads keys still valid at `now` (ITFlow's wall clock: a key is valid while api_key_expire >
 * NOW()), by secret or by ids, each with its user, role, module_support level and client
 * allow/deny rows — one row per client permission, in one statement. Several keys may match a
 * secret under the collation; only one is the secret (see KeyResolver).
 */
export function keyStatement(schema: ItflowSchema, by: { secret: string } | { ids: number[] }, now: string): KeyStatement {
  const where = 'secret' in by ? 'api_key_secret = ?' : 'api_key_id IN (?)';
  const value = 'secret' in by ? by.secret : by.ids;
  if (schema.keyModel === 'per-key-scope') {
    return {
      sql: `SELECT api_key_id, api_key_name, api_key_secret, api_key_client_id AS owner
            FROM api_keys WHERE ${where} AND api_key_expire > ?`,
      params: [value, now],
    };
  }
  const permissionType = schema.hasClientDenyLists ? 'user_client_permissions.permission_type' : "'allow'";
  return {
    sql: `SELECT api_key_id, api_key_name, api_key_secret, api_key_user_id AS owner,
                 users.user_id, user_name, user_type, user_status, user_archived_at, role_is_admin,
                 (SELECT MAX(user_role_permission_level) FROM user_role_permissions
                    JOIN modules ON modules.module_id = user_role_permissions.module_id
                   WHERE module_name = 'module_support' AND user_role_permissions.user_role_id = users.user_role_id)
                   AS support_level,
                 user_client_permissions.client_id AS permission_client_id,
                 IF(user_client_permissions.user_id IS NULL, NULL, ${permissionType}) AS permission_type
            FROM api_keys
            LEFT JOIN users ON users.user_id = api_key_user_id
            LEFT JOIN user_roles ON role_id = users.user_role_id
            LEFT JOIN user_client_permissions ON user_client_permissions.user_id = users.user_id
           WHERE ${where} AND api_key_expire > ?`,
    params: [value, now],
  };
}

/** Every key in `rows` (keyStatement's) resolved, by key id. */
export function resolveKeys(schema: ItflowSchema, rows: RowDataPacket[]): Map<number, NonNullable<Resolution>> {
  const byKey = new Map<number, KeyRow[]>();
  for (const row of rows as KeyRow[]) byKey.set(Number(row.api_key_id), [...(byKey.get(Number(row.api_key_id)) ?? []), row]);
  return new Map([...byKey].map(([id, keyRows]) => [id, resolveKey(schema, keyRows)]));
}

function resolveKey(schema: ItflowSchema, rows: KeyRow[]): NonNullable<Resolution> {
  const row = rows[0] as KeyRow;
  const key = { keyId: Number(row.api_key_id), keyName: String(row.api_key_name), owner: Number(row.owner) };
  if (schema.keyModel === 'per-key-scope') {
    const everyClient = key.owner === 0;
    return {
      principal: {
        ...key,
        keyModel: 'per-key-scope',
        userId: 0,
        actorName: `API (${key.keyName})`,
        isAdmin: everyClient,
        supportLevel: 3,
        scope: everyClient ? ALL_CLIENTS : { allow: [key.owner], deny: [] },
      },
    };
  }
  if (key.owner === 0) return { forbidden: 'This API key is not tied to a user and is no longer valid. Please recreate it.' };
  if (row.user_id === null || Number(row.user_type) !== 1 || Number(row.user_status) !== 1 || row.user_archived_at !== null) {
    return { forbidden: 'The user linked to this API key is inactive, archived, or invalid.' };
  }
  const base = {
    keyId: key.keyId,
    keyName: key.keyName,
    keyModel: 'key-runs-as-user' as const,
    userId: Number(row.user_id),
    actorName: String(row.user_name),
  };
  if (Number(row.role_is_admin) === 1) return { principal: { ...base, isAdmin: true, supportLevel: 3, scope: ALL_CLIENTS } };
  const permissions = rows.filter((r) => r.permission_client_id !== null);
  const allow = permissions.filter((p) => p.permission_type !== 'deny').map((p) => Number(p.permission_client_id));
  const deny = permissions.filter((p) => p.permission_type === 'deny').map((p) => Number(p.permission_client_id));
  return {
    principal: {
      ...base,
      isAdmin: false,
      supportLevel: Number(row.support_level ?? 0),
      scope: { allow: allow.length > 0 ? [0, ...allow] : null, deny },
    },
  };
}

/**
 * The intake's look-up of a presented secret, cached for `cacheMs` (AUTH_CACHE_SECONDS): revoking
 * a key or changing a user's permissions takes effect at the intake within that time, and the
 * worker checks again from MySQL when it applies the command.
 */
export class KeyResolver {
  private readonly bySecretMemo;

  constructor(
    private readonly pool: Pool,
    private readonly schema: ItflowSchema,
    private readonly clock: ItflowClock,
    cacheMs: number,
  ) {
    this.bySecretMemo = ttlMemo<string, Resolution>(cacheMs, 10_000, (secret) => this.load(secret));
  }

  /** null when the key is unknown or expired; throws Forbidden when ITFlow would refuse it. */
  async bySecret(secret: string): Promise<Principal | null> {
    return unwrap(await this.bySecretMemo.get(secret));
  }

  clear(): void {
    this.bySecretMemo.clear();
  }

  /**
   * The SQL equality finds the candidate rows; sameSecret is the final word on each: ITFlow's
   * tables use utf8mb4_general_ci, under which `=` ignores case, accents and trailing spaces, so
   * the SQL alone would take 'ABC ' for 'abc'.
   */
  private async load(secret: string): Promise<Resolution> {
    const keys = keyStatement(this.schema, { secret }, await this.clock.at());
    const [rows] = await this.pool.query<KeyRow[]>(keys.sql, keys.params);
    const match = rows.find((r) => sameSecret(r.api_key_secret, secret));
    if (!match) return null;
    const keyId = Number(match.api_key_id);
    return (
      resolveKeys(
        this.schema,
        rows.filter((r) => Number(r.api_key_id) === keyId),
      ).get(keyId) ?? null
    );
  }
}

/**
 * The presented secret against the stored one, in constant time. ITFlow stores secrets in
 * plaintext and the candidate row is found by an SQL equality, which no code here can make
 * constant-time (ITFlow's schema offers no key id to look up by instead); what Node compares is.
 * Comparing SHA-256 digests gives timingSafeEqual buffers of one length, so neither the length
 * nor the first differing byte of the stored secret shows in the time taken.
 */
function sameSecret(stored: string, presented: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(stored), digest(presented));
}

/** The principal of a resolution; throws ITFlow's 403 for a key ITFlow would refuse. */
export function unwrap(resolution: Resolution | undefined): Principal | null {
  if (!resolution) return null;
  if ('forbidden' in resolution) throw new Forbidden(resolution.forbidden);
  return resolution.principal;
}

/** Throws ITFlow's 403 when the key's user lacks the module_support level an action needs. */
export function requireLevel(principal: Principal, level: number): void {
  if (principal.supportLevel < level) {
    throw new Forbidden('The user linked to this API key does not have permission for this action.');
  }
}
