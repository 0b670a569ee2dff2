// The read projection's rows for the replies a batch inserts (src/read/projection), written in the
// batch's own transaction: a reply the service wrote is listed from the projection the moment it
// commits, and never without it.
import type { ReplyId } from '../db/sqlExpression.js';
import type { ServiceTables } from '../db/tables.js';
import { insertStatement } from '../read/projection/rows.js';
import type { Writes } from './itflowHandlers.js';
import type { TicketModel } from './ticketModel.js';

/**
 * One INSERT for the batch's replies, given the ticket_reply_ids they got (in order); null when
 * the batch inserted none. A reply row's values are in the order of applyBatch's REPLY_COLUMNS:
 * body, type, time worked, author, ticket, created at.
 */
export function projectionStatement(
  tables: ServiceTables,
  replies: Writes['replies'],
  ids: ReplyId[],
  models: Map<number, TicketModel>,
  /** The external id of the batch's command at an index (a reply's `index`), or null. */
  externalIdOf: (index: number | null) => string | null,
): { sql: string; params: unknown[] } | null {
  if (replies.length === 0) return null;
  return insertStatement(
    tables,
    replies.map(({ values, index }, i) => {
      const [, type, , by, ticketId, createdAt] = values as [string, string, string, number, number, string];
      return {
        replyId: ids[i] as ReplyId,
        ticketId,
        clientId: models.get(ticketId)?.ticket.clientId ?? 0,
        type,
        by,
        createdAt,
        updatedAt: null,
        archivedAt: null,
        externalId: externalIdOf(index),
      };
    }),
  );
}
