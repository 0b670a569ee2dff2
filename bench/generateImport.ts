import { Command } from 'commander';
import mysql from 'mysql2/promise';
import { loadConfig } from '../src/config.js';
import { withDatabase } from '../src/demo/itflowDatabase.js';
import { writeImportFile } from './importFile.js';

/**
 * Writes a large import file: `--lines` historical replies, dated over the past year, oldest
 * first, spread over
 * - `--tickets N` tickets from `--first-ticket` on (ids that must exist where it is imported), or
 * - `--tickets A-B` / `--tickets 1,2,4`: those tickets, or
 * - `--database NAME`: the open (not closed) tickets of that ITFlow database, on the MySQL
 *   server of DATABASE_URL — the demo's, `itflow_demo`, for a file the demo imports whole.
 *
 *   npm run generate:import -- --lines 1000000 --tickets 10000 --out /tmp/import.ndjson
 *   npm run generate:import -- --database itflow_demo --lines 10000 --out /tmp/demo-import.ndjson
 */
const opts = new Command('generate-import')
  .requiredOption('--out <file>', 'where to write (.ndjson or .csv)')
  .option('--lines <n>', 'replies to write', '100000')
  .option('--tickets <n|a-b|list>', 'how many tickets (from --first-ticket), or which: 1-4, 1,2,4', '1000')
  .option('--first-ticket <n>', 'first ticket id, with --tickets N', '1')
  .option('--database <name>', "the open tickets of this ITFlow database (on DATABASE_URL's server)")
  .parse()
  .opts<{ out: string; lines: string; tickets: string; firstTicket: string; database?: string }>();

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const whole = (value: string, name: string) => {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) fail(`${name} must be a whole number above 0 (got '${value}').`);
  return Number(value);
};

/** The tickets to spread the lines over, and how the closing line names them. */
async function ticketsToUse(): Promise<{ tickets: number | number[]; described: string; first: number }> {
  if (opts.database) {
    const url = withDatabase(loadConfig().DATABASE_URL, opts.database);
    const conn = await mysql.createConnection({ uri: url });
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT ticket_id FROM tickets WHERE ticket_closed_at IS NULL ORDER BY ticket_id',
      );
      if (rows.length === 0) fail(`Database '${opts.database}' has no open tickets to write replies for.`);
      return {
        tickets: rows.map((r) => Number(r.ticket_id)),
        described: `the ${rows.length} open tickets of ${opts.database}`,
        first: 1,
      };
    } finally {
      await conn.end();
    }
  }
  const range = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(opts.tickets);
  if (range) {
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (from < 1 || to < from) fail(`--tickets ${opts.tickets}: give a range of ticket ids from low to high, e.g. 1-4.`);
    return { tickets: Array.from({ length: to - from + 1 }, (_, i) => from + i), described: `tickets ${from}-${to}`, first: 1 };
  }
  if (opts.tickets.includes(',')) {
    const ids = opts.tickets.split(',').map((id) => whole(id, '--tickets'));
    return { tickets: ids, described: `tickets ${ids.join(', ')}`, first: 1 };
  }
  const count = whole(opts.tickets, '--tickets');
  const first = whole(opts.firstTicket, '--first-ticket');
  return { tickets: count, described: `tickets ${first}-${first + count - 1}`, first };
}

const lines = whole(opts.lines, '--lines');
const { tickets, described, first } = await ticketsToUse().catch((error: Error) => fail(error.message));
await writeImportFile(opts.out, lines, tickets, first);
console.error(`Wrote ${lines.toLocaleString('en-US')} lines to ${opts.out} over ${described}.`);
