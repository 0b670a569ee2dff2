import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../cache.js';

/**
 * ITFlow stores every DATETIME as wall-clock time in `settings.config_timezone` (it sets the
 * MySQL session zone to that zone's offset). The service follows the same rule: it computes
 * every timestamp it writes or compares here and passes it as a value, never NOW().
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

function formatWallClock(instant: number, timeZone: string): string {
  const parts: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(instant)) parts[part.type] = part.value;
  // Intl writes years before 1000 without leading zeros ('999'); the format has four digits.
  return `${parts.year?.padStart(4, '0')}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

/** The zone's offset from UTC (ms) at an instant, whole seconds. */
function offsetAt(instant: number, timeZone: string): number {
  const wall = formatWallClock(instant, timeZone);
  return Date.parse(`${wall.replace(' ', 'T')}Z`) - Math.floor(instant / 1000) * 1000;
}

// Offsets by zone and UTC day: a zone changes its offset at most once in a day, so an offset
// found at both ends of a day holds throughout it; a day with a change is formatted per instant.
const DAY = 86_400_000;
const offsets = new Map<string, number | null>();

/** 'YYYY-MM-DD HH:MM:SS' for an instant, as a wall clock in the given IANA zone shows it. */
export function wallClock(instant: Date | number, timeZone: string): string {
  const ms = typeof instant === 'number' ? instant : instant.getTime();
  const day = Math.floor(ms / DAY);
  const key = `${timeZone} ${day}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    const start = offsetAt(day * DAY, timeZone);
    offset = start === offsetAt((day + 1) * DAY - 1000, timeZone) ? start : null;
    if (offsets.size > 10_000) offsets.clear();
    offsets.set(key, offset);
  }
  if (offset === null || !Number.isFinite(ms)) return formatWallClock(ms, timeZone);
  return new Date(Math.floor(ms / 1000) * 1000 + offset).toISOString().slice(0, 19).replace('T', ' ');
}

export function isValidTimeZone(zone: string): boolean {
  try {
    formatterFor(zone);
    return true;
  } catch {
    return false;
  }
}

export interface ItflowClock {
  /** ITFlow's configured zone (re-read from settings at most once a minute). */
  zone(): Promise<string>;
  /** Wall-clock time in ITFlow's zone for an instant (default: now). */
  at(instant?: Date | number): Promise<string>;
}

export function createItflowClock(pool: Pool, onInvalidZone: (zone: string) => void = () => {}, ttlMs = 60_000): ItflowClock {
  const settings = ttlMemo<number, string>(
    ttlMs,
    1,
    async () => {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT config_timezone FROM settings WHERE company_id = 1');
      const zone = String(rows[0]?.config_timezone ?? '');
      if (isValidTimeZone(zone) && zone !== '') return zone;
      onInvalidZone(zone);
      return 'UTC';
    },
    undefined,
    { staleWhileRefreshing: true },
  );
  const zone = () => settings.get(1);
  return {
    zone,
    at: async (instant = Date.now()) => wallClock(instant, await zone()),
  };
}

/**
 * The instant a wall-clock time names in a zone ('2026-03-08 02:30:00' in America/New_York).
 * Found by correcting a first guess with the zone's offset at that guess, twice (enough across
 * DST changes); a time skipped by a DST change lands on the hour after.
 */
export function instantOf(wall: string, timeZone: string): number {
  const asUtc = Date.parse(`${wall.replace(' ', 'T')}Z`);
  let guess = asUtc;
  for (let i = 0; i < 2; i++) guess = asUtc - (Date.parse(`${wallClock(guess, timeZone).replace(' ', 'T')}Z`) - guess);
  return guess;
}
