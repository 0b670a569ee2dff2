import type { Redis } from 'ioredis';
import { laneQueues } from '../queue/lanes.js';
import { ParkedCommands } from '../queue/parked.js';
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
export function watchQueueDepth(metrics: ServiceMetrics, redis: Redis, prefix: string, lanes: number): () => Promise<void> {
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
  );
  const parked = new ParkedCommands(redis, prefix);
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
  );
  return async () => {
    await Promise.all(queues.map((queue) => queue.close()));
  };
}
