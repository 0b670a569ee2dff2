import { describe, expect, it } from 'vitest';
import { addBusinessMinutes, businessCalendar, businessMinutesBetween } from '../../src/itflow/businessTime.js';

// Business-time arithmetic against values ITFlow's own PHP computed (functions/sla.php
// addBusinessMinutes and businessMinutesBetween, run by php-cli 8.2 with the same zone and
// calendar): within a day, across nights and weekends, from outside business hours, a week of
// budget, DST changes inside business hours, no usable calendar (around the clock, where adding
// keeps wall-clock minutes across a DST change but measuring counts elapsed ones), odd windows
// and zones, zero and negative budgets. 6,000 random cases agreed with PHP when this was written.

type Vector = [
  zone: string,
  days: number[],
  start: string,
  end: string,
  from: string,
  minutes: number,
  to: string,
  due: string,
  between: number,
];

const VECTORS: Vector[] = [
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-11-23 10:00:00',
    240,
    '2026-11-23 14:00:00',
    '2026-11-23 14:00:00',
    240,
  ],
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-11-23 16:30:00',
    60,
    '2026-11-24 09:30:00',
    '2026-11-24 09:30:00',
    60,
  ],
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-11-27 16:00:00',
    120,
    '2026-11-30 10:00:00',
    '2026-11-30 10:00:00',
    120,
  ],
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-11-28 11:00:00',
    30,
    '2026-11-30 09:30:00',
    '2026-11-30 09:30:00',
    30,
  ],
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-11-24 06:00:00',
    480,
    '2026-11-24 20:00:00',
    '2026-11-24 17:00:00',
    480,
  ],
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-11-24 18:00:00',
    1,
    '2026-11-24 18:30:00',
    '2026-11-25 09:01:00',
    0,
  ],
  [
    'America/New_York',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-03-06 15:00:00',
    2400,
    '2026-03-13 15:00:00',
    '2026-03-13 15:00:00',
    2400,
  ],
  [
    'Europe/Berlin',
    [1, 2, 3, 4, 5, 6, 7],
    '00:00:00',
    '23:59:59',
    '2026-03-28 12:00:00',
    1440,
    '2026-03-29 12:00:00',
    '2026-03-29 13:00:01',
    1379,
  ],
  ['Europe/Berlin', [7], '01:00:00', '05:00:00', '2026-03-29 00:00:00', 200, '2026-03-29 06:00:00', '2026-04-05 01:20:00', 180],
  ['Europe/Berlin', [7], '01:00:00', '05:00:00', '2026-10-25 00:00:00', 270, '2026-10-25 06:00:00', '2026-10-25 04:30:00', 300],
  [
    'America/New_York',
    [],
    '09:00:00',
    '17:00:00',
    '2026-03-07 12:00:00',
    1440,
    '2026-03-08 12:00:00',
    '2026-03-08 12:00:00',
    1380,
  ],
  [
    'America/New_York',
    [2],
    '17:00:00',
    '09:00:00',
    '2026-10-31 09:30:53',
    10000,
    '2026-11-07 08:10:53',
    '2026-11-07 08:10:53',
    10060,
  ],
  [
    'Asia/Kathmandu',
    [1, 3, 5, 6],
    '08:30:00',
    '12:15:00',
    '2026-06-10 12:00:00',
    481,
    '2026-06-20 12:00:00',
    '2026-06-15 08:46:00',
    1350,
  ],
  [
    'Australia/Lord_Howe',
    [1, 2, 3, 4, 5],
    '09:00:00',
    '17:00:00',
    '2026-04-03 16:45:00',
    30,
    '2026-04-06 09:15:00',
    '2026-04-06 09:15:00',
    30,
  ],
  ['UTC', [1, 2, 3, 4, 5], '09:00:00', '17:00:00', '2026-11-23 10:00:00', 0, '2026-11-23 09:00:00', '2026-11-23 10:00:00', 0],
  ['UTC', [1, 2, 3, 4, 5], '09:00:00', '17:00:00', '2026-11-23 10:00:00', -5, '2026-11-23 10:00:59', '2026-11-23 10:00:00', 0],
];

describe('business time, as ITFlow computes it', () => {
  it.each(VECTORS)(
    '%s %j %s–%s: from %s plus %i min, and up to %s',
    (zone, days, start, end, from, minutes, to, due, between) => {
      const calendar = { days, start, end };
      expect(addBusinessMinutes(from, minutes, calendar, zone)).toBe(due);
      expect(businessMinutesBetween(from, to, calendar, zone)).toBe(between);
    },
  );

  it('reads ITFlow’s settings values, dropping days that are not ISO weekdays', () => {
    expect(businessCalendar('1,2,3,4,5', '09:00:00', '17:00:00')).toEqual({
      days: [1, 2, 3, 4, 5],
      start: '09:00:00',
      end: '17:00:00',
    });
    expect(businessCalendar(' 0,7,8,x ', null, undefined)).toEqual({ days: [7], start: '', end: '' });
  });
});
