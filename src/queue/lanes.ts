import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * Per-ticket order on BullMQ open source, which has no per-key groups:
 *
 * Tickets are spread over QUEUE_PARTITIONS lanes (ticket_id mod N). Each lane is a BullMQ
 * queue with a global concurrency of 1, so across every worker process at most one command
 * per lane is being applied at any moment, and a lane's commands are taken in the order they
 * were accepted (FIFO). All of a ticket's commands share a lane, so they take effect in
 * acceptance order; different lanes, and so different tickets, proceed in parallel.
 *
 * Transient failures are retried inside the job (the lane waits), because handing a job
 * back to BullMQ's delayed set would let the lane's next command overtake it. A crashed
 * worker's job stays "active" until BullMQ notices the stall and puts it back at the head
 * of its lane, so a crash delays a lane but never reorders it.
 */
export function laneOf(ticketId: number, lanes: number): number {
  return ticketId % lanes;
}

export function laneName(lane: number): string {
  return `replies-${String(lane).padStart(3, '0')}`;
}

export function laneNames(lanes: number): string[] {
  return Array.from({ length: lanes }, (_, lane) => laneName(lane));
}

/** Thrown when QUEUE_PARTITIONS differs from the lane count the queue in Redis was built with. */
export class LaneCountMismatch extends Error {}

/**
 * Records the lane count in Redis and sets every lane's global concurrency to 1. Idempotent;
 * run at start-up and after every reconnect, since a Redis restart without persistence
 * forgets queue settings.
 */
export async function prepareLanes(redis: Redis, prefix: string, lanes: number): Promise<void> {
  const key = `${prefix}:replyqueue:lanes`;
  await redis.set(key, String(lanes), 'NX');
  const recorded = Number(await redis.get(key));
  if (recorded !== lanes) {
    throw new LaneCountMismatch(
      `QUEUE_PARTITIONS is ${lanes}, but the queues under prefix '${prefix}' in Redis use ${recorded} lanes. ` +
        `Set QUEUE_PARTITIONS=${recorded}, or drain the queues and delete the key ${key} to change it.`,
    );
  }
  await Promise.all(
    laneNames(lanes).map(async (name) => {
      const queue = new Queue(name, { connection: redis, prefix }).on('error', () => {});
      try {
        await queue.setGlobalConcurrency(1);
      } finally {
        await queue.close();
      }
    }),
  );
}
