import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type ApplyDeps, applyBatch } from '../apply/applyBatch.js';
import { classify } from '../apply/classify.js';
import type { Outcome } from '../apply/ledger.js';
import type { ServiceMetrics } from '../metrics/registry.js';
import { Batcher } from './batcher.js';
import { chunkJobSchema, isChunk } from './chunks.js';
import { type Notice, publishCompletions } from './completion.js';
import { type CommandJob, commandJobSchema, type RetryProgress } from './jobs.js';
import { laneNames } from './lanes.js';

export interface ConsumerOptions {
  prefix: string;
  lanes: number;
  lockMs: number;
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  batch: { maxCommands: number; maxInFlight: number; lingerMs: number };
  logger: Logger;
  metrics: ServiceMetrics;
}

/** Exponential backoff with jitter: attempt n waits between half and all of base·2^(n-1), capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * The worker's side of the queue: one BullMQ Worker per lane, each taking one command at a
 * time (the lane's global concurrency is 1 anyway). A command's transient failures are
 * retried here, inside the job, so its lane waits for it and order holds.
 */
export class CommandConsumer {
  private readonly workers: Worker[];
  private readonly batcher: Batcher;

  constructor(
    blockingRedis: Redis,
    private readonly publisher: Redis,
    deps: ApplyDeps,
    private readonly options: ConsumerOptions,
  ) {
    const { metrics } = options;
    this.batcher = new Batcher(
      async (batch) => {
        const started = performance.now();
        let committed = false;
        try {
          const outcomes = await applyBatch(deps, batch);
          committed = true;
          return outcomes;
        } finally {
          metrics.transactionFinished((performance.now() - started) / 1000, committed);
        }
      },
      options.batch,
      (size) => metrics.batchStarted(size),
    );
    this.workers = laneNames(options.lanes).map(
      (name) =>
        new Worker(name, (job, token, signal) => this.process(job, token, signal), {
          connection: blockingRedis,
          prefix: options.prefix,
          concurrency: 1,
          lockDuration: options.lockMs,
          stalledInterval: options.lockMs,
          maxStalledCount: 5,
          autorun: true,
        }),
    );
    for (const worker of this.workers) {
      worker.on('error', (error) => options.logger.warn({ err: error.message }, 'queue worker error'));
      worker.on('failed', (job, error) => {
        if (job && error.name !== 'WaitingError') {
          options.logger.error({ commandId: job.id, err: error.message }, 'command moved to dead letters');
        }
      });
    }
  }

  private async process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    if (isChunk(job.data)) {
      const parsed = chunkJobSchema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`Job payload not understood: ${parsed.error.message}`);
      // One slice in flight per chunk: a slice retried after a transient error is never
      // overtaken by the chunk's later commands, so order holds within the lane.
      const outcomes: Outcome[] = [];
      for (let start = 0; start < parsed.data.commands.length; start += this.sliceSize) {
        const slice = parsed.data.commands.slice(start, start + this.sliceSize);
        // Giving up on this slice leaves it and every later slice of the chunk unapplied.
        outcomes.push(...(await this.applyWithRetries(job, token, signal, slice, parsed.data.commands.length - start)));
      }
      return {
        applied: outcomes.filter((o) => o.status === 'applied').length,
        failed: outcomes.filter((o) => o.status === 'failed').length,
      };
    }
    const parsed = commandJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`Job payload not understood: ${parsed.error.message}`);
    return (await this.applyWithRetries(job, token, signal, [parsed.data], 1))[0];
  }

  private get sliceSize(): number {
    return this.options.batch.maxCommands;
  }

  /**
   * Applies commands through the batcher; a transient failure is retried here, inside the job,
   * with backoff — so the lane waits for it — until the attempts run out and the job becomes a
   * dead letter. Logs and announces each outcome.
   */
  private async applyWithRetries(
    job: Job,
    token: string | undefined,
    signal: AbortSignal | undefined,
    commands: CommandJob[],
    unappliedIfGivenUp: number,
  ): Promise<Outcome[]> {
    const { logger, metrics, maxAttempts, backoffMs, maxBackoffMs } = this.options;
    // Deliveries before this one (a crashed worker's attempt) count towards the total.
    const earlierDeliveries = Math.max(0, (job.attemptsStarted ?? 1) - 1);

    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        const outcomes = await Promise.all(
          commands.map((data) => this.batcher.submit({ job: data, attempts: earlierDeliveries + attempt })),
        );
        const applyMs = Math.round((performance.now() - started) * 10) / 10; // waiting for a batch slot included
        const notices: Notice[] = [];
        // A line per command is built only when it will be written (the hot path at LOG_LEVEL=warn).
        const logInfo = logger.isLevelEnabled('info');
        for (const [i, outcome] of outcomes.entries()) {
          const data = commands[i] as CommandJob;
          const lagMs = Date.now() - data.acceptedAt;
          metrics.commandFinished(outcome, lagMs);
          if (logInfo)
            logger.info(
              {
                commandId: data.commandId,
                ticketId: data.command.ticketId,
                outcome: outcome.status,
                ...(outcome.status === 'applied' ? { insertId: outcome.insertId } : { failure: outcome.failure }),
                applyMs,
                lagMs,
              },
              outcome.repeat ? 'command already finished' : outcome.status === 'applied' ? 'command applied' : 'command failed',
            );
          if (data.notify) notices.push({ commandId: data.commandId, outcome });
        }
        await publishCompletions(this.publisher, this.options.prefix, notices).catch(() => {});
        return outcomes;
      } catch (error) {
        const { error: reason } = classify(error);
        const giveUp = attempt >= maxAttempts;
        const delay = giveUp ? 0 : backoffDelay(attempt, backoffMs, maxBackoffMs);
        const progress: RetryProgress = { attempts: attempt, nextTryAt: Date.now() + delay, lastError: reason.message };
        await job.updateProgress(progress).catch(() => {});
        if (giveUp) {
          metrics.commandsDeadLettered(unappliedIfGivenUp);
          throw new UnrecoverableError(`Gave up after ${attempt} attempts: ${reason.message}`);
        }
        metrics.commandsRetried(reason, commands.length);
        logger.warn({ jobId: job.id, commands: commands.length, ...progress }, 'command will be retried');
        if (!(await sleep(delay, signal))) {
          // Shutting down: hand the job back to the head of its lane, untouched.
          await job.moveToWait(token);
          throw new WaitingError();
        }
      }
    }
  }

  /**
   * Stops taking commands, lets the ones being applied finish, hands back the ones waiting
   * to retry, and resolves when every lane is idle.
   */
  async close(): Promise<void> {
    const closing = Promise.all(this.workers.map((w) => w.close()));
    for (const worker of this.workers) worker.cancelAllJobs('shutting down');
    await closing;
  }

  /** Gives up on in-flight jobs; their locks lapse and another worker re-delivers them. */
  async forceClose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close(true)));
  }
}

/** Resolves true after ms, or false at once if the signal aborts first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
