// What a lane holds, job by job, for the operator dashboard: the jobs a worker will take next,
// each with the commands it carries. Most commands travel in chunks (chunks.ts), so a lane's
// job count says little on its own; here a chunk is shown as what it is — N commands of these
// tickets, accepted from this time to that. Read-only; reads whole payloads, so it is asked for
// one lane at a time and a few jobs per state, never for the whole backlog.
import type { Job, Queue } from 'bullmq';
import { type ChunkJob, commandsIn, isChunk } from './chunks.js';
import { type CommandJob, retryProgressSchema } from './jobs.js';

export type LaneJobState = 'active' | 'waiting' | 'prioritized' | 'delayed';

export interface LaneJob {
  jobId: string;
  state: LaneJobState;
  kind: 'chunk' | 'command';
  /** How many commands the job carries (1 for a job of its own). */
  commands: number;
  /** The tickets they are for, in acceptance order, each once; at most TICKETS_SHOWN. */
  tickets: number[];
  /** How many distinct tickets in all (tickets may be cut short). */
  ticketCount: number;
  firstAcceptedAt: string | null;
  lastAcceptedAt: string | null;
  /** Set while a worker retries the job against contention (commands.php's `retrying`). */
  retry: { attempts: number; nextTryAt: string; lastError: string } | null;
}

const TICKETS_SHOWN = 12;

/**
 * The first `perState` jobs of each state not yet applied, in the order a worker takes them:
 * the job being applied, then the waiting ones oldest first, then delayed ones.
 */
export async function laneJobs(queue: Queue, perState: number): Promise<LaneJob[]> {
  const end = perState - 1;
  const [active, waiting, prioritized, delayed] = await Promise.all([
    queue.getActive(0, end),
    queue.getWaiting(0, end),
    queue.getPrioritized(0, end),
    queue.getDelayed(0, end),
  ]);
  const view = (state: LaneJobState) => (job: Job | undefined) =>
    job ? [describeJob(job as Job<CommandJob | ChunkJob>, state)] : [];
  return [
    ...active.flatMap(view('active')),
    ...waiting.flatMap(view('waiting')),
    ...prioritized.flatMap(view('prioritized')),
    ...delayed.flatMap(view('delayed')),
  ];
}

function describeJob(job: Job<CommandJob | ChunkJob>, state: LaneJobState): LaneJob {
  const commands = commandsIn(job);
  const tickets = [...new Set(commands.flatMap((c) => (c.command?.ticketId === undefined ? [] : [c.command.ticketId])))];
  const accepted = commands.flatMap((c) => (typeof c.acceptedAt === 'number' ? [c.acceptedAt] : []));
  const progress = retryProgressSchema.safeParse(job.progress);
  return {
    jobId: String(job.id),
    state,
    kind: isChunk(job.data) ? 'chunk' : 'command',
    commands: commands.length,
    tickets: tickets.slice(0, TICKETS_SHOWN),
    ticketCount: tickets.length,
    firstAcceptedAt: accepted.length > 0 ? new Date(Math.min(...accepted)).toISOString() : null,
    lastAcceptedAt: accepted.length > 0 ? new Date(Math.max(...accepted)).toISOString() : null,
    retry: progress.success
      ? {
          attempts: progress.data.attempts,
          nextTryAt: new Date(progress.data.nextTryAt).toISOString(),
          lastError: progress.data.lastError,
        }
      : null,
  };
}
