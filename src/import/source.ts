import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';

/**
 * Reads an import file line by line, never whole: NDJSON (one command per line) or CSV with a
 * header row naming the fields. Each item comes with its line number in the file, which is
 * what resuming and the rejected-lines file refer to.
 */
export type Format = 'ndjson' | 'csv';

export interface SourceItem {
  line: number;
  item: unknown;
}

export function formatOf(file: string, declared?: string): Format {
  if (declared === 'csv' || declared === 'ndjson') return declared;
  return /\.csv$/i.test(file) ? 'csv' : 'ndjson';
}

/** The file's identity (content digest) and line count, in one streaming pass. */
export async function fingerprintFile(file: string): Promise<{ sha256: string; lines: number }> {
  const hash = createHash('sha256');
  let lines = 0;
  let last = 10;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    for (const byte of chunk) if (byte === 10) lines++;
    last = chunk[chunk.length - 1] ?? last;
  }
  if (last !== 10) lines++;
  return { sha256: hash.digest('hex'), lines };
}

/** Items after line `skipThrough`, in file order. Unreadable NDJSON lines come as `{ unreadable: true }`. */
export async function* readItems(file: string, format: Format, skipThrough = 0): AsyncGenerator<SourceItem> {
  if (format === 'ndjson') {
    let line = 0;
    for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })) {
      line++;
      if (line <= skipThrough || text.trim() === '') continue;
      try {
        yield { line, item: JSON.parse(text) };
      } catch {
        yield { line, item: UNREADABLE };
      }
    }
    return;
  }
  // `info` gives each record the line it ends on (the parser reads ahead, so its own counter
  // is not the current record's).
  const parser = createReadStream(file).pipe(
    parse({ columns: true, skip_empty_lines: true, trim: true, relax_column_count: true, info: true }),
  );
  for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    if (info.lines <= skipThrough) continue;
    yield { line: info.lines, item: fromCsvRow(record) };
  }
}

export const UNREADABLE = Object.freeze({ unreadable: true });

const INTEGER_COLUMNS = new Set(['ticket_id', 'public_reply_type', 'status', 'hours', 'minutes', 'seconds', 'client_id']);
const BOOLEAN_COLUMNS = new Set(['notify']);

/**
 * A CSV row as a bulk item: empty cells are left out, integer columns become numbers, `notify`
 * (true/false, 1/0) a boolean, and
 * author_user_id / author_contact_id become the `author` object.
 */
export function fromCsvRow(row: Record<string, string>): Record<string, unknown> {
  const item: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (value === '' || column === 'author_user_id' || column === 'author_contact_id') continue;
    item[column] =
      INTEGER_COLUMNS.has(column) && /^\d+$/.test(value)
        ? Number(value)
        : BOOLEAN_COLUMNS.has(column) && /^(true|false|1|0)$/i.test(value)
          ? /^(true|1)$/i.test(value)
          : value;
  }
  if (row.author_user_id) item.author = { user_id: Number(row.author_user_id) };
  else if (row.author_contact_id) item.author = { contact_id: Number(row.author_contact_id) };
  return item;
}
