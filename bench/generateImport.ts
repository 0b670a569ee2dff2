import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Command } from 'commander';

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

const lines = Number(opts.lines);
const tickets = Number(opts.tickets);
const first = Number(opts.firstTicket);
const csv = opts.out.endsWith('.csv');
const out = createWriteStream(opts.out);
const start = Date.now() - 365 * 86_400_000;
const step = (365 * 86_400_000) / lines;
if (csv) out.write('ticket_id,ticket_reply,public_reply_type,minutes,created_at\n');
for (let i = 0; i < lines; i++) {
  const ticket = first + (i % tickets);
  const created = new Date(start + i * step).toISOString().replace(/\.\d+Z$/, 'Z');
  const reply = `Imported reply ${i + 1}: checked the logs, restarted the service, all green again.`;
  const row = csv
    ? `${ticket},"${reply}",${i % 3 === 0 ? 1 : 0},${i % 7},${created}\n`
    : `${JSON.stringify({ ticket_id: ticket, ticket_reply: reply, public_reply_type: i % 3 === 0 ? 1 : 0, minutes: i % 7, created_at: created })}\n`;
  if (!out.write(row)) await once(out, 'drain');
}
out.end();
await once(out, 'finish');
console.error(`Wrote ${lines.toLocaleString()} lines to ${opts.out}.`);
