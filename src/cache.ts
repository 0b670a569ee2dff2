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
 *
 * With `loadMany`, single look-ups that miss are gathered and loaded together (see coalesced):
 * at load, c=32 requests over 10,000 tickets all miss the cache, and a few SELECTs answer them
 * instead of one per request.
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
  const one = loadMany ? coalesced(loadMany) : load;
  if (ttlMs <= 0) return { get: one, getMany: (keys) => many([...new Set(keys)]), clear: () => {} };
  const cache = new LRUCache<K, { value: V }>({
    max,
    ttl: ttlMs,
    ttlAutopurge: false,
    allowStale: staleWhileRefreshing,
    noDeleteOnStaleGet: staleWhileRefreshing,
    // getMany sets keys that a single look-up may be loading at that moment; lru-cache would
    // abort that fetch ("replaced") and fail its caller. Its own answer is as good: it gets it.
    ignoreFetchAbort: true,
    fetchMethod: async (key) => ({ value: await one(key) }),
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

/**
 * A single-key loader that gathers keys and loads them with `loadMany`, group-commit style: a key
 * asked for while fewer than `maxInFlight` loads are running goes out at the end of this turn of
 * the event loop with the others asked for in it; while that many are running, keys gather
 * until one of them returns. Idle, nothing waits; busy, one query answers many requests. A
 * failed load fails each of its callers.
 */
function coalesced<K, V>(loadMany: (keys: K[]) => Promise<Map<K, V>>, maxInFlight = 2): (key: K) => Promise<V> {
  type Batch = Map<K, Array<{ resolve(value: V): void; reject(error: unknown): void }>>;
  let pending: Batch = new Map();
  let inFlight = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.size === 0 || inFlight >= maxInFlight) return;
    const batch = pending;
    pending = new Map();
    inFlight++;
    loadMany([...batch.keys()])
      .then(
        (found) => {
          for (const [key, waiting] of batch) {
            if (!found.has(key)) for (const w of waiting) w.reject(new Error(`no answer loaded for ${String(key)}`));
            else for (const w of waiting) w.resolve(found.get(key) as V);
          }
        },
        (error: unknown) => {
          for (const waiting of batch.values()) for (const w of waiting) w.reject(error);
        },
      )
      .finally(() => {
        inFlight--;
        flush();
      });
  };
  return (key) =>
    new Promise<V>((resolve, reject) => {
      const waiting = pending.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else pending.set(key, [{ resolve, reject }]);
      if (!scheduled && inFlight < maxInFlight) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
