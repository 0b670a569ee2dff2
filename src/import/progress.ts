import cliProgress from 'cli-progress';
import type { ImportSummary, Progress } from './run.js';

/**
 * Progress for a person at a terminal (a bar with lines/s and ETA), or plain periodic lines when
 * the output is not a terminal (CI logs, redirected output).
 */
export function progressReporter(stream: NodeJS.WriteStream): { report(p: Progress): void; stop(): void } {
  const started = Date.now();
  let firstDone: number | null = null;
  const speed = (p: Progress) => {
    firstDone ??= p.linesDone;
    const seconds = (Date.now() - started) / 1000;
    return seconds > 0 ? Math.round((p.linesDone - firstDone) / seconds) : 0;
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          '{phase} [{bar}] {percentage}% | {value}/{total} lines | {speed} lines/s | ETA {eta_formatted} | applied {applied} | rejected {rejected}',
        stream,
        etaBuffer: 50,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      report(p) {
        const payload = { phase: p.phase.padEnd(7), speed: speed(p), applied: p.totals.applied, rejected: p.totals.rejected };
        if (!started) {
          bar.start(p.totalLines, p.linesDone, payload);
          started = true;
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
        `${p.phase}: ${p.linesDone}/${p.totalLines} lines, queued ${t.queued}, applied ${t.applied}, rejected ${t.rejected}, duplicates ${t.duplicates}, ${speed(p)} lines/s\n`,
      );
    },
    stop() {},
  };
}

export function summaryText(s: ImportSummary): string {
  const n = (value: number) => value.toLocaleString('en-US');
  return [
    `${s.dryRun ? 'Dry run of' : 'Import of'} ${s.file}${s.resumedFrom > 0 ? ` (resumed after line ${n(s.resumedFrom)})` : ''}${s.interrupted ? ' — interrupted; run the same command again to resume' : ''}`,
    `  read                ${n(s.read)}`,
    ...(s.dryRun
      ? [`  valid               ${n(s.read - s.rejected)}`]
      : [`  queued              ${n(s.queued)}`, `  applied             ${n(s.applied)}`]),
    `  rejected            ${n(s.rejected)}${s.rejectedFile ? `  (reasons in ${s.rejectedFile})` : ''}`,
    ...(s.dryRun ? [] : [`  duplicates skipped  ${n(s.duplicates)}`]),
    `  elapsed             ${s.elapsedSeconds.toFixed(1)} s`,
    `  rows/s              ${n(Math.round(s.rowsPerSecond))}`,
  ].join('\n');
}
