// The dashboard's "API keys" panel: ITFlow's API keys as `npm run cli -- keys list` lists them
// (the same listKeys: quiet or notifying by default), each with whom it acts for — the user it
// runs as (ITFlow ≥ 2.4.7) or its client (≤ 2.4.6: 0 is every client) — whether it has expired by
// ITFlow's clock, and how many external ids it holds in the service's external-id table. Read
// only: the CLI changes the setting.
import type { FastifyInstance } from 'fastify';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../../cache.js';
import { listKeys } from '../../cli/keys.js';
import type { ServiceTables } from '../../db/tables.js';
import type { ItflowSchema } from '../../itflow/schema.js';

export interface KeysPanelDeps {
  pool: Pool;
  tables: ServiceTables;
  schema: ItflowSchema;
}

/**
 * The external-id counts read the table's primary key (api_key_id, external_id) from end to end:
 * cheap at thousands, about a second at millions; shared by every open dashboard for this long.
 */
const EXTERNAL_ID_COUNTS_CACHE_MS = 30_000;

export interface KeyOwner {
  /** ITFlow ≥ 2.4.7: the user the key runs as (null: none, or a user that is gone). */
  user: { id: number; name: string | null } | null;
  /** ITFlow ≤ 2.4.6: the client the key is for (0: every client). */
  clientId: number | null;
}

export function registerKeysPanel(api: FastifyInstance, deps: KeysPanelDeps): void {
  const externalIds = ttlMemo(EXTERNAL_ID_COUNTS_CACHE_MS, 1, async (_all: 'all') => ({
    counts: await externalIdCounts(deps.pool, deps.tables),
    at: new Date().toISOString(),
  }));

  api.get('/keys', async () => {
    const [keys, owners, counted] = await Promise.all([
      listKeys(deps.pool, deps.tables),
      keyOwners(deps.pool, deps.schema),
      externalIds.get('all'),
    ]);
    return {
      keyModel: deps.schema.keyModel,
      externalIdsCountedAt: counted.at,
      keys: keys.map((key) => {
        const owner = owners.get(key.api_key_id);
        return {
          apiKeyId: key.api_key_id,
          name: key.name,
          expires: key.expires,
          expired: owner?.expired ?? false,
          quiet: key.quiet,
          user: owner?.user ?? null,
          clientId: owner?.clientId ?? null,
          externalIds: counted.counts.get(key.api_key_id) ?? 0,
        };
      }),
    };
  });
}

/** Each key's owner by ITFlow's generation, and whether it has expired (ITFlow's test: api_key_expire > NOW()). */
async function keyOwners(pool: Pool, schema: ItflowSchema): Promise<Map<number, KeyOwner & { expired: boolean }>> {
  const sql =
    schema.keyModel === 'key-runs-as-user'
      ? `SELECT api_key_id, api_key_expire <= NOW() AS expired, api_key_user_id AS owner, users.user_name
           FROM api_keys LEFT JOIN users ON users.user_id = api_key_user_id`
      : 'SELECT api_key_id, api_key_expire <= NOW() AS expired, api_key_client_id AS owner FROM api_keys';
  const [rows] = await pool.query<RowDataPacket[]>(sql);
  return new Map(
    rows.map((row) => {
      const owner = Number(row.owner);
      const user =
        schema.keyModel === 'key-runs-as-user' && owner > 0
          ? { id: owner, name: row.user_name === null ? null : String(row.user_name) }
          : null;
      return [
        Number(row.api_key_id),
        { expired: Number(row.expired) === 1, user, clientId: schema.keyModel === 'per-key-scope' ? owner : null },
      ];
    }),
  );
}

/** External ids held, by API key (keys that hold none are absent). */
async function externalIdCounts(pool: Pool, tables: ServiceTables): Promise<Map<number, number>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT api_key_id, COUNT(*) AS n FROM ${tables.externalIds} GROUP BY api_key_id`,
  );
  return new Map(rows.map((row) => [Number(row.api_key_id), Number(row.n)]));
}
