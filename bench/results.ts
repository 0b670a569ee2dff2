import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkPerCommand } from './work.js';

// One bench run's figures: every row read against the same run's direct-SQL ceiling and, where
// the bare pipeline ran the same load, against it — ratios first, absolute figures beside them.

export interface BenchRow {
  scenario: string;
  /** 'direct SQL', 'bare pipeline', or the service's topology (start, single, split). */
  system: string;
  generator?: string;
  acceptedPerSecond?: number;
  appliedPerSecond?: number;
  acceptP50Ms?: number;
  acceptP99Ms?: number;
  lagP50Ms?: number;
  lagP99Ms?: number;
  failed?: number;
  notAccepted?: number;
  /** The direct-SQL ceiling (applied/s) this row is read against. */
  ceilingPerSecond?: number;
  /** The bare pipeline under the same load in this run. */
  bare?: { appliedPerSecond: number; acceptP99Ms?: number };
  /** Statements, Redis commands and CPU time per command applied. */
  work?: WorkPerCommand;
}

export interface Ratios {
  appliedVsCeiling?: number;
  appliedVsBare?: number;
  acceptP99VsBare?: number;
}

export function ratios(row: BenchRow): Ratios {
  const divide = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  return {
    appliedVsCeiling: divide(row.appliedPerSecond, row.ceilingPerSecond),
    appliedVsBare: divide(row.appliedPerSecond, row.bare?.appliedPerSecond),
    acceptP99VsBare: divide(row.acceptP99Ms, row.bare?.acceptP99Ms),
  };
}

export const fmt = (n: number | undefined, digits = 0): string =>
  n !== undefined && Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '';

const times = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '' : `${fmt(n, 2)}×`);
const pair = (a: number | undefined, b: number | undefined, digits: number) =>
  a === undefined && b === undefined ? '' : `${fmt(a, digits) || '-'} / ${fmt(b, digits) || '-'}`;

/** The printed columns, ratios first. */
export function tableRow(row: BenchRow): Record<string, string> {
  const r = ratios(row);
  const problems = [row.failed ? `${row.failed} failed` : '', row.notAccepted ? `${row.notAccepted} not accepted` : '']
    .filter(Boolean)
    .join(', ');
  return {
    scenario: row.scenario,
    system: row.generator ? `${row.system} (${row.generator})` : row.system,
    'applied ÷ ceiling': times(r.appliedVsCeiling),
    'applied ÷ bare': times(r.appliedVsBare),
    'applied/s': fmt(row.appliedPerSecond),
    'ceiling/s': row.ceilingPerSecond === row.appliedPerSecond ? '' : fmt(row.ceilingPerSecond),
    'bare applied/s': fmt(row.bare?.appliedPerSecond),
    'accepted/s': fmt(row.acceptedPerSecond),
    'accept p50 / p99 ms': pair(row.acceptP50Ms, row.acceptP99Ms, 1),
    'accept p99 ÷ bare': times(r.acceptP99VsBare),
    'lag p50 / p99 ms': pair(row.lagP50Ms, row.lagP99Ms, 0),
    problems,
  };
}

/** Where the time went in a row that has work figures (none: no row). */
export function workRow(row: BenchRow): Array<Record<string, string>> {
  const work = row.work;
  if (!work) return [];
  return [
    {
      scenario: row.scenario,
      system: row.system,
      'SQL statements': fmt(work.sqlStatements, 2),
      'commands / COMMIT': fmt(work.commandsPerCommit, 1),
      'row lock waits': fmt(work.rowLockWaits, 3),
      'Redis commands': fmt(work.redisCommands, 2),
      'CPU µs: system': fmt(work.cpuUs.system),
      MariaDB: fmt(work.cpuUs.mariadb),
      Redis: fmt(work.cpuUs.redis),
      'bench (load)': fmt(work.cpuUs.bench),
    },
  ];
}

/** A table's rows in Markdown (the layout of docs/benchmarks.md). */
export function markdownTable(table: Array<Record<string, string>>): string {
  const columns = Object.keys(table[0] ?? {});
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(columns), line(columns.map(() => '---')), ...table.map((row) => line(columns.map((c) => row[c] ?? '')))].join(
    '\n',
  );
}

/** A table printed after the main one (a scenario with columns of its own, such as itflow). */
export interface ResultSection {
  heading: string;
  table: Array<Record<string, string>>;
}

/**
 * Writes `bench-<time>.json` (every figure and ratio as a number) and `.md` (the tables) to
 * `dir`; `sections` follow the main table.
 */
export function writeResults(
  dir: string,
  run: Record<string, unknown>,
  rows: BenchRow[],
  sections: ResultSection[] = [],
): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const json = join(dir, `bench-${stamp}.json`);
  const md = join(dir, `bench-${stamp}.md`);
  writeFileSync(json, `${JSON.stringify({ ...run, rows: rows.map((row) => ({ ...row, ...ratios(row) })) }, null, 2)}\n`);
  const main =
    rows.length > 0
      ? [markdownTable(rows.map(tableRow)), `Work per command applied:\n\n${markdownTable(rows.flatMap(workRow))}`]
      : [];
  writeFileSync(md, `${[...main, ...sections.map((s) => `${s.heading}\n\n${markdownTable(s.table)}`)].join('\n\n')}\n`);
  return [json, md];
}
