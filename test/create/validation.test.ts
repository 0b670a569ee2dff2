import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TIME_NEEDS_REPLY } from '../../src/commands/createReply.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';

/**
 * What the intake refuses, with which status and message — and that a refused request
 * leaves nothing in Redis or MySQL.
 */

describe('create.php input validation', () => {
  let h: Harness;
  let world: World;
  let ticket: number;
  let redis: Redis;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', env: { BODY_LIMIT_BYTES: '4096' } });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    redis = new Redis(h.config.REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });

  const jobKeys = async () => (await redis.keys(`${h.config.QUEUE_PREFIX}:replies-*:*-*-*-*-*`)).length;

  it.each([
    [{ ticket_id: 'abc', ticket_reply: 'x' }, 'ticket_id must be an integer.'],
    [{ ticket_id: 1.5, ticket_reply: 'x' }, 'ticket_id must be an integer.'],
    [{ ticket_id: 0, ticket_reply: 'x' }, 'ticket_id must be between 1 and 2147483647.'],
    [{ ticket_id: [1], ticket_reply: 'x' }, 'ticket_id must be an integer.'],
    [{ ticket_id: 1, ticket_reply: 42 }, 'ticket_reply must be a string.'],
    [{ ticket_id: 1, ticket_reply: 'x', status: 'open' }, 'status must be an integer.'],
    [{ ticket_id: 1, ticket_reply: 'x', minutes: 60 }, 'minutes must be between 0 and 59.'],
    [{ ticket_id: 1, ticket_reply: 'x', seconds: -1 }, 'seconds must be between 0 and 59.'],
    [{ ticket_id: 1, ticket_reply: 'x', hours: 839 }, 'hours must be between 0 and 838.'],
    [
      { ticket_id: 1, ticket_reply: 'x', public_reply_type: 3 },
      'public_reply_type must be 0 (Internal), 1 (Public) or 2 (Public + email).',
    ],
    [{ ticket_id: 1, ticket_reply: 'x', client_id: 'A' }, 'client_id must be an integer.'],
    [{ ticket_id: 1, ticket_reply: 'x', idempotency_key: 'k'.repeat(256) }, 'idempotency_key must be at most 255 characters.'],
    [{ ticket_id: 1, status: 4, minutes: 30 }, TIME_NEEDS_REPLY],
    // JSON can carry a lone surrogate (\ud800); UTF-8 and MySQL cannot: it would be stored as U+FFFD.
    [
      { ticket_id: 1, ticket_reply: 'x\ud800y' },
      'ticket_reply contains an unpaired surrogate (a lone \\uD800-\\uDFFF escape), which is not valid Unicode and cannot be stored.',
    ],
    // The ledger's unique index ignores trailing spaces: 'k ' would collide with 'k' there only.
    [{ ticket_id: 1, ticket_reply: 'x', idempotency_key: 'k ' }, 'idempotency_key must not end with a space.'],
  ])('%j is refused with "%s"', async (body, message) => {
    const answer = await h.post(CREATE, body, { key: world.keys.all });
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({ success: 'False', message });
  });

  it('integers may arrive as decimal strings, null and "" mean "not given", unknown fields are ignored', async () => {
    const answer = await h.post(
      CREATE,
      {
        ticket_id: String(ticket),
        ticket_reply: 'Strings are fine',
        public_reply_type: '1',
        hours: '',
        minutes: null,
        seconds: '7',
        colour: 'blue',
      },
      { key: world.keys.all, headers: { Prefer: 'wait=10' } },
    );
    expect(answer.status).toBe(201);
    const replies = await repliesOf(h.db, ticket);
    expect(replies.at(-1)).toMatchObject({ ticket_reply_type: 'Public', ticket_reply_time_worked: '00:00:07' });
  });

  it('an idempotency_key of "" means none, as "" does for every other field', async () => {
    for (const reply of ['first', 'second']) {
      const answer = await h.post(
        CREATE,
        { ticket_id: ticket, ticket_reply: reply, idempotency_key: '' },
        { key: world.keys.all },
      );
      expect(answer.status).toBe(202);
    }
  });

  it('a body that is not a JSON object, not JSON at all, or not declared as JSON is refused', async () => {
    expect(await h.post(CREATE, [{ ticket_id: ticket }], { key: world.keys.all })).toMatchObject({
      status: 400,
      body: { success: 'False', message: 'The request body must be a JSON object.' },
    });
    expect(await h.post(CREATE, '{"ticket_id": 1,', { key: world.keys.all })).toMatchObject({
      status: 400,
      body: { success: 'False', message: 'The request body is not valid JSON.' },
    });
    const form = await h.post(CREATE, 'ticket_id=1&ticket_reply=x', {
      key: world.keys.all,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect(form.body.message).toMatch(/Content-Type: application\/json/);
  });

  it('a body over the size limit answers 413', async () => {
    const answer = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x'.repeat(5000) }, { key: world.keys.all });
    expect(answer.status).toBe(413);
    expect(answer.body).toEqual({
      success: 'False',
      message: 'The request body is too large: this endpoint takes at most 4096 bytes (4 KiB).',
    });
  });

  it('other methods answer 405 with Allow: POST, and unknown paths 404, both in the v1 envelope', async () => {
    const get = await h.get(CREATE, { key: world.keys.all });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(get.body).toEqual({ success: 'False', message: 'Can only send POST requests to this endpoint.' });
    const unknown = await h.get('/api/v1/tickets/replies/nope.php');
    expect(unknown).toMatchObject({ status: 404, body: { success: 'False' } });
  });

  it('no refused request leaves a job in Redis or a row in the ledger', async () => {
    // A job that slipped through would either still be in Redis or, once a worker took it,
    // have a ledger row: both counts must stay put.
    const before = await jobKeys();
    const [ledgerBefore] = await h.query('SELECT COUNT(*) AS n FROM rq_commands');
    await h.post(CREATE, { ticket_reply: 'no ticket' }, { key: world.keys.all });
    await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x', public_reply_type: 2 }, { key: world.keys.all });
    await h.post(CREATE, { ticket_id: ticket, status: 99 }, { key: world.keys.all });
    await h.post(CREATE, { ticket_id: 999_999, ticket_reply: 'x' }, { key: world.keys.all });
    await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: 'not-a-key' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await jobKeys()).toBe(before);
    expect(await h.query('SELECT COUNT(*) AS n FROM rq_commands')).toEqual([ledgerBefore]);
  });

  it('a status that does not exist, or is inactive, answers 400', async () => {
    await h.query(
      'INSERT INTO ticket_statuses (ticket_status_id, ticket_status_name, ticket_status_color, ticket_status_active) VALUES (9, ?, ?, 0)',
      ['Retired', '#000'],
    );
    for (const status of [42, 9]) {
      const answer = await h.post(CREATE, { ticket_id: ticket, status }, { key: world.keys.all });
      expect(answer).toMatchObject({ status: 400, body: { message: `status ${status} is not an active ticket status.` } });
    }
  });
});
