// Commands parked behind a ticket row another session holds locked (an agent's long transaction,
// a report): kept in Redis, per ticket and in acceptance order, so the lane they came from goes
// on with its other tickets while this one waits. A lane's later commands for a parked ticket are
// parked behind the parked ones (their batch asks which tickets are parked, src/apply/applyBatch.ts),
// and workers drain a parked ticket once its row is free
// (src/queue/drainParked.ts). Parking happens before the lane's job completes, so a crash never
// loses a parked command; a command parked twice (its job re-delivered) is applied once — the
// ledger sees to that.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { type CommandJob, commandJobSchema } from './jobs.js';
import { redisKeys } from './keys.js';
import { runScript } from './scripts.js';

export interface ParkedCommand {
  job: CommandJob;
  /** When its ticket is next tried (ms). */
  nextTryAt: number;
}

export class ParkedCommands {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /**
   * Parks `commands` (of tickets found locked, or with commands parked already), appended in
   * order behind what their ticket has parked; a newly parked ticket is tried at `nextTryAt`.
   */
  async park(commands: CommandJob[], nextTryAt: number): Promise<void> {
    if (commands.length === 0) return;
    const byTicket = new Map<number, CommandJob[]>();
    for (const job of commands) byTicket.set(job.command.ticketId, [...(byTicket.get(job.command.ticketId) ?? []), job]);
    const args: Array<string | number> = [nextTryAt];
    for (const [ticketId, jobs] of byTicket) {
      args.push(ticketId, jobs.length);
      for (const job of jobs) args.push(job.commandId, JSON.stringify(job));
    }
    await runScript(
      this.redis,
      'parkCommands',
      [this.keys.parkedTickets, this.keys.parkedIndex, ...[...byTicket.keys()].map((t) => this.keys.parkedCommands(t))],
      args,
    );
  }

  /**
   * Which of these tickets have commands parked: a lane's command for one of them waits behind
   * them. One call, no payload. (Only a ticket's own lane parks it, so the answer cannot turn
   * from "no" to "yes" while that lane's command is being applied.)
   */
  async parkedAmong(ticketIds: number[]): Promise<Set<number>> {
    if (ticketIds.length === 0) return new Set();
    const found = (await runScript(this.redis, 'parkedAmong', [this.keys.parkedTickets], ticketIds)) as string[];
    return new Set(found.map(Number));
  }

  /** Parked tickets due for a try at `now`, oldest due first. */
  async due(now: number, limit: number): Promise<number[]> {
    const tickets = await this.redis.zrangebyscore(this.keys.parkedTickets, '-inf', now, 'LIMIT', 0, limit);
    return tickets.map(Number);
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
    const entries = await this.redis.lrange(this.keys.parkedCommands(ticketId), 0, count - 1);
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
    return Number(
      await runScript(
        this.redis,
        'settleParked',
        [this.keys.parkedTickets, this.keys.parkedIndex, this.keys.parkedCommands(ticketId)],
        [ticketId, nextTryAt, ...finished],
      ),
    );
  }

  /** A parked command by its id, or null when it is not parked. */
  async find(commandId: string): Promise<ParkedCommand | null> {
    const ticket = await this.redis.hget(this.keys.parkedIndex, commandId);
    if (ticket === null) return null;
    const [entries, score] = await Promise.all([
      this.redis.lrange(this.keys.parkedCommands(Number(ticket)), 0, -1),
      this.redis.zscore(this.keys.parkedTickets, ticket),
    ]);
    const entry = entries.find((e) => e.includes(commandId));
    if (entry === undefined) return null;
    const job = commandJobSchema.parse(JSON.parse(entry));
    return job.commandId === commandId ? { job, nextTryAt: Number(score ?? Date.now()) } : null;
  }

  /** For each command id, whether it is parked. */
  async holding(commandIds: string[]): Promise<boolean[]> {
    if (commandIds.length === 0) return [];
    const tickets = await this.redis.hmget(this.keys.parkedIndex, ...commandIds);
    return tickets.map((t) => t !== null);
  }

  /** How many tickets are parked, and how many commands wait with them. */
  async counts(): Promise<{ tickets: number; commands: number }> {
    const [tickets, commands] = await Promise.all([
      this.redis.zcard(this.keys.parkedTickets),
      this.redis.hlen(this.keys.parkedIndex),
    ]);
    return { tickets, commands };
  }
}
