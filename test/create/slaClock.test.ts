import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addBusinessMinutes, type BusinessCalendar, businessMinutesBetween } from '../../src/itflow/businessTime.js';
import { wallClock } from '../../src/itflow/clock.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addSla, addTicket, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { BULK, CREATE } from '../helpers/paths.js';

// ITFlow's SLA clock (≥ 2.6), as its syncTicketSlaClock & co keep it: the resolution clock runs
// in sla_history intervals while a ticket is open and not in a pausing status; a pause closes the
// running interval with the business minutes it ran; resuming opens another and moves the
// deadline out by the budget that is left; resolve and close stop it; reopen restarts it and
// resets the verdict — unless a miss was recorded and the budget is spent. Business minutes are
// ITFlow's (src/itflow/businessTime.ts, checked against its PHP); expected values are worked out
// here from the interval times the service wrote.

const WAIT = { Prefer: 'wait=10' };
const ZONE = 'America/New_York';
const PAUSED = 6; // a status that pauses the SLA clock
const AROUND_THE_CLOCK: BusinessCalendar = { days: [], start: '09:00:00', end: '17:00:00' };
const OFFICE: BusinessCalendar = { days: [1, 2, 3, 4, 5], start: '09:00:00', end: '17:00:00' };

interface Interval {
  started: string;
  ended: string | null;
  minutes: number | null;
}

describe('the SLA clock (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let sla: number;
  const post = (ticket: number, body: object = {}) =>
    h.post(CREATE, { ticket_id: ticket, ...body }, { key: world.keys.all, headers: WAIT });
  const intervals = async (ticket: number): Promise<Interval[]> =>
    (
      await h.query(
        'SELECT sla_history_started_at, sla_history_ended_at, sla_history_minutes FROM sla_history WHERE sla_history_ticket_id = ? ORDER BY sla_history_id',
        [ticket],
      )
    ).map((r) => ({ started: r.sla_history_started_at, ended: r.sla_history_ended_at, minutes: r.sla_history_minutes }));
  const useCalendar = (calendar: BusinessCalendar) =>
    h.query(
      'UPDATE settings SET config_business_days = ?, config_business_hours_start = ?, config_business_hours_end = ? WHERE company_id = 1',
      [calendar.days.join(','), calendar.start, calendar.end],
    );
  /** A ticket raised `minutesAgo` ago on the SLA, its first interval running since then, as ITFlow's applyTicketSla leaves it. */
  const slaTicket = async (minutesAgo: number, calendar: BusinessCalendar, budget = 480) => {
    const created = wallClock(Date.now() - minutesAgo * 60_000, ZONE);
    const ticket = await addTicket(h.db, '2.6.7', {
      clientId: world.clientA,
      slaId: budget === 480 ? sla : await addSla(h.db, { response: 60, resolution: budget }),
      createdAt: created,
      responseDueAt: addBusinessMinutes(created, 60, calendar, ZONE),
      resolutionDueAt: addBusinessMinutes(created, budget, calendar, ZONE),
    });
    await h.query('INSERT INTO sla_history (sla_history_started_at, sla_history_ticket_id) VALUES (?, ?)', [created, ticket]);
    return { ticket, created };
  };
  /** A wall-clock time the service wrote is the command's time: within seconds of now. */
  const justNow = (wall: string | null) => {
    const now = wallClock(Date.now(), ZONE);
    expect(wall !== null && wall <= now && wall >= wallClock(Date.now() - 10_000, ZONE), `${wall} is now (${now})`).toBe(true);
  };

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', timeZone: ZONE });
    world = await seedWorld(h.db, '2.6.7');
    sla = await addSla(h.db, { response: 60, resolution: 480 });
    await h.query(
      "INSERT INTO ticket_statuses (ticket_status_id, ticket_status_name, ticket_status_color, ticket_status_pauses_sla) VALUES (?, 'Waiting on Client', '#aaa', 1)",
      [PAUSED],
    );
  });
  afterAll(() => h?.close());

  it('pause, resume, resolve, reopen, close: intervals, re-based deadlines and verdicts as ITFlow keeps them', async () => {
    await useCalendar(AROUND_THE_CLOCK);
    const { ticket, created } = await slaTicket(120, AROUND_THE_CLOCK);

    await post(ticket, { status: PAUSED });
    let clock = await intervals(ticket);
    expect(clock).toHaveLength(1);
    justNow(clock[0]?.ended ?? null);
    expect(clock[0]).toMatchObject({
      started: created,
      minutes: businessMinutesBetween(created, clock[0]?.ended as string, AROUND_THE_CLOCK, ZONE),
    });
    expect(clock[0]?.minutes).toBeGreaterThanOrEqual(119);
    const spent = clock[0]?.minutes as number;

    await post(ticket, { status: 2 });
    clock = await intervals(ticket);
    expect(clock).toHaveLength(2);
    const resumedAt = clock[1]?.started as string;
    justNow(resumedAt);
    expect(clock[1]).toMatchObject({ ended: null, minutes: null });
    expect(await ticketRow(h.db, ticket)).toMatchObject({
      ticket_resolution_due_at: addBusinessMinutes(resumedAt, 480 - spent, AROUND_THE_CLOCK, ZONE),
      ticket_resolution_sla_alert_stage: 0,
    });

    await post(ticket, { status: 4 });
    clock = await intervals(ticket);
    expect(clock).toHaveLength(2);
    justNow(clock[1]?.ended ?? null);
    let row = await ticketRow(h.db, ticket);
    // Resolved within the budget; the first response, stamped by the resolve, came after its hour.
    expect(row).toMatchObject({ ticket_resolution_sla_met: 1, ticket_response_sla_met: 0 });
    expect(row.ticket_first_response_at).toBe(row.ticket_resolved_at);

    await post(ticket, { status: 2 });
    clock = await intervals(ticket);
    expect(clock).toHaveLength(3);
    const reopenedAt = clock[2]?.started as string;
    const consumed = (clock[0]?.minutes as number) + (clock[1]?.minutes as number);
    row = await ticketRow(h.db, ticket);
    expect(row).toMatchObject({
      ticket_resolved_at: null,
      ticket_resolution_sla_met: null,
      ticket_resolution_due_at: addBusinessMinutes(reopenedAt, 480 - consumed, AROUND_THE_CLOCK, ZONE),
    });

    await post(ticket, { status: 5 });
    clock = await intervals(ticket);
    expect(clock).toHaveLength(3);
    expect(clock[2]?.ended).not.toBeNull();
    expect(clock.every((i) => i.ended !== null && i.minutes !== null)).toBe(true);
    expect((await ticketRow(h.db, ticket)).ticket_resolution_sla_met).toBe(1);
  });

  it('counts business time only: a pause after a weekend records the business minutes, and the resumed deadline skips nights', async () => {
    await useCalendar(OFFICE);
    // Raised six days ago, so the interval spans at least one weekend and several nights.
    const { ticket, created } = await slaTicket(6 * 24 * 60, OFFICE, 6000);
    await post(ticket, { status: PAUSED });
    const [first] = await intervals(ticket);
    const ended = first?.ended as string;
    expect(first?.minutes).toBe(businessMinutesBetween(created, ended, OFFICE, ZONE));
    expect(first?.minutes).toBeLessThan(6 * 24 * 60);
    expect(first?.minutes).toBeLessThanOrEqual(5 * 8 * 60);

    await post(ticket, { status: 2 });
    const [, second] = await intervals(ticket);
    expect((await ticketRow(h.db, ticket)).ticket_resolution_due_at).toBe(
      addBusinessMinutes(second?.started as string, 6000 - (first?.minutes as number), OFFICE, ZONE),
    );
  });

  it('a recorded miss survives a reopen once the budget is spent, breach stage and all', async () => {
    await useCalendar(AROUND_THE_CLOCK);
    const created = wallClock(Date.now() - 180 * 60_000, ZONE);
    const budget = await addSla(h.db, { response: 30, resolution: 60 });
    const ticket = await addTicket(h.db, '2.6.7', {
      clientId: world.clientA,
      slaId: budget,
      createdAt: created,
      status: 4,
      resolvedAt: wallClock(Date.now() - 60 * 60_000, ZONE),
      resolutionDueAt: wallClock(Date.now() - 120 * 60_000, ZONE),
    });
    await h.query(`UPDATE tickets SET ticket_resolution_sla_met = 0, ticket_resolution_sla_alert_stage = 2 WHERE ticket_id = ?`, [
      ticket,
    ]);
    await h.query(
      'INSERT INTO sla_history (sla_history_started_at, sla_history_ended_at, sla_history_minutes, sla_history_ticket_id) VALUES (?, ?, 120, ?)',
      [created, wallClock(Date.now() - 60 * 60_000, ZONE), ticket],
    );
    await post(ticket, { status: 2 });
    const row = await ticketRow(h.db, ticket);
    expect(row).toMatchObject({ ticket_status: 2, ticket_resolution_sla_met: 0, ticket_resolution_sla_alert_stage: 2 });
    const clock = await intervals(ticket);
    expect(clock).toHaveLength(2);
    // No budget left: the deadline is the moment the clock restarted.
    expect(row.ticket_resolution_due_at).toBe(clock[1]?.started);
  });

  it('tickets without an SLA, and historical imports, leave the clock alone', async () => {
    await useCalendar(AROUND_THE_CLOCK);
    const plain = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    await post(plain, { status: PAUSED });
    await post(plain, { status: 4 });
    expect(await intervals(plain)).toEqual([]);

    const { ticket } = await slaTicket(60, AROUND_THE_CLOCK);
    const before = await intervals(ticket);
    const answer = await h.post(
      BULK,
      [{ ticket_id: ticket, ticket_reply: 'From last year', created_at: '2025-11-01 10:00:00', status: PAUSED }],
      {
        key: world.keys.all,
        headers: WAIT,
      },
    );
    expect(answer.status).toBe(200);
    expect(await intervals(ticket)).toEqual(before);
  });
});
