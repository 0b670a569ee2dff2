import { instantOf, wallClock } from '../itflow/clock.js';
import { WALL_CLOCK } from './command.js';

/** A minute of clock skew between an importer and this server is not "the future". */
const SKEW_MS = 60_000;

const ISO_WITH_OFFSET = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(Z|[+-]\d\d:?\d\d)$/i;

/**
 * A bulk item's `created_at`, as the ITFlow wall-clock time to store: ISO 8601 with an offset
 * (or Z) is converted to ITFlow's zone; a naive 'YYYY-MM-DD HH:MM:SS' is taken as already in
 * it. Returns the problem as a message when it is neither, or in the future.
 */
export function parseCreatedAt(value: string, zone: string, now = Date.now()): { wall: string } | { problem: string } {
  const text = value.trim();
  let instant: number;
  if (WALL_CLOCK.test(text)) {
    // Stored as given; the instant only serves the "not in the future" check.
    const asUtc = Date.parse(`${text.replace(' ', 'T')}Z`);
    if (Number.isNaN(asUtc) || new Date(asUtc).toISOString().slice(0, 19).replace('T', ' ') !== text) {
      return { problem: 'created_at is not a valid date and time.' };
    }
    if (instantOf(text, zone) > now + SKEW_MS) return { problem: 'created_at is in the future.' };
    return { wall: text };
  } else {
    const iso = ISO_WITH_OFFSET.exec(text);
    instant = iso ? Date.parse(`${iso[1]}T${iso[2]}${(iso[3] as string).toUpperCase()}`) : Number.NaN;
    if (Number.isNaN(instant)) {
      return {
        problem:
          "created_at must be ISO 8601 with an offset (2026-03-01T09:30:00-05:00) or 'YYYY-MM-DD HH:MM:SS' in ITFlow's time zone.",
      };
    }
  }
  if (instant > now + SKEW_MS) return { problem: 'created_at is in the future.' };
  return { wall: wallClock(instant, zone) };
}
