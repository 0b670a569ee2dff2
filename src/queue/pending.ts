// Read-your-writes: which of one key's accepted commands for one ticket are not applied yet, for
// read.php's include_pending. A lane holds many tickets' commands, so finding one ticket's there
// would mean reading the whole lane; instead each accepted command is also noted in a small
// sorted set per (API key, ticket) — its command id, scored by its acceptance time — and the
// worker takes it out once the command is in the ledger.
//
// The set is a hint, never the truth: a worker that dies between its commit and the removal, an
// add to the lane that failed after the note, a dead letter — each leaves an id behind. So a read
// keeps only the ids whose command Redis still holds unfinished (its job, its chunk, or parked
// behind a locked ticket row) and the ledger does not know yet (src/read/pendingReplies.ts), and
// drops the leftovers it meets; the set also expires a week after its latest note, so one never
// read again does not stay.
//
// A ticket's set lives in its lane's hash slot on a Redis Cluster (keys.ts), beside the lane's job
// hashes and parked commands that a read checks in one transaction; a note or a forget for many
// tickets is then one script call per slot.
import { perTurn } from '../turnBatch.js';
import { chunkIdOf, isChunk } from './chunks.js';
import { bySlot, keyLayoutOf } from './cluster.js';
import { type CommandJob, commandJobSchema } from './jobs.js';
import { type KeyLayout, redisKeys } from './keys.js';
import { laneOfTicket } from './lanes.js';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

/** How long a (key, ticket) set outlives its latest note. */
const PENDING_TTL_MS = 7 * 86_400_000;
/** A noted command Redis does not hold yet may still be on its way into its lane this long. */
const ON_ITS_WAY_MS = 60_000;

export interface PendingScan {
  /** Commands Redis holds unfinished, newest first (some may have just been applied: ask the ledger). */
  unfinished: CommandJob[];
  /** Noted ids whose command Redis no longer holds (and is not on its way): to forget. */
  gone: string[];
  /** Noted ids whose command Redis does not hold, but may still be on its way in (or just finished). */
  unheld: string[];
}

export class PendingCommands {
  private readonly layout: KeyLayout;
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly lanes: number,
  ) {
    this.layout = keyLayoutOf(redis);
    this.keys = redisKeys(prefix, this.layout);
  }

  /** One key's pending set for one ticket. */
  private setOf(apiKeyId: number, ticketId: number): string {
    return this.keys.pending(laneOfTicket(ticketId, this.lanes, this.layout), apiKeyId, ticketId);
  }

  /**
   * Notes one accepted command; the notes of every command accepted in the same turn of the
   * event loop go to Redis together (one pipeline).
   */
  readonly noteOne = perTurn<CommandJob, void>(async (jobs) => {
    await this.note(jobs);
    return jobs.map(() => undefined);
  });

  /** Forgets finished commands, those of one turn of the event loop together. */
  readonly forgetSoon = perTurn<CommandJob[], void>(async (lists) => {
    await this.forget(lists.flat());
    return lists.map(() => undefined);
  });

  /** Notes accepted commands: one script call whatever their number (on a cluster, one per slot). */
  async note(jobs: CommandJob[]): Promise<void> {
    await this.perKeySet('notePending', jobs, (members) => members.flatMap((job) => [job.acceptedAt, job.commandId]), [
      PENDING_TTL_MS,
    ]);
  }

  /** Forgets commands that finished (their outcome is in the ledger): one script call (on a cluster, one per slot). */
  async forget(jobs: CommandJob[]): Promise<void> {
    await this.perKeySet('forgetPending', jobs, (members) => members.map((job) => job.commandId));
  }

  /**
   * Runs a script over the jobs' sets (one call, or one per slot on a cluster): the sets as its
   * keys, and as its arguments `first`, then for each set its number of members and theirs.
   */
  private async perKeySet(
    script: 'notePending' | 'forgetPending',
    jobs: CommandJob[],
    membersOf: (members: CommandJob[]) => Array<string | number>,
    first: Array<string | number> = [],
  ): Promise<void> {
    await Promise.all(
      bySlot(this.redis, [...this.byTicket(jobs)], ([key]) => key).map((groups) =>
        runScript(
          this.redis,
          script,
          groups.map(([key]) => key),
          [...first, ...groups.flatMap(([, members]) => [members.length, ...membersOf(members)])],
        ),
      ),
    );
  }

  async forgetIds(apiKeyId: number, ticketId: number, commandIds: string[]): Promise<void> {
    if (commandIds.length > 0) await this.redis.zrem(this.setOf(apiKeyId, ticketId), ...commandIds);
  }

  /**
   * The newest `most` noted commands of a key for a ticket that Redis still holds unfinished, in
   * one atomic read: the ids, then their jobs (alone or in a chunk) and the ticket's parked ones.
   */
  async scan(apiKeyId: number, ticketId: number, most: number, now = Date.now()): Promise<PendingScan> {
    const noted = await this.redis.zrevrange(this.setOf(apiKeyId, ticketId), 0, most - 1, 'WITHSCORES');
    const ids: Array<{ commandId: string; acceptedAt: number }> = [];
    for (let i = 0; i + 1 < noted.length; i += 2) ids.push({ commandId: noted[i] as string, acceptedAt: Number(noted[i + 1]) });
    if (ids.length === 0) return { unfinished: [], gone: [], unheld: [] };
    const lane = laneOfTicket(ticketId, this.lanes, this.layout);
    const jobIds = [...new Set(ids.flatMap(({ commandId }) => [commandId, chunkIdOf(commandId)]))];
    const reading = this.redis.multi();
    for (const jobId of jobIds) reading.hmget(this.keys.laneJob(lane, jobId), 'data', 'finishedOn');
    reading.lrange(this.keys.parkedCommands(lane, ticketId), 0, -1);
    const answers = (await reading.exec()) ?? [];
    const failed = answers.find(([error]) => error)?.[0];
    if (failed) throw failed;

    // Each command Redis holds, by id: unfinished (its job), or null (its job finished: a dead letter).
    const wanted = new Set(ids.map(({ commandId }) => commandId));
    const held = new Map<string, CommandJob | null>();
    for (const i of jobIds.keys()) {
      const [data, finishedOn] = (answers[i]?.[1] ?? []) as Array<string | null>;
      if (data == null) continue;
      for (const job of commandsOf(data, wanted)) if (!held.has(job.commandId)) held.set(job.commandId, finishedOn ? null : job);
    }
    for (const entry of (answers[jobIds.length]?.[1] ?? []) as string[]) {
      for (const job of commandsOf(entry, wanted)) held.set(job.commandId, job);
    }
    const scan: PendingScan = { unfinished: [], gone: [], unheld: [] };
    for (const { commandId, acceptedAt } of ids) {
      const job = held.get(commandId);
      if (job && job.apiKeyId === apiKeyId) scan.unfinished.push(job);
      else if (job === undefined) (now - acceptedAt > ON_ITS_WAY_MS ? scan.gone : scan.unheld).push(commandId);
    }
    return scan;
  }

  private byTicket(jobs: CommandJob[]): Map<string, CommandJob[]> {
    const byKey = new Map<string, CommandJob[]>();
    for (const job of jobs) {
      const key = this.setOf(job.apiKeyId, job.command.ticketId);
      const members = byKey.get(key);
      if (members) members.push(job);
      else byKey.set(key, [job]);
    }
    return byKey;
  }
}

/** The `wanted` commands a job's data (or a parked entry) carries: a chunk's, or its own. */
function commandsOf(data: string, wanted: Set<string>): CommandJob[] {
  try {
    const value: unknown = JSON.parse(data);
    const commands = isChunk(value) ? ((value as { commands?: unknown[] }).commands ?? []) : [value];
    return commands.flatMap((command) => {
      if (!wanted.has(String((command as { commandId?: unknown } | null)?.commandId))) return [];
      const job = commandJobSchema.safeParse(command);
      return job.success ? [job.data] : [];
    });
  } catch {
    return [];
  }
}
