import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectExactlyOnce, ledgerCount, sendReplies, waitForLedger, waitsForTableLock } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * Two workers racing on the same commands: one is frozen (SIGSTOP) with a batch's run of jobs
 * taken — its transaction committed while it is frozen — until its job locks lapse and BullMQ
 * hands its commands to a second worker, then resumed (SIGCONT) still holding them.
 * What must hold: each command applied once — the ticket lock and the ledger row decide who
 * wins — and each ticket's replies still in acceptance order.
 */
describe('two workers racing on the same commands', () => {
  let h: Harness;
  let world: World;
  const env = { WORKER_LOCK_SECONDS: '2' };

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false }, env });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  it('a frozen worker resumed after its jobs were handed on applies nothing twice', async () => {
    const tickets = await Promise.all(Array.from({ length: 6 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    // More than the frozen worker's two transactions in flight can take (2 × BATCH_MAX_COMMANDS, 250).
    const sent = await sendReplies(h, world.keys.all, tickets, 100);
    const commandIds = sent.map((s) => s.commandId);

    // The first worker's batch is held at its last round trip (ITFlow's logs table locked by another
    // session), so it is frozen with a run of jobs taken and not finished, whatever the machine's speed.
    const holder = await h.db.getConnection();
    let frozen: ReturnType<typeof spawnEntry>;
    try {
      await holder.query('LOCK TABLES logs WRITE');
      frozen = spawnEntry('workers/worker.ts', h.processEnv(env));
      // Its transaction waits for ITFlow's logs table: the batch's last round trip.
      expect(await waitsForTableLock(h, '%INSERT INTO logs%', 30_000), "no worker's batch waited for the logs table").toBe(true);
      frozen.child.kill('SIGSTOP');
    } finally {
      // Its statements are with MariaDB already: the batch commits while the worker is frozen.
      await holder.query('UNLOCK TABLES');
      holder.release();
    }
    for (let i = 0; i < 300 && (await ledgerCount(h, commandIds)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const atFreeze = await ledgerCount(h, commandIds);
    expect(atFreeze, 'the frozen batch committed').toBeGreaterThan(0);

    const second = spawnEntry('workers/worker.ts', h.processEnv(env));
    // Past the frozen worker's locks (2 s) and a stalled-job check the second takes over its
    // jobs: those of the committed batch are found in the ledger, the rest applied.
    await second.waitFor(/"command (applied|already finished)"/, 20_000);
    const atResume = await ledgerCount(h, commandIds);
    frozen.child.kill('SIGCONT');

    await waitForLedger(h, commandIds);
    for (const worker of [frozen, second]) worker.child.kill('SIGTERM');
    expect(await frozen.exited).toBe(0);
    expect(await second.exited).toBe(0);
    const tally = await expectExactlyOnce(h, sent);
    console.info('two workers racing:', {
      ...tally,
      appliedAtFreeze: atFreeze,
      appliedAtResume: atResume,
      appliedByFrozen: (frozen.output().match(/"command applied"/g) ?? []).length,
      appliedBySecond: (second.output().match(/"command applied"/g) ?? []).length,
      alreadyFinishedWhenRedelivered: [frozen, second].reduce(
        (n, w) => n + (w.output().match(/"command already finished"/g) ?? []).length,
        0,
      ),
    });
  });
});
