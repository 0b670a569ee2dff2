import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * Per-ticket order with three worker processes, two transactions in flight each: commands for
 * one ticket take effect in the order they were accepted, while tickets proceed in parallel.
 * Each ticket's client sends replies and status changes in turn (each waiting for its 202),
 * and ends with "reply, then close" — the pair an automation sends to wrap a ticket up.
 */

describe('per-ticket order with several workers', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false }, env: { QUEUE_PARTITIONS: '4' } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  it('each ticket goes through its accepted statuses in order, with its replies in acceptance order', async () => {
    const tickets = await Promise.all(
      Array.from({ length: 6 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA, status: 1 })),
    );
    const workers = Array.from({ length: 3 }, () => spawnEntry('workers/worker.ts', h.processEnv({ WORKER_CONCURRENCY: '2' })));
    await Promise.all(workers.map((worker) => worker.waitFor(/worker started/)));
    const commandIds: string[] = [];
    const statusesSent = new Map<number, number[]>(tickets.map((t) => [t, []]));

    await Promise.all(
      tickets.map(async (ticket) => {
        let reply = 0;
        const send = async (body: { status?: number; ticket_reply?: string }) => {
          const answer = await h.post(CREATE, { ticket_id: ticket, ...body }, { key: world.keys.all });
          expect(answer.status).toBe(202);
          commandIds.push(answer.body.data[0].command_id);
          if (body.status) statusesSent.get(ticket)?.push(body.status);
        };
        for (let step = 0; step < 40; step++) {
          if (step % 3 === 2) {
            await send({ status: [2, 3, 4][Math.floor(Math.random() * 3)] as number });
          } else {
            reply++;
            await send({ ticket_reply: `t${ticket} #${reply}`, status: step % 5 === 0 ? 2 : 0 });
          }
        }
        await send({ ticket_reply: `t${ticket} #${reply + 1} wrapping up` });
        await send({ status: 5 });
      }),
    );

    await waitForLedger(h, commandIds);
    for (const worker of workers) worker.child.kill('SIGTERM');
    for (const worker of workers) expect(await worker.exited).toBe(0);

    const failed = await h.query("SELECT error FROM rq_commands WHERE command_id IN (?) AND status = 'failed'", [
      commandIds.map(idBytes),
    ]);
    expect(failed).toEqual([]);
    for (const ticket of tickets) {
      // The close adds ITFlow's own Internal "Ticket closed." reply, last.
      const all = await repliesOf(h.db, ticket);
      expect(all.at(-1)?.ticket_reply).toBe('Ticket closed.');
      const replies = all.slice(0, -1);
      const numbers = replies.map((r) => Number(String(r.ticket_reply).split('#')[1]?.split(' ')[0]));
      expect(numbers, `ticket ${ticket}`).toEqual(numbers.map((_, i) => i + 1));
      const times = replies.map((r) => String(r.ticket_reply_created_at));
      expect(times).toEqual([...times].sort());
      expect(replies.at(-1)?.ticket_reply).toMatch(/wrapping up$/);
      expect((await ticketRow(h.db, ticket)).ticket_status).toBe(5);
      // Applied in acceptance order, the statuses change exactly as sent: same transitions,
      // in the same order (a status equal to the current one is no event).
      const names: Record<number, string> = { 2: 'Open', 3: 'On Hold', 4: 'Resolved', 5: 'Closed' };
      const expected: string[] = [];
      let current = 1;
      for (const status of statusesSent.get(ticket) ?? []) {
        if (status !== current) expected.push(names[status] as string);
        current = status;
      }
      const history = await h.query(
        'SELECT ticket_history_status AS s FROM ticket_history WHERE ticket_history_ticket_id = ? ORDER BY ticket_history_id',
        [ticket],
      );
      expect(
        history.map((r) => r.s),
        `ticket ${ticket} status history`,
      ).toEqual(expected);
    }
    const spread = workers.map((w) => (w.output().match(/"command applied"/g) ?? []).length);
    console.info('order test:', { commands: commandIds.length, appliedPerWorker: spread });
    expect(spread.filter((n) => n > 0).length).toBeGreaterThan(1);
  });
});
