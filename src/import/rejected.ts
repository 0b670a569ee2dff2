// The file of refused lines beside an import's file: one JSON line per refused line, with its
// line number, HTTP status, message and item. It describes one import — one content of the
// file, over every run that resumed it — and nothing else:
// - a run that starts an import (no state, or the file's content changed) starts it afresh;
// - a resumed run keeps what earlier runs wrote about lines it will not send again (up to the
//   saved answeredThrough, less the commands still pending, whose outcome it reads again), so a
//   line refused once is there once however often the import was interrupted;
// - a dry run writes FILE.dry-run.rejected.ndjson, started afresh by each dry run.
import { once } from 'node:events';
import { appendFileSync, createReadStream, createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';

export function rejectedPath(file: string, dryRun: boolean): string {
  return `${file}${dryRun ? '.dry-run' : ''}.rejected.ndjson`;
}

export interface Rejection {
  line: number;
  http_status: number;
  message: string;
  item: unknown;
}

export class RejectedLines {
  private count: number;

  private constructor(
    readonly path: string,
    kept: number,
  ) {
    this.count = kept;
  }

  /**
   * Opens the file for a run: emptied for a fresh one (`resume` null), or cut back to the lines
   * the resumed run will not answer again.
   */
  static async open(path: string, resume: { through: number; pendingLines: Set<number> } | null): Promise<RejectedLines> {
    if (resume === null || !existsSync(path)) {
      rmSync(path, { force: true });
      return new RejectedLines(path, 0);
    }
    const kept = await keepOnly(path, (entry) => entry.line <= resume.through && !resume.pendingLines.has(entry.line));
    return new RejectedLines(path, kept);
  }

  write(rejection: Rejection): void {
    appendFileSync(this.path, `${JSON.stringify(rejection)}\n`);
    this.count++;
  }

  /** Whether the file holds any line (written by this run or kept from the runs before it). */
  get written(): boolean {
    return this.count > 0;
  }
}

/** Rewrites the file with the entries `keep` accepts (streamed: it may be large); resolves with how many. */
async function keepOnly(path: string, keep: (entry: Rejection) => boolean): Promise<number> {
  const kept = `${path}.tmp`;
  const out = createWriteStream(kept);
  let count = 0;
  for await (const text of createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })) {
    let entry: Rejection;
    try {
      entry = JSON.parse(text) as Rejection;
    } catch {
      continue; // a line cut short by a crash
    }
    if (!keep(entry)) continue;
    count++;
    if (!out.write(`${text}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  renameSync(kept, path);
  return count;
}
