import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectExactlyOnce, ledgerCount, sendBulk, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * A worker process killed with SIGKILL — once while a transaction is open, once at a random
 * moment under load. What must survive: every accepted command is applied exactly once after
 * BullMQ re-delivers the dead worker's stalled jobs to another worker, nothing half-applied
 * (MySQL rolls back the open transaction), each ticket's replies in acceptance order.
 */
describe('a worker killed mid-job (SIGKILL)', () => {
  let h: Harness;
  let world: World;
  // Short locks, so a dead worker's jobs are handed on within seconds.
  const workerEnv = { WORKER_LOCK_SECONDS: '2', APPLY_LOCK_WAIT_SECONDS: '30', APPLY_BACKOFF_MS: '50' };

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false }, env: { WORKER_LOCK_SECONDS: '2' } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  const tickets = async (n: number) =>
    Promise.all(Array.from({ length: n }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));

  it('while its transaction is open: rolled back, then re-delivered and applied once', async () => {
    const ids = await tickets(8);
    const sent = await sendReplies(h, world.keys.all, ids, 15);
    // Someone holds one ticket's row, so the batch that includes it waits with its transaction open.
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('START TRANSACTION');
    await holder.query('SELECT * FROM tickets WHERE ticket_id = ? FOR UPDATE', [ids[3]]);

    const worker = spawnEntry('workers/worker.ts', h.processEnv(workerEnv));
    const database = h.config.DATABASE_URL.split('/').pop();
    for (let i = 0; i < 200; i++) {
      const [[waiting]] = (await holder.query(
        `SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
         WHERE p.DB = ? AND t.trx_state = 'LOCK WAIT'`,
        [database],
      )) as unknown as [[{ n: number }]];
      if (Number(waiting.n) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const beforeKill = await ledgerCount(
      h,
      sent.map((s) => s.commandId),
    );
    worker.child.kill('SIGKILL');
    expect(await worker.exited).toBe('SIGKILL');
    await holder.query('COMMIT');
    await holder.end();
    expect(beforeKill).toBeLessThan(sent.length);

    const rescuer = spawnEntry('workers/worker.ts', h.processEnv(workerEnv));
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
    );
    // Stopped only once it runs: a SIGTERM while it is still loading ends it before it can exit 0.
    await rescuer.waitFor(/worker started/);
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);
    const tally = await expectExactlyOnce(h, sent);
    console.info('SIGKILL with a transaction open:', { ...tally, appliedBeforeKill: beforeKill });
  });

  it.each([
    ['single commands', sendReplies],
    ['bulk commands in chunks', sendBulk],
  ])('at a random moment under load (%s): nothing lost, nothing twice', async (label, send) => {
    const ids = await tickets(10);
    const sent = await send(h, world.keys.all, ids, 40);
    const worker = spawnEntry('workers/worker.ts', h.processEnv(workerEnv));
    const commandIds = sent.map((s) => s.commandId);
    const killAt = Math.floor(sent.length * (0.2 + Math.random() * 0.5));
    while ((await ledgerCount(h, commandIds)) < killAt) await new Promise((resolve) => setTimeout(resolve, 10));
    worker.child.kill('SIGKILL');
    await worker.exited;
    const beforeKill = await ledgerCount(h, commandIds);

    const rescuer = spawnEntry('workers/worker.ts', h.processEnv(workerEnv));
    await waitForLedger(h, commandIds);
    await rescuer.waitFor(/worker started/);
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);
    const tally = await expectExactlyOnce(h, sent);
    console.info(`SIGKILL at a random moment (${label}):`, { ...tally, appliedBeforeKill: beforeKill });
  });
});
