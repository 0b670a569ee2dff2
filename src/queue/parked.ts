// Commands parked behind a ticket row another session holds locked (an agent's long transaction,
// a report): kept in Redis, per ticket and in acceptance order, so the lane they came from goes
// on with its other tickets while this one waits. A lane's later commands for a parked ticket are
// parked behind the parked ones (their batch asks which tickets are parked, src/apply/applyBatch.ts),
// and workers drain a parked ticket once its row is free
// (src/queue/drainParked.ts). Parking happens before the lane's job completes, so a crash never
// loses a parked command; a command parked twice (its job re-delivered) is applied once — the
// ledger sees to that.
//
// A ticket's parked list, the set that says it is parked and the index of its commands change
// together in one script. On one server one set and one index serve every lane; on a Redis
// Cluster each lane has its own, hash-tagged with the lane's name (keys.ts), and what asks about
// every parked ticket asks each lane.
import { randomUUID } from 'node:crypto';
import { groupBy, keyLayoutOf, type Piped, pipelined } from './cluster.js';
import { type CommandJob, commandJobSchema } from './jobs.js';
import { type KeyLayout, redisKeys } from './keys.js';
import { laneNames, laneOfTicket } from './lanes.js';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

export interface ParkedCommand {
  job: CommandJob;
  /** When its ticket is next tried (ms). */
  nextTryAt: number;
}

export class ParkedCommands {
  private readonly layout: KeyLayout;
  private readonly keys: ReturnType<typeof redisKeys>;
  /** One lane for each set of parking keys: every lane on a cluster; on one server any one stands for all. */
  private readonly shelves: string[];

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly lanes: number,
  ) {
    this.layout = keyLayoutOf(redis);
    this.keys = redisKeys(prefix, this.layout);
    this.shelves = [...groupBy(laneNames(lanes, this.layout), (lane) => this.keys.parkedTickets(lane)).values()].map(
      (same) => same[0] as string,
    );
  }

  /** The lane whose parking keys hold a ticket's parked commands. */
  private laneOf(ticketId: number): string {
    return laneOfTicket(ticketId, this.lanes, this.layout);
  }

  /** Tickets grouped by the parking keys they share (one group on one server), each with its lane. */
  private byShelf(ticketIds: number[]): Array<{ lane: string; ticketIds: number[] }> {
    return [...groupBy(ticketIds, (ticketId) => this.keys.parkedTickets(this.laneOf(ticketId))).values()].map((group) => ({
      lane: this.laneOf(group[0] as number),
      ticketIds: group,
    }));
  }

  /**
   * Parks `commands` (of tickets found locked, or with commands parked already), appended in
   * order behind what their ticket has parked; a newly parked ticket is tried at `nextTryAt`.
   */
  async park(commands: CommandJob[], nextTryAt: number): Promise<void> {
    if (commands.length === 0) return;
    const byTicket = groupBy(commands, (job) => String(job.command.ticketId));
    await Promise.all(
      this.byShelf([...byTicket.keys()].map(Number)).map(({ lane, ticketIds }) => {
        const args: Array<string | number> = [nextTryAt];
        for (const ticketId of ticketIds) {
          const jobs = byTicket.get(String(ticketId)) ?? [];
          args.push(ticketId, jobs.length);
          for (const job of jobs) args.push(job.commandId, JSON.stringify(job));
        }
        return runScript(
          this.redis,
          'parkCommands',
          [
            this.keys.parkedTickets(lane),
            this.keys.parkedIndex(lane),
            ...ticketIds.map((t) => this.keys.parkedCommands(lane, t)),
          ],
          args,
        );
      }),
    );
  }

  /**
   * Which of these tickets have commands parked: a lane's command for one of them waits behind
   * them. One call, no payload. (Only a ticket's own lane parks it, so the answer cannot turn
   * from "no" to "yes" while that lane's command is being applied.)
   */
  async parkedAmong(ticketIds: number[]): Promise<Set<number>> {
    if (ticketIds.length === 0) return new Set();
    const found = await Promise.all(
      this.byShelf(ticketIds).map(
        ({ lane, ticketIds }) =>
          runScript(this.redis, 'parkedAmong', [this.keys.parkedTickets(lane)], ticketIds) as Promise<string[]>,
      ),
    );
    return new Set(found.flat().map(Number));
  }

  /** Parked tickets due for a try at `now`, oldest due first. */
  async due(now: number, limit: number): Promise<number[]> {
    const answers = await this.askEveryShelf((lane) => {
      const key = this.keys.parkedTickets(lane);
      return { key, queue: (pipeline) => pipeline.zrangebyscore(key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit) };
    });
    const due: Array<{ ticketId: number; at: number }> = [];
    for (const flat of answers as string[][]) {
      for (let i = 0; i + 1 < flat.length; i += 2) due.push({ ticketId: Number(flat[i]), at: Number(flat[i + 1]) });
    }
    return due
      .sort((a, b) => a.at - b.at)
      .slice(0, limit)
      .map((d) => d.ticketId);
  }

  /** A lease on draining one ticket, so two workers never drain it at once: its token, or null. */
  async lease(ticketId: number, ms: number): Promise<string | null> {
    const token = randomUUID();
    const taken = await this.redis.set(this.keys.parkedLease(ticketId), token, 'PX', ms, 'NX');
    return taken === 'OK' ? token : null;
  }

  async releaseLease(ticketId: number, token: string): Promise<void> {
    await runScript(this.redis, 'deleteIfHeld', [this.keys.parkedLease(ticketId)], [token]);
  }

  /** The first `count` commands parked for a ticket, in order; null for an entry that cannot be read. */
  async head(ticketId: number, count: number): Promise<Array<CommandJob | null>> {
    const entries = await this.redis.lrange(this.keys.parkedCommands(this.laneOf(ticketId), ticketId), 0, count - 1);
    return entries.map((entry) => {
      try {
        return commandJobSchema.parse(JSON.parse(entry));
      } catch {
        return null;
      }
    });
  }

  /**
   * Drops the commands that finished (the head of the ticket's list, in order); unparks the
   * ticket when none remain, else schedules it for `nextTryAt`. Answers how many remain.
   */
  async settle(ticketId: number, finished: string[], nextTryAt: number): Promise<number> {
    const lane = this.laneOf(ticketId);
    return Number(
      await runScript(
        this.redis,
        'settleParked',
        [this.keys.parkedTickets(lane), this.keys.parkedIndex(lane), this.keys.parkedCommands(lane, ticketId)],
        [ticketId, nextTryAt, ...finished],
      ),
    );
  }

  /** A parked command by its id, or null when it is not parked. */
  async find(commandId: string): Promise<ParkedCommand | null> {
    const tickets = await this.askEveryShelf((lane) => {
      const key = this.keys.parkedIndex(lane);
      return { key, queue: (pipeline) => pipeline.hget(key, commandId) };
    });
    const ticket = tickets.find((t) => typeof t === 'string') as string | undefined;
    if (ticket === undefined) return null;
    const lane = this.laneOf(Number(ticket));
    const [entries, score] = await Promise.all([
      this.redis.lrange(this.keys.parkedCommands(lane, Number(ticket)), 0, -1),
      this.redis.zscore(this.keys.parkedTickets(lane), ticket),
    ]);
    const entry = entries.find((e) => e.includes(commandId));
    if (entry === undefined) return null;
    const job = commandJobSchema.parse(JSON.parse(entry));
    return job.commandId === commandId ? { job, nextTryAt: Number(score ?? Date.now()) } : null;
  }

  /** For each command (its id and ticket), whether it is parked. */
  async holding(commands: Array<{ commandId: string; ticketId: number }>): Promise<boolean[]> {
    const numbered = commands.map((command, at) => ({ ...command, at }));
    const byIndex = [...groupBy(numbered, (c) => this.keys.parkedIndex(this.laneOf(c.ticketId)))];
    const answers = await pipelined(
      this.redis,
      byIndex.map(([key, group]): Piped => ({ key, queue: (pipeline) => pipeline.hmget(key, ...group.map((c) => c.commandId)) })),
    );
    const held = commands.map(() => false);
    for (const [g, [, group]] of byIndex.entries()) {
      const [error, tickets] = answers[g] ?? [];
      if (error) throw error;
      for (const [n, { at }] of group.entries()) held[at] = (tickets as Array<string | null>)[n] != null;
    }
    return held;
  }

  /** How many tickets are parked, and how many commands wait with them. */
  async counts(): Promise<{ tickets: number; commands: number }> {
    const [tickets, commands] = await Promise.all([
      this.askEveryShelf((lane) => {
        const key = this.keys.parkedTickets(lane);
        return { key, queue: (pipeline) => pipeline.zcard(key) };
      }),
      this.askEveryShelf((lane) => {
        const key = this.keys.parkedIndex(lane);
        return { key, queue: (pipeline) => pipeline.hlen(key) };
      }),
    ]);
    const sum = (counts: unknown[]) => counts.reduce((total: number, n) => total + Number(n), 0);
    return { tickets: sum(tickets), commands: sum(commands) };
  }

  /** One command to every lane's parking keys (one on one server), pipelined; their answers, or the first error. */
  private async askEveryShelf(command: (lane: string) => Piped): Promise<unknown[]> {
    const answers = await pipelined(this.redis, this.shelves.map(command));
    return answers.map(([error, answer]) => {
      if (error) throw error;
      return answer;
    });
  }
}
