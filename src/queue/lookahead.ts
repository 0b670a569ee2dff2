// A lane's run of waiting commands, applied with the job being applied (src/queue/consumer.ts).
//
// A lane applies one job at a time, so a hot ticket (an alert storm, a chat bridge) would get one
// command per transaction. Instead, the worker applying a lane's single-command job reads the
// single commands waiting right behind it in the lane and applies them in the same transaction,
// in lane order. Once that transaction has committed, the ones it finished are taken out of the
// lane (dropApplied), so the lane never delivers them: a hot ticket's commands cost BullMQ one
// delivery per run rather than one each. One the lane delivers all the same (taking it out
// failed, or the worker stopped between the commit and taking it out) is answered from this
// process's memo (no MySQL round trip, no second 'finished' event), or by another process from
// the ledger, as any command delivered twice.
import type { Outcome } from '../apply/ledger.js';
import { isChunk } from './chunks.js';
import { keyLayoutOf } from './cluster.js';
import { type CommandJob, commandJobSchema } from './jobs.js';
import { redisKeys } from './keys.js';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

/** A waiting command read from its lane, with the tries it will have had once applied now. */
export interface Lookahead {
  job: CommandJob;
  attempts: number;
}

/**
 * Up to `count` single commands waiting next in `lane`, next first, in one round trip. Stops at
 * the first job that is a chunk or cannot be read: the lane applies it, and what follows, in turn.
 */
export async function peekLane(redis: RedisClient, prefix: string, lane: string, count: number): Promise<Lookahead[]> {
  if (count < 1) return [];
  const keys = redisKeys(prefix, keyLayoutOf(redis));
  const flat = (await runScript(redis, 'peekLane', [keys.laneWait(lane)], [keys.laneJobPrefix(lane), count])) as string[];
  const run: Lookahead[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    const data = safeJson(flat[i + 1] as string);
    if (isChunk(data)) break;
    const job = commandJobSchema.safeParse(data);
    // A job id other than its command id is not one of ours to apply early.
    if (!job.success || job.data.commandId !== flat[i]) break;
    run.push({ job: job.data, attempts: Number(flat[i + 2]) + 1 });
  }
  return run;
}

/**
 * Takes the jobs of commands applied ahead (and committed) out of `lane`, if they are still
 * waiting there, so the lane does not deliver them again; one round trip. Resolves with how many
 * were taken out. One left behind (this failing, another process having taken it) is delivered
 * as before and answered from the memo or the ledger.
 */
export async function dropApplied(redis: RedisClient, prefix: string, lane: string, jobIds: string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const keys = redisKeys(prefix, keyLayoutOf(redis));
  return Number(await runScript(redis, 'dropApplied', [keys.laneWait(lane)], [keys.laneJobPrefix(lane), ...jobIds]));
}

/**
 * The outcomes of commands this process applied ahead of their delivery, by command id, the
 * oldest forgotten first beyond `capacity`. Forgetting one only costs its delivery a ledger read.
 */
export class AppliedAhead {
  private readonly outcomes = new Map<string, Outcome>();

  constructor(private readonly capacity: number) {}

  remember(commandId: string, outcome: Outcome): void {
    this.outcomes.delete(commandId);
    this.outcomes.set(commandId, outcome);
    if (this.outcomes.size > this.capacity) {
      const oldest = this.outcomes.keys().next();
      if (!oldest.done) this.outcomes.delete(oldest.value);
    }
  }

  /**
   * The outcome of a command applied ahead. Kept after it is asked: a delivery whose completion
   * did not reach Redis comes again, and is answered the same way.
   */
  outcomeOf(commandId: string): Outcome | undefined {
    return this.outcomes.get(commandId);
  }

  get size(): number {
    return this.outcomes.size;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
