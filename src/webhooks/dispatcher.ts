// The dispatcher: runs in every worker process (WEBHOOK_DISPATCHER), claims due deliveries from
// the outbox (src/webhooks/deliveries.ts), posts them signed, and records what the receiver
// answered. It never touches the apply path: the apply transaction only writes outbox rows and
// wakes it. A failed attempt is tried again after an exponential backoff with jitter until
// WEBHOOK_RETRY_SECONDS have passed since the event (or its replay); then it is marked failed.
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import { classify } from '../apply/classify.js';
import type { MysqlAvailability } from '../db/availability.js';
import { withinDeadline } from '../db/pool.js';
import type { ServiceTables } from '../db/tables.js';
import { TransientDbError } from '../errors.js';
import type { ImportTraffic } from '../queue/imports.js';
import { isRedisConnectionError } from '../queue/redis.js';
import { anyDue, type ClaimedDelivery, claimDue, markAttemptFailed, markDelivered, purgeDeliveries } from './deliveries.js';
import { announceFinishedImports } from './importFinished.js';
import { openSecret, SecretUnreadable } from './secrets.js';
import { postWebhook, type SendResult } from './send.js';
import { signatureHeader } from './signature.js';
import type { WebhookSubscriptions } from './subscriptions.js';

export interface DispatcherOptions {
  /** Deliveries in flight at once. */
  concurrency: number;
  timeoutMs: number;
  backoffMs: number;
  maxBackoffMs: number;
  retryForMs: number;
  allowPrivate: boolean;
  /** WEBHOOK_SECRET_KEY, to open sealed secrets. */
  secretKey: Buffer | undefined;
  /** The server takes FOR UPDATE SKIP LOCKED. */
  skipLocked: boolean;
  /** How often to look for due deliveries when nothing wakes it sooner. */
  pollMs: number;
  /** Delivered and failed deliveries are deleted this long after they finished. */
  retentionDays: number;
  /** Where import progress is kept, for import.finished (src/queue/imports.ts). */
  imports?: ImportTraffic;
  logger: Logger;
  /**
   * The process's judge of MySQL outages: while one is under way the dispatcher waits (the
   * outage is logged once, there), and an outage-class error of its own is reported to it.
   */
  availability?: Pick<MysqlAvailability, 'down' | 'notice'>;
  /** Told of each attempt's outcome (metrics). */
  onAttempt?: (outcome: 'delivered' | 'retrying' | 'failed') => void;
}

/** Exponential backoff with jitter: attempt n waits between half and all of base·2^(n-1), capped. */
export function retryDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

const IMPORT_CHECK_MS = 2_000;
const HOUR_MS = 3_600_000;
const ERROR_LOG_EVERY_MS = 60_000;

export class WebhookDispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private nudged = false;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private lastImportCheck = 0;
  private lastPurge = 0;
  private lastErrorLog = 0;
  private readonly announced = new Set<string>();
  private unsubscribe: () => void = () => {};
  /** A claimed delivery's lease: past it another dispatcher may send it again (this one is presumed dead). */
  private readonly leaseMs: number;

  constructor(
    private readonly pool: Pool,
    private readonly tables: ServiceTables,
    private readonly subscriptions: WebhookSubscriptions,
    private readonly options: DispatcherOptions,
  ) {
    this.leaseMs = 2 * options.timeoutMs + 5_000;
  }

  start(): void {
    this.unsubscribe = this.subscriptions.onEventsWritten(() => this.nudge());
    this.running = this.run();
  }

  /** Stops claiming; waits up to `graceMs` for deliveries in flight (an unfinished one is sent again after its lease). */
  async stop(graceMs = this.options.timeoutMs): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.nudge();
    await this.running;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  private pause(ms: number): Promise<void> {
    if (this.nudged || this.stopped) {
      this.nudged = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = null;
        self.nudged = false;
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let more = false;
      try {
        more = await this.tick();
      } catch (error) {
        this.logTrouble(error as Error, 'webhook dispatcher could not read the outbox; it keeps trying');
      }
      if (!more) await this.pause(this.options.pollMs);
    }
  }

  /** One look: housekeeping when due, then claim what fits. True when there may be more to claim now. */
  private async tick(): Promise<boolean> {
    if (this.options.availability?.down) return false;
    const index = await this.subscriptions.current();
    if (index.empty) return false;
    const now = Date.now();
    if (now - this.lastPurge > HOUR_MS) {
      this.lastPurge = now;
      const cutoff = now - this.options.retentionDays * 86_400_000;
      void purgeDeliveries(this.pool, this.tables, cutoff).catch((error: Error) =>
        this.options.logger.warn({ err: error.message }, 'could not purge old webhook deliveries'),
      );
    }
    if (this.options.imports && index.hears('import.finished') && now - this.lastImportCheck > IMPORT_CHECK_MS) {
      this.lastImportCheck = now;
      await announceFinishedImports({
        pool: this.pool,
        tables: this.tables,
        traffic: this.options.imports,
        index,
        announced: this.announced,
      });
    }
    const free = this.options.concurrency - this.inFlight.size;
    if (free <= 0 || this.stopped) return false;
    if (!(await anyDue(this.pool, this.tables))) return false;
    const claimed = await withinDeadline(
      this.pool,
      this.options.timeoutMs,
      (conn) => claimDue(conn, this.tables, { limit: free, leaseMs: this.leaseMs, skipLocked: this.options.skipLocked }),
      () => new TransientDbError('MySQL did not answer the webhook claim in time', 'QUERY_DEADLINE'),
    );
    for (const delivery of claimed) {
      const sending: Promise<void> = this.deliver(delivery).finally(() => {
        this.inFlight.delete(sending);
        this.nudge();
      });
      this.inFlight.add(sending);
    }
    return claimed.length === free;
  }

  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const { logger } = this.options;
    const result = await this.send(delivery);
    try {
      if (result.ok) {
        await markDelivered(this.pool, this.tables, delivery.deliveryId, result.status);
        this.options.onAttempt?.('delivered');
        logger.debug(
          { eventId: delivery.eventId, webhookId: delivery.webhookId, status: result.status, ms: result.ms },
          'webhook delivered',
        );
        return;
      }
      const retryInMs = retryDelay(delivery.attempt, this.options.backoffMs, this.options.maxBackoffMs);
      const giveUp = delivery.windowAgeMs + result.ms + retryInMs > this.options.retryForMs;
      await markAttemptFailed(this.pool, this.tables, delivery, {
        status: result.status,
        error: result.error,
        retryInMs,
        giveUp,
      });
      this.options.onAttempt?.(giveUp ? 'failed' : 'retrying');
      const fields = { eventId: delivery.eventId, webhookId: delivery.webhookId, attempt: delivery.attempt, err: result.error };
      if (giveUp) {
        logger.warn(fields, 'webhook delivery failed for good; replay it with `npm run cli -- webhooks replay <event id>`');
      } else logger.info({ ...fields, retryInMs }, 'webhook delivery failed; it will be retried');
    } catch (error) {
      // Its lease runs out and it is sent again: at least once.
      this.logTrouble(error as Error, 'could not record a webhook delivery; it will be sent again');
    }
  }

  private async send(delivery: ClaimedDelivery): Promise<SendResult> {
    let secret: string;
    try {
      secret = openSecret(delivery.secret, this.options.secretKey);
    } catch (error) {
      if (!(error instanceof SecretUnreadable)) throw error;
      return { ok: false, status: null, error: error.message, ms: 0 };
    }
    const headers = {
      'Webhook-Id': delivery.eventId,
      'Webhook-Event': delivery.eventType,
      'Webhook-Attempt': String(delivery.attempt),
      'Webhook-Signature': signatureHeader(secret, delivery.payload, Math.floor(Date.now() / 1000)),
    };
    return postWebhook(delivery.url, delivery.payload, headers, {
      timeoutMs: this.options.timeoutMs,
      allowPrivate: this.options.allowPrivate,
    });
  }

  /**
   * A failure to read or write the outbox: MySQL or Redis being away is said once for the whole
   * process elsewhere (and MySQL's is reported to its judge), anything else is a warning at most
   * once a minute.
   */
  private logTrouble(error: Error, message: string): void {
    if (classify(error).kind === 'outage' || isRedisConnectionError(error)) {
      if (classify(error).kind === 'outage') this.options.availability?.notice(error);
      this.options.logger.debug({ err: error.message }, message);
      return;
    }
    const now = Date.now();
    if (now - this.lastErrorLog > ERROR_LOG_EVERY_MS) {
      this.lastErrorLog = now;
      this.options.logger.warn({ err: error.message }, message);
    } else this.options.logger.debug({ err: error.message }, message);
  }
}
