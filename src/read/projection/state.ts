// Where the projection's follower stands (one row of the service's read_state table), and how far
// behind ticket_replies it is as a reader sees it.
import type { RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../../db/tables.js';
import type { Sql } from './rows.js';

export interface FollowerState {
  /** Every ticket_replies id up to this one has been read into the projection. */
  watermark: number;
  /** Where the sweeps that look again at older replies and at tickets go on from. */
  replySweepAfter: number;
  ticketSweepAfter: number;
}

export async function readFollowerState(db: Sql, tables: ServiceTables): Promise<FollowerState> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT watermark, reply_sweep_after, ticket_sweep_after FROM ${tables.projectionState} WHERE id = 1`,
  );
  const row = rows[0];
  // Its one row, should it be gone (deleted by hand): the projection is then followed from the start.
  if (!row) await db.query(`INSERT IGNORE INTO ${tables.projectionState} (id) VALUES (1)`);
  return {
    watermark: Number(row?.watermark ?? 0),
    replySweepAfter: Number(row?.reply_sweep_after ?? 0),
    ticketSweepAfter: Number(row?.ticket_sweep_after ?? 0),
  };
}

export interface StateUpdate extends FollowerState {
  /** MySQL's UTC time when the follower last started a read that reached the end of ticket_replies. */
  caughtUpAt?: string;
  repliesSweptAt?: string;
  ticketsSweptAt?: string;
}

export async function saveFollowerState(db: Sql, tables: ServiceTables, update: StateUpdate): Promise<void> {
  await db.query(
    `UPDATE ${tables.projectionState} SET watermark = ?, reply_sweep_after = ?, ticket_sweep_after = ?,
       caught_up_at_utc = COALESCE(?, caught_up_at_utc), replies_swept_at_utc = COALESCE(?, replies_swept_at_utc),
       tickets_swept_at_utc = COALESCE(?, tickets_swept_at_utc)
     WHERE id = 1`,
    [
      update.watermark,
      update.replySweepAfter,
      update.ticketSweepAfter,
      update.caughtUpAt ?? null,
      update.repliesSweptAt ?? null,
      update.ticketsSweptAt ?? null,
    ],
  );
}

/** Starts the projection over: not served until the follower has read ticket_replies to its end again. */
export async function resetFollowerState(db: Sql, tables: ServiceTables): Promise<void> {
  await db.query(
    `UPDATE ${tables.projectionState} SET watermark = 0, caught_up_at_utc = NULL, reply_sweep_after = 0, ticket_sweep_after = 0,
       replies_swept_at_utc = NULL, tickets_swept_at_utc = NULL WHERE id = 1`,
  );
}

export async function mysqlUtcNow(db: Sql): Promise<string> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT UTC_TIMESTAMP(3) AS now');
  return String(rows[0]?.now);
}

/** The projection as a read finds it. */
export interface ProjectionView {
  watermark: number;
  /** Seconds since the follower last read ticket_replies to its end; null: it never has (being built). */
  lagSeconds: number | null;
  /** ticket_replies ids past the watermark (written since, by anyone: they are read from ITFlow's table). */
  idsBehind: number;
  caughtUpAt: string | null;
  repliesSweptAt: string | null;
  ticketsSweptAt: string | null;
}

/** One round trip: the follower's place, its lag by MySQL's own clock, and ticket_replies' newest id (one index dive). */
export async function readProjectionView(db: Sql, tables: ServiceTables): Promise<ProjectionView> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT s.watermark, s.caught_up_at_utc, s.replies_swept_at_utc, s.tickets_swept_at_utc,
            TIMESTAMPDIFF(MICROSECOND, s.caught_up_at_utc, UTC_TIMESTAMP(3)) AS lag_us,
            (SELECT MAX(ticket_reply_id) FROM ticket_replies) AS newest
     FROM ${tables.projectionState} s WHERE s.id = 1`,
  );
  const row = rows[0];
  const watermark = Number(row?.watermark ?? 0);
  const text = (value: unknown) => (value === null || value === undefined ? null : String(value));
  return {
    watermark,
    lagSeconds: row?.lag_us === null || row?.lag_us === undefined ? null : Math.max(0, Number(row.lag_us) / 1e6),
    idsBehind: Math.max(0, Number(row?.newest ?? 0) - watermark),
    caughtUpAt: text(row?.caught_up_at_utc),
    repliesSweptAt: text(row?.replies_swept_at_utc),
    ticketsSweptAt: text(row?.tickets_swept_at_utc),
  };
}
