// REDIS_MIN_REPLICAS_ACK: an accepted command is acknowledged (202/201) only once Redis holds it
// on that many replicas. Redis replicates asynchronously, so without this a primary that dies
// just after taking a command can take it along, and the replica promoted in its place never had
// it — the client holds a 202 for a command that no longer exists.
//
// Redis WAIT numreplicas timeout answers, after at most `timeout` ms, how many replicas have
// acknowledged every write its connection made so far. It blocks its connection meanwhile, so it
// runs on a connection of its own rather than the intake's shared one, where a late replica would
// hold up every other request's Redis calls. A write to a mark key just before it, on that
// connection, makes it cover every write the primary had taken by then — the request's
// idempotency claim and job included, whichever connection sent them. Requests that ask in the
// same turn of the event loop share one mark and one WAIT.
//
// That covers the request's writes only if they and the mark reached the same server with no
// reconnection in between (in a failover the writes could have gone to the old primary and the
// mark to the new one). So reconnections are counted on both connections, and a request whose
// writes' connection reconnected since it began, or that is not on the WAIT's server, is not
// confirmed: it answers 503 and its retry is checked afresh.
import { Redis } from 'ioredis';
import { beforeDeadline } from '../deadline.js';
import { NotReplicated } from '../errors.js';
import type { ServiceMetrics } from '../metrics/registry.js';
import { keyLayoutOf } from './cluster.js';
import { redisKeys } from './keys.js';
import type { RedisClient } from './redis.js';

export interface ReplicationOptions {
  /** Replicas that must acknowledge (REDIS_MIN_REPLICAS_ACK); 0 confirms at once. */
  replicas: number;
  /** Longest a WAIT waits for them (REDIS_MIN_REPLICAS_TIMEOUT_MS). */
  timeoutMs: number;
  /** Told how many requests one WAIT could not confirm (for /metrics). */
  onRefused?: (requests: number) => void;
}

/** Taken before a request's first write: which connection of the intake's the writes went out on. */
export interface WritesBegan {
  connection: number;
}

interface Waiting {
  began: WritesBegan;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** What one WAIT found: how many replicas acknowledged, on which server; null when it could not ask. */
type WaitAnswer = { acknowledged: number; server: string } | null;

/** Extra time past the WAIT's own timeout before a server that does not answer at all is given up on. */
const NO_ANSWER_GRACE_MS = 1_000;

export class ReplicaAcks {
  private readonly markKey: string;
  private writesConnection = 0;
  private waitConnection = 0;
  private waiting: Waiting[] = [];
  private draining = false;

  constructor(
    /** The connection the intake writes claims and jobs on. */
    private readonly writes: RedisClient,
    /** A connection of its own for WAIT, to the same Redis. */
    private readonly waits: RedisClient,
    prefix: string,
    readonly options: ReplicationOptions,
  ) {
    this.markKey = redisKeys(prefix, keyLayoutOf(writes)).replicationMark;
    writes.on('close', () => this.writesConnection++);
    waits.on('close', () => this.waitConnection++);
  }

  /** Before a request's first write to Redis. */
  begin(): WritesBegan {
    return { connection: this.writesConnection };
  }

  /**
   * Resolves once every write the primary has taken, the request's since `began` among them, is
   * on the required number of replicas; rejects with NotReplicated (503) when that cannot be
   * confirmed in time.
   */
  confirm(began: WritesBegan): Promise<void> {
    if (this.options.replicas === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ began, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** WAITs until nobody is waiting: those who asked in one turn share one, later ones the next. */
  private async drain(): Promise<void> {
    this.draining = true;
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      const answer = await this.waitOnce();
      let refused = 0;
      for (const request of batch) {
        if (this.confirmed(answer, request.began)) request.resolve();
        else {
          refused++;
          request.reject(new NotReplicated());
        }
      }
      if (refused > 0) this.options.onRefused?.(refused);
    }
    this.draining = false;
  }

  private confirmed(answer: WaitAnswer, began: WritesBegan): boolean {
    return (
      answer !== null &&
      answer.acknowledged >= this.options.replicas &&
      this.writesConnection === began.connection &&
      serverOf(this.writes) === answer.server
    );
  }

  private async waitOnce(): Promise<WaitAnswer> {
    const connection = this.waitConnection;
    const server = serverOf(this.waits);
    if (server === null) return null;
    try {
      const asked = this.waits.pipeline().incr(this.markKey).wait(this.options.replicas, this.options.timeoutMs).exec();
      const answers = await beforeDeadline(
        asked,
        this.options.timeoutMs + NO_ANSWER_GRACE_MS,
        () => new Error('Redis did not answer WAIT'),
      );
      const [markError] = answers?.[0] ?? [];
      const [waitError, acknowledged] = answers?.[1] ?? [];
      if (markError || waitError || this.waitConnection !== connection) return null;
      return { acknowledged: Number(acknowledged), server };
    } catch {
      return null;
    }
  }
}

/**
 * The server a connection is on (address and port), or null while it has none — and on a Redis
 * Cluster, whose writes spread over shards that one WAIT cannot speak for (the configuration
 * refuses REDIS_MIN_REPLICAS_ACK there).
 */
function serverOf(redis: RedisClient): string | null {
  if (!(redis instanceof Redis)) return null;
  const stream = redis.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  if (redis.status !== 'ready' || !stream?.remoteAddress) return null;
  return `${stream.remoteAddress}:${stream.remotePort}`;
}

/**
 * Replicas connected to the primary and in step with it (state online), from INFO replication;
 * null when Redis does not answer. For /readyz and /metrics.
 */
export async function onlineReplicas(redis: RedisClient): Promise<number | null> {
  const info = await redis.info('replication').catch(() => null);
  if (info === null) return null;
  return info.split(/\r?\n/).filter((line) => /^slave\d+:.*state=online/.test(line)).length;
}

/** /metrics: the replicas online now, read at each scrape, and how many acknowledgements require. */
export function watchReplicas(metrics: ServiceMetrics, redis: RedisClient, required: number): void {
  metrics.scrapedGauge(
    'replyqueue_redis_replicas_online',
    'Replicas connected to the Redis primary and in step with it (INFO replication); left out while Redis does not answer.',
    [],
    async (gauge) => {
      gauge.reset();
      const online = await onlineReplicas(redis);
      if (online !== null) gauge.set(online);
    },
    'max',
  );
  metrics.scrapedGauge(
    'replyqueue_redis_replicas_required',
    'REDIS_MIN_REPLICAS_ACK: replicas that must hold a command before the intake acknowledges it (0: off).',
    [],
    (gauge) => gauge.set(required),
    'max',
  );
}
