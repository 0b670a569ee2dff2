import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectExactlyOnce, ledgerCount, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * Two workers racing on the same commands: one is frozen (SIGSTOP) until its job locks lapse
 * and BullMQ hands its commands to a second worker, then resumed (SIGCONT) still holding them.
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
    const sent = await sendReplies(h, world.keys.all, tickets, 50);
    const commandIds = sent.map((s) => s.commandId);

    const frozen = spawnEntry('workers/worker.ts', h.processEnv(env));
    while ((await ledgerCount(h, commandIds)) < 20) await new Promise((resolve) => setTimeout(resolve, 5));
    frozen.child.kill('SIGSTOP');
    const atFreeze = await ledgerCount(h, commandIds);

    const second = spawnEntry('workers/worker.ts', h.processEnv(env));
    // Past the frozen worker's locks (2 s) and a stalled-job check the second takes over its
    // jobs. (If the freeze caught a transaction open, its row locks stay held in MySQL until it
    // resumes: the second worker progresses on the other tickets only, and parks the commands of
    // the locked ones — when the freeze caught a batch holding every ticket, parking is all it can do.)
    await second.waitFor(/"(command (applied|already finished|will be retried)|commands parked behind a ticket row)/, 20_000);
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
