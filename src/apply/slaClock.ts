// ITFlow's SLA bookkeeping (functions/sla.php, ITFlow ≥ 2.6), step for step on a TicketModel:
// the resolution clock as sla_history intervals (running while the ticket is open and not in a
// pausing status; the deadline re-based on the budget left when it resumes), the first-response
// stamp with its verdict, the resolution verdict (a recorded miss is final), and its reset on
// reopen. "Now" is the command's own time. Nothing here runs where ITFlow has no SLA clock.
import type { BusinessCalendar } from '../itflow/businessTime.js';
import { addBusinessMinutes, businessMinutesBetween } from '../itflow/businessTime.js';
import type { TicketStatus } from '../itflow/tickets.js';
import { type TicketModel, updateTicket } from './ticketModel.js';

export interface SlaContext {
  statuses: Map<number, TicketStatus>;
  calendar: BusinessCalendar;
  zone: string;
  /** The command's time, ITFlow's wall clock: ITFlow's NOW() for these steps. */
  at: string;
  /** ITFlow's wall clock at writing, for ticket_updated_at. */
  now: string;
}

/** ITFlow compares these as strtotime() instants; the wall-clock strings of one zone compare alike. */
const notAfter = (a: string, b: string) => a <= b;

/** getTicketSlaPausedCount: how many intervals have ended. */
function pausedCount(model: TicketModel): number {
  return model.intervals.filter((i) => i.endedAt !== null).length;
}

/** getTicketSlaConsumedMinutes: business minutes spent on the resolution clock so far. */
export function consumedMinutes(model: TicketModel, ctx: SlaContext): number {
  const between = (a: string, b: string) => businessMinutesBetween(a, b, ctx.calendar, ctx.zone);
  if (model.intervals.length === 0) {
    const t = model.ticket;
    return between(t.createdAt ?? ctx.at, t.resolvedAt ?? t.closedAt ?? ctx.at);
  }
  return model.intervals.reduce((sum, i) => sum + (i.endedAt !== null ? (i.minutes ?? 0) : between(i.startedAt, ctx.at)), 0);
}

/** syncTicketSlaClock: open an interval when the clock should run, close it when it should not. */
export function syncTicketSlaClock(model: TicketModel, ctx: SlaContext): void {
  const t = model.ticket;
  const resolutionMinutes = t.slaResolutionMinutes ?? 0;
  const tracked = (t.slaId ?? 0) > 0 && resolutionMinutes > 0;
  const shouldRun =
    tracked &&
    t.resolvedAt === null &&
    t.closedAt === null &&
    t.archivedAt === null &&
    ctx.statuses.get(t.status)?.pausesSla !== true;
  const open = [...model.intervals].reverse().find((i) => i.endedAt === null);

  if (shouldRun && open === undefined) {
    // Earlier intervals make this a resume: the deadline moves out by the budget that is left.
    const resumed = pausedCount(model) > 0;
    const consumed = resumed ? consumedMinutes(model, ctx) : 0;
    // The very first interval is anchored to the ticket's creation, not to now.
    model.intervals.push({
      id: null,
      startedAt: resumed ? ctx.at : (t.createdAt ?? ctx.at),
      endedAt: null,
      minutes: null,
      changed: true,
    });
    if (resumed) {
      const remaining = Math.max(0, resolutionMinutes - consumed);
      updateTicket(
        model,
        {
          ticket_resolution_due_at: addBusinessMinutes(ctx.at, remaining, ctx.calendar, ctx.zone),
          // A ticket that already breached stays breached.
          ticket_resolution_sla_alert_stage: t.resolutionAlertStage === 2 ? 2 : 0,
        },
        ctx.now,
      );
    }
  } else if (!shouldRun && open !== undefined) {
    open.endedAt = ctx.at;
    open.minutes = businessMinutesBetween(open.startedAt, ctx.at, ctx.calendar, ctx.zone);
    open.changed = true;
  }
}

/** setTicketFirstResponse: stamp the first response once and judge the response SLA. */
export function setTicketFirstResponse(model: TicketModel, ctx: SlaContext): void {
  const t = model.ticket;
  if (t.firstResponseAt !== null) return;
  const met = t.responseDueAt === null ? null : notAfter(ctx.at, t.responseDueAt) ? 1 : 0;
  updateTicket(model, { ticket_first_response_at: ctx.at, ticket_response_sla_met: met }, ctx.now);
}

/** setTicketResolutionSlaMet: judge the resolution SLA (a recorded miss stays a miss). */
export function setTicketResolutionSlaMet(model: TicketModel, ctx: SlaContext): void {
  const t = model.ticket;
  if (t.resolutionDueAt === null) return;
  if (t.resolutionSlaMet === 0) {
    syncTicketSlaClock(model, ctx);
    return;
  }
  const ended = t.resolvedAt ?? ctx.at;
  updateTicket(model, { ticket_resolution_sla_met: notAfter(ended, t.resolutionDueAt) ? 1 : 0 }, ctx.now);
  syncTicketSlaClock(model, ctx);
}

/**
 * resetTicketResolutionSla: a reopened ticket goes back on the clock with its verdict cleared —
 * unless it had missed and its budget is spent, when the miss (and the breach stage) survive.
 */
export function resetTicketResolutionSla(model: TicketModel, ctx: SlaContext): void {
  const t = model.ticket;
  const resolutionMinutes = t.slaResolutionMinutes ?? 0;
  if (t.resolutionSlaMet === 0 && resolutionMinutes > 0 && consumedMinutes(model, ctx) >= resolutionMinutes) {
    syncTicketSlaClock(model, ctx);
    return;
  }
  updateTicket(model, { ticket_resolution_sla_met: null, ticket_resolution_sla_alert_stage: 0 }, ctx.now);
  syncTicketSlaClock(model, ctx);
}
