import { Command } from 'commander';
import { writeImportFile } from './importFile.js';

/**
 * Writes a large import file: `--lines` historical replies spread over tickets
 * `--first-ticket`…+`--tickets`, dated over the past year, oldest first.
 *
 *   npm run generate:import -- --lines 1000000 --tickets 10000 --out /tmp/import.ndjson
 */
const opts = new Command('generate-import')
  .requiredOption('--out <file>', 'where to write (.ndjson or .csv)')
  .option('--lines <n>', 'replies to write', '100000')
  .option('--tickets <n>', 'tickets to spread them over', '1000')
  .option('--first-ticket <n>', 'first ticket id', '1')
  .parse()
  .opts<{ out: string; lines: string; tickets: string; firstTicket: string }>();

await writeImportFile(opts.out, Number(opts.lines), Number(opts.tickets), Number(opts.firstTicket));
console.error(`Wrote ${Number(opts.lines).toLocaleString()} lines to ${opts.out}.`);
