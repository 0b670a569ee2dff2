import type { Queue } from 'bullmq';
import { type Piped, pipelined } from '../queue/cluster.js';
import { laneQueues } from '../queue/lanes.js';
import { ParkedCommands } from '../queue/parked.js';
import type { RedisClient } from '../queue/redis.js';
import type { ServiceMetrics } from './registry.js';

/** BullMQ's job states, summed into the states an operator reads. */
const STATES = {
  waiting: ['waiting', 'prioritized'],
  active: ['active'],
  delayed: ['delayed'],
  failed: ['failed'],
} as const;

/**
 * Queue depth by state over every lane, read when Prometheus scrapes: one getJobCounts script
 * per lane, all sent at once on the shared connection, so a scrape costs one round trip
 * whatever the lane count. `failed` is the dead letters. Counts are jobs: a bulk chunk is
 * one job however many commands it carries. While Redis is away the series are left out
 * rather than reported as zero.
 */
export function watchQueueDepth(metrics: ServiceMetrics, redis: RedisClient, prefix: string, lanes: number): () => Promise<void> {
  const queues = laneQueues(redis, prefix, lanes);
  const types = Object.values(STATES).flat();
  metrics.scrapedGauge(
    'replyqueue_queue_jobs',
    'Jobs in the lanes by state, summed over all lanes (failed = dead letters); a bulk chunk counts as one job.',
    ['state'],
    async (gauge) => {
      gauge.reset();
      const counts = await Promise.all(queues.map((queue) => queue.getJobCounts(...types))).catch(() => null);
      if (!counts) return;
      for (const [state, parts] of Object.entries(STATES)) {
        let total = 0;
        for (const lane of counts) for (const part of parts) total += lane[part] ?? 0;
        gauge.set({ state }, total);
      }
    },
    // Every process reads the same Redis: the service's value is any one of them.
    'max',
  );
  metrics.scrapedGauge(
    'replyqueue_lane_oldest_waiting_seconds',
    'Per lane, how long the oldest command not applied yet (waiting, or being applied or retried) has been queued, in seconds; 0 for an empty lane.',
    ['lane'],
    async (gauge) => {
      gauge.reset();
      const ages = await oldestPerLane(redis, queues, Date.now()).catch(() => null);
      if (!ages) return;
      for (const [lane, seconds] of ages) gauge.set({ lane }, seconds);
    },
    // Every process reads the same Redis: the service's value is any one of them.
    'max',
  );
  const parked = new ParkedCommands(redis, prefix, lanes);
  metrics.scrapedGauge(
    'replyqueue_parked_commands',
    'Commands waiting behind a ticket row another session holds locked (tickets: how many such tickets).',
    ['kind'],
    async (gauge) => {
      gauge.reset();
      const counts = await parked.counts().catch(() => null);
      if (!counts) return;
      gauge.set({ kind: 'commands' }, counts.commands);
      gauge.set({ kind: 'tickets' }, counts.tickets);
    },
    // Every process reads the same Redis: the service's value is any one of them.
    'max',
  );
  return async () => {
    await Promise.all(queues.map((queue) => queue.close()));
  };
}

/**
 * Each lane's oldest job not finished, by the time it was queued: the older of the job being
 * applied (BullMQ moves it from the tail of the wait list to the active list) and the one at the
 * tail of the wait list, the next to be taken. Two pipelined round trips whatever the lane count
 * (on a cluster, each a pipeline per node, sent at once): the ids, then their `timestamp` fields;
 * no job data is read, however many commands a chunk carries.
 */
async function oldestPerLane(redis: RedisClient, queues: Queue[], now: number): Promise<Map<string, number>> {
  const ids = answers(
    await pipelined(
      redis,
      queues.flatMap((queue) =>
        ['active', 'wait'].map((list): Piped => {
          const key = queue.toKey(list);
          return { key, queue: (pipeline) => pipeline.lindex(key, -1) };
        }),
      ),
    ),
  );
  const stamps: Piped[] = [];
  const asked: string[] = [];
  for (const [i, queue] of queues.entries()) {
    for (const id of [ids[2 * i], ids[2 * i + 1]]) {
      if (typeof id !== 'string') continue;
      const key = queue.toKey(id);
      stamps.push({ key, queue: (pipeline) => pipeline.hget(key, 'timestamp') });
      asked.push(queue.name);
    }
  }
  const times = answers(await pipelined(redis, stamps));
  const ages = new Map<string, number>(queues.map((queue) => [queue.name, 0]));
  for (const [i, lane] of asked.entries()) {
    const queuedAt = Number(times[i]);
    if (Number.isFinite(queuedAt) && queuedAt > 0) ages.set(lane, Math.max(ages.get(lane) ?? 0, (now - queuedAt) / 1000));
  }
  return ages;
}

/** A pipeline's replies, or the first error it met. */
function answers(results: Array<[Error | null, unknown]>): unknown[] {
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
