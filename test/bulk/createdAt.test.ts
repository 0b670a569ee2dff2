import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WALL_CLOCK } from '../../src/commands/command.js';
import { parseCreatedAt } from '../../src/commands/createdAt.js';

/**
 * A bulk item's `created_at` at the edges of the calendar: every value gets an answer for
 * that item — a wall-clock time MySQL stores as it is, or a problem — and never an exception
 * that would turn the whole bulk request into a 500. No database: the rule is pure.
 */
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
/** UTC, both sides of it, the zones furthest east and west, and ones with odd historical offsets. */
const ZONES = ['UTC', 'America/New_York', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'Asia/Tokyo', 'Asia/Kathmandu'];
const TOO_EARLY = 'created_at must not be before 1000-01-01 00:00:00, the earliest time MySQL stores.';
const FUTURE = 'created_at is in the future.';

describe.each(ZONES)('created_at at the calendar’s edges (ITFlow zone %s)', (zone) => {
  it.each([
    ['0001-01-01 00:00:00', TOO_EARLY],
    ['0000-01-01 00:00:00', TOO_EARLY],
    ['0999-12-31 23:59:59', TOO_EARLY],
    ['0001-01-01T00:00:00Z', TOO_EARLY],
    ['0000-01-01T00:00:00+14:00', TOO_EARLY],
    ['0001-01-01T00:00:00-12:00', TOO_EARLY],
    ['1000-01-01T00:00:00+14:00', TOO_EARLY],
    ['9999-12-31 23:59:59', FUTURE],
    ['9999-12-31T23:59:59-14:00', FUTURE],
    ['9999-12-31T23:59:59+14:00', FUTURE],
  ])('%s is refused: %s', (value, problem) => {
    expect(parseCreatedAt(value, zone, NOW)).toEqual({ problem });
  });

  it('the earliest storable time is kept as given, and a naive time just after it too', () => {
    expect(parseCreatedAt('1000-01-01 00:00:00', zone, NOW)).toEqual({ wall: '1000-01-01 00:00:00' });
    expect(parseCreatedAt('1000-01-02 12:00:00', zone, NOW)).toEqual({ wall: '1000-01-02 12:00:00' });
  });

  it('any date of years 0000-9999 with any offset gives a storable wall clock or a problem, never an exception', () => {
    const two = (n: number) => String(n).padStart(2, '0');
    const arbitrary = fc.record({
      year: fc.oneof(fc.integer({ min: 0, max: 1100 }), fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 9900, max: 9999 })),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 28 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.integer({ min: 0, max: 59 }),
      offset: fc.option(fc.integer({ min: -14 * 60, max: 14 * 60 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(arbitrary, ({ year, month, day, hour, minute, offset }) => {
        const date = `${String(year).padStart(4, '0')}-${two(month)}-${two(day)}`;
        const sign = (offset ?? 0) < 0 ? '-' : '+';
        const value =
          offset === undefined
            ? `${date} ${two(hour)}:${two(minute)}:00`
            : `${date}T${two(hour)}:${two(minute)}:00${sign}${two(Math.floor(Math.abs(offset) / 60))}:${two(Math.abs(offset) % 60)}`;
        const answer = parseCreatedAt(value, zone, NOW);
        if ('wall' in answer) {
          expect(answer.wall, value).toMatch(WALL_CLOCK);
          expect(answer.wall >= '1000-01-01 00:00:00', value).toBe(true);
        } else {
          expect([TOO_EARLY, FUTURE], value).toContain(answer.problem);
        }
      }),
      { numRuns: 400 },
    );
  });
});
