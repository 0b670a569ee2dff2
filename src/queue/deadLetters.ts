import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type CommandJob, retryProgressSchema } from './jobs.js';
import { laneNames } from './lanes.js';

/**
 * Commands that exhausted their attempts against a failing database (or whose job could not be
 * read). BullMQ keeps them in each lane's failed set for the retention; an operator lists,
 * inspects and replays them. A replay puts the command back at the end of its lane; the
 * ledger makes it a no-op if an earlier delivery did apply it.
 */
export interface DeadLetter {
  commandId: string;
  ticketId: number | null;
  apiKeyId: number | null;
  acceptedAt: string | null;
  failedAt: string | null;
  attempts: number;
  reason: string;
  lane: string;
}

export class DeadLetters {
  private readonly lanes: Queue[];

  constructor(redis: Redis, prefix: string, lanes: number) {
    this.lanes = laneNames(lanes).map((name) => new Queue(name, { connection: redis, prefix }).on('error', () => {}));
  }

  async list(): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    for (const lane of this.lanes) {
      for (const job of (await lane.getFailed(0, -1)) as Job<CommandJob>[]) letters.push(describe(lane, job));
    }
    return letters.sort((a, b) => String(a.acceptedAt).localeCompare(String(b.acceptedAt)));
  }

  async show(commandId: string): Promise<{ letter: DeadLetter; job: CommandJob } | null> {
    const found = await this.find(commandId);
    return found ? { letter: describe(found.lane, found.job), job: found.job.data } : null;
  }

  /** Puts a dead letter back in its lane; false when there is no such dead letter. */
  async replay(commandId: string): Promise<boolean> {
    const found = await this.find(commandId);
    if (!found) return false;
    await found.job.updateProgress(0);
    await found.job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  }

  async replayAll(): Promise<number> {
    let replayed = 0;
    for (const letter of await this.list()) if (await this.replay(letter.commandId)) replayed++;
    return replayed;
  }

  private async find(commandId: string): Promise<{ lane: Queue; job: Job<CommandJob> } | null> {
    for (const lane of this.lanes) {
      const job = (await lane.getJob(commandId)) as Job<CommandJob> | undefined;
      if (job && (await job.isFailed())) return { lane, job };
    }
    return null;
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.close()));
  }
}

function describe(lane: Queue, job: Job<CommandJob>): DeadLetter {
  const progress = retryProgressSchema.safeParse(job.progress);
  const data = job.data as Partial<CommandJob> | undefined;
  return {
    commandId: String(job.id),
    ticketId: data?.command?.ticketId ?? null,
    apiKeyId: data?.apiKeyId ?? null,
    acceptedAt: data?.acceptedAt ? new Date(data.acceptedAt).toISOString() : null,
    failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    attempts: progress.success ? progress.data.attempts : 1,
    reason: job.failedReason,
    lane: lane.name,
  };
}
