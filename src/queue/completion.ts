// How an intake waiting on `Prefer: wait` learns a command finished: the worker publishes the
// outcomes on one Redis channel, only for commands whose client is (or may be) waiting, one
// message for all such commands of a batch. A missed message (Redis restarting) only means the
// client gets 202 and asks commands.php. On a Redis Cluster a PUBLISH reaches the subscribers of
// every node, so an intake hears the notices whichever node its subscription went to.
import { z } from 'zod';
import type { Outcome } from '../apply/ledger.js';
import { keyLayoutOf } from './cluster.js';
import { redisKeys } from './keys.js';
import type { RedisClient } from './redis.js';

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

export async function publishCompletions(redis: RedisClient, prefix: string, notices: Notice[]): Promise<void> {
  if (notices.length === 0) return;
  await redis.publish(redisKeys(prefix, keyLayoutOf(redis)).completions, JSON.stringify(notices));
}

type Listener = (outcome: Outcome) => void;

/**
 * The intake's subscription to completion notices. Any number of requests may wait on one
 * command (an original request and its retries): each registers its own listener and removes
 * only its own, as BullMQ's Job.waitUntilFinished does.
 */
export class CompletionWaiter {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly ready: Promise<unknown>;

  constructor(subscriber: RedisClient, prefix: string) {
    this.ready = subscriber.subscribe(redisKeys(prefix, keyLayoutOf(subscriber)).completions);
    subscriber.on('message', (_channel, message) => {
      const notices = noticesSchema.safeParse(safeJson(message));
      if (!notices.success) return;
      for (const { commandId, outcome } of notices.data) {
        for (const listener of [...(this.listeners.get(commandId) ?? [])]) listener(outcome);
      }
    });
  }

  /** Number of listeners registered (for tests of the waiter's bookkeeping). */
  get listening(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  private listen(commandId: string, listener: Listener): () => void {
    let set = this.listeners.get(commandId);
    if (!set) {
      set = new Set();
      this.listeners.set(commandId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(commandId) === set) this.listeners.delete(commandId);
    };
  }

  /**
   * expect() for many commands with one deadline: resolves with the outcomes that arrived, once
   * all have or the time is up.
   */
  async expectMany(commandIds: string[], timeoutMs: number): Promise<{ result: Promise<Map<string, Outcome>>; cancel(): void }> {
    await this.ready;
    const outcomes = new Map<string, Outcome>();
    const unlisten: Array<() => void> = [];
    let timer: NodeJS.Timeout | undefined;
    let finish: () => void = () => {};
    const result = new Promise<Map<string, Outcome>>((resolve) => {
      finish = () => {
        clearTimeout(timer);
        for (const stop of unlisten.splice(0)) stop();
        resolve(outcomes);
      };
      timer = setTimeout(finish, timeoutMs);
      const wanted = new Set(commandIds);
      for (const id of wanted) {
        unlisten.push(
          this.listen(id, (outcome) => {
            outcomes.set(id, outcome);
            if (outcomes.size === wanted.size) finish();
          }),
        );
      }
      if (wanted.size === 0) finish();
    });
    return { result, cancel: finish };
  }

  /**
   * Registers interest before the command is enqueued (so a fast worker cannot finish
   * unseen); `result` resolves with the outcome, or null after timeoutMs (or on cancel).
   */
  async expect(commandId: string, timeoutMs: number): Promise<{ result: Promise<Outcome | null>; cancel(): void }> {
    const waiting = await this.expectMany([commandId], timeoutMs);
    return { result: waiting.result.then((outcomes) => outcomes.get(commandId) ?? null), cancel: waiting.cancel };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
