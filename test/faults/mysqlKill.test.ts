import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { withDatabase } from '../../src/demo/itflowDatabase.js';
import { expectExactlyOnce, ledgerCount, sendBulk, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness, uniqueName } from '../helpers/harness.js';
import { addTicket, createMysqlUser, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The worker's MySQL connections killed (KILL CONNECTION) again and again while it applies.
 * What must survive: every accepted command applied exactly once — a batch cut off before
 * COMMIT is rolled back and retried; one cut off after the server committed is found in the
 * ledger on retry and not applied again.
 */
describe('MySQL connections killed under the worker', () => {
  let h: Harness;
  let world: World;
  let admin: mysql.Connection;
  const user = uniqueName('w').slice(0, 32);
  let dropUser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    admin = await mysql.createConnection({ uri: inject('mysqlUrl') });
    // The worker logs in as its own user, so its connections (and only those) can be killed.
    dropUser = await createMysqlUser(admin, h.config.DATABASE_URL.split('/').pop() as string, user, 'worker-pass');
    await admin.query('GRANT PROCESS ON *.* TO ?@?', [user, '%']);
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await dropUser?.();
    await admin?.end();
    await h?.close();
  });

  // Commands apply many to a transaction (bulk chunks, and single commands waiting in a lane
  // together), so each kind gets enough to still be under way through several kill rounds.
  it.each([
    ['single commands', sendReplies, 400],
    ['bulk commands in chunks', sendBulk, 500],
  ] as const)(
    'retries through repeated KILL CONNECTION with no loss and no duplicates (%s)',
    async (label, send, perTicket) => {
      const ids = await Promise.all(Array.from({ length: 10 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
      const sent = await send(h, world.keys.all, ids, perTicket);
      const commandIds = sent.map((s) => s.commandId);
      const workerUrl = new URL(withDatabase(inject('mysqlUrl'), h.config.DATABASE_URL.split('/').pop() as string));
      workerUrl.username = user;
      workerUrl.password = 'worker-pass';
      const worker = spawnEntry(
        'workers/worker.ts',
        h.processEnv({
          DATABASE_URL: workerUrl.toString(),
          APPLY_BACKOFF_MS: '50',
          APPLY_MAX_BACKOFF_MS: '400',
          // Enough tries to outlast every kill round even when a batch takes longer than a round.
          APPLY_MAX_ATTEMPTS: '100',
        }),
      );

      // The kills start once the worker is running: one that loses MySQL while it starts (schema
      // detection, migration) stops with a clear line, as it should, and that is another test.
      await worker.waitFor(/worker started/, 60_000);
      let kills = 0;
      let rounds = 0;
      while ((await ledgerCount(h, commandIds)) < commandIds.length && rounds < 40) {
        rounds++;
        const [connections] = await admin.query<mysql.RowDataPacket[]>(
          'SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?',
          [user],
        );
        for (const { ID } of connections) {
          await admin.query('KILL CONNECTION ?', [ID]).then(
            () => kills++,
            () => {}, // already gone
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 120));
      }
      await waitForLedger(h, commandIds, 45_000).catch((error) => {
        throw new Error(`${error.message}; worker output ends:\n${worker.output().slice(-6000)}`);
      });
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);

      expect(kills).toBeGreaterThan(5);
      expect(worker.output()).toMatch(/command will be retried/);
      const tally = await expectExactlyOnce(h, sent);
      console.info(`KILL CONNECTION under the worker (${label}):`, { ...tally, connectionsKilled: kills, killRounds: rounds });
    },
    90_000,
  );
});
