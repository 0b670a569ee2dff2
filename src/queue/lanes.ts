// Per-ticket order on BullMQ open source, which has no per-key groups:
//
// Tickets are spread over QUEUE_PARTITIONS lanes (ticket_id mod N). Each lane is a BullMQ
// queue with a global concurrency of 1, so across every worker process at most one command
// job per lane is being applied at any moment, and a lane's commands are taken in the order they
// were accepted (FIFO). All of a ticket's commands share a lane, so they take effect in
// acceptance order; different lanes, and so different tickets, proceed in parallel.
//
// Transient failures are retried inside the job (the lane waits), because handing a job
// back to BullMQ's delayed set would let the lane's next command overtake it. The one wait a
// lane does not share is a ticket row another session holds: that ticket's commands are parked
// (parked.ts) and its later ones queue up behind them, while the lane goes on with its other
// tickets. A crashed worker's job stays "active" until BullMQ notices the stall and puts it
// back at the head of its lane, so a crash delays a lane but never reorders it.
import { type Job, Queue } from 'bullmq';
import { type ChunkJob, chunkIdOf } from './chunks.js';
import { keyLayoutOf, type Piped, pipelined } from './cluster.js';
import type { CommandJob } from './jobs.js';
import { type KeyLayout, redisKeys } from './keys.js';
import type { RedisClient } from './redis.js';

export function laneOf(ticketId: number, lanes: number): number {
  return ticketId % lanes;
}

/**
 * A lane's queue name. On a Redis Cluster the name is its own hash tag (`{replies-007}`): every
 * key BullMQ makes for the lane lands in one slot, as its scripts need, and the lanes spread over
 * the shards by their names' slots.
 */
export function laneName(lane: number, layout: KeyLayout): string {
  const name = `replies-${String(lane).padStart(3, '0')}`;
  return layout === 'cluster' ? `{${name}}` : name;
}

export function laneNames(lanes: number, layout: KeyLayout): string[] {
  return Array.from({ length: lanes }, (_, lane) => laneName(lane, layout));
}

/** The name of the lane a ticket's commands go through. */
export function laneOfTicket(ticketId: number, lanes: number, layout: KeyLayout): string {
  return laneName(laneOf(ticketId, lanes), layout);
}

/**
 * Every lane as a BullMQ Queue on one shared connection. Failures surface on the calls (an add
 * while Redis is away answers 503); without a listener BullMQ would print every reconnection
 * error to stderr. A Queue writes its meta hash into Redis as it is made, unless `readOnly`:
 * what only looks (the CLI's `queues`, dead letters) leaves Redis as it found it, and never
 * makes a queue under a mistyped prefix.
 */
export function laneQueues(redis: RedisClient, prefix: string, lanes: number, { readOnly = false } = {}): Queue[] {
  return laneNames(lanes, keyLayoutOf(redis)).map((name) =>
    new Queue(name, { connection: redis, prefix, skipMetasUpdate: readOnly }).on('error', () => {}),
  );
}

/**
 * The job holding a command while it is in Redis — a job of its own, or its chunk — with its
 * lane; null when neither is there. A job id alone does not name its lane, so one pipeline asks
 * every lane for both ids.
 */
export async function jobHolding(
  redis: RedisClient,
  prefix: string,
  queues: Queue[],
  commandId: string,
): Promise<{ lane: Queue; job: Job<CommandJob | ChunkJob> } | null> {
  const jobIds = [commandId, chunkIdOf(commandId)];
  const keys = redisKeys(prefix, keyLayoutOf(redis));
  const answers = await pipelined(
    redis,
    jobIds.flatMap((jobId) =>
      queues.map((queue): Piped => {
        const key = keys.laneJob(queue.name, jobId);
        return { key, queue: (pipeline) => pipeline.exists(key) };
      }),
    ),
  );
  for (const [j, jobId] of jobIds.entries()) {
    const lane = queues.find((_, q) => {
      const [error, exists] = answers[j * queues.length + q] ?? [];
      return !error && exists === 1;
    });
    const job = lane ? ((await lane.getJob(jobId)) as Job<CommandJob | ChunkJob> | undefined) : undefined;
    if (lane && job) return { lane, job };
  }
  return null;
}

/** Thrown when QUEUE_PARTITIONS differs from the lane count the queue in Redis was built with. */
export class LaneCountMismatch extends Error {}

/**
 * Records the lane count in Redis and sets every lane's global concurrency to 1. Idempotent;
 * run at start-up and after every reconnect, since a Redis restart without persistence
 * forgets queue settings.
 */
export async function prepareLanes(redis: RedisClient, prefix: string, lanes: number): Promise<void> {
  const key = redisKeys(prefix, keyLayoutOf(redis)).lanes;
  await redis.set(key, String(lanes), 'NX');
  const recorded = Number(await redis.get(key));
  if (recorded !== lanes) {
    throw new LaneCountMismatch(
      `QUEUE_PARTITIONS is ${lanes}, but the queues under prefix '${prefix}' in Redis use ${recorded} lanes. ` +
        `Set QUEUE_PARTITIONS=${recorded}, or drain the queues and delete the key ${key} to change it.`,
    );
  }
  const queues = laneQueues(redis, prefix, lanes);
  try {
    await Promise.all(queues.map((queue) => queue.setGlobalConcurrency(1)));
  } finally {
    await Promise.all(queues.map((queue) => queue.close()));
  }
}
