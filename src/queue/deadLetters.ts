import type { Job, Queue } from 'bullmq';
import { type ChunkJob, commandsIn, isChunk } from './chunks.js';
import { type CommandJob, retryProgressSchema } from './jobs.js';
import { jobHolding, laneQueues } from './lanes.js';
import type { RedisClient } from './redis.js';

/**
 * Commands that exhausted their attempts against a failing database (or whose job could not be
 * read). BullMQ keeps them in each lane's failed set for the retention; an operator lists,
 * inspects and replays them. A replay puts the job back at the end of its lane; the ledger
 * makes it a no-op for any command an earlier delivery did apply.
 *
 * Most commands travel in chunks (several commands of one lane in one job), so a dead job may
 * hold many commands: each is listed on its own, with its chunk, and replaying one replays its
 * chunk — the chunk-mates that were applied before it failed stay applied once.
 */
export interface DeadLetter {
  commandId: string;
  /** The chunk job the command travelled in (null: a job of its own). */
  chunkId: string | null;
  ticketId: number | null;
  apiKeyId: number | null;
  /** The command's external_id, when it had one. */
  externalId: string | null;
  acceptedAt: string | null;
  failedAt: string | null;
  attempts: number;
  reason: string;
  lane: string;
}

type DeadJob = Job<CommandJob | ChunkJob>;

export class DeadLetters {
  private readonly lanes: Queue[];

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    lanes: number,
  ) {
    // The service made these queues; reading or replaying their dead letters needs no meta written.
    this.lanes = laneQueues(redis, prefix, lanes, { readOnly: true });
  }

  async list(): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    for (const lane of this.lanes) {
      for (const job of (await lane.getFailed(0, -1)) as DeadJob[]) {
        for (const command of commandsIn(job)) letters.push(describe(lane, job, command));
      }
    }
    return letters.sort((a, b) => String(a.acceptedAt).localeCompare(String(b.acceptedAt)));
  }

  async show(commandId: string): Promise<{ letter: DeadLetter; job: Partial<CommandJob> } | null> {
    const found = await this.find(commandId);
    if (!found) return null;
    const command = commandsIn(found.job).find((c) => c.commandId === commandId) ?? {};
    return { letter: describe(found.lane, found.job, command), job: command };
  }

  /**
   * Puts the dead job holding the command back in its lane. Resolves with the ids of every
   * command it holds (the command alone, or its whole chunk); empty when there is no such
   * dead letter.
   */
  async replay(commandId: string): Promise<string[]> {
    const found = await this.find(commandId);
    if (!found) return [];
    await found.job.updateProgress(0);
    await found.job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return commandsIn(found.job).map((c) => c.commandId as string);
  }

  /** Replays every dead job; resolves with how many commands they held. */
  async replayAll(): Promise<number> {
    let replayed = 0;
    for (const letter of await this.list()) replayed += (await this.replay(letter.commandId)).length;
    return replayed;
  }

  /** The dead job holding the command: a job of its own, or its chunk. */
  private async find(commandId: string): Promise<{ lane: Queue; job: DeadJob } | null> {
    const found = await jobHolding(this.redis, this.prefix, this.lanes, commandId);
    if (!found || !commandsIn(found.job).some((c) => c.commandId === commandId)) return null;
    return (await found.job.isFailed()) ? found : null;
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.close()));
  }
}

function describe(lane: Queue, job: DeadJob, command: Partial<CommandJob>): DeadLetter {
  const progress = retryProgressSchema.safeParse(job.progress);
  return {
    commandId: command.commandId ?? String(job.id),
    chunkId: isChunk(job.data) ? String(job.id) : null,
    ticketId: command.command?.ticketId ?? null,
    apiKeyId: command.apiKeyId ?? null,
    externalId: command.command?.externalId ?? null,
    acceptedAt: command.acceptedAt ? new Date(command.acceptedAt).toISOString() : null,
    failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    attempts: progress.success ? progress.data.attempts : 1,
    reason: job.failedReason,
    lane: lane.name,
  };
}
