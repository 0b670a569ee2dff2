// ITFlow's business-time arithmetic (functions/sla.php addBusinessMinutes and
// businessMinutesBetween), so SLA deadlines and clock intervals come out to the minute as
// ITFlow's own: business days and hours from its settings, window edges by the wall clock in
// config_timezone, intervals measured in real elapsed time (a DST-shortened business day holds
// less business time, as ITFlow reads it). Without a usable calendar the clock runs 24×7.
import { instantOf, wallClock } from './clock.js';

export interface BusinessCalendar {
  /** ISO weekdays (1 Monday … 7 Sunday) that have business hours. */
  days: number[];
  /** 'HH:MM:SS' wall-clock times. */
  start: string;
  end: string;
}

/** Reads ITFlow's settings values (config_business_days '1,2,3,4,5', hours as TIME strings). */
export function businessCalendar(days: unknown, start: unknown, end: unknown): BusinessCalendar {
  const parsed = String(days ?? '')
    .split(',')
    .map((day) => Number.parseInt(day, 10))
    .filter((day) => day >= 1 && day <= 7);
  return { days: parsed, start: String(start ?? ''), end: String(end ?? '') };
}

/** The calendar is usable, else time runs around the clock (as ITFlow falls back). */
function usable(calendar: BusinessCalendar): boolean {
  return calendar.days.length > 0 && calendar.start !== '' && calendar.end !== '' && calendar.start < calendar.end;
}

/** PHP's date('N') of a wall-clock time: 1 Monday … 7 Sunday. */
function isoWeekday(wall: string): number {
  const day = new Date(`${wall.slice(0, 10)}T00:00:00Z`).getUTCDay();
  return day === 0 ? 7 : day;
}

/** The wall-clock date after `wall`'s, at midnight. */
function nextMidnight(wall: string): string {
  const next = new Date(`${wall.slice(0, 10)}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return `${next.toISOString().slice(0, 10)} 00:00:00`;
}

const SECOND = 1000;
/** Two years of calendar: ITFlow's guard against a loop with a broken configuration. */
const MAX_DAYS = 731;

/**
 * `start` plus `minutes` of business time, as a wall-clock 'YYYY-MM-DD HH:MM:SS' in `zone`.
 * Non-positive minutes give `start` back.
 */
export function addBusinessMinutes(start: string, minutes: number, calendar: BusinessCalendar, zone: string): string {
  const whole = Math.trunc(minutes);
  let cursor = instantOf(start, zone);
  if (whole <= 0) return wallClock(cursor, zone);
  // Around the clock ITFlow adds the minutes to the wall clock (PHP's modify('+N minutes')), so
  // across a DST change the result keeps the wall-clock distance, not the elapsed one.
  if (!usable(calendar)) {
    const shifted = new Date(Date.parse(`${start.replace(' ', 'T')}Z`) + whole * 60 * SECOND).toISOString();
    return wallClock(instantOf(shifted.slice(0, 19).replace('T', ' '), zone), zone);
  }

  let remaining = whole * 60 * SECOND;
  for (let i = 0; i < MAX_DAYS; i++) {
    const wall = wallClock(cursor, zone);
    if (calendar.days.includes(isoWeekday(wall))) {
      const windowStart = instantOf(`${wall.slice(0, 10)} ${calendar.start}`, zone);
      const windowEnd = instantOf(`${wall.slice(0, 10)} ${calendar.end}`, zone);
      if (cursor < windowStart) cursor = windowStart;
      if (cursor < windowEnd) {
        const available = windowEnd - cursor;
        if (remaining <= available) return wallClock(cursor + remaining, zone);
        remaining -= available;
      }
    }
    cursor = instantOf(nextMidnight(wall), zone);
  }
  return wallClock(cursor + remaining, zone);
}

/** Whole business minutes between two wall-clock times (0 when `end` is not after `start`). */
export function businessMinutesBetween(start: string, end: string, calendar: BusinessCalendar, zone: string): number {
  const from = instantOf(start, zone);
  const to = instantOf(end, zone);
  if (to <= from) return 0;
  if (!usable(calendar)) return Math.floor((to - from) / (60 * SECOND));

  let elapsed = 0;
  let cursor = from;
  for (let i = 0; i < MAX_DAYS && cursor <= to; i++) {
    const wall = wallClock(cursor, zone);
    if (calendar.days.includes(isoWeekday(wall))) {
      const windowStart = instantOf(`${wall.slice(0, 10)} ${calendar.start}`, zone);
      const windowEnd = instantOf(`${wall.slice(0, 10)} ${calendar.end}`, zone);
      const overlapStart = Math.max(cursor, windowStart);
      const overlapEnd = Math.min(to, windowEnd);
      if (overlapEnd > overlapStart) elapsed += overlapEnd - overlapStart;
    }
    cursor = instantOf(nextMidnight(wall), zone);
  }
  return Math.floor(elapsed / (60 * SECOND));
}
