import { type ImportOptions, type ImportSummary, runImport } from '../../src/import/run.js';

/**
 * An import run in the test's own process through `cli import`'s code: batches of 100, one in
 * flight, waiting for every line to be applied, no progress output — unless `options` say otherwise.
 */
export function importFile(
  options: Pick<ImportOptions, 'file' | 'format' | 'url' | 'apiKey'> & Partial<ImportOptions>,
): Promise<ImportSummary> {
  return runImport({
    batchSize: 100,
    concurrency: 1,
    wait: true,
    dryRun: false,
    maxPending: 1000,
    report: () => {},
    stopped: () => false,
    ...options,
  });
}
