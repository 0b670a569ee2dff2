import { describe, expect, it } from 'vitest';
import { wallClock } from '../../src/itflow/clock.js';

const formats = new Map<string, Intl.DateTimeFormat>();

/** What Intl shows for an instant in a zone: the reference that wallClock's cached offsets must match. */
function intlWallClock(ms: number, timeZone: string): string {
  const parts: Record<string, string> = {};
  const format =
    formats.get(timeZone) ??
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  formats.set(timeZone, format);
  for (const part of format.formatToParts(ms)) parts[part.type] = part.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/Berlin',
  'Australia/Lord_Howe',
  'Asia/Kathmandu',
  'Pacific/Chatham',
  'America/St_Johns',
];

describe('wallClock', () => {
  it.each(ZONES)('shows what Intl shows in %s, across the years and through both DST changes of 2024', (zone) => {
    const instants: number[] = [];
    for (let ms = Date.UTC(1995, 0, 1); ms < Date.UTC(2035, 0, 1); ms += 86_399_917) instants.push(ms);
    // Every 61 s through the days around each 2024 change, both hemispheres.
    for (const [from, to] of [
      [Date.UTC(2024, 2, 9), Date.UTC(2024, 2, 11)],
      [Date.UTC(2024, 2, 30), Date.UTC(2024, 3, 8)],
      [Date.UTC(2024, 8, 28), Date.UTC(2024, 9, 7)],
      [Date.UTC(2024, 9, 26), Date.UTC(2024, 10, 4)],
    ] as const) {
      for (let ms = from; ms < to; ms += 61_001) instants.push(ms);
    }
    const wrong = instants.filter((ms) => wallClock(ms, zone) !== intlWallClock(ms, zone));
    expect(wrong.map((ms) => [new Date(ms).toISOString(), wallClock(ms, zone), intlWallClock(ms, zone)])).toEqual([]);
    expect(instants.length).toBeGreaterThan(30_000);
  });
});
