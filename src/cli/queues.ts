// `queues`: what is waiting in the lanes, for an operator — totals by state, the lanes with the
// deepest backlog, how long the oldest waiting command has waited, and the dead letters.
// Read-only, and cheap: one getJobCounts script per lane (all in flight at once), the head job
// of each non-empty lane, and — below KINDS_LIMIT jobs — the ids of the jobs not yet applied.
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type ChunkJob, commandsIn } from '../queue/chunks.js';
import type { CommandJob } from '../queue/jobs.js';
import { redisKeys } from '../queue/keys.js';
import { laneQueues } from '../queue/lanes.js';
import { ParkedCommands } from '../queue/parked.js';
import { CHUNK_NAME } from '../queue/producer.js';

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;
type State = (typeof STATES)[number];

/** Above this many jobs in the backlog, single-command jobs and chunks are not told apart. */
export const KINDS_LIMIT = 100_000;

export interface LaneView {
  lane: string;
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  /** Dead letters. */
  failed: number;
  /** Jobs not applied yet: waiting, active, delayed and prioritized. */
  backlog: number;
  paused: boolean;
  /** When the command at the head of the lane was accepted (ISO 8601), or null. */
  oldestWaitingAt: string | null;
}

export interface QueuesView {
  prefix: string;
  lanes: number;
  /** The lane count the service recorded in Redis under this prefix; null if none ever ran. */
  recordedLanes: number | null;
  at: string;
  /** Jobs by state over every lane; a chunk (chunks.ts) is one job however many commands it carries. */
  totals: Record<State, number>;
  backlog: number;
  /**
   * The backlog's jobs by kind: one command each, or a chunk of one lane's commands; null above
   * KINDS_LIMIT jobs. How many commands the chunks hold is not counted: that means reading them all.
   */
  kinds: { single: number; chunks: number } | null;
  deadLetters: number;
  /** Commands set aside behind ticket rows another session holds, and how many tickets. */
  parked: { tickets: number; commands: number };
  pausedLanes: string[];
  oldestWaiting: { commandId: string; lane: string; acceptedAt: string; ageSeconds: number } | null;
  /** Lanes by backlog, deepest first: the top ones that hold anything, or every lane. */
  deepest: LaneView[];
}

export async function readQueues(
  redis: Redis,
  prefix: string,
  lanes: number,
  { top = 10, now = Date.now() }: { top?: number | 'all'; now?: number } = {},
): Promise<QueuesView> {
  const queues = laneQueues(redis, prefix, lanes);
  try {
    const recorded = await redis.get(redisKeys(prefix).lanes);
    const parked = await new ParkedCommands(redis, prefix).counts();
    const views = await Promise.all(queues.map((queue) => readLane(queue)));
    const totals = Object.fromEntries(STATES.map((s) => [s, views.reduce((sum, v) => sum + v.view[s], 0)])) as Record<
      State,
      number
    >;
    const backlog = totals.waiting + totals.active + totals.delayed + totals.prioritized;
    const oldest = views
      .filter((v) => v.oldest !== null)
      .sort((a, b) => (a.oldest?.acceptedAt ?? 0) - (b.oldest?.acceptedAt ?? 0))[0];
    const deepest = views
      .map((v) => v.view)
      .filter((v) => top === 'all' || v.backlog > 0 || v.failed > 0 || v.paused)
      .sort((a, b) => b.backlog - a.backlog || b.failed - a.failed || a.lane.localeCompare(b.lane));
    return {
      prefix,
      lanes,
      recordedLanes: recorded === null ? null : Number(recorded),
      at: new Date(now).toISOString(),
      totals,
      backlog,
      kinds: backlog > KINDS_LIMIT ? null : await countKinds(redis, prefix, queues),
      deadLetters: totals.failed,
      parked,
      pausedLanes: views.filter((v) => v.view.paused).map((v) => v.view.lane),
      oldestWaiting: oldest?.oldest
        ? {
            commandId: oldest.oldest.commandId,
            lane: oldest.view.lane,
            acceptedAt: new Date(oldest.oldest.acceptedAt).toISOString(),
            ageSeconds: Math.max(0, Math.floor((now - oldest.oldest.acceptedAt) / 1000)),
          }
        : null,
      deepest: top === 'all' ? deepest : deepest.slice(0, top),
    };
  } finally {
    await Promise.all(queues.map((queue) => queue.close()));
  }
}

async function readLane(queue: Queue): Promise<{ view: LaneView; oldest: { commandId: string; acceptedAt: number } | null }> {
  const [counts, paused] = await Promise.all([queue.getJobCounts(...STATES), queue.isPaused()]);
  const count = (state: State) => counts[state] ?? 0;
  // getWaiting reads the wait list oldest first: the head of the lane, the next to be applied.
  const [head] = count('waiting') > 0 ? ((await queue.getWaiting(0, 0)) as Job<CommandJob | ChunkJob>[]) : [];
  const oldest = head ? firstCommandOf(head) : null;
  return {
    view: {
      lane: queue.name,
      waiting: count('waiting'),
      active: count('active'),
      delayed: count('delayed'),
      prioritized: count('prioritized'),
      failed: count('failed'),
      backlog: count('waiting') + count('active') + count('delayed') + count('prioritized'),
      paused,
      oldestWaitingAt: oldest ? new Date(oldest.acceptedAt).toISOString() : null,
    },
    oldest,
  };
}

/** The first command a job carries (a chunk's are in acceptance order), with when it was accepted. */
function firstCommandOf(job: Job<CommandJob | ChunkJob>): { commandId: string; acceptedAt: number } {
  const [command] = commandsIn(job);
  return {
    commandId: command?.commandId ?? String(job.id),
    acceptedAt: command?.acceptedAt ?? job.timestamp,
  };
}

/**
 * Single-command jobs vs chunks among the jobs not yet applied. A chunk's id ends in 000 (see
 * chunks.ts); so does one single command id in 4096, so only those jobs' names are read.
 */
async function countKinds(redis: Redis, prefix: string, queues: Queue[]): Promise<{ single: number; chunks: number }> {
  const ids = await Promise.all(
    queues.map(async (queue) => ({
      lane: queue.name,
      ids: await queue.getRanges(['waiting', 'active', 'delayed', 'prioritized'], 0, -1),
    })),
  );
  const candidates = ids.flatMap(({ lane, ids }) =>
    ids.filter((id) => id.endsWith('000')).map((id) => redisKeys(prefix).laneJob(lane, id)),
  );
  const pipeline = redis.pipeline();
  for (const key of candidates) pipeline.hget(key, 'name');
  const names = candidates.length > 0 ? ((await pipeline.exec()) ?? []) : [];
  const chunks = names.filter(([error, name]) => !error && name === CHUNK_NAME).length;
  const jobs = ids.reduce((sum, lane) => sum + lane.ids.length, 0);
  return { single: jobs - chunks, chunks };
}

/** The overview as an operator reads it in a terminal. */
export function queuesText(view: QueuesView, { top = 10 }: { top?: number | 'all' } = {}): string {
  const all = top === 'all';
  const lines: string[] = [];
  lines.push(`Queue '${view.prefix}': ${view.lanes} lanes, at ${view.at}`);
  if (view.recordedLanes === null) {
    lines.push(`  (no service has used the prefix '${view.prefix}' on this Redis yet: check QUEUE_PREFIX)`);
  } else if (view.recordedLanes !== view.lanes) {
    lines.push(
      `  Warning: the service recorded ${view.recordedLanes} lanes under this prefix, but QUEUE_PARTITIONS is ${view.lanes}; ` +
        `set QUEUE_PARTITIONS=${view.recordedLanes} to see every lane.`,
    );
  }
  lines.push('');
  lines.push(
    table(
      ['state', 'jobs'],
      [
        ['waiting', view.totals.waiting],
        ['active', view.totals.active],
        ['delayed', view.totals.delayed],
        ...(view.totals.prioritized > 0 ? [['prioritized', view.totals.prioritized] as const] : []),
        ['dead letters', view.totals.failed],
      ],
    ),
  );
  lines.push('');
  const kinds = view.kinds
    ? ` (${view.kinds.single} single-command job${view.kinds.single === 1 ? '' : 's'}, ${view.kinds.chunks} chunk${
        view.kinds.chunks === 1 ? '' : 's'
      } of several commands)`
    : ` (not split into single-command jobs and chunks above ${KINDS_LIMIT} jobs)`;
  lines.push(`Not applied yet: ${view.backlog} job${view.backlog === 1 ? '' : 's'}${view.backlog > 0 ? kinds : ''}`);
  lines.push(
    view.oldestWaiting
      ? `Oldest waiting command: ${view.oldestWaiting.commandId} in ${view.oldestWaiting.lane}, accepted ${
          view.oldestWaiting.acceptedAt
        } (${age(view.oldestWaiting.ageSeconds)} ago)`
      : 'Oldest waiting command: none waiting',
  );
  if (view.parked.commands > 0) {
    lines.push(
      `Parked: ${view.parked.commands} command(s) of ${view.parked.tickets} ticket(s) whose row another session holds locked; ` +
        'they apply, in order, once it is released.',
    );
  }
  if (view.pausedLanes.length > 0) lines.push(`Paused lanes: ${view.pausedLanes.join(', ')}`);
  if (view.deadLetters > 0) {
    lines.push(`Dead letters: ${view.deadLetters}; see them with \`npm run cli -- dead-letters list\`.`);
  }
  lines.push('');
  if (view.deepest.length === 0) {
    lines.push('Every lane is empty.');
  } else {
    lines.push(all ? 'Every lane, deepest first:' : `Deepest lanes (at most ${top}; --all for every lane):`);
    lines.push(
      table(
        ['lane', 'waiting', 'active', 'delayed', 'dead', 'oldest waiting', 'paused'],
        view.deepest.map((l) => [
          l.lane,
          l.waiting,
          l.active,
          l.delayed,
          l.failed,
          l.oldestWaitingAt ?? '-',
          l.paused ? 'yes' : '',
        ]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Columns padded to their widest cell; numbers right-aligned. */
function table(header: string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  return cells
    .map((row, r) =>
      row
        .map((cell, c) =>
          r > 0 && typeof rows[r - 1]?.[c] === 'number' ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `  ${line}`)
    .join('\n');
}

function age(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}
