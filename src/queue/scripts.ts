// The service's Lua scripts, one file each under ./lua/ with a header naming its KEYS and ARGV
// (as BullMQ keeps its own). Each is defined on a connection once (ioredis defineCommand: EVALSHA,
// falling back to EVAL when Redis has not seen the script, e.g. after a restart) and run by name.
import { readFileSync } from 'node:fs';
import type { ChainableCommander, Redis } from 'ioredis';

const NAMES = ['idempotencyTakeOver', 'idempotencyRelease'] as const;
export type ScriptName = (typeof NAMES)[number];

interface Script {
  lua: string;
  numberOfKeys: number;
}

let loaded: Map<ScriptName, Script> | undefined;

/** The scripts' text, read once; the number of keys is counted from the `-- KEYS[n]` header lines. */
function scripts(): Map<ScriptName, Script> {
  loaded ??= new Map(
    NAMES.map((name) => {
      const lua = readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
      const numberOfKeys = lua.split('\n').filter((line) => /^--\s*KEYS\[\d+\]/.test(line)).length;
      return [name, { lua, numberOfKeys }];
    }),
  );
  return loaded;
}

const defined = new WeakSet<Redis>();

function define(redis: Redis): void {
  if (defined.has(redis)) return;
  for (const [name, script] of scripts()) redis.defineCommand(name, script);
  defined.add(redis);
}

type Runner = (...keysThenArgs: Array<string | number>) => Promise<unknown>;

/** Runs a script on `redis` with its keys and arguments. */
export function runScript(redis: Redis, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
  define(redis);
  return (redis as unknown as Record<ScriptName, Runner>)[name](...keys, ...args);
}

/** Queues a script on a pipeline or transaction of `redis`. */
export function pipeScript(
  redis: Redis,
  pipeline: ChainableCommander,
  name: ScriptName,
  keys: string[],
  args: Array<string | number>,
): ChainableCommander {
  define(redis);
  return (pipeline as unknown as Record<ScriptName, (...a: Array<string | number>) => ChainableCommander>)[name](
    ...keys,
    ...args,
  );
}
