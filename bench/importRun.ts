import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImportSummary } from '../src/import/run.js';
import { statePath } from '../src/import/state.js';
import { writeImportFile } from './importFile.js';
import { BENCH_KEY } from './setup.js';

export interface ImportRun {
  summary: ImportSummary;
  /** The CLI process's largest resident set seen (VmHWM), in MiB. */
  peakRssMiB: number;
}

/**
 * The import scenario: `lines` historical replies over `tickets` tickets, written once to a
 * file in the temp directory, then imported by the CLI exactly as a user runs it
 * (`npm run cli -- import FILE`), waiting until every line is applied. The CLI's peak memory
 * is read from /proc while it runs.
 */
export async function runImport(serviceUrl: string, lines: number, tickets: number): Promise<ImportRun> {
  const file = join(tmpdir(), `replyqueue-bench-import-${lines}x${tickets}.ndjson`);
  if (!existsSync(file)) await writeImportFile(file, lines, tickets);
  // A fresh import every run: no resume state or rejects from an earlier one.
  rmSync(statePath(file), { force: true });
  rmSync(`${file}.rejected.ndjson`, { force: true });

  const child = spawn(
    process.execPath,
    ['dist/workers/cli.js', 'import', file, '--url', serviceUrl, '--api-key', BENCH_KEY, '--json'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  let peakKiB = 0;
  const sampler = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      peakKiB = Math.max(peakKiB, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // exited between samples, or no /proc here
    }
  }, 200);
  const [code] = await once(child, 'exit');
  clearInterval(sampler);
  if (code !== 0) throw new Error(`import exited with ${code}: ${stdout}`);
  const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ImportSummary;
  return { summary, peakRssMiB: peakKiB / 1024 };
}
