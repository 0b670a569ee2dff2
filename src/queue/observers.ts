// The subscribers to a worker's command events: the log lines, the metrics, and the completion
// notices an intake waiting on `Prefer: wait` listens for.
import type { Logger } from 'pino';
import type { ServiceMetrics } from '../metrics/registry.js';
import { type Notice, publishCompletions } from './completion.js';
import type { CommandEvents } from './events.js';
import type { PendingCommands } from './pending.js';
import type { RedisClient } from './redis.js';

export function logCommandEvents(events: CommandEvents, logger: Logger): void {
  events.on('finished', ({ commands, outcomes, applyMs }) => {
    // A line per command is built only when it will be written (the hot path at LOG_LEVEL=warn).
    if (!logger.isLevelEnabled('info')) return;
    const now = Date.now();
    for (const [i, outcome] of outcomes.entries()) {
      const job = commands[i];
      if (!job) continue;
      logger.info(
        {
          commandId: job.commandId,
          ticketId: job.command.ticketId,
          outcome: outcome.status,
          ...(outcome.status === 'applied' ? { insertId: outcome.insertId } : { failure: outcome.failure }),
          applyMs,
          lagMs: now - job.acceptedAt,
        },
        outcome.repeat ? 'command already finished' : outcome.status === 'applied' ? 'command applied' : 'command failed',
      );
    }
  });
  events.on('retrying', ({ jobId, commands, attempts, nextTryAt, kind, error }) =>
    logger.warn({ jobId, commands, attempts, nextTryAt, kind, lastError: error.message }, 'command will be retried'),
  );
  events.on('deadLettered', ({ jobId, commands, error }) =>
    logger.error({ jobId, commands, err: error.message }, 'command moved to dead letters'),
  );
  events.on('parked', ({ commands }) => {
    if (!logger.isLevelEnabled('info')) return;
    logger.info(
      { tickets: [...new Set(commands.map((c) => c.command.ticketId))], commands: commands.length },
      'commands parked behind a ticket row another session holds; the lane goes on',
    );
  });
}

export function countCommandEvents(events: CommandEvents, metrics: ServiceMetrics): void {
  events.on('finished', ({ commands, outcomes }) => {
    const now = Date.now();
    for (const [i, outcome] of outcomes.entries()) metrics.commandFinished(outcome, now - (commands[i]?.acceptedAt ?? now));
  });
  events.on('retrying', ({ commands, error }) => metrics.commandsRetried(error, commands));
  events.on('deadLettered', ({ commands }) => metrics.commandsDeadLettered(commands));
  events.on('parked', ({ commands }) => metrics.commandsParked(commands.length));
}

/** Publishes the outcomes of commands whose client is (or may be) waiting, one message per apply. */
export function announceCompletions(events: CommandEvents, publisher: RedisClient, prefix: string): void {
  events.on('finished', ({ commands, outcomes }) => {
    const notices: Notice[] = [];
    for (const [i, outcome] of outcomes.entries()) {
      const job = commands[i];
      if (job?.announce) notices.push({ commandId: job.commandId, outcome });
    }
    void publishCompletions(publisher, prefix, notices).catch(() => {});
  });
}

/** Takes finished commands off their key's pending list for read.php (a hint: a read filters it too). */
export function forgetPending(events: CommandEvents, pending: PendingCommands): void {
  events.on('finished', ({ commands }) => {
    void pending.forgetSoon(commands).catch(() => {});
  });
}
