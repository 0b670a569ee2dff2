// The comparison of what ITFlow wrote for twin A with what the service wrote for twin B: pure
// functions, no database. Values that must differ between two tickets (ids, numbers, subjects,
// url keys, auto-increment ids) are normalised away first; timestamps count as equal within a
// tolerance; human wording (log and history text, notification text) and the caller's IP and user
// agent are their own kind, so that real differences stand out.

export type Row = Record<string, unknown>;

/** What must differ between the twins, and is replaced by a placeholder before comparing. */
export interface TwinIdentity {
  id: number;
  number: number;
  prefix: string;
  subject: string;
  urlKey: string;
}

/**
 * `documented`: a real difference docs/api.md lists as deliberate or inherent (see
 * conformance/documented.ts), counted apart so an undocumented one stands out.
 */
export type Kind = 'real' | 'documented' | 'wording' | 'within tolerance';

export interface Difference {
  table: string;
  /** Which row: a label such as `logs #2 (Ticket/Reply)`. */
  row: string;
  /** A column, or `(row)` when the row exists on one side only. */
  column: string;
  itflow: string;
  service: string;
  kind: Kind;
  note?: string;
  /** For a row on one side only: all its columns, normalised (the JSON report carries them). */
  values?: Record<string, string>;
}

/** The rows one side wrote (or changed) in one table during one action. */
export interface TableRows {
  table: string;
  /** The auto-increment primary key, never compared. */
  primaryKey: string;
  rows: Row[];
}

export interface DiffOptions {
  toleranceSeconds: number;
}

/** Columns whose text is human wording rather than data (see the module comment). */
export const WORDING_COLUMNS = new Set([
  'log_description',
  'log_ip',
  'log_user_agent',
  'ticket_history_description',
  'notification',
]);

/** Columns that hold the id of the twin ticket (compared as `<ticket_id>`). */
const TICKET_ID_COLUMNS = new Set([
  'ticket_id',
  'ticket_reply_ticket_id',
  'ticket_history_ticket_id',
  'sla_history_ticket_id',
  'watcher_ticket_id',
  'log_entity_id',
  'notification_entity_id',
]);

const DATETIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Ids of rows a side wrote, so a reference to its own reply compares equal to the other's. */
export type RowIds = Map<string, Map<number, string>>;

export function rowIds(tables: TableRows[]): RowIds {
  const ids: RowIds = new Map();
  for (const table of tables) {
    const byId = new Map<number, string>();
    table.rows.forEach((row, index) => {
      byId.set(Number(row[table.primaryKey]), `<${table.table} row ${index + 1}>`);
    });
    ids.set(table.table, byId);
  }
  return ids;
}

/** A value as compared: text, with the twin's own identity replaced by placeholders. */
export function normalise(column: string, value: unknown, twin: TwinIdentity, ids?: RowIds): string {
  if (value === null || value === undefined) return 'NULL';
  if (value instanceof Date) return value.toISOString();
  const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  if (TICKET_ID_COLUMNS.has(column)) {
    if (Number(text) === twin.id) return '<ticket_id>';
    if (column === 'log_entity_id') {
      const reply = ids?.get('ticket_replies')?.get(Number(text));
      if (reply) return reply;
    }
  }
  if (column === 'ticket_number' && Number(text) === twin.number) return '<ticket_number>';
  return replaceIdentity(text, twin);
}

export function replaceIdentity(text: string, twin: TwinIdentity): string {
  let out = text;
  if (twin.urlKey) out = out.split(twin.urlKey).join('<url_key>');
  if (twin.subject) out = out.split(twin.subject).join('<subject>');
  out = out.replace(new RegExp(`${escapeRegExp(twin.prefix)}${twin.number}(?!\\d)`, 'g'), '<ticket>');
  out = out.replace(
    new RegExp(`(ticket_id=|ticket\\.php\\?id=|ticket ID |ID: ?|ticket #)${twin.id}(?!\\d)`, 'gi'),
    '$1<ticket_id>',
  );
  return out;
}

/** Seconds between two `YYYY-MM-DD HH:MM:SS` wall-clock times of the same zone. */
export function secondsBetween(a: string, b: string): number {
  return (Date.parse(`${b.replace(' ', 'T')}Z`) - Date.parse(`${a.replace(' ', 'T')}Z`)) / 1000;
}

function describeOffset(seconds: number): string {
  const sign = seconds < 0 ? '-' : '+';
  let rest = Math.abs(seconds);
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  rest -= minutes * 60;
  const parts = [hours ? `${hours} h` : '', minutes ? `${minutes} min` : '', rest || (!hours && !minutes) ? `${rest} s` : '']
    .filter(Boolean)
    .join(' ');
  return `service ${sign}${parts}`;
}

/** Compares one column of a paired row. Null when the values agree. */
export function compareValue(column: string, a: string, b: string, options: DiffOptions): { kind: Kind; note?: string } | null {
  if (a === b) return null;
  if (DATETIME.test(a) && DATETIME.test(b)) {
    const delta = secondsBetween(a, b);
    if (Math.abs(delta) <= options.toleranceSeconds) return { kind: 'within tolerance', note: describeOffset(delta) };
    const hours = delta / 3600;
    const zone = Math.abs(hours - Math.round(hours)) * 3600 <= options.toleranceSeconds && Math.round(hours) !== 0;
    return { kind: 'real', note: `${describeOffset(delta)}${zone ? ' (a whole number of hours: a time-zone difference)' : ''}` };
  }
  if (WORDING_COLUMNS.has(column)) return { kind: 'wording' };
  return { kind: 'real' };
}

function columnsOf(a: Row | undefined, b: Row | undefined): string[] {
  return [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])];
}

/** How many columns of two rows differ (for pairing rows that came in a different order). */
function distance(
  a: Row,
  b: Row,
  primaryKey: string,
  twins: [TwinIdentity, TwinIdentity],
  ids: [RowIds, RowIds],
  options: DiffOptions,
): number {
  let count = 0;
  for (const column of columnsOf(a, b)) {
    if (column === primaryKey) continue;
    const verdict = compareValue(
      column,
      normalise(column, a[column], twins[0], ids[0]),
      normalise(column, b[column], twins[1], ids[1]),
      options,
    );
    if (verdict && verdict.kind !== 'within tolerance') count += verdict.kind === 'wording' ? 1 : 3;
  }
  return count;
}

/**
 * Pairs ITFlow's rows with the service's: each ITFlow row (in id order) takes the closest
 * unpaired service row. Returns index pairs; -1 marks a row with no partner.
 */
export function pairRows(
  a: Row[],
  b: Row[],
  primaryKey: string,
  twins: [TwinIdentity, TwinIdentity],
  ids: [RowIds, RowIds],
  options: DiffOptions,
): Array<[number, number]> {
  const free = new Set(b.map((_, index) => index));
  const pairs: Array<[number, number]> = [];
  a.forEach((row, i) => {
    let best = -1;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const j of free) {
      const d = distance(row, b[j]!, primaryKey, twins, ids, options);
      if (d < bestDistance) {
        best = j;
        bestDistance = d;
      }
    }
    if (best >= 0) free.delete(best);
    pairs.push([i, best]);
  });
  for (const j of [...free].sort((x, y) => x - y)) pairs.push([-1, j]);
  return pairs;
}

/** A short description of a row for the `(row)` line and for labels. */
export function summarise(table: string, row: Row, twin: TwinIdentity): string {
  const pick = (...columns: string[]) =>
    columns
      .filter((c) => row[c] !== undefined)
      .map((c) => replaceIdentity(String(row[c] ?? 'NULL'), twin))
      .join(' / ');
  switch (table) {
    case 'ticket_replies':
      return pick('ticket_reply_type', 'ticket_reply', 'ticket_reply_time_worked');
    case 'logs':
      return pick('log_type', 'log_action', 'log_description');
    case 'ticket_history':
      return pick('ticket_history_status', 'ticket_history_description');
    case 'notifications':
      return pick('notification_user_id', 'notification');
    case 'email_queue':
      return pick('email_recipient', 'email_subject');
    case 'sla_history':
      return pick('sla_history_started_at', 'sla_history_ended_at', 'sla_history_minutes');
    default:
      return '';
  }
}

function label(table: string, index: number, row: Row, twin: TwinIdentity): string {
  const key =
    table === 'logs'
      ? `${row.log_type}/${row.log_action}`
      : table === 'ticket_replies'
        ? String(row.ticket_reply_type)
        : table === 'email_queue'
          ? String(row.email_recipient)
          : table === 'notifications'
            ? `user ${row.notification_user_id}`
            : '';
  return table === 'tickets' ? 'ticket' : `${table} #${index + 1}${key ? ` (${replaceIdentity(key, twin)})` : ''}`;
}

/** Every difference between ITFlow's rows (twin A) and the service's (twin B), table by table. */
export function diffTables(
  itflow: TableRows[],
  service: TableRows[],
  twins: [TwinIdentity, TwinIdentity],
  options: DiffOptions,
): Difference[] {
  const ids: [RowIds, RowIds] = [rowIds(itflow), rowIds(service)];
  const differences: Difference[] = [];
  for (const mine of itflow) {
    const theirs = service.find((t) => t.table === mine.table) ?? { ...mine, rows: [] };
    const pairs = pairRows(mine.rows, theirs.rows, mine.primaryKey, twins, ids, options);
    for (const [i, j] of pairs) {
      const a = i >= 0 ? mine.rows[i] : undefined;
      const b = j >= 0 ? theirs.rows[j] : undefined;
      if (!a || !b) {
        const present = (a ?? b)!;
        const twin = a ? twins[0] : twins[1];
        const twinIds = a ? ids[0] : ids[1];
        const summary = summarise(mine.table, present, twin) || 'a row';
        differences.push({
          table: mine.table,
          row: label(mine.table, a ? i : j, present, twin),
          column: '(row)',
          itflow: a ? summary : '(none)',
          service: b ? summary : '(none)',
          kind: 'real',
          note: a ? 'ITFlow wrote this row; the service did not' : 'the service wrote this row; ITFlow did not',
          values: Object.fromEntries(
            Object.entries(present)
              .filter(([column]) => column !== mine.primaryKey)
              .map(([column, value]) => [column, normalise(column, value, twin, twinIds)]),
          ),
        });
        continue;
      }
      for (const column of columnsOf(a, b)) {
        if (column === mine.primaryKey && mine.table !== 'tickets') continue;
        const av = normalise(column, a[column], twins[0], ids[0]);
        const bv = normalise(column, b[column], twins[1], ids[1]);
        const verdict = compareValue(column, av, bv, options);
        if (!verdict) continue;
        differences.push({
          table: mine.table,
          row: label(mine.table, i, a, twins[0]),
          column,
          itflow: av,
          service: bv,
          kind: verdict.kind,
          ...(verdict.note ? { note: verdict.note } : {}),
        });
      }
    }
  }
  return differences;
}
