import cliProgress from 'cli-progress';
import type { ImportSummary, Progress } from './run.js';

/**
 * Progress for a person at a terminal (a bar with lines/s and ETA), or plain periodic lines when
 * the output is not a terminal (CI logs, redirected output). Speed and ETA are this run's: lines
 * answered since it started (a resumed import starts where the last run stopped), over the time
 * it has run. The ETA is computed here, not by cli-progress, whose estimate reads NaN or
 * Infinity ("NFs") while nothing moves; until there is a rate to go on it shows "--".
 */
export function progressReporter(stream: NodeJS.WriteStream): { report(p: Progress): void; stop(): void } {
  const started = Date.now();
  let firstDone: number | null = null;
  const rate = (p: Progress) => {
    firstDone ??= p.linesDone;
    const seconds = (Date.now() - started) / 1000;
    return seconds >= 1 ? (p.linesDone - firstDone) / seconds : 0;
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          '{phase} [{bar}] {percentage}% | {value}/{total} lines | {speed} lines/s | ETA {remaining} | applied {applied} | rejected {rejected}',
        stream,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let shown = false;
    return {
      report(p) {
        if (p.totalLines === 0) return; // an empty file: nothing to show a share of
        const perSecond = rate(p);
        const payload = {
          phase: p.phase.padEnd(7),
          speed: Math.round(perSecond),
          // While waiting every line is sent: how long applying takes is not known from here.
          remaining: p.phase === 'waiting' ? '--' : eta(p.totalLines - p.linesDone, perSecond),
          applied: p.totals.applied,
          rejected: p.totals.rejected,
        };
        if (!shown) {
          bar.start(p.totalLines, p.linesDone, payload);
          shown = true;
        } else bar.update(p.linesDone, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  let lastPhase = '';
  return {
    report(p) {
      if (Date.now() - last < 5000 && p.phase === lastPhase) return;
      last = Date.now();
      lastPhase = p.phase;
      const t = p.totals;
      stream.write(
        `${p.phase}: ${p.linesDone}/${p.totalLines} lines, queued ${t.queued}, applied ${t.applied}, rejected ${t.rejected}, duplicates ${t.duplicates}, ${Math.round(rate(p))} lines/s\n`,
      );
    },
    stop() {},
  };
}

/** Time left for `lines` at `perSecond` ("42s", "3m07s", "2h05m"), or "--" while there is no rate to go on. */
export function eta(lines: number, perSecond: number): string {
  if (lines <= 0) return '0s';
  if (!(perSecond > 0)) return '--';
  const seconds = Math.ceil(lines / perSecond);
  if (!Number.isFinite(seconds) || seconds > 100 * 3600) return '--';
  const two = (n: number) => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${two(Math.floor((seconds % 3600) / 60))}m`;
}

/**
 * The summary: the whole import's totals and, for a run that resumed one, what this run did of
 * them; elapsed time and rate are this run's.
 */
export function summaryText(s: ImportSummary): string {
  const n = (value: number) => value.toLocaleString('en-US');
  const resumed = s.resumedFrom > 0;
  const row = (label: string, total: number, thisRun?: number) =>
    `  ${label.padEnd(20)}${n(total)}${resumed && thisRun !== undefined ? ` (${n(thisRun)} in this run)` : ''}`;
  return [
    `${s.dryRun ? 'Dry run of' : 'Import of'} ${s.file}${resumed ? ` (resumed after line ${n(s.resumedFrom)})` : ''}${s.interrupted ? ' — interrupted; run the same command again to resume' : ''}`,
    row('read', s.read, s.thisRun.read),
    ...(s.dryRun
      ? [row('valid', s.read - s.rejected, s.thisRun.read - s.thisRun.rejected)]
      : [row('queued', s.queued, s.thisRun.queued), row('applied', s.applied, s.thisRun.applied)]),
    ...(!s.dryRun && s.notYetApplied > 0
      ? [`${row('not yet applied', s.notYetApplied)}  (queued; the service applies them — run the same command to follow them)`]
      : []),
    `${row('rejected', s.rejected, s.thisRun.rejected)}${s.rejectedFile ? `  (reasons in ${s.rejectedFile})` : ''}`,
    ...(s.dryRun ? [] : [row('duplicates skipped', s.duplicates, s.thisRun.duplicates)]),
    `  elapsed             ${s.elapsedSeconds.toFixed(1)} s${resumed ? ' (this run)' : ''}`,
    `  rows/s              ${n(Math.round(s.rowsPerSecond))}${resumed ? ' (this run)' : ''}`,
  ].join('\n');
}
