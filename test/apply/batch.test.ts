import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApplyDeps, applyBatch, applySessionSql, type Submission } from '../../src/apply/applyBatch.js';
import { idBytes } from '../../src/apply/ledger.js';
import { type Command, fingerprint } from '../../src/commands/command.js';
import { newCommandId } from '../../src/commands/commandId.js';
import { createPool, databaseName } from '../../src/db/pool.js';
import { serviceTables } from '../../src/db/tables.js';
import { createItflowClock } from '../../src/itflow/clock.js';
import { People } from '../../src/itflow/people.js';
import { detectSchema } from '../../src/itflow/schema.js';
import { ItflowSettingsReader } from '../../src/itflow/settings.js';
import { TicketDirectory } from '../../src/itflow/tickets.js';
import { Batcher } from '../../src/queue/batcher.js';
import type { CommandJob } from '../../src/queue/jobs.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, ticketRow, type World } from '../helpers/itflow.js';

/**
 * Many commands in one transaction: each still all or nothing, in order per ticket, with its
 * own ledger row and ticket_reply_id — against the real database, through the same apply
 * path the worker uses.
 */
describe('applying a batch of commands in one transaction', () => {
  let h: Harness;
  let world: World;
  let pool: Pool;
  let deps: ApplyDeps;
  let keyId: number;
  let acceptedAt = Date.now() - 60_000;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    pool = createPool(h.config.DATABASE_URL, 4, { multipleStatements: true, sessionSql: applySessionSql(5) });
    const schema = await detectSchema(pool, databaseName(h.config.DATABASE_URL));
    const clock = createItflowClock(pool);
    deps = {
      pool,
      tables: serviceTables(h.config),
      schema,
      clock,
      tickets: new TicketDirectory(pool, 0),
      people: new People(pool, 0),
      settings: new ItflowSettingsReader(pool, schema, undefined, 0),
    };
    const [[key]] = (await pool.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [world.keys.all])) as any;
    keyId = key.api_key_id;
  });
  afterAll(async () => {
    await pool?.end();
    await h?.close();
  });

  const submission = (command: Partial<Command> & { ticketId: number }): Submission => {
    const full: Command = { reply: null, status: 0, ...command };
    acceptedAt += 1000;
    const job: CommandJob = {
      v: 1,
      commandId: newCommandId(),
      acceptedAt,
      apiKeyId: keyId,
      idempotencyKey: null,
      fingerprint: fingerprint(full),
      command: full,
      origin: { ip: '127.0.0.1', userAgent: 'batch-test' },
      announce: false,
    };
    return { job, attempts: 1 };
  };
  const reply = (body: string, type: 'Internal' | 'Public' = 'Internal') => ({ body, type, timeWorked: '00:00:00' });

  it('commands for one ticket take effect in batch order', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA, status: 2 });
    const outcomes = await applyBatch(deps, [
      submission({ ticketId: ticket, reply: reply('first') }),
      submission({ ticketId: ticket, status: 4 }),
      submission({ ticketId: ticket, reply: reply('second', 'Public'), status: 2 }),
      submission({ ticketId: ticket, reply: reply('closing'), status: 5 }),
    ]);

    expect(outcomes.map((o) => o.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
    const replies = await repliesOf(h.db, ticket);
    // The close adds ITFlow's Internal "Ticket closed." reply after the closing one.
    expect(replies.map((r) => r.ticket_reply)).toEqual(['first', 'second', 'closing', 'Ticket closed.']);
    expect(
      outcomes.filter((o) => o.status === 'applied' && o.insertId > 0).map((o) => (o as { insertId: number }).insertId),
    ).toEqual(replies.filter((r) => r.ticket_reply !== 'Ticket closed.').map((r) => r.ticket_reply_id));
    const createdAt = replies.map((r) => r.ticket_reply_created_at);
    expect([...createdAt].sort()).toEqual(createdAt);
    const history = await h.query(
      'SELECT ticket_history_description AS d FROM ticket_history WHERE ticket_history_ticket_id = ? ORDER BY ticket_history_id',
      [ticket],
    );
    expect(history.map((r) => r.d)).toEqual([
      // ITFlow's own history wording, naming the key's user and the key.
      'Integration Admin resolved the ticket via API (All clients key)',
      'Integration Admin reopened the ticket via API (All clients key)',
      'Integration Admin closed the ticket via API (All clients key)',
    ]);
    const row = await ticketRow(h.db, ticket);
    expect(row.ticket_status).toBe(5);
    // Resolving stamps the first response, as ITFlow's resolve_ticket does: the resolve's time, before 'second'.
    const [resolved] = await h.query(
      'SELECT ticket_history_created_at AS at FROM ticket_history WHERE ticket_history_ticket_id = ? ORDER BY ticket_history_id LIMIT 1',
      [ticket],
    );
    expect(row.ticket_first_response_at).toBe(resolved?.at);
  });

  it('a command that must fail fails alone; its batch-mates apply and every command gets a ledger row', async () => {
    const open = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const closed = await addTicket(h.db, '2.6.7', { clientId: world.clientA, status: 5, closedAt: '2026-01-01 00:00:00' });
    const batch = [
      submission({ ticketId: open, reply: reply('before') }),
      submission({ ticketId: closed, reply: reply('refused') }),
      submission({ ticketId: 999_999, status: 2 }),
      submission({ ticketId: open, reply: reply('after') }),
    ];
    const outcomes = await applyBatch(deps, batch);

    expect(outcomes.map((o) => (o.status === 'failed' ? o.failure.status : 'applied'))).toEqual(['applied', 409, 404, 'applied']);
    expect((await repliesOf(h.db, open)).map((r) => r.ticket_reply)).toEqual(['before', 'after']);
    expect(await repliesOf(h.db, closed)).toEqual([]);
    const ledger = await h.query('SELECT command_id, status FROM rq_commands WHERE command_id IN (?)', [
      batch.map((s) => idBytes(s.job.commandId)),
    ]);
    expect(ledger).toHaveLength(4);
  });

  it('the same command twice in a batch, or again in a later batch, has one effect', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const once = submission({ ticketId: ticket, reply: reply('only once') });
    const first = await applyBatch(deps, [once, once]);
    const again = await applyBatch(deps, [once]);
    expect(first[0]).not.toHaveProperty('repeat');
    expect(first[1]).toEqual({ ...first[0], repeat: true });
    expect(again[0]).toEqual({ ...first[0], repeat: true });
    expect(await repliesOf(h.db, ticket)).toHaveLength(1);
  });

  it.each([true, false])(
    'each reply gets its own ticket_reply_id, and the ledger, read projection and external ids name it (ids in SQL, one round trip: %s)',
    async (consecutive) => {
      const tickets = [
        await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
        await addTicket(h.db, '2.6.7', { clientId: world.clientB }),
      ];
      const batch = Array.from({ length: 6 }, (_, i) =>
        submission({
          ticketId: tickets[i % 2] as number,
          reply: reply(`reply ${i}`),
          // A status change without a reply between them, and external ids on some.
          ...(i === 3 ? { reply: undefined, status: 3 } : {}),
          ...(i % 2 === 0 ? { externalId: `ids-${consecutive}-${tickets[0]}-${i}` } : {}),
        }),
      );
      // The same external id again in the batch: answers as the first, with its reply.
      batch.push(
        submission({ ticketId: tickets[0] as number, reply: reply('reply 0'), externalId: `ids-${consecutive}-${tickets[0]}-0` }),
      );
      // Another session inserts a reply just before, so the batch's ids do not start where the last batch's ended.
      await h.query(
        "INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_by, ticket_reply_ticket_id, ticket_reply_created_at) VALUES ('by ITFlow', 'Internal', 1, ?, NOW())",
        [tickets[1]],
      );
      const outcomes = await applyBatch({ ...deps, schema: { ...deps.schema, consecutiveInsertIds: consecutive } }, batch);
      const ids = outcomes.map((o) => (o as { insertId: number }).insertId);
      for (const [i, outcome] of outcomes.entries()) {
        expect(outcome.status).toBe('applied');
        if (i === 3) {
          expect(ids[i]).toBe(0); // no reply made
          continue;
        }
        const [row] = await h.query('SELECT ticket_reply, ticket_reply_ticket_id FROM ticket_replies WHERE ticket_reply_id = ?', [
          ids[i],
        ]);
        expect(row).toEqual({
          ticket_reply: i === 6 ? 'reply 0' : `reply ${i}`,
          ticket_reply_ticket_id: batch[i]?.job.command.ticketId,
        });
      }
      expect(ids[6]).toBe(ids[0]);
      expect(outcomes[6]).toMatchObject({ repeat: true });
      const ledger = await h.query('SELECT command_id, insert_id FROM rq_commands WHERE command_id IN (?)', [
        batch.map((s) => idBytes(s.job.commandId)),
      ]);
      expect(new Map(ledger.map((r) => [Buffer.from(r.command_id).toString('hex'), Number(r.insert_id)]))).toEqual(
        new Map(batch.map((s, i) => [idBytes(s.job.commandId).toString('hex'), ids[i]])),
      );
      const projected = await h.query(
        'SELECT reply_id, ticket_id, external_id FROM rq_read_replies WHERE reply_id IN (?) ORDER BY reply_id',
        [ids.filter((id) => id > 0)],
      );
      expect(projected).toEqual(
        [0, 1, 2, 4, 5].map((i) => ({
          reply_id: ids[i],
          ticket_id: batch[i]?.job.command.ticketId,
          external_id: batch[i]?.job.command.externalId ?? null,
        })),
      );
      const named = await h.query(
        'SELECT external_id, insert_id FROM rq_external_ids WHERE external_id LIKE ? ORDER BY external_id',
        [`ids-${consecutive}-${tickets[0]}-%`],
      );
      expect(named).toEqual([0, 2, 4].map((i) => ({ external_id: batch[i]?.job.command.externalId, insert_id: ids[i] })));
    },
  );

  it('a command whose data ITFlow’s tables refuse is split out of its batch and fails alone (400)', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    // TIME tops out at 838:59:59; a job carrying more (bypassing the intake's checks) is poison.
    const poison = submission({ ticketId: ticket, reply: { body: 'poison', type: 'Internal', timeWorked: '999:59:59' } });
    const sizes: number[] = [];
    const batcher = new Batcher(
      (batch) => {
        sizes.push(batch.length);
        return applyBatch(deps, batch);
      },
      { maxCommands: 10, maxInFlight: 1, lingerMs: 20 },
    );
    const outcomes = await Promise.all(
      [
        submission({ ticketId: ticket, reply: reply('good 1') }),
        poison,
        submission({ ticketId: ticket, reply: reply('good 2') }),
      ].map((s) => batcher.submit(s)),
    );
    // Tried together first, then one by one: [3, 1, 1, 1].
    expect(sizes).toEqual([3, 1, 1, 1]);
    expect(outcomes.map((o) => o.status)).toEqual(['applied', 'failed', 'applied']);
    expect(outcomes[1]).toMatchObject({ failure: { status: 400 } });
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['good 1', 'good 2']);
    expect(
      await h.query('SELECT status, http_status FROM rq_commands WHERE command_id = ?', [idBytes(poison.job.commandId)]),
    ).toEqual([{ status: 'failed', http_status: 400 }]);
  });
});
