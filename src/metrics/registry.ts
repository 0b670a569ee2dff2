import { type Aggregator, Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Outcome } from '../apply/ledger.js';
import { TransientDbError } from '../errors.js';

/** Where a command came in: create.php, bulk.php, or ITFlow's own ticket_replies/create.php or tickets/resolve.php path. */
export type Endpoint = 'create' | 'bulk' | 'itflow_create' | 'itflow_resolve';

const ENDPOINTS: readonly Endpoint[] = ['create', 'bulk', 'itflow_create', 'itflow_resolve'];

/**
 * The label values a counter is shown with from the start, at 0, so a fresh process's /metrics
 * lists every series and `rate()` / `increase()` see the first one counted. Failures: the HTTP
 * statuses the worker's checks answer (src/itflow/ticketRules.ts, apiKeys.ts, people.ts, and
 * ITFlow's tables refusing a value), and dead letters. Retries: the contention errors of
 * src/apply/classify.ts by mysql2's code, and `other`; a rarer code still gets its own series.
 */
const FAILURE_REASONS = ['400', '401', '403', '404', '409', 'dead_letter'];
const RETRY_REASONS = [
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_QUERY_INTERRUPTED',
  'ER_LOCK_TABLE_FULL',
  'ER_DUP_ENTRY',
  'other',
];
const BATCH_RESULTS = ['committed', 'rolled_back'];

/** What an accept path needs: a counter it bumps once per command it queued. */
export interface AcceptedCounter {
  inc(count?: number): void;
}

/**
 * One process's metrics, in a registry of its own (never prom-client's global one), so several
 * services started in one process — as the tests do — each count only their own work. The hot
 * path only bumps counters and histograms; everything that needs Redis or MySQL (queue depth,
 * pool use) is read when Prometheus scrapes, by the collectors in this folder.
 */
export class ServiceMetrics {
  readonly registry = new Registry();

  private readonly accepted = new Counter({
    name: 'replyqueue_commands_accepted_total',
    help: 'Commands accepted and queued by the intake, by endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  private readonly applied = new Counter({
    name: 'replyqueue_commands_applied_total',
    help: 'Commands whose effects a worker committed (re-deliveries of finished commands not counted).',
    registers: [this.registry],
  });

  private readonly failed = new Counter({
    name: 'replyqueue_commands_failed_total',
    help: 'Commands that failed for good: reason is the HTTP status a synchronous call would have got, or dead_letter.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly retried = new Counter({
    name: 'replyqueue_commands_retried_total',
    help: 'Commands whose apply met an error and was scheduled to be retried, by MySQL error code.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly parked = new Counter({
    name: 'replyqueue_commands_parked_total',
    help: 'Commands set aside behind a ticket row another session held locked (or queued behind such), so their lane went on.',
    registers: [this.registry],
  });

  private readonly notReplicated = new Counter({
    name: 'replyqueue_commands_not_replicated_total',
    help: 'Requests answered 503 because Redis could not confirm their command on REDIS_MIN_REPLICAS_ACK replicas in time.',
    registers: [this.registry],
  });

  private readonly repeated = new Counter({
    name: 'replyqueue_commands_already_finished_total',
    help: 'Deliveries of commands the ledger had already finished (re-delivery, replay, idempotency twin): nothing written.',
    registers: [this.registry],
  });

  private readonly applySeconds = new Histogram({
    name: 'replyqueue_apply_batch_seconds',
    help: 'Time of one apply transaction (a batch of commands), from taking a connection to commit or rollback.',
    labelNames: ['result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly lagSeconds = new Histogram({
    name: 'replyqueue_command_lag_seconds',
    help: 'Time from the intake accepting a command to a worker having applied it.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  });

  private readonly batchSize = new Histogram({
    name: 'replyqueue_apply_batch_commands',
    help: 'Commands folded into one apply transaction.',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [this.registry],
  });

  private readonly httpSeconds = new Histogram({
    name: 'replyqueue_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern (unmatched paths as one "(unmatched)" route) and status code, and how long they took to answer.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly listings = new Counter({
    name: 'replyqueue_read_listings_total',
    help: "read.php listings by what answered them: the read projection, or ITFlow's tables (reason: reply_id, condition, off, lag, stale).",
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });

  private readonly projectionRepairs = new Counter({
    name: 'replyqueue_read_projection_repairs_total',
    help: "Read projection rows brought in line with ITFlow's tables (added, changed, removed; tickets_moved: tickets whose rows followed a new client).",
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const kind of ['added', 'changed', 'removed', 'tickets_moved']) this.projectionRepairs.inc({ kind }, 0);
    for (const endpoint of ENDPOINTS) this.accepted.inc({ endpoint }, 0);
    for (const reason of FAILURE_REASONS) this.failed.inc({ reason }, 0);
    for (const reason of RETRY_REASONS) this.retried.inc({ reason }, 0);
    for (const result of BATCH_RESULTS) this.applySeconds.zero({ result });
  }

  /** The counter an accept path bumps, already labelled with its endpoint. */
  acceptedVia(endpoint: Endpoint): AcceptedCounter {
    return this.accepted.labels(endpoint);
  }

  /** A command's outcome as the worker reports it; lag only for commands applied now. */
  commandFinished(outcome: Outcome, lagMs: number): void {
    if (outcome.repeat) this.repeated.inc();
    else if (outcome.status === 'applied') {
      this.applied.inc();
      this.lagSeconds.observe(lagMs / 1000);
    } else this.failed.inc({ reason: String(outcome.failure.status) });
  }

  commandsRetried(error: Error, count: number): void {
    this.retried.inc({ reason: error instanceof TransientDbError ? error.code : 'other' }, count);
  }

  /** Requests refused because their command was not confirmed on enough Redis replicas. */
  commandsNotReplicated(count: number): void {
    this.notReplicated.inc(count);
  }

  commandsParked(count: number): void {
    this.parked.inc(count);
  }

  /** Commands left in a job that exhausted its attempts and became a dead letter. */
  commandsDeadLettered(count: number): void {
    this.failed.inc({ reason: 'dead_letter' }, count);
  }

  batchStarted(size: number): void {
    this.batchSize.observe(size);
  }

  transactionFinished(seconds: number, committed: boolean): void {
    this.applySeconds.observe({ result: committed ? 'committed' : 'rolled_back' }, seconds);
  }

  /** A read.php listing answered from the projection, or from ITFlow's tables and why. */
  listingServed(source: string, reason: string | undefined): void {
    this.listings.inc({ source, reason: reason ?? '' });
  }

  projectionRepaired(changes: { added: number; changed: number; removed: number }, ticketsMoved = 0): void {
    for (const [kind, count] of Object.entries({ ...changes, tickets_moved: ticketsMoved })) {
      if (count > 0) this.projectionRepairs.inc({ kind }, count);
    }
  }

  /** One HTTP request answered: `route` is the matched pattern, never the URL. */
  httpRequestFinished(method: string, route: string, statusCode: number, seconds: number): void {
    this.httpSeconds.observe({ method, route, status_code: String(statusCode) }, seconds);
  }

  /** A gauge whose value is read at scrape time, registered in this process's registry. */
  scrapedGauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (gauge: Gauge<L>) => Promise<void> | void,
    /**
     * How `npm start`'s processes' values combine into the one /metrics answers (src/supervisor.ts):
     * `sum` for what each process has (pools), `max` for what every process reads from the same
     * place (queue depths in Redis), `min` for "is it up" gauges.
     */
    aggregator: Aggregator = 'sum',
  ): Gauge<L> {
    return new Gauge({
      name,
      help,
      labelNames,
      aggregator,
      registers: [this.registry],
      collect() {
        return collect(this);
      },
    });
  }

  /**
   * The Prometheus text exposition (format 0.0.4) and its content type. prom-client writes a
   * missing value (the event-loop lag of two scrapes close together) as `Nan`; the format
   * spells it `NaN`, which stricter parsers than Prometheus's own insist on.
   */
  async exposition(): Promise<{ contentType: string; text: string }> {
    const gathered = await this.gather?.();
    const text = gathered?.text ?? (await this.registry.metrics());
    return { contentType: gathered?.contentType ?? this.registry.contentType, text: text.replace(/ Nan$/gm, ' NaN') };
  }

  private gather?: () => Promise<{ contentType: string; text: string } | null>;

  /**
   * Under `npm start`'s supervisor, /metrics answers for every process of the service: `gather`
   * asks the supervisor for all of them, added up (null: no answer in time, so this process's own).
   */
  gatherFrom(gather: () => Promise<{ contentType: string; text: string } | null>): void {
    this.gather = gather;
  }
}
