import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../cache.js';
import type { ReplyQuery } from '../commands/readReplies.js';
import type { ItflowSchema } from '../itflow/schema.js';
import { type ClientScope, scopeSql } from '../itflow/scope.js';

/**
 * Which end a scoped listing starts from. Newest first, the listing normally walks
 * ticket_replies by primary key and keeps the rows whose ticket is in scope: it reads about
 * page / share rows, cheap while the key sees a good share of the tickets, but a technician
 * limited to a small client would walk tens of thousands of rows for one page. Starting from
 * that client's tickets and their replies (through ITFlow's ticket_reply_ticket_id index) reads
 * about share × all-replies rows instead. The planner picks the smaller, from estimates
 * refreshed once a minute. Without the index (ITFlow ≤ 2.4.6) only the first way exists.
 */
export class ListPlanner {
  private readonly shares;
  private readonly totals;
  private readonly hasReplyIndex: boolean;

  constructor(pool: Pool, schema: ItflowSchema) {
    this.hasReplyIndex = Object.values(schema.replyIndexes).some((columns) => columns[0] === 'ticket_reply_ticket_id');
    this.shares = ttlMemo<string, number>(
      60_000,
      1000,
      async (key) => {
        const scoped = scopeSql(JSON.parse(key) as ClientScope, 't.ticket_client_id');
        const [rows] = await pool.query<RowDataPacket[]>(
          `SELECT (SELECT COUNT(*) FROM tickets t WHERE ${scoped.sql}) AS scoped, (SELECT COUNT(*) FROM tickets) AS total`,
          scoped.params,
        );
        const total = Number(rows[0]?.total ?? 0);
        return total === 0 ? 1 : Number(rows[0]?.scoped ?? 0) / total;
      },
      undefined,
      { staleWhileRefreshing: true },
    );
    this.totals = ttlMemo<number, number>(
      60_000,
      1,
      async () => {
        const [rows] = await pool.query<RowDataPacket[]>(
          "SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ticket_replies'",
        );
        return Number(rows[0]?.n ?? 0);
      },
      undefined,
      { staleWhileRefreshing: true },
    );
  }

  async startFromTickets(scope: ClientScope, query: ReplyQuery): Promise<boolean> {
    if (!this.hasReplyIndex || scope.allow === null || query.replyId !== undefined || query.ticketId !== undefined) return false;
    const share = await this.shares.get(JSON.stringify(scope));
    if (share === 0) return true;
    const wanted = query.limit + query.offset;
    return share * (await this.totals.get(0)) < wanted / share;
  }
}
