import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Outcome } from '../apply/ledger.js';

/**
 * How an intake waiting on `Prefer: wait` learns a command finished: the worker publishes
 * the outcomes on one Redis channel, only for commands whose client is (or may be) waiting,
 * one message for all such commands of a batch. A missed message (Redis restarting) only
 * means the client gets 202 and asks commands.php.
 */
const noticesSchema = z.array(
  z.object({
    commandId: z.string(),
    outcome: z.union([
      z.object({ status: z.literal('applied'), insertId: z.number() }),
      z.object({ status: z.literal('failed'), failure: z.object({ status: z.number(), message: z.string() }) }),
    ]),
  }),
);

export type Notice = { commandId: string; outcome: Outcome };

export const completionChannel = (prefix: string) => `${prefix}:replyqueue:done`;

export async function publishCompletions(redis: Redis, prefix: string, notices: Notice[]): Promise<void> {
  if (notices.length === 0) return;
  await redis.publish(completionChannel(prefix), JSON.stringify(notices));
}

export class CompletionWaiter {
  private readonly waiting = new Map<string, (outcome: Outcome) => void>();
  private readonly ready: Promise<unknown>;

  constructor(subscriber: Redis, prefix: string) {
    this.ready = subscriber.subscribe(completionChannel(prefix));
    subscriber.on('message', (_channel, message) => {
      const notices = noticesSchema.safeParse(safeJson(message));
      if (!notices.success) return;
      for (const { commandId, outcome } of notices.data) this.waiting.get(commandId)?.(outcome);
    });
  }

  /**
   * expect() for many commands with one deadline: resolves with the outcomes that arrived, once
   * all have or the time is up.
   */
  async expectMany(commandIds: string[], timeoutMs: number): Promise<{ result: Promise<Map<string, Outcome>>; cancel(): void }> {
    await this.ready;
    const outcomes = new Map<string, Outcome>();
    let timer: NodeJS.Timeout | undefined;
    let finish: () => void = () => {};
    const result = new Promise<Map<string, Outcome>>((resolve) => {
      finish = () => {
        clearTimeout(timer);
        for (const id of commandIds) this.waiting.delete(id);
        resolve(outcomes);
      };
      timer = setTimeout(finish, timeoutMs);
      for (const id of commandIds) {
        this.waiting.set(id, (outcome) => {
          outcomes.set(id, outcome);
          if (outcomes.size === commandIds.length) finish();
        });
      }
      if (commandIds.length === 0) finish();
    });
    return { result, cancel: finish };
  }

  /**
   * Registers interest before the command is enqueued (so a fast worker cannot finish
   * unseen); `result` resolves with the outcome, or null after timeoutMs.
   */
  async expect(commandId: string, timeoutMs: number): Promise<{ result: Promise<Outcome | null>; cancel(): void }> {
    await this.ready;
    let timer: NodeJS.Timeout | undefined;
    const result = new Promise<Outcome | null>((resolve) => {
      const finish = (outcome: Outcome | null) => {
        clearTimeout(timer);
        this.waiting.delete(commandId);
        resolve(outcome);
      };
      timer = setTimeout(() => finish(null), timeoutMs);
      this.waiting.set(commandId, finish);
    });
    return {
      result,
      cancel: () => {
        clearTimeout(timer);
        this.waiting.delete(commandId);
      },
    };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
