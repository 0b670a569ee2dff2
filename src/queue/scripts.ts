// The service's Lua scripts, one file each under ./lua/ with a header naming its KEYS and ARGV
// (as BullMQ keeps its own). Each is defined on a connection once (ioredis defineCommand: the whole
// script, EVAL, on a socket's first use, EVALSHA after, EVAL again on NOSCRIPT) and run by name, so
// a Redis that never saw a script — restarted, flushed, or a replica a failover just promoted —
// needs nothing; every key a script touches is passed in KEYS, never built inside it (peekLane's
// job hashes, named by the list it reads, share their lane's hash tag). On a Redis Cluster all of
// one call's keys must share a hash slot: the callers group them so (src/queue/cluster.ts).
import { readFileSync } from 'node:fs';
import { pipelined } from './cluster.js';
import type { RedisClient } from './redis.js';

const NAMES = [
  'idempotencyTakeOver',
  'deleteIfHeld',
  'parkCommands',
  'parkedAmong',
  'settleParked',
  'recordImportTraffic',
  'peekLane',
  'dropApplied',
  'countRequest',
  'notePending',
  'forgetPending',
] as const;
export type ScriptName = (typeof NAMES)[number];

let loaded: Map<ScriptName, string> | undefined;

/** The scripts' text, read once. */
function scripts(): Map<ScriptName, string> {
  loaded ??= new Map(NAMES.map((name) => [name, readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')]));
  return loaded;
}

const defined = new WeakSet<RedisClient>();

/** Defines every script on `redis`, taking its number of keys as the first argument of each call. */
function define(redis: RedisClient): void {
  if (defined.has(redis)) return;
  for (const [name, lua] of scripts()) redis.defineCommand(name, { lua });
  defined.add(redis);
}

type Runner = (...keysThenArgs: Array<string | number>) => Promise<unknown>;

/** Runs a script on `redis` with its keys and arguments. */
export function runScript(redis: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
  define(redis);
  return (redis as unknown as Record<ScriptName, Runner>)[name](keys.length, ...keys, ...args);
}

/**
 * Runs many calls of one script in a single pipeline (one write, one read; on a cluster one per
 * node); each call's answer, or its error, in order. Rejects only when a pipeline could not be sent.
 */
export async function runScriptPipelined(
  redis: RedisClient,
  name: ScriptName,
  calls: Array<{ keys: string[]; args: Array<string | number> }>,
): Promise<Array<[Error | null, unknown]>> {
  define(redis);
  return pipelined(
    redis,
    calls.map(({ keys, args }) => ({
      key: keys[0] as string,
      queue: (pipeline) => (pipeline as unknown as Record<ScriptName, Runner>)[name](keys.length, ...keys, ...args),
    })),
  );
}
