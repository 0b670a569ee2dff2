import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import type { RunningService } from '../../src/service.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE, ITFLOW_READ, READ } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * read.php from the service's read projection (src/read/projection): answers byte for byte what
 * ITFlow's tables give, and replies written, edited, archived, deleted, merged or moved to another
 * client straight in ITFlow's tables — as ITFlow's web UI, email parser and API write them — show
 * within a few seconds. Each answer says which answered (X-Read-Source) and the lag.
 */

/** A reply as ITFlow's web UI inserts it. */
async function webReply(h: Harness, ticket: number, text: string, { type = 'Public', archived = null as string | null } = {}) {
  const [result] = (await h.db.query(
    `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_created_at,
                                 ticket_reply_archived_at, ticket_reply_by, ticket_reply_ticket_id) VALUES (?, ?, '00:05:00', NOW(), ?, 1, ?)`,
    [text, type, archived, ticket],
  )) as unknown as [{ insertId: number }];
  return result.insertId;
}

interface Raw {
  status: number;
  source: string | null;
  lag: string | null;
  text: string;
}

/** A GET as a client sees it: the body's exact bytes, and the projection's headers. */
async function raw(url: string, path: string, key: string): Promise<Raw> {
  const response = await fetch(`${url}${path}`, { headers: { 'X-API-Key': key } });
  return {
    status: response.status,
    source: response.headers.get('x-read-source'),
    lag: response.headers.get('x-projection-lag'),
    text: await response.text(),
  };
}

const idsIn = (answer: Raw): number[] =>
  answer.status === 200
    ? (JSON.parse(answer.text).data as Array<{ ticket_reply_id: string }>).map((r) => Number(r.ticket_reply_id))
    : [];

/** Polls `check` until it holds (or `ms` pass); resolves with the milliseconds it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The projection's rows, and what ITFlow's tables say they should be (replies whose ticket exists). */
async function projectionAndItflow(h: Harness) {
  const projection = await h.query(
    `SELECT reply_id AS id, ticket_id, client_id, reply_type, reply_by, created_at, updated_at, archived_at
     FROM rq_read_replies ORDER BY reply_id`,
  );
  const itflow = await h.query(
    `SELECT tr.ticket_reply_id AS id, tr.ticket_reply_ticket_id AS ticket_id, t.ticket_client_id AS client_id,
            tr.ticket_reply_type AS reply_type, tr.ticket_reply_by AS reply_by, tr.ticket_reply_created_at AS created_at,
            tr.ticket_reply_updated_at AS updated_at, tr.ticket_reply_archived_at AS archived_at
     FROM ticket_replies tr JOIN tickets t ON t.ticket_id = tr.ticket_reply_ticket_id ORDER BY tr.ticket_reply_id`,
  );
  return { projection, itflow };
}

const inStep = async (h: Harness) => {
  const { projection, itflow } = await projectionAndItflow(h);
  return JSON.stringify(projection) === JSON.stringify(itflow);
};

/** The listings a client may ask for, on both paths, for a ticket of each client. */
function listings(tickets: number[], before: number): string[] {
  return [
    `${READ}`,
    `${READ}?limit=3`,
    `${READ}?limit=2&offset=3`,
    `${READ}?limit=2&offset=1&include_archived=1`,
    `${READ}?before_id=${before}&limit=4`,
    ...tickets.flatMap((t) => [
      `${READ}?ticket_id=${t}`,
      `${READ}?ticket_id=${t}&include_archived=1`,
      `${READ}?ticket_id=${t}&limit=2&offset=1`,
      `${ITFLOW_READ}?ticket_id=${t}`,
      `${ITFLOW_READ}?ticket_id=${t}&type=public&include_archived=1`,
      `${ITFLOW_READ}?ticket_id=${t}&limit=2&offset=2`,
    ]),
    `${ITFLOW_READ}?limit=3&offset=2`,
    `${READ}?ticket_id=999999`,
  ];
}

/** Every listing from the projection, byte for byte what ITFlow's tables answer (the peer that never uses it). */
async function expectSameAsItflow(h: Harness, direct: RunningService, keys: string[], paths: string[]) {
  for (const key of keys) {
    for (const path of paths) {
      const [mine, theirs] = await Promise.all([raw(h.url, path, key), raw(direct.url as string, path, key)]);
      expect({ path, status: mine.status, text: mine.text }).toEqual({ path, status: theirs.status, text: theirs.text });
      expect({ path, source: mine.source }).toEqual({ path, source: 'projection' });
      expect(theirs.source).toBe('itflow');
    }
  }
}

describe.each(GENERATIONS)('read.php from the read projection (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let direct: RunningService;
  let world: World;
  let ticketA: number;
  let ticketB: number;

  beforeAll(async () => {
    h = await startHarness({ generation, env: { PROJECTION_POLL_MS: '100', PROJECTION_SWEEP_ROWS: '100' } });
    direct = await h.startPeer({ intake: true, worker: false }, { PROJECTION_MAX_LAG_SECONDS: '0' });
    // A second worker: two followers, one round at a time between them.
    await h.startPeer({ intake: false, worker: true }, { PROJECTION_POLL_MS: '100', PROJECTION_SWEEP_ROWS: '100' });
    world = await seedWorld(h.db, generation);
    ticketA = await addTicket(h.db, generation, { clientId: world.clientA });
    ticketB = await addTicket(h.db, generation, { clientId: world.clientB });
    await webReply(h, ticketA, 'Web reply on A');
    await webReply(h, ticketB, 'Web note on B', { type: 'Internal' });
    await webReply(h, ticketA, 'Archived on A', { archived: '2026-11-21 08:00:00' });
    for (const text of ['First by the API', 'Second by the API']) {
      const answer = await h.post(
        CREATE,
        { ticket_id: ticketA, ticket_reply: text, public_reply_type: 1 },
        {
          key: world.keys.all,
          headers: { Prefer: 'wait=10' },
        },
      );
      expect(answer.status).toBe(201);
    }
    await webReply(h, ticketB, 'Client wrote on B', { type: 'Client' });
    await within(5000, () => inStep(h));
  });
  afterAll(() => h?.close());

  it('answers every listing from the projection, byte for byte what ITFlow’s tables give', async () => {
    const [newest] = await h.query<RowDataPacket>('SELECT MAX(ticket_reply_id) AS id FROM ticket_replies');
    await expectSameAsItflow(h, direct, [world.keys.all, world.keys.clientA], listings([ticketA, ticketB], Number(newest?.id)));
  });

  it('tells the projection’s lag in X-Projection-Lag and /metrics, and reads a reply id from ticket_replies', async () => {
    const answer = await raw(h.url, `${READ}?ticket_id=${ticketA}`, world.keys.all);
    expect(Number(answer.lag)).toBeGreaterThanOrEqual(0);
    expect(Number(answer.lag)).toBeLessThan(5);
    const [one] = await h.query<RowDataPacket>('SELECT MIN(ticket_reply_id) AS id FROM ticket_replies');
    expect(await raw(h.url, `${READ}?reply_id=${one?.id}`, world.keys.all)).toMatchObject({ status: 200, source: 'itflow' });
    const missing = await raw(h.url, `${READ}?ticket_id=${ticketB}`, world.keys.clientA);
    expect(missing).toMatchObject({ status: 404, source: 'projection' });
    expect(Number(missing.lag)).toBeLessThan(5);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    const lag = /^replyqueue_read_projection_lag_seconds (\S+)$/m.exec(metrics)?.[1];
    expect(Number(lag)).toBeLessThan(5);
    expect(metrics).toMatch(/^replyqueue_read_listings_total\{source="projection",reason=""\} [1-9]/m);
    expect(metrics).toMatch(/^replyqueue_read_listings_total\{source="itflow",reason="reply_id"\} [1-9]/m);
  });

  it('lists a reply written straight into ticket_replies at once, and the projection has it within a few seconds', async () => {
    const id = await webReply(h, ticketA, 'Typed in ITFlow’s web UI');
    const answer = await raw(h.url, `${READ}?ticket_id=${ticketA}&limit=1`, world.keys.clientA);
    expect(answer.source).toBe('projection');
    expect(idsIn(answer)).toEqual([id]);
    await within(3000, async () => (await h.query('SELECT 1 FROM rq_read_replies WHERE reply_id = ?', [id])).length === 1);
  });

  it('an edit, an archiving and a deletion in ITFlow’s tables show in the next answer (a new type within a few seconds)', async () => {
    const edited = await webReply(h, ticketA, 'Before the edit', { type: 'Internal' });
    const archived = await webReply(h, ticketA, 'To be archived');
    const deleted = await webReply(h, ticketA, 'To be deleted');
    await within(3000, () => inStep(h));

    await h.db.query(
      "UPDATE ticket_replies SET ticket_reply = 'After the edit', ticket_reply_type = 'Public' WHERE ticket_reply_id = ?",
      [edited],
    );
    await h.db.query('UPDATE ticket_replies SET ticket_reply_archived_at = NOW() WHERE ticket_reply_id = ?', [archived]);
    await h.db.query('DELETE FROM ticket_replies WHERE ticket_reply_id = ?', [deleted]);

    const page = await raw(h.url, `${READ}?ticket_id=${ticketA}&limit=5`, world.keys.all);
    expect(page.source).toBe('projection');
    expect(idsIn(page)).not.toContain(archived);
    expect(idsIn(page)).not.toContain(deleted);
    expect(
      JSON.parse(page.text).data.find((r: { ticket_reply_id: string }) => Number(r.ticket_reply_id) === edited),
    ).toMatchObject({
      ticket_reply: 'After the edit',
      ticket_reply_type: 'Public',
    });
    // Now Public: it enters the Public listing once the follower has seen it (it is among the newest replies).
    const took = await within(3000, async () =>
      idsIn(await raw(h.url, `${ITFLOW_READ}?ticket_id=${ticketA}&type=Public`, world.keys.all)).includes(edited),
    );
    expect(took).toBeLessThan(3000);
    await expectSameAsItflow(h, direct, [world.keys.all], [`${READ}?ticket_id=${ticketA}&include_archived=1`, `${READ}?limit=4`]);
    await within(3000, () => inStep(h));
  });

  it('a ticket moved to another client takes its replies along: at once by ticket, within a few seconds in the client’s listing', async () => {
    const moving = await addTicket(h.db, generation, { clientId: world.clientB });
    const reply = await webReply(h, moving, 'On a ticket that changes client');
    await within(3000, () => inStep(h));
    expect((await raw(h.url, `${READ}?ticket_id=${moving}`, world.keys.clientA)).status).toBe(404);

    await h.db.query('UPDATE tickets SET ticket_client_id = ? WHERE ticket_id = ?', [world.clientA, moving]);
    const byTicket = await raw(h.url, `${READ}?ticket_id=${moving}`, world.keys.clientA);
    expect({ status: byTicket.status, source: byTicket.source, ids: idsIn(byTicket) }).toEqual({
      status: 200,
      source: 'projection',
      ids: [reply],
    });
    const took = await within(5000, async () => idsIn(await raw(h.url, `${READ}?limit=50`, world.keys.clientA)).includes(reply));
    expect(took).toBeLessThan(5000);
    await within(3000, () => inStep(h));

    // And back: it leaves client A's listing in the very next answer.
    await h.db.query('UPDATE tickets SET ticket_client_id = ? WHERE ticket_id = ?', [world.clientB, moving]);
    const after = await raw(h.url, `${READ}?limit=50`, world.keys.clientA);
    expect(after.source).toBe('projection');
    expect(idsIn(after)).not.toContain(reply);
    await expectSameAsItflow(h, direct, [world.keys.clientA, world.keys.all], [`${READ}?limit=50`]);
  });

  it('replies un-archived, re-typed or merged into another ticket show within a few seconds', async () => {
    const target = await addTicket(h.db, generation, { clientId: world.clientA });
    const merged = await addTicket(h.db, generation, { clientId: world.clientA });
    const unarchived = await webReply(h, target, 'Archived, then restored', { archived: '2026-11-22 09:00:00' });
    const retyped = await webReply(h, target, 'Internal, then Public', { type: 'Internal' });
    const moved = await webReply(h, merged, 'On the ticket merged away');
    await within(3000, () => inStep(h));

    await h.db.query('UPDATE ticket_replies SET ticket_reply_archived_at = NULL WHERE ticket_reply_id = ?', [unarchived]);
    await h.db.query("UPDATE ticket_replies SET ticket_reply_type = 'Public' WHERE ticket_reply_id = ?", [retyped]);
    // ITFlow's merge_ticket moves the merged ticket's replies to the one it is merged into.
    await h.db.query('UPDATE ticket_replies SET ticket_reply_ticket_id = ? WHERE ticket_reply_ticket_id = ?', [target, merged]);

    const took = await within(5000, async () => {
      const listed = idsIn(await raw(h.url, `${ITFLOW_READ}?ticket_id=${target}&type=Public`, world.keys.all));
      return [unarchived, retyped, moved].every((id) => listed.includes(id));
    });
    expect(took).toBeLessThan(5000);
    await within(3000, () => inStep(h));
    await expectSameAsItflow(h, direct, [world.keys.all], [`${READ}?ticket_id=${target}`, `${READ}?ticket_id=${merged}`]);
  });
});

describe('read.php when the follower has not run since (ITFlow 2.4.4, PROJECTION_POLL_MS=60000)', () => {
  let h: Harness;
  let direct: RunningService;
  let strict: RunningService;
  let world: World;
  let ticket: number;
  let other: number;

  beforeAll(async () => {
    // The worker's follower runs once at start-up, before there is anything to follow.
    h = await startHarness({ generation: '2.4.4', env: { PROJECTION_POLL_MS: '60000' } });
    direct = await h.startPeer({ intake: true, worker: false }, { PROJECTION_MAX_LAG_SECONDS: '0' });
    strict = await h.startPeer({ intake: true, worker: false }, { PROJECTION_MAX_LAG_SECONDS: '2' });
    world = await seedWorld(h.db, '2.4.4');
    ticket = await addTicket(h.db, '2.4.4', { clientId: world.clientA });
    other = await addTicket(h.db, '2.4.4', { clientId: world.clientB });
  });
  afterAll(async () => {
    killLeftovers();
    await h?.close();
  });

  it('projects the service’s own replies in the transaction that writes them', async () => {
    const insertIds: number[] = [];
    for (const [ticketId, text] of [
      [ticket, 'Applied by the service'],
      [other, 'Applied on B'],
      [ticket, 'Applied again'],
    ] as const) {
      const answer = await h.post(
        CREATE,
        { ticket_id: ticketId, ticket_reply: text, minutes: 5 },
        {
          key: world.keys.all,
          headers: { Prefer: 'wait=10' },
        },
      );
      expect(answer.status).toBe(201);
      insertIds.push(answer.body.data[0].insert_id);
    }
    const projected = await h.query('SELECT reply_id, ticket_id, client_id, reply_type FROM rq_read_replies ORDER BY reply_id');
    expect(projected).toEqual([
      { reply_id: insertIds[0], ticket_id: ticket, client_id: world.clientA, reply_type: 'Internal' },
      { reply_id: insertIds[1], ticket_id: other, client_id: world.clientB, reply_type: 'Internal' },
      { reply_id: insertIds[2], ticket_id: ticket, client_id: world.clientA, reply_type: 'Internal' },
    ]);
    expect(await inStep(h)).toBe(true);
  });

  it('reads replies written elsewhere since the follower’s last round from ticket_replies, page by page', async () => {
    for (let i = 0; i < 4; i++)
      await webReply(h, i % 2 === 0 ? ticket : other, `Web reply ${i}`, { type: i === 3 ? 'Internal' : 'Public' });
    expect(await inStep(h)).toBe(false); // the follower has not seen them
    const pages = [
      ...[0, 1, 2, 3, 4, 5, 6].map((offset) => `${READ}?limit=2&offset=${offset}`),
      ...[0, 1, 2, 3].map((offset) => `${ITFLOW_READ}?ticket_id=${ticket}&limit=2&offset=${offset}`),
      ...[0, 2, 4, 6].map((offset) => `${ITFLOW_READ}?limit=3&offset=${offset}`),
      `${READ}?ticket_id=${ticket}`,
      `${READ}?ticket_id=${other}&include_archived=1`,
    ];
    await expectSameAsItflow(h, direct, [world.keys.all, world.keys.clientA], pages);
  });

  it('`projection rebuild` derives the projection again from ITFlow’s tables, whatever it held', async () => {
    // Out of step every way: a row of a reply ITFlow never had, a row missing, one under the wrong ticket, one under the wrong client.
    await h.db.query(
      "INSERT INTO rq_read_replies (reply_id, ticket_id, client_id, reply_type, reply_by) VALUES (999999, ?, ?, 'Public', 1)",
      [ticket, world.clientA],
    );
    const [kept] = await h.query<RowDataPacket>('SELECT MIN(reply_id) AS id FROM rq_read_replies');
    await h.db.query('UPDATE rq_read_replies SET ticket_id = ?, client_id = 0 WHERE reply_id = ?', [other, kept?.id]);
    await h.db.query("UPDATE rq_read_replies SET external_id = 'kept-through-rebuild' WHERE reply_id = ?", [kept?.id]);
    await h.db.query(
      'UPDATE rq_read_replies SET client_id = 4242 WHERE reply_id = (SELECT MAX(ticket_reply_id) FROM ticket_replies)',
    );
    const [dropped] = await h.query<RowDataPacket>(
      'SELECT reply_id FROM rq_read_replies ORDER BY reply_id DESC LIMIT 1 OFFSET 1',
    );
    await h.db.query('DELETE FROM rq_read_replies WHERE reply_id = ?', [dropped?.reply_id]);
    expect(await inStep(h)).toBe(false);

    // As an operator runs it.
    const rebuild = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), ['projection', 'rebuild']);
    expect(await rebuild.exited).toBe(0);
    expect(rebuild.output()).toMatch(
      /^Rebuilt the read projection from ITFlow's tables: \d+ replies in [\d.]+ s \(\d+ added, \d+ changed, [1-9]\d* removed;/m,
    );
    expect(await inStep(h)).toBe(true);
    expect(await h.query('SELECT external_id FROM rq_read_replies WHERE reply_id = ?', [kept?.id])).toEqual([
      { external_id: 'kept-through-rebuild' },
    ]);
    const [state] = await h.query<RowDataPacket>('SELECT caught_up_at_utc IS NOT NULL AS caught_up FROM rq_read_state');
    expect(state?.caught_up).toBe(1);
    expect((await raw(strict.url as string, READ, world.keys.all)).source).toBe('projection');
    const status = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), ['projection', 'status']);
    expect(await status.exited).toBe(0);
    expect(status.output()).toMatch(/^Read projection: read\.php serves from it/m);
  });

  it('repairs the projection’s rows a read finds out of date (archived, deleted) and answers right', async () => {
    const [first, second] = (
      await h.query<RowDataPacket>('SELECT reply_id FROM rq_read_replies WHERE ticket_id = ? ORDER BY reply_id', [ticket])
    ).map((r) => Number(r.reply_id));
    await h.db.query('UPDATE ticket_replies SET ticket_reply_archived_at = NOW() WHERE ticket_reply_id = ?', [first]);
    await h.db.query('DELETE FROM ticket_replies WHERE ticket_reply_id = ?', [second]);
    await expectSameAsItflow(
      h,
      direct,
      [world.keys.all],
      [`${READ}?ticket_id=${ticket}`, `${READ}?ticket_id=${ticket}&include_archived=1`],
    );
    expect(
      await h.query('SELECT archived_at IS NOT NULL AS archived FROM rq_read_replies WHERE reply_id IN (?, ?)', [first, second]),
    ).toEqual([{ archived: 1 }]);
  });

  it('past PROJECTION_MAX_LAG_SECONDS reads ITFlow’s tables, saying so, with the same answer', async () => {
    await within(10_000, async () => (await raw(strict.url as string, READ, world.keys.all)).source === 'itflow');
    const [late, fresh] = await Promise.all([
      raw(strict.url as string, READ, world.keys.all),
      raw(direct.url as string, READ, world.keys.all),
    ]);
    expect(Number(late.lag)).toBeGreaterThan(2);
    expect(late.text).toBe(fresh.text);
  });
});
