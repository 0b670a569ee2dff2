// Every Redis key and channel the service names itself, in one place (BullMQ names its own keys
// under `<prefix>:<lane>:`; `laneJob` spells one of those the way BullMQ's QueueKeys.toKey does).
// All live under QUEUE_PREFIX, so several installs can share one Redis and a test or the demo
// can delete exactly its own.
import { createHash } from 'node:crypto';

export function redisKeys(prefix: string) {
  const own = `${prefix}:replyqueue`;
  return {
    /** The lane count the queue was built with (a string number). */
    lanes: `${own}:lanes`,
    /** Pub/sub channel of completion notices (src/queue/completion.ts). */
    completions: `${own}:done`,
    /** An idempotency claim: "<command id> <fingerprint> <claimed at ms>". */
    idempotency: (apiKeyId: number, idempotencyKey: string) =>
      `${own}:idem:${apiKeyId}:${createHash('sha256').update(idempotencyKey).digest('hex')}`,
    /** An external-id claim, as an idempotency claim (src/queue/externalIds.ts). */
    externalId: (apiKeyId: number, externalId: string) =>
      `${own}:ext:${apiKeyId}:${createHash('sha256').update(externalId).digest('hex')}`,
    /**
     * One key's accepted commands for one ticket not yet known to be applied: a sorted set of
     * command ids by acceptance time (ms), for read.php's include_pending (src/queue/pending.ts).
     */
    pending: (apiKeyId: number, ticketId: number) => `${own}:pending:${apiKeyId}:${ticketId}`,
    /** Failed-authentication log rows written for an IP in a minute. */
    authFailures: (ip: string, minute: number) => `${own}:authfail:${ip}:${minute}`,
    /** Namespace of @fastify/rate-limit's counters. */
    rateLimits: `${own}:ratelimit:`,
    /** Tickets whose commands wait for a row lock held elsewhere: ticket id → next try (ms), a sorted set. */
    parkedTickets: `${own}:parked`,
    /** One parked ticket's commands, in acceptance order (a list of CommandJob JSON). */
    parkedCommands: (ticketId: number) => `${own}:parked:${ticketId}`,
    /** Which ticket a parked command waits with: command id → ticket id, a hash. */
    parkedIndex: `${own}:parked-index`,
    /** A worker's lease on draining one parked ticket. */
    parkedLease: (ticketId: number) => `${own}:parked-lease:${ticketId}`,
    /** One import's bulk.php traffic, as the import CLI names it (src/queue/imports.ts): a hash of counters. */
    importTraffic: (apiKeyId: number, importId: string) => `${own}:import:${apiKeyId}:${importId}`,
    /** Imports by their latest request (ms): a sorted set of "<api key id>:<import id>". */
    imports: `${own}:imports`,
    /** A BullMQ job's hash in a lane. */
    laneJob: (lane: string, jobId: string) => `${prefix}:${lane}:${jobId}`,
    /** A lane's list of waiting job ids (BullMQ's; pushed on the left, taken from the right). */
    laneWait: (lane: string) => `${prefix}:${lane}:wait`,
    /** What precedes a job id in its hash's key, in a lane (for a script that reads job hashes). */
    laneJobPrefix: (lane: string) => `${prefix}:${lane}:`,
  };
}
