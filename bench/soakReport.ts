import type { Sample } from './soakSamples.js';

export interface RssStats {
  start: number;
  end: number;
  max: number;
}

/** First, last and largest RSS of the samples `pick` has a value for. */
export function rssStats(samples: Sample[], pick: (s: Sample) => number): RssStats {
  const values = samples.map(pick).filter(Number.isFinite);
  return {
    start: values[0] ?? Number.NaN,
    end: values.at(-1) ?? Number.NaN,
    max: values.length > 0 ? Math.max(...values) : Number.NaN,
  };
}

const COLUMNS: Array<[string, keyof Sample]> = [
  ['t_s', 't'],
  ['intake_rss_mib', 'intakeRssMiB'],
  ['worker_rss_mib', 'workerRssMiB'],
  ['worker_pid', 'workerPid'],
  ['waiting', 'waiting'],
  ['active', 'active'],
  ['dead_letters', 'deadLetters'],
  ['in_flight', 'inFlight'],
  ['sent_per_s', 'sentPerSecond'],
  ['accepted_per_s', 'acceptedPerSecond'],
  ['applied_per_s', 'appliedPerSecond'],
  ['refused_503', 'refused503'],
  ['failed_5xx', 'failed5xx'],
  ['network_errors', 'networkErrors'],
  ['skipped', 'skipped'],
  ['accept_p99_ms', 'acceptP99Ms'],
  ['lag_p50_ms', 'lagP50Ms'],
  ['lag_p99_ms', 'lagP99Ms'],
];

/** The samples as CSV; a missing value (no process, nothing finished) is an empty field. */
export function samplesCsv(samples: Sample[]): string {
  const cell = (v: number) => (Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '');
  const lines = [COLUMNS.map(([name]) => name).join(',')];
  for (const s of samples) lines.push(COLUMNS.map(([, key]) => cell(s[key])).join(','));
  return `${lines.join('\n')}\n`;
}

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';
