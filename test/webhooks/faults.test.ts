import mysql from 'mysql2/promise';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addWebhook } from '../../src/cli/webhooks.js';
import { serviceTables } from '../../src/db/tables.js';
import { expectExactlyOnce, ledgerCount, type Sent, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addKey, addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';
import { Receiver, signatureMatches } from '../helpers/receiver.js';

/**
 * Webhooks through faults, at the timings users live at: a receiver down for a whole minute (on
 * ITFlow 2.4.4's schema, whose keys are scoped per client), and a worker process killed with
 * SIGKILL while its dispatcher has deliveries in flight and a batch's transaction is open (2.6.7).
 * Each runs on a database of its own, side by side.
 */

/** A webhook for a new key of the world's admin (2.4.4: a key for every client); returns the key's secret and the webhook's. */
async function keyWithWebhook(h: Harness, world: World, url: string) {
  const secret = await addKey(h.db, h.generation, { name: 'Webhook bridge', owner: world.author });
  const [row] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [secret]);
  const hook = await addWebhook(h.db, serviceTables(h.config), h.config, {
    apiKeyId: Number(row?.api_key_id),
    url,
    events: ['command.applied', 'command.failed'],
  });
  return { key: secret, webhookSecret: hook.secret };
}

/** Each command's events as received: command id → the Webhook-Ids of every delivery of it. */
function receivedByCommand(receiver: Receiver): Map<string, string[]> {
  const byCommand = new Map<string, string[]>();
  for (const event of receiver.events()) {
    const id = String(event.data.command_id);
    byCommand.set(id, [...(byCommand.get(id) ?? []), String(event.headers['webhook-id'])]);
  }
  return byCommand;
}

/** The outbox rows of these commands: command id → [event id, state, attempts] of each. */
async function outboxOf(h: Harness, commandIds: string[]) {
  const rows = await h.query(
    `SELECT JSON_VALUE(payload, '$.data.command_id') AS command, JSON_VALUE(payload, '$.id') AS event, state, attempts
       FROM rq_hook_outbox WHERE JSON_VALUE(payload, '$.data.command_id') IN (?)`,
    [commandIds],
  );
  const byCommand = new Map<string, Array<{ event: string; state: string; attempts: number }>>();
  for (const row of rows) {
    const command = String(row.command);
    byCommand.set(command, [
      ...(byCommand.get(command) ?? []),
      { event: String(row.event), state: String(row.state), attempts: Number(row.attempts) },
    ]);
  }
  return byCommand;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the outbox has every delivery of these commands' events recorded as delivered. */
async function waitUntilDelivered(h: Harness, sent: Array<{ commandId: string }>, timeoutMs: number): Promise<void> {
  await waitUntil(
    async () =>
      [
        ...(
          await outboxOf(
            h,
            sent.map((s) => s.commandId),
          )
        ).values(),
      ].every((rows) => rows.every((r) => r.state === 'delivered')),
    timeoutMs,
    'every delivery recorded as delivered',
  );
}

describe.concurrent('webhooks through faults', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(killLeftovers);
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  });

  it('a receiver down for a minute gets every event afterwards, each under one event id, and the commands applied meanwhile', async () => {
    // Backoff from 1 s, capped at 8 s: the receiver is tried about ten times while it is down.
    const h = await startHarness({ generation: '2.4.4', env: { WEBHOOK_BACKOFF_MS: '1000', WEBHOOK_MAX_BACKOFF_MS: '8000' } });
    cleanups.push(() => h.close());
    const world = await seedWorld(h.db, '2.4.4');
    const receiver = await new Receiver().start();
    cleanups.push(() => receiver.stop());
    const { key, webhookSecret } = await keyWithWebhook(h, world, receiver.url);
    const tickets = await Promise.all([1, 2, 3].map(() => addTicket(h.db, '2.4.4', { clientId: world.clientA })));

    await receiver.stop(); // down: connections refused
    const downAt = Date.now();
    const sent: Sent[] = [...(await sendReplies(h, key, tickets, 4))];
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      10_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    // Half-way through the outage: more commands, applied as fast as ever (deliveries never hold the apply path).
    const more = await sendReplies(h, key, tickets, 4);
    const sentAt = Date.now();
    await waitForLedger(
      h,
      more.map((s) => s.commandId),
      10_000,
    );
    const applyMs = Date.now() - sentAt;
    sent.push(...more);
    const during = await outboxOf(
      h,
      sent.map((s) => s.commandId),
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, downAt + 60_000 - Date.now())));
    expect(receiver.received).toEqual([]);

    await receiver.start(); // back, on the same port
    const backAt = Date.now();
    await receiver.waitFor(() => receivedByCommand(receiver).size === sent.length, 20_000, 'every event after the outage');
    const catchUpMs = Date.now() - backAt;
    await waitUntilDelivered(h, sent, 10_000);

    const outbox = await outboxOf(
      h,
      sent.map((s) => s.commandId),
    );
    const received = receivedByCommand(receiver);
    for (const { commandId } of sent) {
      const rows = outbox.get(commandId) ?? [];
      expect(rows, `one event for ${commandId}`).toHaveLength(1);
      expect(new Set(received.get(commandId)), `every delivery of ${commandId} carries its event id`).toEqual(
        new Set([rows[0]?.event]),
      );
    }
    expect(receiver.received.every((got) => signatureMatches(webhookSecret, got))).toBe(true);
    // The first commands' deliveries were tried again and again through the outage, none given up.
    const firstAttempts = sent.slice(0, 12).map((s) => during.get(s.commandId)?.[0]?.attempts ?? 0);
    expect(Math.min(...firstAttempts)).toBeGreaterThanOrEqual(4);
    expect([...during.values()].flat().every((row) => row.state === 'pending')).toBe(true);
    expect(applyMs).toBeLessThan(5_000);
    expect(catchUpMs).toBeLessThan(12_000);
    console.info('receiver down 60 s:', {
      events: sent.length,
      deliveries: receiver.received.length,
      firstAttempts,
      applyMs,
      catchUpMs,
    });
  }, 120_000);

  it('a worker killed (SIGKILL) with deliveries in flight and a batch open: no event lost, re-sent ones keep their event id, the rolled-back batch wrote none', async () => {
    const h = await startHarness({
      generation: '2.6.7',
      roles: { intake: true, worker: false },
      env: { WORKER_LOCK_SECONDS: '2' },
    });
    cleanups.push(() => h.close());
    const world = await seedWorld(h.db, '2.6.7');
    const receiver = await new Receiver().start();
    cleanups.push(() => receiver.stop());
    const { key, webhookSecret } = await keyWithWebhook(h, world, receiver.url);
    // A lease of 2 × 2 s + 5 s: a dead dispatcher's claimed deliveries are sent again after 9 s.
    const workerEnv = h.processEnv({
      WORKER_LOCK_SECONDS: '2',
      APPLY_LOCK_WAIT_SECONDS: '30',
      APPLY_BACKOFF_MS: '50',
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_BACKOFF_MS: '200',
    });
    const tickets = await Promise.all([1, 2, 3, 4].map(() => addTicket(h.db, '2.6.7', { clientId: world.clientA })));

    // The first three deliveries are answered; every later one is taken and left hanging.
    receiver.answer = (_request, index) => (index < 3 ? { status: 200 } : { status: 200, hold: true });
    const first = await sendReplies(h, key, tickets.slice(0, 3), 4);
    const worker = spawnEntry('workers/worker.ts', workerEnv);
    await receiver.waitFor(() => receiver.holding >= 5, 30_000, 'deliveries in flight');

    // Another session holds the ledger's rows and gaps, so the next batch's transaction stops at
    // its ledger INSERT, open, with its replies written but not committed (its events come with
    // the ledger rows: an event written any earlier, outside the transaction, would be left behind).
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    cleanups.push(() => holder.end());
    await holder.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await holder.query('START TRANSACTION');
    await holder.query('SELECT command_id FROM rq_commands FOR UPDATE');
    const second = await sendReplies(h, key, tickets.slice(3), 4);
    const database = h.config.DATABASE_URL.split('/').pop();
    let waitingThread = 0;
    await waitUntil(
      async () => {
        const [rows] = (await holder.query(
          `SELECT t.trx_mysql_thread_id AS thread FROM information_schema.INNODB_TRX t
             JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
            WHERE p.DB = ? AND t.trx_state = 'LOCK WAIT'`,
          [database],
        )) as unknown as [Array<{ thread: number }>];
        waitingThread = Number(rows[0]?.thread ?? 0);
        return waitingThread > 0;
      },
      20_000,
      "a batch's transaction waiting at the ledger",
    );

    worker.child.kill('SIGKILL');
    expect(await worker.exited).toBe('SIGKILL');
    // The server would still run the rest of the dead worker's statements (its COMMIT included)
    // once the lock is released; its connection killed, the open transaction is rolled back.
    await holder.query('KILL CONNECTION ?', [waitingThread]);
    await holder.query('ROLLBACK');
    const secondIds = second.map((s) => s.commandId);
    // Rolled back whole: no ledger row, no reply, no event of the open batch.
    expect(await ledgerCount(h, secondIds)).toBe(0);
    expect((await outboxOf(h, secondIds)).size).toBe(0);
    const [replies] = await h.query('SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id = ?', [tickets[3]]);
    expect(Number(replies?.n)).toBe(0);
    const inFlight = receiver.holding;
    receiver.answer = () => ({ status: 200 });

    const rescuer = spawnEntry('workers/worker.ts', workerEnv);
    const sent = [...first, ...second];
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      30_000,
    );
    await receiver.waitFor(() => receivedByCommand(receiver).size === sent.length, 30_000, 'every event');
    await waitUntilDelivered(h, sent, 20_000);
    await rescuer.waitFor(/worker started/);
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);

    await expectExactlyOnce(h, sent);
    const outbox = await outboxOf(
      h,
      sent.map((s) => s.commandId),
    );
    const received = receivedByCommand(receiver);
    let duplicates = 0;
    for (const { commandId } of sent) {
      const rows = outbox.get(commandId) ?? [];
      expect(rows, `one event for ${commandId}`).toHaveLength(1);
      const ids = received.get(commandId) ?? [];
      expect(new Set(ids), `every delivery of ${commandId} carries its event id`).toEqual(new Set([rows[0]?.event]));
      duplicates += ids.length - 1;
    }
    // The deliveries left hanging by the killed worker were sent again: duplicates, same ids.
    expect(duplicates).toBeGreaterThanOrEqual(inFlight);
    expect(receiver.received.every((got) => signatureMatches(webhookSecret, got))).toBe(true);
    const [events] = await h.query('SELECT COUNT(*) AS n FROM rq_hook_outbox');
    expect(Number(events?.n)).toBe(sent.length);
    console.info('SIGKILL with deliveries in flight and a batch open:', { events: sent.length, inFlight, duplicates });
  }, 90_000);
});
