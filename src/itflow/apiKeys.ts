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

/** What a valid API key may do, resolved from ITFlow's own tables. */
export interface Principal {
  keyId: number;
  keyName: string;
  keyModel: KeyModel;
  /** The user the key runs as; 0 for per-key-scope keys (ITFlow's ticket_reply_by for them). */
  userId: number;
  /** Who the audit trail names: the user's name, or the key for per-key-scope keys. */
  actorName: string;
  /** module_support level: 1 read, 2 write, 3 full. */
  supportLevel: number;
  scope: ClientScope;
}

type Resolution = { principal: Principal } | { forbidden: string } | null;

interface KeyRow extends RowDataPacket {
  api_key_id: number;
  api_key_name: string;
  api_key_secret: string;
  owner: number;
}

/**
 * Resolves API keys to principals. Both look-ups (by secret at the intake, by id when a
 * worker re-checks a command) are cached for `cacheMs`, so revoking a key or changing a
 * user's permissions takes effect within that time.
 */
export class KeyResolver {
  private readonly bySecretMemo;
  private readonly byIdMemo;

  constructor(
    private readonly pool: Pool,
    private readonly schema: ItflowSchema,
    private readonly clock: ItflowClock,
    cacheMs: number,
  ) {
    this.bySecretMemo = ttlMemo<string, Resolution>(cacheMs, 10_000, (secret) =>
      this.load('api_key_secret = ?', secret, (row) => sameSecret(row.api_key_secret, secret)),
    );
    this.byIdMemo = ttlMemo<number, Resolution>(cacheMs, 10_000, (id) => this.load('api_key_id = ?', id, () => true));
  }

  /** null when the key is unknown or expired; throws Forbidden when ITFlow would refuse it. */
  async bySecret(secret: string): Promise<Principal | null> {
    return unwrap(await this.bySecretMemo.get(secret));
  }

  async byId(keyId: number): Promise<Principal | null> {
    return unwrap(await this.byIdMemo.get(keyId));
  }

  clear(): void {
    this.bySecretMemo.clear();
    this.byIdMemo.clear();
  }

  /**
   * `where` finds the candidate rows; `matches` is the final word on each. The look-up by
   * secret needs both: ITFlow's tables use utf8mb4_general_ci, under which `=` ignores case,
   * accents and trailing spaces, so the SQL equality alone would take 'ABC ' for 'abc'.
   */
  private async load(where: string, value: string | number, matches: (row: KeyRow) => boolean): Promise<Resolution> {
    const owner = this.schema.keyModel === 'key-runs-as-user' ? 'api_key_user_id' : 'api_key_client_id';
    // ITFlow: a key is valid while api_key_expire > NOW(), NOW() being its own wall clock.
    const now = await this.clock.at();
    // Not LIMIT 1: several keys may be equal under the collation, and only one is the secret.
    const [rows] = await this.pool.query<KeyRow[]>(
      `SELECT api_key_id, api_key_name, api_key_secret, ${owner} AS owner FROM api_keys
       WHERE ${where} AND api_key_expire > ? LIMIT 16`,
      [value, now],
    );
    const row = rows.find(matches);
    if (!row) return null;
    const key = { keyId: Number(row.api_key_id), keyName: String(row.api_key_name), owner: Number(row.owner) };
    return this.schema.keyModel === 'key-runs-as-user' ? this.userPrincipal(key) : clientPrincipal(key);
  }

  private async userPrincipal(key: { keyId: number; keyName: string; owner: number }): Promise<Resolution> {
    if (key.owner === 0) {
      return { forbidden: 'This API key is not tied to a user and is no longer valid. Please recreate it.' };
    }
    const [users] = await this.pool.query<RowDataPacket[]>(
      `SELECT users.user_id, user_name, user_type, user_status, user_archived_at, user_role_id, role_is_admin
       FROM users LEFT JOIN user_roles ON user_role_id = role_id
       WHERE users.user_id = ? LIMIT 1`,
      [key.owner],
    );
    const user = users[0];
    if (!user || Number(user.user_type) !== 1 || Number(user.user_status) !== 1 || user.user_archived_at !== null) {
      return { forbidden: 'The user linked to this API key is inactive, archived, or invalid.' };
    }
    const isAdmin = Number(user.role_is_admin) === 1;
    const base = {
      keyId: key.keyId,
      keyName: key.keyName,
      keyModel: 'key-runs-as-user' as const,
      userId: Number(user.user_id),
      actorName: String(user.user_name),
    };
    if (isAdmin) return { principal: { ...base, supportLevel: 3, scope: ALL_CLIENTS } };

    const [levels] = await this.pool.query<RowDataPacket[]>(
      `SELECT user_role_permission_level AS level FROM modules
       JOIN user_role_permissions ON modules.module_id = user_role_permissions.module_id
       WHERE module_name = 'module_support' AND user_role_permissions.user_role_id = ?`,
      [Number(user.user_role_id ?? 0)],
    );
    const typeColumn = this.schema.hasClientDenyLists ? 'permission_type' : "'allow'";
    const [perms] = await this.pool.query<RowDataPacket[]>(
      `SELECT client_id, ${typeColumn} AS permission_type FROM user_client_permissions WHERE user_id = ?`,
      [base.userId],
    );
    const allow = perms.filter((p) => p.permission_type !== 'deny').map((p) => Number(p.client_id));
    const deny = perms.filter((p) => p.permission_type === 'deny').map((p) => Number(p.client_id));
    return {
      principal: {
        ...base,
        supportLevel: Number(levels[0]?.level ?? 0),
        scope: { allow: allow.length > 0 ? [0, ...allow] : null, deny },
      },
    };
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

function clientPrincipal(key: { keyId: number; keyName: string; owner: number }): Resolution {
  return {
    principal: {
      keyId: key.keyId,
      keyName: key.keyName,
      keyModel: 'per-key-scope',
      userId: 0,
      actorName: `API (${key.keyName})`,
      supportLevel: 3,
      scope: key.owner === 0 ? ALL_CLIENTS : { allow: [key.owner], deny: [] },
    },
  };
}

function unwrap(resolution: Resolution): Principal | null {
  if (resolution === null) return null;
  if ('forbidden' in resolution) throw new Forbidden(resolution.forbidden);
  return resolution.principal;
}

/** Throws ITFlow's 403 when the key's user lacks the module_support level an action needs. */
export function requireLevel(principal: Principal, level: number): void {
  if (principal.supportLevel < level) {
    throw new Forbidden('The user linked to this API key does not have permission for this action.');
  }
}
