import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectExactlyOnce, ledgerCount, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * SIGTERM under load. What must hold: the process exits 0 within SHUTDOWN_TIMEOUT_SECONDS;
 * no command is lost or half-applied — every one either committed whole (effects and ledger
 * row) or left for the next worker; every 202 the intake gave is applied.
 */

describe('graceful shutdown under load', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  const tickets = () => Promise.all(Array.from({ length: 10 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));

  it('a worker stops within its bound, leaving nothing half-applied, and the rest is applied by the next', async () => {
    // Enough to still be under way at the signal: a lane applies its waiting commands many to a transaction.
    const sent = await sendReplies(h, world.keys.all, await tickets(), 400);
    const commandIds = sent.map((s) => s.commandId);
    const worker = spawnEntry('workers/worker.ts', h.processEnv({ SHUTDOWN_TIMEOUT_SECONDS: '5' }));
    while ((await ledgerCount(h, commandIds)) < sent.length * 0.2) await new Promise((resolve) => setTimeout(resolve, 10));

    const signalled = Date.now();
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const stopSeconds = (Date.now() - signalled) / 1000;
    expect(stopSeconds).toBeLessThan(5 + 2);

    // Whole or nothing: exactly one reply per finished command, none for the others.
    const finished = await ledgerCount(h, commandIds);
    const [replies] = await h.query('SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id IN (?)', [
      [...new Set(sent.map((s) => s.ticketId))],
    ]);
    expect(Number(replies?.n)).toBe(finished);
    expect(finished).toBeLessThan(sent.length);

    const next = spawnEntry('workers/worker.ts', h.processEnv());
    await waitForLedger(h, commandIds);
    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
    const tally = await expectExactlyOnce(h, sent);
    console.info('worker SIGTERM under load:', { ...tally, appliedBeforeStop: finished, stopSeconds });
  });

  it('an intake stops accepting, exits 0, and every command it answered 202 for is applied', async () => {
    const ids = await tickets();
    const intake = spawnEntry('workers/intake.ts', h.processEnv());
    const url = JSON.parse(await intake.waitFor(/intake started/)).url as string;
    const accepted: string[] = [];
    const answers = new Map<string, number>();
    let stop = false;
    const clients = ids.map(async (ticket) => {
      for (let n = 0; !stop; n++) {
        const answer = await fetch(`${url}${CREATE}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-API-Key': world.keys.all },
          body: JSON.stringify({ ticket_id: ticket, ticket_reply: `t${ticket} #${n}` }),
        }).then(
          async (response) => ({
            status: String(response.status),
            body: (await response.json()) as { data?: [{ command_id: string }] },
          }),
          () => ({ status: 'refused', body: {} as { data?: [{ command_id: string }] } }),
        );
        answers.set(answer.status, (answers.get(answer.status) ?? 0) + 1);
        if (answer.status === '202') accepted.push(answer.body.data?.[0].command_id as string);
        if (answer.status === 'refused') return;
      }
    });
    while (accepted.length < 200) await new Promise((resolve) => setTimeout(resolve, 10));
    intake.child.kill('SIGTERM');
    expect(await intake.exited).toBe(0);
    stop = true;
    await Promise.all(clients);

    expect([...answers.keys()].filter((s) => s !== '202' && s !== 'refused')).toEqual([]);
    const worker = spawnEntry('workers/worker.ts', h.processEnv());
    await waitForLedger(h, accepted);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    const [row] = await h.query('SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id IN (?)', [ids]);
    expect(Number(row?.n)).toBe(accepted.length);
    console.info('intake SIGTERM under load:', {
      answers: Object.fromEntries(answers),
      accepted: accepted.length,
      applied: Number(row?.n),
    });
  });
});
