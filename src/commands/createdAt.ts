import { instantOf, wallClock } from '../itflow/clock.js';
import { WALL_CLOCK } from './command.js';

/** A minute of clock skew between an importer and this server is not "the future". */
const SKEW_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * The earliest wall-clock time MySQL's DATETIME documents. Earlier dates are refused here:
 * before year 1000 the calendar arithmetic of time zones (and Intl's years) stops being one
 * four-digit format, and no ITFlow reply is that old.
 */
const EARLIEST_WALL = '1000-01-01 00:00:00';
/** A day before that instant in UTC: earlier than EARLIEST_WALL in every zone, whatever its offset. */
const BEFORE_EARLIEST = Date.UTC(1000, 0, 1) - DAY_MS;
const TOO_EARLY = `created_at must not be before ${EARLIEST_WALL}, the earliest time MySQL stores.`;
const IN_THE_FUTURE = 'created_at is in the future.';

const ISO_WITH_OFFSET = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(Z|[+-]\d\d:?\d\d)$/i;

/**
 * A bulk item's `created_at`, as the ITFlow wall-clock time to store: ISO 8601 with an offset
 * (or Z) is converted to ITFlow's zone; a naive 'YYYY-MM-DD HH:MM:SS' is taken as already in
 * it. Returns the problem as a message when it is neither, in the future, or before what MySQL
 * stores — never throws, so one item's date cannot fail the other items of its request.
 */
export function parseCreatedAt(value: string, zone: string, now = Date.now()): { wall: string } | { problem: string } {
  const text = value.trim();
  if (WALL_CLOCK.test(text)) {
    // Stored as given; the instant only serves the "not in the future" check.
    const asUtc = Date.parse(`${text.replace(' ', 'T')}Z`);
    if (Number.isNaN(asUtc) || new Date(asUtc).toISOString().slice(0, 19).replace('T', ' ') !== text) {
      return { problem: 'created_at is not a valid date and time.' };
    }
    if (text < EARLIEST_WALL) return { problem: TOO_EARLY };
    // No zone is a day away from UTC, so this is the future anywhere (and year 9999 stays
    // out of the zone arithmetic, which would step into year 10000).
    if (asUtc > now + SKEW_MS + DAY_MS || instantOf(text, zone) > now + SKEW_MS) return { problem: IN_THE_FUTURE };
    return { wall: text };
  }
  const iso = ISO_WITH_OFFSET.exec(text);
  const instant = iso ? Date.parse(`${iso[1]}T${iso[2]}${(iso[3] as string).toUpperCase()}`) : Number.NaN;
  if (Number.isNaN(instant)) {
    return {
      problem:
        "created_at must be ISO 8601 with an offset (2026-03-01T09:30:00-05:00) or 'YYYY-MM-DD HH:MM:SS' in ITFlow's time zone.",
    };
  }
  if (instant > now + SKEW_MS) return { problem: IN_THE_FUTURE };
  if (instant < BEFORE_EARLIEST) return { problem: TOO_EARLY };
  const wall = wallClock(instant, zone);
  return wall < EARLIEST_WALL ? { problem: TOO_EARLY } : { wall };
}
