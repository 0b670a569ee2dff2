import { describe, expect, it } from 'vitest';
import { ttlMemo } from '../../src/cache.js';

/**
 * The look-up memo (API keys, tickets, statuses): a single look-up and a bulk request's look-up
 * of the same key at once must both get an answer. (lru-cache aborts a fetch in flight when a
 * value is set over it, and its caller used to get the abort — "replaced" — as a 500.)
 */
describe('ttlMemo', () => {
  it('a single look-up in flight when a many-key look-up stores the same key still answers', async () => {
    let singleLoads = 0;
    const memo = ttlMemo<number, string>(
      5_000,
      100,
      async (key) => `one ${key}`,
      async (keys) => {
        // The single look-up's load (gathered, so it goes through loadMany too) is the slow one.
        if (keys.length === 1 && singleLoads++ === 0) await new Promise((resolve) => setTimeout(resolve, 50));
        return new Map(keys.map((key) => [key, `many ${key}`]));
      },
    );
    const single = memo.get(7);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const many = await memo.getMany([7, 8]);
    expect(many.get(7)).toBe('many 7');
    await expect(single).resolves.toBe('many 7');
  });
});
