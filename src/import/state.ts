import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * What lets an interrupted import resume without sending a line twice: the file's digest and
 * the last line up to which every line has been answered by the service. Lines after it are
 * sent again on resume; their idempotency keys (file digest + line number) make the service
 * answer them as the commands they already are.
 */
export interface ImportState {
  sha256: string;
  answeredThrough: number;
  /** Tallies of the lines up to answeredThrough. */
  totals: Totals;
  /** Commands of those lines queued but not yet known to be applied: [command id, line]. */
  pending: Array<[string, number]>;
}

export interface Totals {
  read: number;
  queued: number;
  applied: number;
  rejected: number;
  duplicates: number;
}

export const emptyTotals = (): Totals => ({ read: 0, queued: 0, applied: 0, rejected: 0, duplicates: 0 });

export function statePath(file: string): string {
  return `${file}.import-state.json`;
}

export function loadState(file: string, sha256: string): ImportState | null {
  const path = statePath(file);
  if (!existsSync(path)) return null;
  const state = JSON.parse(readFileSync(path, 'utf8')) as ImportState;
  return state.sha256 === sha256 ? state : null;
}

/** Written atomically (temp file, then rename), so a crash never leaves half a state file. */
export function saveState(file: string, state: ImportState): void {
  const path = statePath(file);
  writeFileSync(`${path}.tmp`, JSON.stringify(state));
  renameSync(`${path}.tmp`, path);
}

/** One batch's tallies; folded into the saved totals once every line up to it is answered. */
export interface Tally extends Totals {
  folded: boolean;
}

export const newTally = (): Tally => ({ ...emptyTotals(), folded: false });

/**
 * The highest line such that every line up to it is answered, from batches answered in any
 * order; each batch's tally joins `totals` when its lines join that prefix, so the saved
 * totals describe exactly the lines a resumed import will not send again.
 */
export class AnsweredLines {
  private readonly done = new Map<number, { last: number; tally: Tally }>(); // first line → batch

  constructor(
    private through: number,
    readonly totals: Totals,
  ) {}

  add(first: number, last: number, tally: Tally): void {
    this.done.set(first, { last, tally });
    for (let next = this.done.get(this.through + 1); next !== undefined; next = this.done.get(this.through + 1)) {
      this.done.delete(this.through + 1);
      this.through = next.last;
      for (const key of Object.keys(this.totals) as Array<keyof Totals>) this.totals[key] += next.tally[key];
      next.tally.folded = true;
    }
  }

  get answeredThrough(): number {
    return this.through;
  }

  /** Saved totals plus the tallies of batches answered beyond them: what to show. */
  live(): Totals {
    const live = { ...this.totals };
    for (const { tally } of this.done.values())
      for (const key of Object.keys(live) as Array<keyof Totals>) live[key] += tally[key];
    return live;
  }
}
