// Which rows an action touched. Before and after each side's action the tool reads, per table,
// every row that belongs to the twin ticket (its replies, history, SLA intervals, the logs and
// notifications and mails naming it) plus every row added since the action began (auto-increment
// id past the high-water mark, whatever it names: an API log row names no ticket). Rows present
// and unchanged before the action are left out; the ticket row itself is always compared, whole.
import type { Connection } from 'mysql2/promise';
import type { Row, TableRows, TwinIdentity } from './diff.js';

interface TableSpec {
  table: string;
  primaryKey: string;
  /** SQL condition for the rows that belong to the twin ticket, with its parameters. */
  owned(twin: TwinIdentity): [string, unknown[]];
}

const TABLES: TableSpec[] = [
  { table: 'tickets', primaryKey: 'ticket_id', owned: (t) => ['ticket_id = ?', [t.id]] },
  { table: 'ticket_replies', primaryKey: 'ticket_reply_id', owned: (t) => ['ticket_reply_ticket_id = ?', [t.id]] },
  { table: 'logs', primaryKey: 'log_id', owned: (t) => ["log_entity_id = ? AND log_type = 'Ticket'", [t.id]] },
  { table: 'ticket_history', primaryKey: 'ticket_history_id', owned: (t) => ['ticket_history_ticket_id = ?', [t.id]] },
  {
    table: 'notifications',
    primaryKey: 'notification_id',
    owned: (t) => ['notification_action REGEXP ?', [`ticket_id=${t.id}([^0-9]|$)`]],
  },
  { table: 'sla_history', primaryKey: 'sla_history_id', owned: (t) => ['sla_history_ticket_id = ?', [t.id]] },
  { table: 'email_queue', primaryKey: 'email_id', owned: (t) => ['email_subject LIKE ?', [`%[${t.prefix}${t.number}]%`]] },
];

export type Snapshot = Map<string, Row[]>;
export type HighWater = Map<string, number>;

/** The ITFlow tables this database has (sla_history only from 2.5 on). */
export async function presentTables(db: Connection): Promise<string[]> {
  const [rows] = (await db.query(
    'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()',
  )) as unknown as [Array<{ t: string }>];
  const present = new Set(rows.map((r) => r.t));
  return TABLES.filter((spec) => present.has(spec.table)).map((spec) => spec.table);
}

export async function highWater(db: Connection, tables: string[]): Promise<HighWater> {
  const marks: HighWater = new Map();
  for (const spec of TABLES.filter((s) => tables.includes(s.table))) {
    const [[row]] = (await db.query(`SELECT COALESCE(MAX(${spec.primaryKey}), 0) AS id FROM ${spec.table}`)) as unknown as [
      [{ id: number }],
    ];
    marks.set(spec.table, Number(row.id));
  }
  return marks;
}

/** The twin's rows and every row past the high-water marks, per table, in id order. */
export async function snapshot(db: Connection, tables: string[], twin: TwinIdentity, marks: HighWater): Promise<Snapshot> {
  const taken: Snapshot = new Map();
  for (const spec of TABLES.filter((s) => tables.includes(s.table))) {
    const [condition, params] = spec.owned(twin);
    const [rows] = (await db.query(
      `SELECT * FROM ${spec.table} WHERE (${condition}) OR ${spec.primaryKey} > ? ORDER BY ${spec.primaryKey}`,
      [...params, marks.get(spec.table) ?? 0],
    )) as unknown as [Row[]];
    taken.set(spec.table, rows);
  }
  return taken;
}

/** What the action touched: rows new or changed since `before`; the ticket row always. */
export function touched(before: Snapshot, after: Snapshot, twin: TwinIdentity): TableRows[] {
  return TABLES.filter((spec) => after.has(spec.table)).map((spec) => {
    const earlier = new Map((before.get(spec.table) ?? []).map((row) => [Number(row[spec.primaryKey]), JSON.stringify(row)]));
    const rows = (after.get(spec.table) ?? []).filter((row) => {
      const id = Number(row[spec.primaryKey]);
      if (spec.table === 'tickets') return id === twin.id;
      return earlier.get(id) !== JSON.stringify(row);
    });
    return { table: spec.table, primaryKey: spec.primaryKey, rows };
  });
}
