import { LRUCache } from 'lru-cache';

/**
 * A short-lived memo for look-ups that may be a few seconds stale (API keys, ticket scope,
 * status lists). Concurrent look-ups of one key share a single query; failures are not kept.
 * An entry is never answered once its ttl has passed, however long it sat unused: an expired
 * entry is loaded again before the caller gets an answer, so a revoked key is refused within
 * the ttl. A ttl of 0 turns caching off. `loadMany` lets getMany fetch the keys it lacks in one
 * query.
 */
export interface Memo<K, V> {
  get(key: K): Promise<V>;
  getMany(keys: K[]): Promise<Map<K, V>>;
  clear(): void;
}

export function ttlMemo<K extends string | number, V>(
  ttlMs: number,
  max: number,
  load: (key: K) => Promise<V>,
  loadMany?: (keys: K[]) => Promise<Map<K, V>>,
): Memo<K, V> {
  // No keys, no query (a bulk request whose every item failed validation asks for none).
  const many = async (keys: K[]) =>
    keys.length === 0
      ? new Map<K, V>()
      : loadMany
        ? loadMany(keys)
        : new Map(await Promise.all(keys.map(async (key) => [key, await load(key)] as const)));
  if (ttlMs <= 0) return { get: load, getMany: (keys) => many([...new Set(keys)]), clear: () => {} };
  const cache = new LRUCache<K, { value: V }>({
    max,
    ttl: ttlMs,
    ttlAutopurge: false,
    allowStale: false,
    fetchMethod: async (key) => ({ value: await load(key) }),
  });
  return {
    async get(key) {
      const entry = await cache.fetch(key);
      if (!entry) throw new Error('cache fetch returned nothing');
      return entry.value;
    },
    async getMany(keys) {
      const found = new Map<K, V>();
      const missing: K[] = [];
      for (const key of new Set(keys)) {
        const entry = cache.get(key);
        if (entry) found.set(key, entry.value);
        else missing.push(key);
      }
      if (missing.length > 0) {
        for (const [key, value] of await many(missing)) {
          cache.set(key, { value });
          found.set(key, value);
        }
      }
      return found;
    },
    clear: () => cache.clear(),
  };
}
