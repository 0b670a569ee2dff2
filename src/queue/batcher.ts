import type { ApplyResult, Submission } from '../apply/applyBatch.js';
import { isTransient } from '../apply/classify.js';

export interface BatcherOptions {
  /** Most commands in one transaction. */
  maxCommands: number;
  /** Transactions in flight at once. */
  maxInFlight: number;
  /** How long a batch may wait for more commands once a transaction slot is free (ms). */
  lingerMs: number;
}

interface Waiting {
  submission: Submission;
  ticketId: number;
  resolve(result: ApplyResult): void;
  reject(error: unknown): void;
}

/**
 * Folds the commands the lanes hand over into batches, one transaction each. With a free
 * transaction slot a command goes at once (after `lingerMs`, default 0): a lone command is not
 * held back. Under load, commands gather while earlier batches commit, so batches grow with
 * the load — group commit. A batch that fails for a reason other than a transient MySQL
 * error is split, so one poisoned command fails alone and its batch-mates still apply.
 *
 * A ticket's commands take effect in the order they were submitted: a batch never starts with
 * a ticket that a batch in flight holds (its commands wait for the next batch, and so do the
 * ticket's later ones), and when a ticket turns out to be locked by another session, its
 * commands still waiting are answered `locked` as well — none may overtake the locked one.
 */
export class Batcher {
  private waiting: Waiting[] = [];
  private readonly busyTickets = new Set<number>();
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly apply: (batch: Submission[]) => Promise<ApplyResult[]>,
    private readonly options: BatcherOptions,
    private readonly onBatch: (size: number) => void = () => {},
  ) {}

  submit(submission: Submission): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ submission, ticketId: submission.job.command.ticketId, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    const full = this.waiting.length >= this.options.maxCommands;
    if (this.options.lingerMs > 0 && !full) setTimeout(() => this.flush(), this.options.lingerMs);
    else setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.take();
    if (batch.length === 0) return;
    const tickets = new Set(batch.map((w) => w.ticketId));
    for (const ticket of tickets) this.busyTickets.add(ticket);
    this.inFlight++;
    this.onBatch(batch.length);
    this.run(batch).finally(() => {
      for (const ticket of tickets) this.busyTickets.delete(ticket);
      this.inFlight--;
      this.schedule();
    });
    this.schedule();
  }

  /**
   * The next batch, in submission order, leaving behind (in order) every command of a ticket a
   * batch in flight holds.
   */
  private take(): Waiting[] {
    const batch: Waiting[] = [];
    const left: Waiting[] = [];
    const passedOver = new Set<number>();
    for (const w of this.waiting) {
      if (batch.length >= this.options.maxCommands || this.busyTickets.has(w.ticketId) || passedOver.has(w.ticketId)) {
        passedOver.add(w.ticketId);
        left.push(w);
      } else batch.push(w);
    }
    this.waiting = left;
    return batch;
  }

  private async run(batch: Waiting[]): Promise<void> {
    try {
      const results = await this.apply(batch.map((w) => w.submission));
      for (const [i, w] of batch.entries()) w.resolve(results[i] as ApplyResult);
      this.answerLocked(new Set(batch.filter((_, i) => results[i]?.status === 'locked').map((w) => w.ticketId)));
    } catch (error) {
      if (batch.length === 1 || isTransient(error)) {
        for (const w of batch) w.reject(error);
        return;
      }
      // One at a time, in order; a ticket found locked on the way keeps its later commands back.
      const locked = new Set<number>();
      for (const w of batch) {
        if (locked.has(w.ticketId)) w.resolve({ status: 'locked' });
        else if ((await this.runOne(w)) === 'locked') locked.add(w.ticketId);
      }
      this.answerLocked(locked);
    }
  }

  private async runOne(w: Waiting): Promise<ApplyResult['status'] | 'error'> {
    try {
      const [result] = await this.apply([w.submission]);
      w.resolve(result as ApplyResult);
      return (result as ApplyResult).status;
    } catch (error) {
      w.reject(error);
      return 'error';
    }
  }

  /** Commands of a locked ticket still waiting come after the locked one: they wait with it. */
  private answerLocked(tickets: Set<number>): void {
    if (tickets.size === 0) return;
    const left: Waiting[] = [];
    for (const w of this.waiting) {
      if (tickets.has(w.ticketId)) w.resolve({ status: 'locked' });
      else left.push(w);
    }
    this.waiting = left;
  }
}
