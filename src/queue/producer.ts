import type { JobsOptions, Queue } from 'bullmq';
import { type ChunkJob, chunkIdOf, commandsIn } from './chunks.js';
import { keyLayoutOf, type Piped, pipelined } from './cluster.js';
import { type CommandJob, type RetryProgress, retryProgressSchema } from './jobs.js';
import { redisKeys } from './keys.js';
import { jobHolding, laneOf, laneQueues } from './lanes.js';
import { ParkedCommands } from './parked.js';
import { PendingCommands } from './pending.js';
import type { RedisClient } from './redis.js';

export const JOB_NAME = 'command';
export const CHUNK_NAME = 'chunk';

export type QueuedState =
  | { state: 'queued'; job: CommandJob }
  | { state: 'parked'; job: CommandJob; nextTryAt: number }
  | { state: 'applying'; job: CommandJob }
  | { state: 'retrying'; job: CommandJob; progress: RetryProgress }
  | { state: 'dead'; job: CommandJob; reason: string; attempts: number };

/**
 * The intake's side of the queue: puts accepted commands in their ticket's lane and finds
 * a command that is still in Redis (waiting, being applied, retrying, or dead-lettered).
 */
export class CommandQueue {
  private readonly queues: Queue[];
  private readonly jobOptions: JobsOptions;
  private readonly parked: ParkedCommands;
  private readonly pending: PendingCommands;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly lanes: number,
    deadLetterRetentionSeconds: number,
  ) {
    this.queues = laneQueues(redis, prefix, lanes);
    this.parked = new ParkedCommands(redis, prefix, lanes);
    this.pending = new PendingCommands(redis, prefix, lanes);
    this.jobOptions = {
      // Finished commands live in the MySQL ledger; only dead letters are kept in Redis.
      removeOnComplete: true,
      removeOnFail: { age: deadLetterRetentionSeconds },
      attempts: 1,
    };
  }

  private laneFor(ticketId: number): Queue {
    return this.queues[laneOf(ticketId, this.lanes)] as Queue;
  }

  /**
   * Adds a command; the job id is the command id, so a command is never queued twice. It is noted
   * as pending for its key and ticket (read.php include_pending) on the same connection, sent
   * first; the note is a hint whose failure must not turn a queued command into a 503.
   */
  async add(job: CommandJob): Promise<void> {
    const noting = this.pending.noteOne(job).catch(() => {});
    await this.laneFor(job.command.ticketId).add(JOB_NAME, job, { ...this.jobOptions, jobId: job.commandId });
    await noting;
  }

  /**
   * Adds chunks with one BullMQ bulk add per lane, keeping their order within a lane. Resolves
   * with the chunks that could not be added (a lane whose add failed), so the caller can report
   * exactly which commands were not queued.
   */
  async addChunks(chunks: ChunkJob[]): Promise<ChunkJob[]> {
    const noting = this.pending.note(chunks.flatMap((chunk) => chunk.commands)).catch(() => {});
    const byLane = new Map<Queue, ChunkJob[]>();
    for (const chunk of chunks) {
      const queue = this.laneFor((chunk.commands[0] as CommandJob).command.ticketId);
      byLane.set(queue, [...(byLane.get(queue) ?? []), chunk]);
    }
    const failed: ChunkJob[] = [];
    await Promise.all(
      [...byLane].map(([queue, list]) =>
        queue
          .addBulk(list.map((data) => ({ name: CHUNK_NAME, data, opts: { ...this.jobOptions, jobId: data.chunkId } })))
          .catch(() => failed.push(...list)),
      ),
    );
    await noting;
    return failed;
  }

  /**
   * Where a command is while it is still in Redis — alone in its job, inside a chunk, or parked
   * behind its ticket's locked row — or null once it has left (or never was).
   */
  async find(commandId: string): Promise<QueuedState | null> {
    const found = await jobHolding(this.redis, this.prefix, this.queues, commandId);
    if (!found) return this.findParked(commandId);
    const { job } = found;
    const data = commandsIn(job).find((c) => c.commandId === commandId) as CommandJob | undefined;
    if (!data) return null;
    const state = await job.getState();
    const progress = retryProgressSchema.safeParse(job.progress);
    if (state === 'failed') {
      return { state: 'dead', job: data, reason: job.failedReason, attempts: progress.success ? progress.data.attempts : 1 };
    }
    if (state === 'active') {
      return progress.success ? { state: 'retrying', job: data, progress: progress.data } : { state: 'applying', job: data };
    }
    // Gone from its lane between the look-ups: finished, or parked behind a locked ticket row just now.
    if (state === 'completed' || state === 'unknown') return this.findParked(commandId);
    return { state: 'queued', job: data };
  }

  private async findParked(commandId: string): Promise<QueuedState | null> {
    const parked = await this.parked.find(commandId);
    return parked ? { state: 'parked', ...parked } : null;
  }

  /**
   * For each of `commands` (command id and ticket), whether its job — alone or its chunk — is
   * still in Redis, or it is parked. One pipeline and one hash read (on a cluster, one of each per
   * node); the ticket names the lane.
   */
  async stillQueued(commands: Array<{ commandId: string; ticketId: number }>): Promise<boolean[]> {
    if (commands.length === 0) return [];
    const parked = await this.parked.holding(commands);
    const keys = redisKeys(this.prefix, keyLayoutOf(this.redis));
    const answers = await pipelined(
      this.redis,
      commands.map(({ commandId, ticketId }): Piped => {
        const lane = this.laneFor(ticketId).name;
        // A job and its chunk are in one lane, so in one slot.
        const [job, chunk] = [keys.laneJob(lane, commandId), keys.laneJob(lane, chunkIdOf(commandId))];
        return { key: job, queue: (pipeline) => pipeline.exists(job, chunk) };
      }),
    );
    return answers.map(([error, count], i) => parked[i] === true || (!error && Number(count) > 0));
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
