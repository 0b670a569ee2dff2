import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { deleteQueueKeys, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { COMMANDS, CREATE } from '../helpers/paths.js';

// Idempotent retries at the times clients really retry: seconds to minutes after the first
// answer, after the service restarted, after Redis forgot its keys — and several waiters on one
// command. Each must get the first command's answer, queue nothing and count nothing.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** replyqueue_commands_accepted_total{endpoint="create"} as the intake at `url` reports it. */
async function acceptedTotal(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('replyqueue_commands_accepted_total{endpoint="create"}'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('late idempotent retries (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  const post = (body: object, headers: Record<string, string>, url = h.url) =>
    httpRequest(url, 'POST', CREATE, body, { 'X-API-Key': world.keys.all, ...headers });
  const ledgerRows = async (key: string) => h.query('SELECT command_id FROM rq_commands WHERE idempotency_key = ?', [key]);

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('a retry 4 s after the first answer, and every retry after it, gets the first answer and queues nothing', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Answered once, replayed ever after' };
    const first = await post(body, { 'Idempotency-Key': 'late-1', Prefer: 'wait=10' });
    expect(first.status).toBe(201);
    const { command_id: commandId, insert_id: insertId } = first.body.data[0];
    const acceptedBefore = await acceptedTotal(h.url);

    await sleep(4_000);
    const answers = [];
    // The later ones come at once after each other: the first of them used to take the claim over
    // for a phantom command (202 with a new id), and the next one within 3 s of that got 409.
    for (let i = 0; i < 3; i++) answers.push(await post(body, { 'Idempotency-Key': 'late-1' }));
    for (const answer of answers) {
      expect(answer.status).toBe(201);
      expect(answer.headers.get('idempotent-replayed')).toBe('true');
      expect(answer.body).toEqual({ success: 'True', count: 1, data: [{ insert_id: insertId, command_id: commandId }] });
    }
    const status = await httpRequest(h.url, 'GET', `${COMMANDS}?command_id=${commandId}`, undefined, {
      'X-API-Key': world.keys.all,
    });
    expect(status.body.data[0]).toMatchObject({ status: 'applied', insert_id: insertId });

    await sleep(300); // a phantom would be applied (as a repeat) by now
    expect(await acceptedTotal(h.url)).toBe(acceptedBefore);
    expect(await ledgerRows('late-1')).toHaveLength(1);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
    const redis = new Redis(h.config.REDIS_URL);
    try {
      const jobs = await redis.keys(`${h.config.QUEUE_PREFIX}:replies-*:[0-9a-f]*-*`);
      expect(jobs, 'no command job left in the lanes').toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('a retry an hour later (its claim long settled) gets the first answer', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Retried an hour later' };
    const first = await post(body, { 'Idempotency-Key': 'late-hour', Prefer: 'wait=10' });
    expect(first.status).toBe(201);
    // The claim in Redis records when it was made; make it an hour old, as a client retrying an
    // hour later would find it.
    const redis = new Redis(h.config.REDIS_URL);
    try {
      const [claim] = await redis.keys(`${h.config.QUEUE_PREFIX}:replyqueue:idem:*`).then(async (keys) => {
        for (const key of keys) if ((await redis.get(key))?.startsWith(first.body.data[0].command_id)) return [key];
        return [];
      });
      expect(claim).toBeDefined();
      const [id, fingerprint] = ((await redis.get(claim as string)) ?? '').split(' ');
      await redis.set(claim as string, `${id} ${fingerprint} ${Date.now() - 3_600_000}`, 'KEEPTTL');
    } finally {
      redis.disconnect();
    }
    const retry = await post(body, { 'Idempotency-Key': 'late-hour' });
    expect(retry).toMatchObject({ status: 201, body: { data: [first.body.data[0]] } });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await ledgerRows('late-hour')).toHaveLength(1);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('after a service restart, and after Redis lost its keys, a retry gets the first answer', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Outlives restarts' };
    const first = await post(body, { 'Idempotency-Key': 'late-restart', Prefer: 'wait=10' });
    expect(first.status).toBe(201);
    await sleep(3_500);

    // A new intake process (nothing in memory) on the same Redis and database.
    const restarted = await h.startPeer({ intake: true, worker: false });
    const afterRestart = await post(body, { 'Idempotency-Key': 'late-restart' }, restarted.url as string);
    expect(afterRestart).toMatchObject({ status: 201, body: { data: [first.body.data[0]] } });
    expect(afterRestart.headers.get('idempotent-replayed')).toBe('true');

    await deleteQueueKeys(h.config.REDIS_URL, `${h.config.QUEUE_PREFIX}:replyqueue:idem`);
    const afterFlush = await post(body, { 'Idempotency-Key': 'late-restart' }, restarted.url as string);
    expect(afterFlush).toMatchObject({ status: 201, body: { data: [first.body.data[0]] } });
    expect(afterFlush.headers.get('idempotent-replayed')).toBe('true');
    await sleep(3_500);
    const later = await post(body, { 'Idempotency-Key': 'late-restart' });
    expect(later).toMatchObject({ status: 201, body: { data: [first.body.data[0]] } });

    expect(await acceptedTotal(restarted.url as string)).toBe(0);
    expect(await ledgerRows('late-restart')).toHaveLength(1);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });
});

describe('several waiters on one command (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  beforeAll(async () => {
    // The worker is started by the test, once every waiter waits.
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(() => h?.close());

  it('the original request and its retries, all waiting with Prefer: wait, each get the outcome when it is applied', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Everyone waits for me' };
    const headers = { 'X-API-Key': world.keys.all, 'Idempotency-Key': 'waiters-1', Prefer: 'wait=20' };
    const original = httpRequest(h.url, 'POST', CREATE, body, headers);
    await sleep(300); // queued by now
    const retries = [1, 2, 3].map(() => httpRequest(h.url, 'POST', CREATE, body, headers));
    await sleep(300);
    const started = Date.now();
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      const answers = await Promise.all([original, ...retries]);
      const tookMs = Date.now() - started;
      const [reply] = await repliesOf(h.db, ticket);
      for (const answer of answers) {
        expect(answer.status).toBe(201);
        expect(answer.body.data[0].insert_id).toBe(reply?.ticket_reply_id);
      }
      expect(new Set(answers.map((a) => a.body.data[0].command_id)).size).toBe(1);
      // Nobody waited out the 20 s: they were told when it was applied.
      expect(tookMs).toBeLessThan(10_000);
      const [row] = await h.query('SELECT command_id FROM rq_commands WHERE idempotency_key = ?', ['waiters-1']);
      expect(row?.command_id).toEqual(idBytes(answers[0]?.body.data[0].command_id));
      expect(await repliesOf(h.db, ticket)).toHaveLength(1);
    } finally {
      await worker.close();
    }
  });

  it('a retry seconds after the worker refused the command gets that failure, replayed', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Closed before I was applied' };
    const headers = { 'X-API-Key': world.keys.all, 'Idempotency-Key': 'late-failed' };
    const acceptedBefore = await acceptedTotal(h.url);
    const first = await httpRequest(h.url, 'POST', CREATE, body, headers);
    expect(first.status).toBe(202);
    await h.query("UPDATE tickets SET ticket_status = 5, ticket_closed_at = '2026-01-01 00:00:00' WHERE ticket_id = ?", [ticket]);
    const worker = await h.startPeer({ intake: false, worker: true });
    try {
      expect(await h.finished(first.body.data[0].command_id)).toMatchObject({ status: 'failed', http_status: 409 });
    } finally {
      await worker.close();
    }
    await sleep(3_500);
    for (let i = 0; i < 2; i++) {
      const retry = await httpRequest(h.url, 'POST', CREATE, body, headers);
      expect(retry).toMatchObject({ status: 409, body: { success: 'False', message: 'Ticket is closed.' } });
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
    }
    expect(await acceptedTotal(h.url)).toBe(acceptedBefore + 1);
    expect(await h.query('SELECT command_id FROM rq_commands WHERE ticket_id = ?', [ticket])).toHaveLength(1);
  });
});
