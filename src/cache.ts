import { LRUCache } from 'lru-cache';

/**
 * A short-lived memo for look-ups that may be a few seconds stale (API keys, tickets, status
 * lists). Concurrent look-ups of one key share a single query; failures are not kept. A ttl of 0
 * turns caching off. `loadMany` lets getMany fetch the keys it lacks in one query.
 *
 * By default an entry is never answered once its ttl has passed, however long it sat unused: an
 * expired entry is loaded again before the caller gets an answer, so a revoked key is refused
 * within the ttl. Where a stale answer is harmless because the worker checks again under the
 * row lock (a ticket's client and state, the status list), `staleWhileRefreshing` answers an
 * expired entry once more while it is reloaded in the background, so a request does not wait
 * for MySQL on every expiry.
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
  { staleWhileRefreshing = false }: { staleWhileRefreshing?: boolean } = {},
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
    allowStale: staleWhileRefreshing,
    noDeleteOnStaleGet: staleWhileRefreshing,
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
        if (!entry) missing.push(key);
        else {
          found.set(key, entry.value);
          if (staleWhileRefreshing && cache.getRemainingTTL(key) <= 0) void cache.fetch(key).catch(() => {});
        }
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
