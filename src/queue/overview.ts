// What is waiting in the lanes, for an operator (`npm run cli -- queues`, the dashboard) — totals
// by state, the lanes with the deepest backlog, how long the oldest waiting command has waited,
// and the dead letters.
// Read-only (nothing is written to Redis, not even BullMQ's queue meta), and cheap: one
// getJobCounts script per lane (all in flight at once), the head job of each non-empty lane,
// and — below KINDS_LIMIT jobs — the ids of the jobs not yet applied.
import type { Job, Queue } from 'bullmq';
import { type ChunkJob, commandsIn } from './chunks.js';
import { keyLayoutOf, type Piped, pipelined } from './cluster.js';
import type { CommandJob } from './jobs.js';
import { redisKeys } from './keys.js';
import { laneQueues } from './lanes.js';
import { ParkedCommands } from './parked.js';
import { CHUNK_NAME } from './producer.js';
import type { RedisClient } from './redis.js';

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;
type State = (typeof STATES)[number];

/** Above this many jobs in the backlog, single-command jobs and chunks are not told apart. */
export const KINDS_LIMIT = 100_000;

export interface LaneView {
  lane: string;
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  /** Dead letters. */
  failed: number;
  /** Jobs not applied yet: waiting, active, delayed and prioritized. */
  backlog: number;
  paused: boolean;
  /** When the command at the head of the lane was accepted (ISO 8601), or null. */
  oldestWaitingAt: string | null;
}

export interface QueuesView {
  prefix: string;
  lanes: number;
  /** The lane count the service recorded in Redis under this prefix; null if none ever ran. */
  recordedLanes: number | null;
  at: string;
  /** Jobs by state over every lane; a chunk (chunks.ts) is one job however many commands it carries. */
  totals: Record<State, number>;
  backlog: number;
  /**
   * The backlog's jobs by kind: one command each, or a chunk of one lane's commands; null above
   * KINDS_LIMIT jobs. How many commands the chunks hold is not counted: that means reading them all.
   */
  kinds: { single: number; chunks: number } | null;
  deadLetters: number;
  /** Commands set aside behind ticket rows another session holds, and how many tickets. */
  parked: { tickets: number; commands: number };
  pausedLanes: string[];
  oldestWaiting: { commandId: string; lane: string; acceptedAt: string; ageSeconds: number } | null;
  /** Lanes by backlog, deepest first: the top ones that hold anything, or every lane. */
  deepest: LaneView[];
}

export async function readQueues(
  redis: RedisClient,
  prefix: string,
  lanes: number,
  { top = 10, now = Date.now() }: { top?: number | 'all'; now?: number } = {},
): Promise<QueuesView> {
  const queues = laneQueues(redis, prefix, lanes, { readOnly: true });
  try {
    const recorded = await redis.get(redisKeys(prefix, keyLayoutOf(redis)).lanes);
    const parked = await new ParkedCommands(redis, prefix, lanes).counts();
    const views = await Promise.all(queues.map((queue) => readLane(queue)));
    const totals = Object.fromEntries(STATES.map((s) => [s, views.reduce((sum, v) => sum + v.view[s], 0)])) as Record<
      State,
      number
    >;
    const backlog = totals.waiting + totals.active + totals.delayed + totals.prioritized;
    const oldest = views
      .filter((v) => v.oldest !== null)
      .sort((a, b) => (a.oldest?.acceptedAt ?? 0) - (b.oldest?.acceptedAt ?? 0))[0];
    const deepest = views
      .map((v) => v.view)
      .filter((v) => top === 'all' || v.backlog > 0 || v.failed > 0 || v.paused)
      .sort((a, b) => b.backlog - a.backlog || b.failed - a.failed || a.lane.localeCompare(b.lane));
    return {
      prefix,
      lanes,
      recordedLanes: recorded === null ? null : Number(recorded),
      at: new Date(now).toISOString(),
      totals,
      backlog,
      kinds: backlog > KINDS_LIMIT ? null : await countKinds(redis, prefix, queues),
      deadLetters: totals.failed,
      parked,
      pausedLanes: views.filter((v) => v.view.paused).map((v) => v.view.lane),
      oldestWaiting: oldest?.oldest
        ? {
            commandId: oldest.oldest.commandId,
            lane: oldest.view.lane,
            acceptedAt: new Date(oldest.oldest.acceptedAt).toISOString(),
            ageSeconds: Math.max(0, Math.floor((now - oldest.oldest.acceptedAt) / 1000)),
          }
        : null,
      deepest: top === 'all' ? deepest : deepest.slice(0, top),
    };
  } finally {
    await Promise.all(queues.map((queue) => queue.close()));
  }
}

async function readLane(queue: Queue): Promise<{ view: LaneView; oldest: { commandId: string; acceptedAt: number } | null }> {
  const [counts, paused] = await Promise.all([queue.getJobCounts(...STATES), queue.isPaused()]);
  const count = (state: State) => counts[state] ?? 0;
  // getWaiting reads the wait list oldest first: the head of the lane, the next to be applied.
  const [head] = count('waiting') > 0 ? ((await queue.getWaiting(0, 0)) as Job<CommandJob | ChunkJob>[]) : [];
  const oldest = head ? firstCommandOf(head) : null;
  return {
    view: {
      lane: queue.name,
      waiting: count('waiting'),
      active: count('active'),
      delayed: count('delayed'),
      prioritized: count('prioritized'),
      failed: count('failed'),
      backlog: count('waiting') + count('active') + count('delayed') + count('prioritized'),
      paused,
      oldestWaitingAt: oldest ? new Date(oldest.acceptedAt).toISOString() : null,
    },
    oldest,
  };
}

/** The first command a job carries (a chunk's are in acceptance order), with when it was accepted. */
function firstCommandOf(job: Job<CommandJob | ChunkJob>): { commandId: string; acceptedAt: number } {
  const [command] = commandsIn(job);
  return {
    commandId: command?.commandId ?? String(job.id),
    acceptedAt: command?.acceptedAt ?? job.timestamp,
  };
}

/**
 * Single-command jobs vs chunks among the jobs not yet applied. A chunk's id ends in 000 (see
 * chunks.ts); so does one single command id in 4096, so only those jobs' names are read.
 */
async function countKinds(redis: RedisClient, prefix: string, queues: Queue[]): Promise<{ single: number; chunks: number }> {
  const ids = await Promise.all(
    queues.map(async (queue) => ({
      lane: queue.name,
      ids: await queue.getRanges(['waiting', 'active', 'delayed', 'prioritized'], 0, -1),
    })),
  );
  const keys = redisKeys(prefix, keyLayoutOf(redis));
  const candidates = ids.flatMap(({ lane, ids }) =>
    ids
      .filter((id) => id.endsWith('000'))
      .map((id): Piped => {
        const key = keys.laneJob(lane, id);
        return { key, queue: (pipeline) => pipeline.hget(key, 'name') };
      }),
  );
  const names = await pipelined(redis, candidates);
  const chunks = names.filter(([error, name]) => !error && name === CHUNK_NAME).length;
  const jobs = ids.reduce((sum, lane) => sum + lane.ids.length, 0);
  return { single: jobs - chunks, chunks };
}
