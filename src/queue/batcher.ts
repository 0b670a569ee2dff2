import type { Submission } from '../apply/applyBatch.js';
import { classify } from '../apply/classify.js';
import type { Outcome } from '../apply/ledger.js';

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
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

/**
 * Folds the commands the lanes hand over into batches, one transaction each. With a free
 * transaction slot a command goes at once (after `lingerMs`, default 0): a lone command is not
 * held back. Under load, commands gather while earlier batches commit, so batches grow with
 * the load — group commit. A batch that fails for a reason other than a transient MySQL
 * error is split, so one poisoned command fails alone and its batch-mates still apply.
 */
export class Batcher {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly apply: (batch: Submission[]) => Promise<Outcome[]>,
    private readonly options: BatcherOptions,
    private readonly onBatch: (size: number) => void = () => {},
  ) {}

  submit(submission: Submission): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ submission, resolve, reject });
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
    const batch = this.waiting.splice(0, this.options.maxCommands);
    if (batch.length === 0) return;
    this.inFlight++;
    this.onBatch(batch.length);
    this.run(batch).finally(() => {
      this.inFlight--;
      this.schedule();
    });
    this.schedule();
  }

  private async run(batch: Waiting[]): Promise<void> {
    try {
      const outcomes = await this.apply(batch.map((w) => w.submission));
      for (const [i, w] of batch.entries()) w.resolve(outcomes[i] as Outcome);
    } catch (error) {
      const transient = classify(error).error.name === 'TransientDbError';
      if (batch.length === 1 || transient) {
        for (const w of batch) w.reject(error);
        return;
      }
      for (const w of batch) await this.run([w]);
    }
  }
}
