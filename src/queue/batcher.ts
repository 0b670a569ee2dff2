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

/** Commands that go into one batch together: one command, or a lane's run (submitRun). */
type Unit = Waiting[];

/** Why a ticket's later commands of a batch, and those still waiting, were not applied. */
type Stop = { kind: 'locked' } | { kind: 'error'; error: unknown };

/**
 * Folds the commands the lanes hand over into batches, one transaction each. With a free
 * transaction slot a command goes at once (after `lingerMs`, default 0): a lone command is not
 * held back. Under load, commands gather while earlier batches commit, so batches grow with
 * the load — group commit. A batch that fails for a reason other than a transient MySQL
 * error is split, so one poisoned command fails alone and its batch-mates still apply.
 *
 * A ticket's commands take effect in the order they were submitted: a batch never starts with
 * a ticket that a batch in flight holds (its commands wait for the next batch, and so do the
 * ticket's later ones), and when a ticket turns out to be locked by another session, or one of
 * its commands fails with an error, its later commands are answered `locked`, or rejected with
 * that error — none may overtake the one that did not apply. A run (submitRun) goes into one
 * batch whole, so it commits, or fails, together.
 */
export class Batcher {
  private waiting: Unit[] = [];
  private waitingCommands = 0;
  private readonly busyTickets = new Set<number>();
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly apply: (batch: Submission[]) => Promise<ApplyResult[]>,
    private readonly options: BatcherOptions,
    private readonly onBatch: (size: number) => void = () => {},
  ) {}

  submit(submission: Submission): Promise<ApplyResult> {
    return this.submitRun([submission])[0] as Promise<ApplyResult>;
  }

  /**
   * Submits commands to be applied in one batch, in this order (at most `maxCommands` of them):
   * a lane's job and the commands waiting behind it. One promise per command.
   */
  submitRun(submissions: Submission[]): Array<Promise<ApplyResult>> {
    if (submissions.length > this.options.maxCommands) throw new RangeError(`a run of ${submissions.length} commands`);
    const unit: Unit = [];
    const results = submissions.map(
      (submission) =>
        new Promise<ApplyResult>((resolve, reject) => {
          unit.push({ submission, ticketId: submission.job.command.ticketId, resolve, reject });
        }),
    );
    if (unit.length === 0) return results;
    this.waiting.push(unit);
    this.waitingCommands += unit.length;
    this.schedule();
    return results;
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    const full = this.waitingCommands >= this.options.maxCommands;
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
   * batch in flight holds, and every run that does not fit whole (with its tickets' later commands).
   */
  private take(): Waiting[] {
    const batch: Waiting[] = [];
    const left: Unit[] = [];
    const passedOver = new Set<number>();
    for (const unit of this.waiting) {
      const blocked = unit.some((w) => this.busyTickets.has(w.ticketId) || passedOver.has(w.ticketId));
      const fits = batch.length === 0 || batch.length + unit.length <= this.options.maxCommands;
      if (blocked || !fits) {
        for (const w of unit) passedOver.add(w.ticketId);
        left.push(unit);
      } else batch.push(...unit);
    }
    this.waiting = left;
    this.waitingCommands -= batch.length;
    return batch;
  }

  private async run(batch: Waiting[]): Promise<void> {
    const stopped = new Map<number, Stop>();
    try {
      const results = await this.apply(batch.map((w) => w.submission));
      for (const [i, w] of batch.entries()) {
        w.resolve(results[i] as ApplyResult);
        if (results[i]?.status === 'locked') stopped.set(w.ticketId, { kind: 'locked' });
      }
    } catch (error) {
      if (batch.length === 1 || isTransient(error)) {
        for (const w of batch) {
          w.reject(error);
          stopped.set(w.ticketId, { kind: 'error', error });
        }
      } else {
        // One at a time, in order; a ticket found locked, or failing, on the way keeps its later commands back.
        for (const w of batch) {
          const stop = stopped.get(w.ticketId);
          if (stop) answer(w, stop);
          else {
            const found = await this.runOne(w);
            if (found) stopped.set(w.ticketId, found);
          }
        }
      }
    }
    this.stopWaiting(stopped);
  }

  private async runOne(w: Waiting): Promise<Stop | null> {
    try {
      const [result] = await this.apply([w.submission]);
      w.resolve(result as ApplyResult);
      return result?.status === 'locked' ? { kind: 'locked' } : null;
    } catch (error) {
      w.reject(error);
      return { kind: 'error', error };
    }
  }

  /** Commands of a stopped ticket still waiting come after the one stopped: they wait with it. */
  private stopWaiting(stopped: Map<number, Stop>): void {
    if (stopped.size === 0) return;
    const left: Unit[] = [];
    for (const unit of this.waiting) {
      const kept: Unit = [];
      for (const w of unit) {
        const stop = stopped.get(w.ticketId);
        if (stop) answer(w, stop);
        else kept.push(w);
      }
      this.waitingCommands -= unit.length - kept.length;
      if (kept.length > 0) left.push(kept);
    }
    this.waiting = left;
  }
}

function answer(w: Waiting, stop: Stop): void {
  if (stop.kind === 'locked') w.resolve({ status: 'locked' });
  else w.reject(stop.error);
}
