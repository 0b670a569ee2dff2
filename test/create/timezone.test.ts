import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Generation } from '../../src/demo/itflowDatabase.js';
import { wallClock } from '../../src/itflow/clock.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * ITFlow writes DATETIMEs as wall-clock time in settings.config_timezone (it sets the MySQL
 * session zone to that zone's offset and uses NOW()). A reply written through this service
 * must sort correctly between replies ITFlow writes just before and just after it — even
 * when the zone is as far from the server's UTC as it gets.
 */

/** '+14:00' for a zone right now, as ITFlow computes it for SET time_zone. */
function currentOffset(zone: string): string {
  const now = Date.now();
  const minutes = Math.round((Date.parse(`${wallClock(now, zone).replace(' ', 'T')}Z`) - now) / 60_000);
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const cases: Array<[string, Generation]> = [
  ['Pacific/Tongatapu', '2.6.7'], // UTC+13, as far east as MariaDB's session time_zone goes
  ['Pacific/Pago_Pago', '2.4.4'], // UTC-11
];

describe.each(cases)('replies sort correctly next to ITFlow’s own with config_timezone %s (ITFlow %s)', (zone, generation) => {
  let h: Harness;
  let world: World;
  let itflow: mysql.Connection;

  beforeAll(async () => {
    h = await startHarness({ generation, timeZone: zone });
    world = await seedWorld(h.db, generation);
    // A connection set up the way ITFlow's PHP sets up its own.
    itflow = await mysql.createConnection({ uri: h.config.DATABASE_URL, dateStrings: true });
    await itflow.query('SET time_zone = ?', [currentOffset(zone)]);
  });
  afterAll(async () => {
    await itflow?.end();
    await h?.close();
  });

  const webUiReply = (ticket: number, text: string) =>
    itflow.query(
      "INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_by, ticket_reply_ticket_id) VALUES (?, 'Public', '00:00:00', 1, ?)",
      [text, ticket],
    );

  it('a reply via the service lands between two written by ITFlow just before and just after', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    await webUiReply(ticket, 'web before');
    const answer = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'via API' },
      { key: world.keys.all, headers: { Prefer: 'wait=10' } },
    );
    expect(answer.status).toBe(201);
    await webUiReply(ticket, 'web after');

    const rows = await h.query(
      'SELECT ticket_reply, ticket_reply_created_at AS at FROM ticket_replies WHERE ticket_reply_ticket_id = ? ORDER BY ticket_reply_created_at, ticket_reply_id',
      [ticket],
    );
    expect(rows.map((r) => r.ticket_reply)).toEqual(['web before', 'via API', 'web after']);
    const [first, , last] = rows.map((r) => Date.parse(`${String(r.at).replace(' ', 'T')}Z`));
    expect((last ?? 0) - (first ?? 0)).toBeLessThan(10_000);
  });
});
