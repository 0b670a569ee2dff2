// `npm run cli -- queues`: the queue overview (src/queue/overview.ts) as text for a terminal.
import { KINDS_LIMIT, type QueuesView } from '../queue/overview.js';

/** The overview as an operator reads it in a terminal. */
export function queuesText(view: QueuesView, { top = 10 }: { top?: number | 'all' } = {}): string {
  const all = top === 'all';
  const lines: string[] = [];
  lines.push(`Queue '${view.prefix}': ${view.lanes} lanes, at ${view.at}`);
  if (view.recordedLanes === null) {
    lines.push(`  (no service has used the prefix '${view.prefix}' on this Redis yet: check QUEUE_PREFIX)`);
  } else if (view.recordedLanes !== view.lanes) {
    lines.push(
      `  Warning: the service recorded ${view.recordedLanes} lanes under this prefix, but QUEUE_PARTITIONS is ${view.lanes}; ` +
        `set QUEUE_PARTITIONS=${view.recordedLanes} to see every lane.`,
    );
  }
  lines.push('');
  lines.push(
    table(
      ['state', 'jobs'],
      [
        ['waiting', view.totals.waiting],
        ['active', view.totals.active],
        ['delayed', view.totals.delayed],
        ...(view.totals.prioritized > 0 ? [['prioritized', view.totals.prioritized] as const] : []),
        ['dead letters', view.totals.failed],
      ],
    ),
  );
  lines.push('');
  const kinds = view.kinds
    ? ` (${view.kinds.single} single-command job${view.kinds.single === 1 ? '' : 's'}, ${view.kinds.chunks} chunk${
        view.kinds.chunks === 1 ? '' : 's'
      } of several commands)`
    : ` (not split into single-command jobs and chunks above ${KINDS_LIMIT} jobs)`;
  lines.push(`Not applied yet: ${view.backlog} job${view.backlog === 1 ? '' : 's'}${view.backlog > 0 ? kinds : ''}`);
  lines.push(
    view.oldestWaiting
      ? `Oldest waiting command: ${view.oldestWaiting.commandId} in ${view.oldestWaiting.lane}, accepted ${
          view.oldestWaiting.acceptedAt
        } (${age(view.oldestWaiting.ageSeconds)} ago)`
      : 'Oldest waiting command: none waiting',
  );
  if (view.parked.commands > 0) {
    lines.push(
      `Parked: ${view.parked.commands} command(s) of ${view.parked.tickets} ticket(s) whose row another session holds locked; ` +
        'they apply, in order, once it is released.',
    );
  }
  if (view.pausedLanes.length > 0) lines.push(`Paused lanes: ${view.pausedLanes.join(', ')}`);
  if (view.deadLetters > 0) {
    lines.push(`Dead letters: ${view.deadLetters}; see them with \`npm run cli -- dead-letters list\`.`);
  }
  lines.push('');
  if (view.deepest.length === 0) {
    lines.push('Every lane is empty.');
  } else {
    lines.push(all ? 'Every lane, deepest first:' : `Deepest lanes (at most ${top}; --all for every lane):`);
    lines.push(
      table(
        ['lane', 'waiting', 'active', 'delayed', 'dead', 'oldest waiting', 'paused'],
        view.deepest.map((l) => [
          l.lane,
          l.waiting,
          l.active,
          l.delayed,
          l.failed,
          l.oldestWaitingAt ?? '-',
          l.paused ? 'yes' : '',
        ]),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Columns padded to their widest cell; numbers right-aligned (also for `webhooks list`). */
export function table(header: string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  return cells
    .map((row, r) =>
      row
        .map((cell, c) =>
          r > 0 && typeof rows[r - 1]?.[c] === 'number' ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `  ${line}`)
    .join('\n');
}

function age(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}
