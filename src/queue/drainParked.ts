// Drains parked tickets (src/queue/parked.ts): every worker process looks for tickets due for a
// try, takes a lease on one (so no two workers drain it at once), and applies its parked commands
// in order through the same batches as everything else. Those that find the row free again are
// applied and leave the list; from the first that finds it still locked on, they stay, and the
// ticket is tried again a little later. When the list is empty the ticket is unparked and its
// lane's commands apply directly again.
import type { Logger } from 'pino';
import type { ApplyResult } from '../apply/applyBatch.js';
import { classify } from '../apply/classify.js';
import type { Outcome } from '../apply/ledger.js';
import type { MysqlAvailability } from '../db/availability.js';
import type { Batcher } from './batcher.js';
import type { CommandEvents } from './events.js';
import type { CommandJob } from './jobs.js';
import type { ParkedCommands } from './parked.js';
import { isRedisConnectionError } from './redis.js';

export interface DrainOptions {
  /** How often to look for parked tickets due for a try (ms). */
  pollMs: number;
  /** How soon a ticket still locked is tried again (ms). */
  retryMs: number;
  /** Most commands of one ticket tried at once. */
  maxCommands: number;
  /** How long a worker's lease on a ticket lasts if it dies while draining (ms). */
  leaseMs: number;
  /** Tickets drained at once. */
  concurrency: number;
  logger: Logger;
}

export class ParkedDrainer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly parked: ParkedCommands,
    private readonly batcher: Batcher,
    private readonly availability: MysqlAvailability,
    private readonly events: CommandEvents,
    private readonly options: DrainOptions,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** Stops looking; a drain in progress finishes its batch first. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((error: Error) =>
          // Redis being away is said once by its connection's watcher (redis.ts), not every poll.
          this.options.logger[isRedisConnectionError(error) ? 'debug' : 'warn'](
            { err: error.message },
            'could not look for parked tickets',
          ),
        )
        .then((busy) => {
          this.running = null;
          this.schedule(busy === true ? 0 : this.options.pollMs);
        });
    }, ms);
  }

  /** One round over the tickets due now; true when there may be more to do at once. */
  private async tick(): Promise<boolean> {
    const due = await this.parked.due(Date.now(), this.options.concurrency);
    if (due.length === 0) return false;
    const drained = await Promise.all(due.map((ticketId) => this.drain(ticketId)));
    return drained.some(Boolean);
  }

  /** Tries one ticket's parked commands; true when some finished (there may be more). */
  private async drain(ticketId: number): Promise<boolean> {
    const token = await this.parked.lease(ticketId, this.options.leaseMs);
    if (token === null) return false;
    try {
      const entries = await this.parked.head(ticketId, this.options.maxCommands);
      const unreadable = entries.indexOf(null);
      if (unreadable === 0) {
        this.options.logger.error({ ticketId }, 'a parked command could not be read and was dropped');
        await this.parked.settle(ticketId, ['(unreadable)'], Date.now());
        return true;
      }
      const commands = (unreadable < 0 ? entries : entries.slice(0, unreadable)) as CommandJob[];
      let results: ApplyResult[];
      const started = performance.now();
      try {
        results = await Promise.all(commands.map((job) => this.batcher.submit({ job, attempts: 1, parked: true })));
      } catch (error) {
        const verdict = classify(error);
        if (verdict.kind === 'outage') await this.availability.afterError(verdict.error, this.abort.signal);
        else this.options.logger.warn({ ticketId, err: verdict.error.message }, 'parked commands will be tried again');
        await this.parked.settle(ticketId, [], Date.now() + this.options.retryMs);
        return false;
      }
      const firstLocked = results.findIndex((r) => r.status === 'locked');
      const finished = firstLocked < 0 ? commands.length : firstLocked;
      this.events.emit('finished', {
        commands: commands.slice(0, finished),
        outcomes: results.slice(0, finished) as Outcome[],
        applyMs: Math.round((performance.now() - started) * 10) / 10,
      });
      const nextTryAt = Date.now() + (firstLocked < 0 ? 0 : this.options.retryMs);
      await this.parked.settle(
        ticketId,
        commands.slice(0, finished).map((c) => c.commandId),
        nextTryAt,
      );
      return finished > 0;
    } finally {
      await this.parked.releaseLease(ticketId, token).catch(() => {});
    }
  }
}
