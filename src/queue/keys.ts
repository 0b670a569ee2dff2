// Every Redis key and channel the service names itself, in one place (BullMQ names its own keys
// under `<prefix>:<lane>:`; `laneJob` spells one of those the way BullMQ's QueueKeys.toKey does).
// All live under QUEUE_PREFIX, so several installs can share one Redis and a test or the demo
// can delete exactly its own.
//
// On a Redis Cluster (REDIS_CLUSTER_NODES) a script or a transaction may only touch keys of one
// hash slot, so there the keys that go together share a hash tag: a lane's queue name is its own
// tag (`{replies-007}`, see laneName in lanes.ts), which puts all of the lane's BullMQ keys in one slot and spreads the
// lanes over the shards; the lane's parked commands and pending notes carry the same tag, and the
// import records share `{imports}`. On one server (standalone or Sentinel) nothing is tagged:
// the names are exactly those every earlier version used, so an upgrade finds its queued jobs.
import { createHash } from 'node:crypto';

/** How keys are named: as always on one server, or hash-tagged for a Redis Cluster. */
export type KeyLayout = 'standalone' | 'cluster';

export function redisKeys(prefix: string, layout: KeyLayout) {
  const own = `${prefix}:replyqueue`;
  /** Where a lane's own keys go: on one server beside the rest; in a cluster, under the lane's name, its hash tag. */
  const ofLane = (lane: string) => (layout === 'cluster' ? `${own}:${lane}` : own);
  const ofImports = layout === 'cluster' ? `${own}:{imports}` : own;
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
     * One key's accepted commands for one ticket (of `lane`) not yet known to be applied: a sorted
     * set of command ids by acceptance time (ms), for read.php's include_pending (src/queue/pending.ts).
     */
    pending: (lane: string, apiKeyId: number, ticketId: number) => `${ofLane(lane)}:pending:${apiKeyId}:${ticketId}`,
    /** Failed-authentication log rows written for an IP in a minute. */
    authFailures: (ip: string, minute: number) => `${own}:authfail:${ip}:${minute}`,
    /** Namespace of @fastify/rate-limit's counters. */
    rateLimits: `${own}:ratelimit:`,
    /**
     * Tickets (of `lane`) whose commands wait for a row lock held elsewhere: ticket id → next try
     * (ms), a sorted set. On one server one set holds every lane's; in a cluster each lane has its own.
     */
    parkedTickets: (lane: string) => `${ofLane(lane)}:parked`,
    /** One parked ticket's commands, in acceptance order (a list of CommandJob JSON). */
    parkedCommands: (lane: string, ticketId: number) => `${ofLane(lane)}:parked:${ticketId}`,
    /** Which ticket a parked command (of `lane`) waits with: command id → ticket id, a hash. */
    parkedIndex: (lane: string) => `${ofLane(lane)}:parked-index`,
    /** A worker's lease on draining one parked ticket. */
    parkedLease: (ticketId: number) => `${own}:parked-lease:${ticketId}`,
    /** One import's bulk.php traffic, as the import CLI names it (src/queue/imports.ts): a hash of counters. */
    importTraffic: (apiKeyId: number, importId: string) => `${ofImports}:import:${apiKeyId}:${importId}`,
    /** Imports by their latest request (ms): a sorted set of "<api key id>:<import id>". */
    imports: `${ofImports}:imports`,
    /** Written just before a WAIT, so the WAIT covers every write the primary has taken (src/queue/replication.ts). */
    replicationMark: `${own}:replication-mark`,
    /** A BullMQ job's hash in a lane. */
    laneJob: (lane: string, jobId: string) => `${prefix}:${lane}:${jobId}`,
    /** A lane's list of waiting job ids (BullMQ's; pushed on the left, taken from the right). */
    laneWait: (lane: string) => `${prefix}:${lane}:wait`,
    /** What precedes a job id in its hash's key, in a lane (for a script that reads job hashes). */
    laneJobPrefix: (lane: string) => `${prefix}:${lane}:`,
  };
}
