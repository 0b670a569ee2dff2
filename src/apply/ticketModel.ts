// A ticket as a batch changes it: its row as locked, its SLA clock intervals, and the columns set
// so far. ITFlow's handlers (itflowHandlers.ts) read and change it step by step as ITFlow's PHP
// reads and updates the row between its statements; what they leave becomes one UPDATE of the
// ticket and the sla_history writes, at the end of the batch.
import type { LockedTicket } from './lockTickets.js';

export type TicketColumn =
  | 'ticket_status'
  | 'ticket_updated_at'
  | 'ticket_resolved_at'
  | 'ticket_closed_at'
  | 'ticket_closed_by'
  | 'ticket_first_response_at'
  | 'ticket_response_sla_met'
  | 'ticket_resolution_sla_met'
  | 'ticket_resolution_due_at'
  | 'ticket_resolution_sla_alert_stage';

/** One run of a ticket's resolution clock (an sla_history row), existing or new in this batch. */
export interface SlaInterval {
  id: number | null;
  startedAt: string;
  endedAt: string | null;
  minutes: number | null;
  /** Written by this batch (inserted when id is null, else updated). */
  changed: boolean;
}

export interface TicketModel {
  ticket: LockedTicket;
  intervals: SlaInterval[];
  set: Partial<Record<TicketColumn, string | number | null>>;
}

export function ticketModel(ticket: LockedTicket, intervals: SlaInterval[]): TicketModel {
  return { ticket: { ...ticket }, intervals: intervals.map((i) => ({ ...i })), set: {} };
}

const FIELD: Record<TicketColumn, keyof LockedTicket | null> = {
  ticket_status: 'status',
  ticket_updated_at: null,
  ticket_resolved_at: 'resolvedAt',
  ticket_closed_at: 'closedAt',
  ticket_closed_by: 'closedBy',
  ticket_first_response_at: 'firstResponseAt',
  ticket_response_sla_met: 'responseSlaMet',
  ticket_resolution_sla_met: 'resolutionSlaMet',
  ticket_resolution_due_at: 'resolutionDueAt',
  ticket_resolution_sla_alert_stage: 'resolutionAlertStage',
};

/**
 * An UPDATE of the ticket row, as ITFlow issues one. ticket_updated_at is ON UPDATE
 * CURRENT_TIMESTAMP in ITFlow's schema, so any change of the row stamps it: it is set here,
 * explicitly and in ITFlow's zone, whenever a value actually changes.
 */
export function updateTicket(
  model: TicketModel,
  values: Partial<Record<TicketColumn, string | number | null>>,
  now: string,
): void {
  let changed = false;
  for (const [column, value] of Object.entries(values) as Array<[TicketColumn, string | number | null]>) {
    const field = FIELD[column];
    if (field !== null) {
      if ((model.ticket[field] ?? null) !== value) changed = true;
      (model.ticket as unknown as Record<string, unknown>)[field] = value;
    } else changed = true;
    model.set[column] = value;
  }
  if (changed) model.set.ticket_updated_at = values.ticket_updated_at ?? now;
}

/**
 * The ticket UPDATEs for a whole batch, one per ticket with its final values; tickets that end
 * with the very same values (typically a batch of replies: only ticket_updated_at) share one.
 */
export function ticketUpdates(models: Iterable<TicketModel>): Array<{ sql: string; params: unknown[] }> {
  const groups = new Map<string, { set: TicketModel['set']; ticketIds: number[] }>();
  for (const model of models) {
    if (Object.keys(model.set).length === 0) continue;
    const key = JSON.stringify(Object.entries(model.set));
    const group = groups.get(key) ?? { set: model.set, ticketIds: [] };
    group.ticketIds.push(model.ticket.id);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ set, ticketIds }) => {
    const entries = Object.entries(set);
    return {
      // Column names come from the fixed TicketColumn list, never from input.
      sql: `UPDATE tickets SET ${entries.map(([column]) => `${column} = ?`).join(', ')} WHERE ticket_id IN (?)`,
      params: [...entries.map(([, value]) => value), ticketIds],
    };
  });
}

/** The sla_history writes of a batch: new intervals in one INSERT, each closed existing one updated. */
export function intervalWrites(models: Iterable<TicketModel>): Array<{ sql: string; params: unknown[] }> {
  const inserts: unknown[][] = [];
  const updates: Array<{ sql: string; params: unknown[] }> = [];
  for (const model of models) {
    for (const interval of model.intervals) {
      if (!interval.changed) continue;
      if (interval.id === null) inserts.push([interval.startedAt, interval.endedAt, interval.minutes, model.ticket.id]);
      else {
        updates.push({
          sql: 'UPDATE sla_history SET sla_history_ended_at = ?, sla_history_minutes = ? WHERE sla_history_id = ?',
          params: [interval.endedAt, interval.minutes, interval.id],
        });
      }
    }
  }
  const insert =
    inserts.length > 0
      ? [
          {
            sql: `INSERT INTO sla_history (sla_history_started_at, sla_history_ended_at, sla_history_minutes, sla_history_ticket_id)
                  VALUES ?`,
            params: [inserts],
          },
        ]
      : [];
  return [...insert, ...updates];
}
