// Talking to a Redis Cluster as to one server. A cluster keeps each key in one of 16,384 hash slots
// spread over its primaries; a script, a transaction or a command of several keys must keep to one
// slot, and ioredis sends a pipeline to one node only. The service's keys are named for that
// (keys.ts: what goes together shares a hash tag); these helpers split the rest — on one server
// they make exactly the calls the service always made.
import calculateSlot from 'cluster-key-slot';
import { type ChainableCommander, Cluster } from 'ioredis';
import type { KeyLayout } from './keys.js';
import type { RedisClient } from './redis.js';

/** How the keys on this connection are named: hash-tagged on a cluster. */
export function keyLayoutOf(redis: RedisClient): KeyLayout {
  return redis instanceof Cluster ? 'cluster' : 'standalone';
}

/** `items` in groups whose keys (`keyOf`) share a hash slot, each in its order; on one server, one group. */
export function bySlot<T>(redis: RedisClient, items: T[], keyOf: (item: T) => string): T[][] {
  if (!(redis instanceof Cluster)) return items.length > 0 ? [items] : [];
  return [...groupBy(items, (item) => String(calculateSlot(keyOf(item)))).values()];
}

/** A command for `pipelined`: the key it touches (all its keys share that key's slot), and how to queue it. */
export interface Piped {
  key: string;
  queue(pipeline: ChainableCommander): unknown;
}

/**
 * Sends commands in pipelines and answers each, in order, as a pipeline's exec does: one pipeline on
 * one server; on a cluster one per node, by the slot map ioredis keeps, all sent at once. Rejects
 * only when a pipeline could not be sent.
 */
export async function pipelined(redis: RedisClient, commands: Piped[]): Promise<Array<[Error | null, unknown]>> {
  if (commands.length === 0) return [];
  const numbered = commands.map((command, at) => ({ command, at }));
  const groups =
    redis instanceof Cluster ? [...groupBy(numbered, ({ command }) => nodesOf(redis, command.key)).values()] : [numbered];
  const answers: Array<[Error | null, unknown]> = [];
  await Promise.all(
    groups.map(async (group) => {
      const pipeline = redis.pipeline();
      for (const { command } of group) command.queue(pipeline);
      const results = (await pipeline.exec()) ?? [];
      for (const [n, { at }] of group.entries()) answers[at] = results[n] ?? [new Error('no answer from Redis'), null];
    }),
  );
  return answers;
}

/** The nodes (primary first) serving a key's slot, as ioredis groups a pipeline's keys. */
function nodesOf(cluster: Cluster, key: string): string {
  const slot = calculateSlot(key);
  return cluster.slots[slot]?.join(';') ?? `slot ${slot}`;
}

/** Items grouped by a key, the groups in the order their keys first appear, each in the items' order. */
export function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
