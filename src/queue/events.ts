// What happens to commands in a worker, as typed events (the pattern of graphile-worker's
// WorkerEventMap): the consumer and the parked-ticket drainer emit them; logs, metrics and
// completion notices subscribe (src/queue/observers.ts) instead of being woven into the retry
// loops. A listener that throws is logged and never breaks the path that emitted.
import type { Logger } from 'pino';
import type { Outcome } from '../apply/ledger.js';
import type { CommandJob } from './jobs.js';

export interface CommandEventMap {
  /** Commands finished by one apply: their outcomes in order, and how long the apply took. */
  finished: { commands: CommandJob[]; outcomes: Outcome[]; applyMs: number };
  /** A job's commands met an error that costs an attempt; they are tried again at nextTryAt. */
  retrying: { jobId: string; commands: number; attempts: number; nextTryAt: number; kind: string; error: Error };
  /** A job gave up after its last attempt: its unapplied commands are now a dead letter. */
  deadLettered: { jobId: string; commands: number; error: Error };
  /** Commands set aside behind a ticket row another session holds (or behind commands parked so). */
  parked: { commands: CommandJob[] };
}

type Listener<K extends keyof CommandEventMap> = (event: CommandEventMap[K]) => void;

export class CommandEvents {
  private readonly listeners = new Map<keyof CommandEventMap, Array<(event: never) => void>>();

  constructor(private readonly logger: Logger) {}

  on<K extends keyof CommandEventMap>(name: K, listener: Listener<K>): this {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener as (event: never) => void]);
    return this;
  }

  emit<K extends keyof CommandEventMap>(name: K, event: CommandEventMap[K]): void {
    for (const listener of (this.listeners.get(name) ?? []) as Array<Listener<K>>) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: (error as Error).message, event: name }, 'a command event listener failed');
      }
    }
  }
}
