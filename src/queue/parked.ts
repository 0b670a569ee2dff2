// Commands parked behind a ticket row another session holds locked (an agent's long transaction,
// a report): kept in Redis, per ticket and in acceptance order, so the lane they came from goes
// on with its other tickets while this one waits. A lane's later commands for a parked ticket are
// diverted behind the parked ones, and workers drain a parked ticket once its row is free
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

  /** Parks `commands` (of tickets found locked); a newly parked ticket is tried again at `nextTryAt`. */
  async park(commands: CommandJob[], nextTryAt: number): Promise<void> {
    await this.append('park', commands, nextTryAt);
  }

  /** Parks those of `commands` whose ticket is parked already; answers their ids. */
  async divert(commands: CommandJob[]): Promise<Set<string>> {
    return this.append('divert', commands, 0);
  }

  private async append(mode: 'park' | 'divert', commands: CommandJob[], nextTryAt: number): Promise<Set<string>> {
    if (commands.length === 0) return new Set();
    const byTicket = new Map<number, CommandJob[]>();
    for (const job of commands) byTicket.set(job.command.ticketId, [...(byTicket.get(job.command.ticketId) ?? []), job]);
    const args: Array<string | number> = [mode, nextTryAt];
    for (const [ticketId, jobs] of byTicket) {
      args.push(ticketId, jobs.length);
      for (const job of jobs) args.push(job.commandId, JSON.stringify(job));
    }
    const appended = (await runScript(
      this.redis,
      'parkCommands',
      [this.keys.parkedTickets, this.keys.parkedIndex, ...[...byTicket.keys()].map((t) => this.keys.parkedCommands(t))],
      args,
    )) as string[];
    return new Set(appended);
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
