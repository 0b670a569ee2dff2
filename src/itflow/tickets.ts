import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../cache.js';

/** What the intake needs to know about a ticket before accepting a command for it. */
export interface TicketSummary {
  ticketId: number;
  clientId: number;
  closed: boolean;
  resolved: boolean;
}

export interface TicketStatus {
  id: number;
  name: string;
  active: boolean;
  /** ticket_status_pauses_sla: a ticket in this status does not run its SLA clock (ITFlow ≥ 2.6). */
  pausesSla: boolean;
}

/**
 * Cached reads of tickets and ticket statuses for the intake's early checks. The worker
 * re-checks everything under a row lock, so a few seconds of staleness is harmless.
 */
export class TicketDirectory {
  private readonly tickets;
  private readonly statusList;

  constructor(pool: Pool, cacheMs: number) {
    const loadMany = async (ticketIds: number[]) => {
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT ticket_id, ticket_client_id, ticket_closed_at, ticket_resolved_at FROM tickets WHERE ticket_id IN (?)',
        [ticketIds],
      );
      const found = new Map<number, TicketSummary | null>(ticketIds.map((id) => [id, null]));
      for (const row of rows) {
        const ticketId = Number(row.ticket_id);
        found.set(ticketId, {
          ticketId,
          clientId: Number(row.ticket_client_id),
          closed: row.ticket_closed_at !== null,
          resolved: row.ticket_resolved_at !== null,
        });
      }
      return found;
    };
    this.tickets = ttlMemo<number, TicketSummary | null>(
      cacheMs,
      100_000,
      async (ticketId) => (await loadMany([ticketId])).get(ticketId) ?? null,
      loadMany,
      { staleWhileRefreshing: true },
    );
    this.statusList = ttlMemo<number, Map<number, TicketStatus>>(
      cacheMs,
      1,
      async () => {
        // SELECT *: ticket_status_pauses_sla exists from ITFlow 2.6 on.
        const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM ticket_statuses');
        return new Map(
          rows.map((r) => [
            Number(r.ticket_status_id),
            {
              id: Number(r.ticket_status_id),
              name: String(r.ticket_status_name),
              active: Number(r.ticket_status_active) === 1,
              pausesSla: Number(r.ticket_status_pauses_sla ?? 0) === 1,
            },
          ]),
        );
      },
      undefined,
      { staleWhileRefreshing: true },
    );
  }

  ticket(ticketId: number): Promise<TicketSummary | null> {
    return this.tickets.get(ticketId);
  }

  /** Many tickets at once (a bulk request): the ones not cached come in one query. */
  ticketsMany(ticketIds: number[]): Promise<Map<number, TicketSummary | null>> {
    return this.tickets.getMany(ticketIds);
  }

  statuses(): Promise<Map<number, TicketStatus>> {
    return this.statusList.get(0);
  }
}

/** ITFlow's built-in status ids that carry behaviour. */
export const RESOLVED = 4;
export const CLOSED = 5;
