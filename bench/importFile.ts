import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

/**
 * Writes an import file of `lines` historical replies spread over tickets
 * `firstTicket`…`firstTicket + tickets - 1` (or over the ticket ids given), dated over the past
 * year, oldest first: NDJSON, or CSV with a header row when the name ends in .csv.
 */
export async function writeImportFile(out: string, lines: number, tickets: number | number[], firstTicket = 1): Promise<void> {
  const csv = out.endsWith('.csv');
  const stream = createWriteStream(out);
  const start = Date.now() - 365 * 86_400_000;
  const step = (365 * 86_400_000) / lines;
  if (csv) stream.write('ticket_id,ticket_reply,public_reply_type,minutes,created_at\n');
  for (let i = 0; i < lines; i++) {
    const ticket = Array.isArray(tickets) ? (tickets[i % tickets.length] as number) : firstTicket + (i % tickets);
    const created = new Date(start + i * step).toISOString().replace(/\.\d+Z$/, 'Z');
    const reply = `Imported reply ${i + 1}: checked the logs, restarted the service, all green again.`;
    const publicType = i % 3 === 0 ? 1 : 0;
    const row = csv
      ? `${ticket},"${reply}",${publicType},${i % 7},${created}\n`
      : `${JSON.stringify({ ticket_id: ticket, ticket_reply: reply, public_reply_type: publicType, minutes: i % 7, created_at: created })}\n`;
    if (!stream.write(row)) await once(stream, 'drain');
  }
  stream.end();
  await once(stream, 'finish');
}
