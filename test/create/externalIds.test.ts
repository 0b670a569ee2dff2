import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { fingerprint } from '../../src/commands/command.js';
import { newCommandId } from '../../src/commands/commandId.js';
import { purgeLedger } from '../../src/db/retention.js';
import { serviceTables } from '../../src/db/tables.js';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { redisKeys } from '../../src/queue/keys.js';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { importFile } from '../helpers/imports.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, ITFLOW_CREATE, READ } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * External references: an integration's own id for a reply (`external_id`), unique per API key
 * and kept with the reply id it produced. A second command with the same id answers as the first
 * (the same request) or 422 (another one) — on both create paths, in bulk.php, while the first is
 * still queued, and even when two commands carrying it reach the workers together. read.php finds
 * a reply by it and returns it; commands.php shows it; the CLI import maps a column to it.
 */

const WAIT = { Prefer: 'wait=10' };

describe.each(GENERATIONS)('external ids (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let world: World;
  let redis: Redis;
  let keyId: number;
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-external-'));

  beforeAll(async () => {
    h = await startHarness({ generation });
    world = await seedWorld(h.db, generation);
    redis = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
    const [key] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [world.keys.all]);
    keyId = Number(key?.api_key_id);
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    redis?.disconnect();
    await h?.close();
  });

  const post = (body: object, headers: Record<string, string> = WAIT, path = CREATE, key = world.keys.all) =>
    h.post(path, body, { key, headers });
  const lane = (ticket: number) =>
    new Queue(laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'), {
      connection: redis,
      prefix: h.config.QUEUE_PREFIX,
    });
  const held = (externalId: string) =>
    h.query('SELECT * FROM rq_external_ids WHERE api_key_id = ? AND external_id = ?', [keyId, externalId]);

  it('is kept with the reply it made; the same command again answers with that reply, marked replayed, and adds none', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Alert 4711 acknowledged', external_id: `rmm-4711-${generation}` };
    const first = await post(body);
    expect(first.status).toBe(201);
    const { insert_id: insertId, command_id: commandId } = first.body.data[0];
    expect(await held(body.external_id)).toEqual([
      expect.objectContaining({ insert_id: insertId, ticket_id: ticket, command_id: expect.any(Buffer) }),
    ]);

    // A retry without an idempotency key, minutes later, with or without Prefer: wait.
    for (const headers of [WAIT, {}]) {
      const again = await post(body, headers);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.data).toEqual([{ insert_id: insertId, command_id: commandId }]);
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);

    const status = await h.get(`${COMMANDS}?command_id=${commandId}`, { key: world.keys.all });
    expect(status.body.data[0]).toMatchObject({ status: 'applied', insert_id: insertId, external_id: body.external_id });
    // The read projection's row for the reply, written in the same transaction, carries it too.
    expect(await h.query('SELECT ticket_id, external_id FROM rq_read_replies WHERE reply_id = ?', [insertId])).toEqual([
      { ticket_id: ticket, external_id: body.external_id },
    ]);
  });

  it('outlives the ledger: after the retention purge (eight days on) and with Redis’s claim gone, the same command answers with its reply', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Backup job 88 failed again', external_id: `rmm-88-${generation}` };
    const first = await post(body);
    expect(first.status).toBe(201);
    const { insert_id: insertId, command_id: commandId } = first.body.data[0];

    // Eight days later: the hourly purge (7 days' retention) has taken the ledger row, and
    // Redis's claim (a day at most) has expired.
    await purgeLedger(h.db, serviceTables(h.config), h.config.COMMAND_RETENTION_DAYS, { now: Date.now() + 8 * 86_400_000 });
    expect(await h.query('SELECT 1 FROM rq_commands WHERE command_id = ?', [idBytes(commandId)])).toEqual([]);
    await redis.del(redisKeys(h.config.QUEUE_PREFIX, 'standalone').externalId(keyId, body.external_id));

    const again = await post(body, {});
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.data).toEqual([{ insert_id: insertId, command_id: commandId }]);
    expect(await post({ ...body, ticket_reply: 'Something else' }, {})).toMatchObject({ status: 422 });
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('the same external id with a different request is 422, and nothing is written', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const externalId = `chat-msg-1-${generation}`;
    const first = await post({ ticket_id: ticket, ticket_reply: 'Original text', external_id: externalId });
    expect(first.status).toBe(201);
    const other = await post({ ticket_id: ticket, ticket_reply: 'Edited text', external_id: externalId });
    expect(other.status).toBe(422);
    expect(other.body).toEqual({
      success: 'False',
      message: `external_id '${externalId}' was already used for a different request (command ${first.body.data[0].command_id}).`,
    });
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['Original text']);
  });

  it('is unique per API key: another key may use the same id for its own reply', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Same id, two integrations', external_id: 'shared-1' };
    expect((await post(body)).status).toBe(201);
    const theirs = await post(body, WAIT, CREATE, world.keys.clientA);
    expect(theirs.status).toBe(201);
    expect(await repliesOf(h.db, ticket)).toHaveLength(2);
    // Each key's id names its own reply.
    const again = await post(body, WAIT, CREATE, world.keys.clientA);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.data).toEqual(theirs.body.data);
    expect(await repliesOf(h.db, ticket)).toHaveLength(2);
  });

  it('while the first command is still queued, a second with its id answers 202 with the first command, and one reply is made', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const queue = lane(ticket);
    await queue.pause();
    try {
      const body = { ticket_id: ticket, ticket_reply: 'Sent twice while queued', external_id: `queued-${ticket}` };
      const first = await post(body, {});
      const second = await post(body, {});
      expect([first.status, second.status]).toEqual([202, 202]);
      expect(second.body.data[0].command_id).toBe(first.body.data[0].command_id);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      // Its status shows the external id while it waits.
      const status = await h.get(`${COMMANDS}?command_id=${first.body.data[0].command_id}`, { key: world.keys.all });
      expect(status.body.data[0]).toMatchObject({ status: 'queued', external_id: body.external_id });
      const different = await post({ ...body, ticket_reply: 'Something else' }, {});
      expect(different.status).toBe(422);
      await queue.resume();
      await h.finished(first.body.data[0].command_id);
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual([body.ticket_reply]);
    } finally {
      await queue.resume();
      await queue.close();
    }
  });

  it('a retry with Prefer: wait sent while the first is still being accepted (another session locks ITFlow’s tickets table) waits and answers as the first, 201', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Sent again at once', external_id: `at-once-${ticket}` };
    const locker = await h.db.getConnection();
    try {
      // The first request claims the id, then waits to read the ticket: its command is not queued yet.
      await locker.query('LOCK TABLES tickets WRITE');
      const first = post(body, {});
      await new Promise((resolve) => setTimeout(resolve, 300));
      const retry = post(body, WAIT);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await locker.query('UNLOCK TABLES');
      const [firstAnswer, retryAnswer] = await Promise.all([first, retry]);
      expect(firstAnswer.status).toBe(202);
      expect(retryAnswer.status).toBe(201);
      expect(retryAnswer.body.data[0].command_id).toBe(firstAnswer.body.data[0].command_id);
      expect(retryAnswer.headers.get('idempotent-replayed')).toBe('true');
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual([body.ticket_reply]);
    } finally {
      await locker.query('UNLOCK TABLES');
      locker.release();
    }
  });

  it('a command that failed leaves its id free: the retry after the cause is fixed makes the reply', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = { ticket_id: ticket, ticket_reply: 'Posted, then the ticket was closed', external_id: `retry-${ticket}` };
    const queue = lane(ticket);
    try {
      await queue.pause();
      const first = await post(body, {});
      expect(first.status).toBe(202);
      await h.query("UPDATE tickets SET ticket_status = 5, ticket_closed_at = '2026-01-01 00:00:00' WHERE ticket_id = ?", [
        ticket,
      ]);
      await queue.resume();
      expect(await h.finished(first.body.data[0].command_id)).toMatchObject({ status: 'failed', http_status: 409 });
      expect(await held(body.external_id)).toEqual([]);
      await h.query('UPDATE tickets SET ticket_status = 2, ticket_closed_at = NULL WHERE ticket_id = ?', [ticket]);
      const retry = await post(body);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(retry.body.data[0].command_id).not.toBe(first.body.data[0].command_id);
      expect(await repliesOf(h.db, ticket)).toHaveLength(1);
    } finally {
      await queue.resume();
      await queue.close();
    }
  });

  it("ITFlow's own create path takes external_id too", async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const body = {
      ticket_id: ticket,
      ticket_reply: 'Via ITFlow path',
      ticket_reply_type: 'Internal',
      external_id: `itflow-${ticket}`,
    };
    const first = await post(body, {}, ITFLOW_CREATE);
    expect(first.status).toBe(201);
    const again = await post(body, {}, ITFLOW_CREATE);
    expect(again.status).toBe(201);
    expect(again.body.data[0].insert_id).toBe(first.body.data[0].insert_id);
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it('refuses an external_id that is too long, not a string, or ends with a space (400, nothing written)', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const refusals = await Promise.all(
      [
        ['x'.repeat(256), 'external_id must be at most 255 characters.'],
        [42, 'external_id must be a string.'],
        ['trailing ', 'external_id must not end with a space.'],
      ].map(([value, message]) => post({ ticket_id: ticket, ticket_reply: 'x', external_id: value }).then((a) => [a, message])),
    );
    for (const [answer, message] of refusals as Array<[{ status: number; body: unknown }, string]>) {
      expect(answer).toMatchObject({ status: 400, body: { success: 'False', message } });
    }
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
  });

  it('bulk.php: an item repeating an id (in the request, or already applied) answers as its holder; another request with it is 422', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const applied = await post({ ticket_id: ticket, ticket_reply: 'Comment 1', external_id: `bulk-${ticket}-1` });
    const answer = await h.post(
      BULK,
      [
        { ticket_id: ticket, ticket_reply: 'Comment 1', external_id: `bulk-${ticket}-1` },
        { ticket_id: ticket, ticket_reply: 'Comment 2', external_id: `bulk-${ticket}-2` },
        { ticket_id: ticket, ticket_reply: 'Comment 2', external_id: `bulk-${ticket}-2` },
        { ticket_id: ticket, ticket_reply: 'Comment 2, changed', external_id: `bulk-${ticket}-2` },
        { ticket_id: ticket, ticket_reply: 'Comment 1, changed', external_id: `bulk-${ticket}-1` },
      ],
      { key: world.keys.all, headers: WAIT },
    );
    const [one, two, twoAgain, twoChanged, oneChanged] = answer.body.data;
    expect(one).toEqual({ ...applied.body.data[0], status: 'applied', replayed: true });
    expect(two).toMatchObject({ status: 'applied', insert_id: expect.any(Number) });
    expect(twoAgain).toEqual({ ...two, replayed: true });
    expect(twoChanged).toMatchObject({ http_status: 422 });
    expect(oneChanged).toMatchObject({ http_status: 422 });
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['Comment 1', 'Comment 2']);
  });

  /** A command as the intake would queue it, to put in a lane directly (bypassing the intake's checks). */
  const bypassing = (ticket: number, externalId: string, body = 'Sneaked past the intake') => {
    const command = {
      ticketId: ticket,
      reply: { body, type: 'Internal' as const, timeWorked: '00:00:00' },
      status: 0,
      externalId,
    };
    return {
      v: 1,
      commandId: newCommandId(),
      acceptedAt: Date.now(),
      apiKeyId: keyId,
      idempotencyKey: null,
      fingerprint: fingerprint(command),
      command,
      origin: { ip: '127.0.0.1', userAgent: 'test' },
      announce: false,
    };
  };
  const queueDirectly = async (queue: Queue, jobs: Array<ReturnType<typeof bypassing>>) => {
    for (const data of jobs) await queue.add('command', data, { jobId: data.commandId, removeOnComplete: true });
  };

  it('two commands with one external id that reach the workers anyway (bypassing the intake) make one reply', async () => {
    // In one lane (applied in one batch): the same request twice answers as one.
    const a = await addTicket(h.db, generation, { clientId: world.clientA });
    const twins = [bypassing(a, `batch-${a}`), bypassing(a, `batch-${a}`)];
    // In two lanes (separate transactions): a different ticket is a different request, refused with 422.
    let b = await addTicket(h.db, generation, { clientId: world.clientA });
    while (laneOf(b, h.config.QUEUE_PARTITIONS) === laneOf(a, h.config.QUEUE_PARTITIONS)) {
      b = await addTicket(h.db, generation, { clientId: world.clientA });
    }
    const rivals = [bypassing(a, `race-${a}`), bypassing(b, `race-${a}`)];
    const [laneA, laneB] = [lane(a), lane(b)];
    try {
      await laneA.pause();
      await queueDirectly(laneA, [...twins, rivals[0] as (typeof rivals)[0]]);
      await queueDirectly(laneB, [rivals[1] as (typeof rivals)[1]]);
      await laneA.resume();
      const [first, second, ...raced] = await Promise.all([...twins, ...rivals].map((data) => h.finished(data.commandId)));
      expect(first).toMatchObject({ status: 'applied', external_id: `batch-${a}` });
      expect(second).toMatchObject({ status: 'applied', insert_id: first?.insert_id, external_id: `batch-${a}` });
      expect(raced.map((row) => row.status).sort()).toEqual(['applied', 'failed']);
      expect(raced.find((row) => row.status === 'failed')).toMatchObject({ http_status: 422 });
      const replies = [...(await repliesOf(h.db, a)), ...(await repliesOf(h.db, b))];
      expect(replies).toHaveLength(2);
      expect(await held(`batch-${a}`)).toHaveLength(1);
      expect(await held(`race-${a}`)).toHaveLength(1);
    } finally {
      await Promise.all([laneA.resume(), laneB.resume()]);
      await Promise.all([laneA.close(), laneB.close()]);
    }
  });

  it('of two transactions recording one external id, the second meets the table’s key, rolls back and answers as the first', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const data = bypassing(ticket, `held-${ticket}`, 'Blocked behind another transaction');
    // Another transaction records the id first and holds it uncommitted while the worker applies.
    const other = await h.db.getConnection();
    const queue = lane(ticket);
    try {
      await other.query('START TRANSACTION');
      await other.query(
        `INSERT INTO rq_external_ids (api_key_id, external_id, command_id, fingerprint, ticket_id, insert_id, created_at_utc)
         VALUES (?, ?, UNHEX(REPLACE(?, '-', '')), UNHEX(?), ?, 424242, UTC_TIMESTAMP(3))`,
        [keyId, data.command.externalId, newCommandId(), data.fingerprint, ticket],
      );
      await queueDirectly(queue, [data]);
      // The worker's insert of the same id waits on the uncommitted row…
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        const [waiting] = await h.query(
          "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO %rq_external_ids%'",
        );
        if (Number(waiting?.n) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(Date.now()).toBeLessThan(deadline);
      await other.query('COMMIT');
      // …then meets the committed key, rolls its reply back, and on its retry answers as the holder.
      expect(await h.finished(data.commandId)).toMatchObject({ status: 'applied', insert_id: 424242 });
      expect(await repliesOf(h.db, ticket)).toHaveLength(0);
    } finally {
      other.release();
      await queue.close();
    }
  });

  it('read.php finds the reply by its external id (this key’s only) and rows carry the key’s external ids', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
    const mine = await post({ ticket_id: ticket, ticket_reply: 'Mine', external_id: `read-${ticket}` });
    const plain = await post({ ticket_id: ticket, ticket_reply: 'No external id' });
    const theirs = await post(
      { ticket_id: ticket, ticket_reply: 'Theirs', external_id: `theirs-${ticket}` },
      WAIT,
      CREATE,
      world.keys.clientA,
    );
    const insertId = String(mine.body.data[0].insert_id);

    const found = await h.get(`${READ}?external_id=read-${ticket}`, { key: world.keys.all });
    expect(found.status).toBe(200);
    expect(found.body.data).toEqual([
      expect.objectContaining({ ticket_reply_id: insertId, ticket_reply: 'Mine', external_id: `read-${ticket}` }),
    ]);
    // Another key's external id is not this key's: not found by it, not shown on its rows.
    expect((await h.get(`${READ}?external_id=theirs-${ticket}`, { key: world.keys.all })).status).toBe(404);
    expect((await h.get(`${READ}?external_id=read-${ticket}`, { key: world.keys.clientA })).status).toBe(404);
    const listed = await h.get(`${READ}?ticket_id=${ticket}`, { key: world.keys.all });
    expect(listed.body.data.map((r: Record<string, unknown>) => [r.ticket_reply, r.external_id])).toEqual([
      ['Theirs', undefined],
      ['No external id', undefined],
      ['Mine', `read-${ticket}`],
    ]);
    expect(plain.status).toBe(201);
    expect(theirs.status).toBe(201);
    // Combined with reply_id, both must match.
    expect((await h.get(`${READ}?external_id=read-${ticket}&reply_id=${insertId}`, { key: world.keys.all })).status).toBe(200);
    expect(
      (await h.get(`${READ}?external_id=read-${ticket}&reply_id=${plain.body.data[0].insert_id}`, { key: world.keys.all }))
        .status,
    ).toBe(404);
  });

  it('the CLI import maps a column to external_id, and pings no one; a second run of the same comments adds nothing', async () => {
    const ticket = await addTicket(h.db, generation, { clientId: world.clientA, assignedTo: world.agent });
    const file = join(dir, `comments-${ticket}.csv`);
    writeFileSync(
      file,
      `ticket_id,ticket_reply,created_at,comment_id\n${ticket},First comment,2026-01-01 10:00:00,9001\n` +
        `${ticket},Second comment,2026-01-01 11:00:00,9002\n${ticket},A live comment,,9003\n`,
    );
    const cli = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), [
      'import',
      file,
      '--url',
      h.url,
      '--api-key',
      world.keys.all,
      '--json',
      '--external-id',
      'comment_id',
    ]);
    expect(await cli.exited).toBe(0);
    const summary = JSON.parse(
      cli
        .output()
        .split('\n')
        .find((line) => line.startsWith('{"file"')) as string,
    );
    expect(summary).toMatchObject({ queued: 3, applied: 3, rejected: 0 });
    const replies = await repliesOf(h.db, ticket);
    const ids = await h.query('SELECT external_id, insert_id FROM rq_external_ids WHERE api_key_id = ? AND ticket_id = ?', [
      keyId,
      ticket,
    ]);
    expect(ids.map((r) => [r.external_id, r.insert_id]).sort()).toEqual([
      ['9001', replies[0]?.ticket_reply_id],
      ['9002', replies[1]?.ticket_reply_id],
      ['9003', replies[2]?.ticket_reply_id],
    ]);
    // The live line (no created_at) was sent quiet: the assigned agent got no notification.
    expect(
      await h.query('SELECT notification_id FROM notifications WHERE notification_action LIKE ?', [
        `/agent/ticket.php?ticket_id=${ticket}&%`,
      ]),
    ).toEqual([]);
    const run = (path: string) =>
      importFile({
        file: path,
        format: 'csv',
        url: h.url,
        apiKey: world.keys.all,
        externalIdFrom: 'comment_id',
      });
    // The same comments exported again (another file, so other idempotency keys): known by their ids.
    const again = join(dir, `comments-${ticket}-again.csv`);
    writeFileSync(again, `comment_id,ticket_id,ticket_reply,created_at\n9002,${ticket},Second comment,2026-01-01 11:00:00\n`);
    expect(await run(again)).toMatchObject({ duplicates: 1, rejected: 0 });
    expect(await repliesOf(h.db, ticket)).toHaveLength(3);
  });
});
