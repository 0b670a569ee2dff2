import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { ApplyResult } from '../apply/applyBatch.js';
import { classify } from '../apply/classify.js';
import type { Outcome } from '../apply/ledger.js';
import type { MysqlAvailability } from '../db/availability.js';
import type { Batcher } from './batcher.js';
import { chunkJobSchema, isChunk } from './chunks.js';
import { keyLayoutOf } from './cluster.js';
import type { CommandEvents } from './events.js';
import { type CommandJob, commandJobSchema, type RetryProgress } from './jobs.js';
import { laneNames } from './lanes.js';
import { AppliedAhead, dropApplied, type Lookahead, peekLane } from './lookahead.js';
import type { ParkedCommands } from './parked.js';
import { isRedisConnectionError, type RedisClient } from './redis.js';

export interface ConsumerOptions {
  prefix: string;
  lanes: number;
  lockMs: number;
  maxAttempts: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Commands submitted to the batcher at once from one chunk (its largest batch). */
  sliceSize: number;
  /**
   * Most commands waiting behind a single-command job applied with it (src/queue/lookahead.ts);
   * the job and they make one batch, so at most the batch size less one. 0: none.
   */
  lookahead: number;
  /** How soon a ticket found locked by another session is tried again (ms). */
  parkedRetryMs: number;
  logger: Logger;
}

/** Exponential backoff with jitter: attempt n waits between half and all of base·2^(n-1), capped. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * The worker's side of the queue: one BullMQ Worker per lane, each taking one job at a time
 * (the lane's global concurrency is 1 anyway) and handing its commands to the batcher.
 *
 * Retries by error class (src/apply/classify.ts), inside the job so its lane waits and order
 * holds: contention and unknown errors spend attempts with exponential backoff until the job
 * becomes a dead letter; an outage spends none — the job waits for MySQL to answer again, however
 * long that takes. A ticket whose row another session holds does not hold up the lane: its
 * commands are parked (src/queue/parked.ts) and the job finishes with the rest.
 *
 * A single-command job takes the single commands waiting behind it in its lane along into its
 * batch, on its first try (src/queue/lookahead.ts): a hot ticket gets many commands per
 * transaction instead of one. Those that finish are taken out of the lane (and remembered, in
 * case the lane delivers one all the same); the others (locked, failing) are left to their own
 * delivery.
 */
export class CommandConsumer {
  private readonly workers: Worker[];
  private readonly appliedAhead: AppliedAhead;
  /** Lanes whose worker found nothing waiting when it last looked (BullMQ's 'drained'), and since when. */
  private readonly idleLanes = new Map<string, number>();

  constructor(
    blockingRedis: RedisClient,
    /** For reading the lanes' waiting jobs (blockingRedis is the Workers'). */
    private readonly redis: RedisClient,
    private readonly batcher: Batcher,
    private readonly parked: ParkedCommands,
    private readonly availability: MysqlAvailability,
    private readonly events: CommandEvents,
    private readonly options: ConsumerOptions,
  ) {
    // Each lane has at most one run delivered after its job: twice that for all lanes is ample.
    this.appliedAhead = new AppliedAhead(Math.max(10_000, 2 * options.lanes * options.lookahead));
    this.workers = laneNames(options.lanes, keyLayoutOf(blockingRedis)).map(
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
      worker.on('drained', () => this.idleLanes.set(worker.name, Date.now()));
      // Redis being away reaches every lane's worker at each reconnection attempt; it is said once
      // by the connection's watcher (redis.ts), so only other errors are warnings here.
      worker.on('error', (error) =>
        isRedisConnectionError(error)
          ? options.logger.debug({ err: error.message }, 'queue worker cannot reach Redis')
          : options.logger.warn({ err: error.message }, 'queue worker error'),
      );
    }
  }

  private async process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    // Applied ahead of its delivery, with an earlier job of its lane: counted and announced then.
    const ahead = isChunk(job.data) ? undefined : this.appliedAhead.outcomeOf(String(job.id));
    if (ahead) return ahead;
    const commands = this.commandsOf(job);
    // A job that reached a lane found idle had nothing ahead of it, and what came in behind it
    // came in the moment it took to fetch it: looking behind it costs a round trip to Redis in
    // the one case where latency is all there is (a client waiting, a quiet lane) and rarely finds
    // anything. A lane with a backlog delivers its next job without going idle, and that one looks;
    // so does a job queued before its lane went idle (it waited while the lane was paused, say).
    const idleSince = this.idleLanes.get(job.queueName);
    this.idleLanes.delete(job.queueName);
    const fromIdleLane = idleSince !== undefined && job.timestamp >= idleSince;
    // One slice in flight per job: a slice retried after an error is never overtaken by the
    // job's later commands, so order holds within the lane.
    const outcomes: Outcome[] = [];
    let parked = 0;
    for (let start = 0; start < commands.length; start += this.options.sliceSize) {
      const slice = commands.slice(start, start + this.options.sliceSize);
      const run = isChunk(job.data) || fromIdleLane ? [] : await this.waitingBehind(job);
      // Giving up on this slice leaves it and every later slice of the job unapplied.
      const results = await this.applyWithRetries(job, token, signal, slice, run, commands.length - start);
      for (const result of results) {
        if (result.status === 'locked') parked++;
        else outcomes.push(result);
      }
    }
    if (!isChunk(job.data)) return outcomes[0] ?? { status: 'parked' };
    return {
      applied: outcomes.filter((o) => o.status === 'applied').length,
      failed: outcomes.filter((o) => o.status === 'failed').length,
      parked,
    };
  }

  /** The job's commands; a payload that cannot be read makes the job a dead letter at once. */
  private commandsOf(job: Job): CommandJob[] {
    const parsed = isChunk(job.data)
      ? chunkJobSchema.safeParse(job.data)
      : commandJobSchema.transform((command) => ({ commands: [command] })).safeParse(job.data);
    if (parsed.success) return parsed.data.commands;
    const error = new UnrecoverableError(`Job payload not understood: ${parsed.error.message}`);
    this.events.emit('deadLettered', { jobId: String(job.id), commands: 1, error });
    throw error;
  }

  /**
   * The single commands waiting behind a single-command job in its lane. Not knowing them (Redis
   * answering an error) only means the job goes alone.
   */
  private async waitingBehind(job: Job): Promise<Lookahead[]> {
    if (this.options.lookahead < 1) return [];
    try {
      const run = await peekLane(this.redis, this.options.prefix, job.queueName, this.options.lookahead);
      // Some may have been applied ahead already, behind a job before this one (this job was left
      // out of that run, its ticket locked): they are not applied twice, nor counted twice.
      return run.filter((waiting) => this.appliedAhead.outcomeOf(waiting.job.commandId) === undefined);
    } catch (error) {
      this.options.logger.debug({ err: (error as Error).message }, 'could not read the commands waiting in a lane');
      return [];
    }
  }

  /**
   * Applies commands through the batcher; those whose ticket is locked elsewhere, or has
   * commands parked ahead of them, are parked. Errors are retried here, inside the job, by class
   * (see the class comment) until the attempts run out and the job becomes a dead letter.
   *
   * `run`, the commands waiting behind the job in its lane, goes along on the first try only,
   * in the same batch: those that finish are remembered, announced and taken out of the lane;
   * those locked or failing are left, neither parked nor retried, for their own delivery to deal
   * with (behind a locked or failed command of their ticket, so none overtakes it).
   */
  private async applyWithRetries(
    job: Job,
    token: string | undefined,
    signal: AbortSignal | undefined,
    commands: CommandJob[],
    run: Lookahead[],
    unappliedIfGivenUp: number,
  ): Promise<ApplyResult[]> {
    const { maxAttempts, backoffMs, maxBackoffMs } = this.options;
    // Deliveries before this one (a crashed worker's attempt) count towards the total.
    const earlierDeliveries = Math.max(0, (job.attemptsStarted ?? 1) - 1);
    const jobId = String(job.id);

    // `attempt` counts the tries that spend the budget; `tries` every try (for the ledger).
    for (let attempt = 1, tries = 1; ; tries++) {
      const started = performance.now();
      try {
        const own = commands.map((data) => ({ job: data, attempts: earlierDeliveries + tries }));
        const behind = tries === 1 ? run : [];
        const pending =
          behind.length === 0 ? own.map((s) => this.batcher.submit(s)) : this.batcher.submitRun([...own, ...behind]);
        const settled = await Promise.allSettled(pending);
        const applyMs = Math.round((performance.now() - started) * 10) / 10; // waiting for a batch slot included
        const dropping = this.dropAhead(job.queueName, this.rememberAhead(behind, settled.slice(own.length), applyMs));
        const results: ApplyResult[] = [];
        for (const answer of settled.slice(0, own.length)) {
          if (answer.status === 'rejected') throw answer.reason;
          results.push(answer.value);
        }
        // Parking is the last thing that can fail: a retry after it never parks anything twice.
        const locked = commands.filter((_, i) => results[i]?.status === 'locked');
        if (locked.length > 0) {
          await this.parked.park(locked, Date.now() + this.options.parkedRetryMs);
          this.events.emit('parked', { commands: locked });
        }
        const finished = commands.flatMap((data, i) =>
          results[i]?.status === 'locked' ? [] : [{ data, outcome: results[i] as Outcome }],
        );
        this.events.emit('finished', {
          commands: finished.map((f) => f.data),
          outcomes: finished.map((f) => f.outcome),
          applyMs,
        });
        await dropping;
        return results;
      } catch (error) {
        const verdict = classify(error);
        if (verdict.kind === 'outage') {
          await this.report(job, { attempts: attempt - 1, nextTryAt: Date.now(), lastError: verdict.error.message });
          const state = await this.availability.afterError(verdict.error, signal);
          if (state === 'recovered') continue; // it was away: no attempt spent
          if (state === 'aborted') return this.handBack(job, token);
        }
        const giveUp = attempt >= maxAttempts;
        const delay = giveUp ? 0 : backoffDelay(attempt, backoffMs, maxBackoffMs);
        const progress: RetryProgress = { attempts: attempt, nextTryAt: Date.now() + delay, lastError: verdict.error.message };
        await this.report(job, progress);
        if (giveUp) {
          this.events.emit('deadLettered', { jobId, commands: unappliedIfGivenUp, error: verdict.error });
          throw new UnrecoverableError(`Gave up after ${attempt} attempts: ${verdict.error.message}`);
        }
        this.events.emit('retrying', {
          jobId,
          commands: commands.length,
          attempts: attempt,
          nextTryAt: progress.nextTryAt,
          kind: verdict.kind,
          error: verdict.error,
        });
        attempt++;
        if (!(await sleep(delay, signal))) return this.handBack(job, token);
      }
    }
  }

  /**
   * The run's commands that finished: remembered for a delivery that may still come, and
   * announced once, now. Returns their command ids (their job ids), next in the lane first.
   */
  private rememberAhead(run: Lookahead[], settled: Array<PromiseSettledResult<ApplyResult>>, applyMs: number): string[] {
    const finished: Array<{ data: CommandJob; outcome: Outcome }> = [];
    for (const [i, answer] of settled.entries()) {
      const data = (run[i] as Lookahead).job;
      if (answer.status === 'fulfilled' && answer.value.status !== 'locked') finished.push({ data, outcome: answer.value });
    }
    if (finished.length === 0) return [];
    for (const { data, outcome } of finished) this.appliedAhead.remember(data.commandId, outcome);
    this.events.emit('finished', { commands: finished.map((f) => f.data), outcomes: finished.map((f) => f.outcome), applyMs });
    return finished.map((f) => f.data.commandId);
  }

  /**
   * Takes the jobs of commands applied ahead out of their lane (src/queue/lookahead.ts), before
   * this job finishes and the lane moves on. Not managing it only means the lane delivers them.
   */
  private async dropAhead(lane: string, jobIds: string[]): Promise<void> {
    if (jobIds.length === 0) return;
    try {
      await dropApplied(this.redis, this.options.prefix, lane, jobIds);
    } catch (error) {
      this.options.logger.debug({ err: (error as Error).message }, 'could not take applied commands out of their lane');
    }
  }

  private async report(job: Job, progress: RetryProgress): Promise<void> {
    await job.updateProgress(progress).catch(() => {});
  }

  /** Shutting down: hand the job back to the head of its lane, untouched. */
  private async handBack(job: Job, token: string | undefined): Promise<never> {
    await job.moveToWait(token);
    throw new WaitingError();
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
