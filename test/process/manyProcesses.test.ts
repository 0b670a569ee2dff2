import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExactlyOnce, ledgerCount, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Answer, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addKey, addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { COMMANDS, CREATE, READ } from '../helpers/paths.js';
import { killLeftovers, type ServiceProcess, spawnEntry } from '../helpers/processes.js';

/**
 * The service scaled out as issue 16 runs it: two intake processes (as behind a load balancer)
 * and three worker processes, started as an operator starts them (workers/intake.ts and
 * workers/worker.ts), on one Redis and one ITFlow database. What must hold when a client's
 * requests land on any intake and its commands are applied by any worker: `Prefer: wait` on one
 * intake answers with what a worker elsewhere applied; an idempotency key or an external_id used
 * on one intake is honoured on the other (one reply, the first command's answer); the per-key rate
 * limit counts every intake's requests; commands.php on one intake follows a command accepted by
 * the other; and thousands of commands sent to both intakes are applied exactly once, each
 * ticket's in order, while one worker is SIGKILLed. Nothing of that may rest on one process's
 * memory.
 */
describe('two intakes and three workers on one Redis and one database', () => {
  let h: Harness;
  let world: World;
  const intakes: ServiceProcess[] = [];
  const workers: ServiceProcess[] = [];
  let a = '';
  let b = '';
  // Short locks, so the jobs of a worker killed outright are handed on within seconds.
  const env = { WORKER_LOCK_SECONDS: '2', APPLY_BACKOFF_MS: '50' };

  /** Starts an intake process and resolves with its URL. */
  const startIntake = async (extra: Record<string, string> = {}) => {
    const intake = spawnEntry('workers/intake.ts', h.processEnv({ ...env, ...extra }));
    intakes.push(intake);
    const started = JSON.parse(await intake.waitFor(/intake started/, 60_000));
    return { intake, url: started.url as string };
  };

  const call = (url: string, method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    httpRequest(url, method, path, body, { 'X-API-Key': world.keys.all, ...headers });
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) => call(url, 'POST', CREATE, body, headers);
  const get = (url: string, path: string) => call(url, 'GET', path, undefined);

  /** A Harness whose requests go to intake A and B in turn (a round-robin load balancer). */
  const balanced = (): Harness => {
    let next = 0;
    return {
      ...h,
      post: (path, body, options = {}) =>
        httpRequest(next++ % 2 === 0 ? a : b, 'POST', path, body, {
          ...(options.headers ?? {}),
          ...(options.key !== undefined ? { 'X-API-Key': options.key } : {}),
        }),
    };
  };

  const repliesWith = async (text: string) =>
    h.query('SELECT ticket_reply_id FROM ticket_replies WHERE ticket_reply = ? ORDER BY ticket_reply_id', [text]);

  beforeAll(async () => {
    // The harness gives the database and the queue prefix; every intake and worker is a process of its own.
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false }, env });
    world = await seedWorld(h.db, '2.6.7');
    const started = await Promise.all([startIntake(), startIntake()]);
    [a, b] = started.map((s) => s.url) as [string, string];
    for (let i = 0; i < 3; i++) workers.push(spawnEntry('workers/worker.ts', h.processEnv({ ...env, WORKER_PORT: '0' })));
    await Promise.all(workers.map((worker) => worker.waitFor(/worker started/, 60_000)));
  }, 120_000);

  afterAll(async () => {
    for (const child of [...intakes, ...workers]) if (child.child.exitCode === null) child.child.kill('SIGTERM');
    await Promise.all([...intakes, ...workers].map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))])));
    killLeftovers();
    await h?.close();
  }, 60_000);

  it('a client waiting on intake A (Prefer: wait) gets 201 with the insert_id of the reply a worker process wrote', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const answer = await post(a, { ticket_id: ticket, ticket_reply: 'Waited for on A' }, { Prefer: 'wait=20' });
    expect(answer.status).toBe(201);
    const { insert_id: insertId, command_id: commandId } = answer.body.data[0];
    expect(await repliesWith('Waited for on A')).toEqual([{ ticket_reply_id: insertId }]);
    // The intakes apply nothing: exactly one of the worker processes did.
    const applied = (p: ServiceProcess) =>
      p
        .output()
        .split('\n')
        .some((line) => line.includes(commandId) && line.includes('"command applied"'));
    expect(workers.filter(applied).length).toBe(1);
    expect(intakes.some((i) => /command applied/.test(i.output()))).toBe(false);
  });

  it('an idempotency key sent to A, then to B: one reply, and B answers with the command A accepted', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const key = `retry-${randomUUID()}`;
    const body = { ticket_id: ticket, ticket_reply: `Sent once, retried elsewhere ${key}` };
    const first = await post(a, body, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    const commandId = first.body.data[0].command_id;

    const retried = await post(b, body, { 'Idempotency-Key': key });
    expect([201, 202]).toContain(retried.status);
    expect(retried.body.data[0].command_id).toBe(commandId);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');

    // Waiting on B for the command A queued: B hears of it from whichever worker applies it.
    const waited = await post(b, body, { 'Idempotency-Key': key, Prefer: 'wait=20' });
    expect(waited.status).toBe(201);
    expect(waited.body.data[0]).toMatchObject({ command_id: commandId });
    expect(await repliesWith(body.ticket_reply)).toEqual([{ ticket_reply_id: waited.body.data[0].insert_id }]);

    const changed = await post(b, { ...body, ticket_reply: 'Something else' }, { 'Idempotency-Key': key });
    expect(changed.status).toBe(422);
    expect(await repliesWith('Something else')).toEqual([]);
  });

  it('the same idempotency key sent to A and B at the same moment: one command, one reply', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    /** Sends until the answer is not "still being accepted" (409 with Retry-After), as a client would. */
    const send = async (url: string, body: object, key: string): Promise<Answer> => {
      for (;;) {
        const answer = await post(url, body, { 'Idempotency-Key': key });
        if (answer.status !== 409) return answer;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    for (let round = 0; round < 10; round++) {
      const key = `race-${randomUUID()}`;
      const body = { ticket_id: ticket, ticket_reply: `Raced ${key}` };
      const [viaA, viaB] = await Promise.all([send(a, body, key), send(b, body, key)]);
      expect([viaA.status, viaB.status].every((s) => s === 201 || s === 202)).toBe(true);
      expect(viaB.body.data[0].command_id).toBe(viaA.body.data[0].command_id);
      await waitForLedger(h, [viaA.body.data[0].command_id], 30_000);
      expect((await repliesWith(body.ticket_reply)).length).toBe(1);
    }
  });

  it('an external_id sent to A, then to B: one reply, B answers with A’s command, and B finds the reply by it', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const externalId = `chat-${randomUUID()}`;
    const body = { ticket_id: ticket, ticket_reply: `From the chat ${externalId}`, external_id: externalId };
    const first = await post(a, body);
    expect(first.status).toBe(202);
    const commandId = first.body.data[0].command_id;

    const again = await post(b, body, { Prefer: 'wait=20' });
    expect(again.status).toBe(201);
    expect(again.body.data[0].command_id).toBe(commandId);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await repliesWith(body.ticket_reply)).toEqual([{ ticket_reply_id: again.body.data[0].insert_id }]);

    const other = await post(b, { ...body, ticket_reply: 'Another text, same external id' });
    expect(other.status).toBe(422);

    const found = await get(b, `${READ}?external_id=${encodeURIComponent(externalId)}`);
    expect(found.status).toBe(200);
    expect(found.body.data.map((r: { ticket_reply_id: string }) => Number(r.ticket_reply_id))).toEqual([
      again.body.data[0].insert_id,
    ]);
  });

  it('commands.php on B follows a command accepted by A, for the key that sent it only', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const accepted = await post(a, { ticket_id: ticket, ticket_reply: 'Followed on B' });
    expect(accepted.status).toBe(202);
    const commandId = accepted.body.data[0].command_id;
    await waitForLedger(h, [commandId], 30_000);

    const status = await get(b, `${COMMANDS}?command_id=${commandId}`);
    expect(status.status).toBe(200);
    const [row] = await repliesWith('Followed on B');
    expect(status.body.data[0]).toMatchObject({ command_id: commandId, status: 'applied', insert_id: row?.ticket_reply_id });
    const stranger = await httpRequest(b, 'GET', `${COMMANDS}?command_id=${commandId}`, undefined, {
      'X-API-Key': world.keys.clientA,
    });
    expect(stranger.status).toBe(404);
  });

  it('read.php on B lists as pending a command A accepted that no worker could apply yet (its ticket row held elsewhere)', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const holder = await h.db.getConnection();
    try {
      await holder.query('START TRANSACTION');
      await holder.query('SELECT ticket_id FROM tickets WHERE ticket_id = ? FOR UPDATE', [ticket]);
      const accepted = await post(a, { ticket_id: ticket, ticket_reply: 'Posted on A, read on B' });
      const commandId = accepted.body.data[0].command_id;
      let waiting: unknown;
      for (let i = 0; i < 300 && !waiting; i++) {
        waiting = (await get(b, `${COMMANDS}?command_id=${commandId}`)).body.data[0].waiting_for;
        if (!waiting) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(waiting).toBe('ticket_lock');
      const listed = await get(b, `${READ}?ticket_id=${ticket}&include_pending=1`);
      expect(listed.body.data).toEqual([
        expect.objectContaining({ pending: true, command_id: commandId, ticket_reply: 'Posted on A, read on B' }),
      ]);
      await holder.query('COMMIT');
      await waitForLedger(h, [commandId], 30_000);
      const after = await get(b, `${READ}?ticket_id=${ticket}&include_pending=1`);
      expect(after.body.data).toEqual([expect.not.objectContaining({ pending: true })]);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });

  it('the per-key rate limit counts the requests of both intakes: the one past the limit gets 429 whichever takes it', async () => {
    // Two more intakes with a small limit, on the same Redis and queue prefix, and a key of its own.
    const limit = 6;
    const key = await addKey(h.db, '2.6.7', { name: 'A busy integration', owner: world.author });
    const limited = await Promise.all([
      startIntake({ RATE_LIMIT_PER_KEY_PER_MINUTE: String(limit) }),
      startIntake({ RATE_LIMIT_PER_KEY_PER_MINUTE: String(limit) }),
    ]);
    const [c, d] = limited.map((l) => l.url) as [string, string];
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const send = (url: string, n: number) =>
      httpRequest(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: `Limited #${n}` }, { 'X-API-Key': key });
    const answers: Answer[] = [];
    for (let n = 1; n <= limit; n++) answers.push(await send(n % 2 === 0 ? d : c, n));
    expect(answers.map((x) => x.status)).toEqual(Array(limit).fill(202));
    expect(answers.map((x) => Number(x.headers.get('ratelimit-remaining')))).toEqual(
      Array.from({ length: limit }, (_, i) => limit - 1 - i),
    );
    for (const url of [c, d]) {
      const refused = await send(url, 0);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    for (const { intake } of limited) {
      intake.child.kill('SIGTERM');
      expect(await intake.exited).toBe(0);
    }
  }, 120_000);

  it('thousands of commands over both intakes, one worker SIGKILLed mid-run: each applied once, each ticket’s in order', async () => {
    const tickets = await Promise.all(Array.from({ length: 20 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    const sending = sendReplies(balanced(), world.keys.all, tickets, 125);
    // Killed once the workers have applied a good part of what was sent so far, while clients still send.
    const victim = workers[1] as ServiceProcess;
    const appliedBy = async () => Number((await h.query('SELECT COUNT(*) AS n FROM rq_commands'))[0]?.n);
    const before = await appliedBy();
    while ((await appliedBy()) - before < 600) await new Promise((resolve) => setTimeout(resolve, 20));
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBe('SIGKILL');
    const sent = await sending;
    expect(sent.length).toBe(2500);
    const commandIds = sent.map((s) => s.commandId);
    await waitForLedger(h, commandIds, 120_000);
    const tally = await expectExactlyOnce(h, sent);
    expect(await ledgerCount(h, commandIds)).toBe(sent.length);
    // Both intakes took part, and the surviving workers applied what the dead one left.
    for (const intake of intakes.slice(0, 2)) expect(intake.output()).toMatch(/command accepted/);
    console.info('2 intakes, 3 workers, one SIGKILLed:', tally);
  }, 240_000);
});
