import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * A command that keeps meeting a lock wait (ticket_replies locked by another session, as a
 * backup's LOCK TABLES does) is retried with backoff within its budget of attempts, then kept as
 * a dead letter. An operator lists it, looks at it, and replays it from the CLI once the cause is
 * gone; replaying is itself idempotent.
 */

describe('dead letters', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  const cli = async (...args: string[]) => {
    const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), ['dead-letters', ...args]);
    const code = await run.exited;
    return { code, output: run.output() };
  };

  it('are kept after the last attempt, listed, shown, replayed once, and replaying again is a no-op', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    // Others may still read the table (the test does), but nobody may write to it.
    await holder.query('LOCK TABLES ticket_replies READ');
    const created = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Stuck behind a lock' }, { key: world.keys.all });
    const commandId = created.body.data[0].command_id;

    const worker = await h.startPeer(
      { intake: false, worker: true },
      { APPLY_MAX_ATTEMPTS: '3', APPLY_LOCK_WAIT_SECONDS: '1', APPLY_BACKOFF_MS: '100', APPLY_MAX_BACKOFF_MS: '100' },
    );
    try {
      let listed = '';
      for (let i = 0; i < 100 && !listed.includes(commandId); i++) {
        listed = (await cli('list', '--json')).output;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const letter = JSON.parse(listed.split('\n').find((line) => line.includes(commandId)) as string);
      expect(letter).toMatchObject({ commandId, ticketId: ticket, attempts: 3 });
      expect(letter.reason).toMatch(/Gave up after 3 attempts/);

      const shown = await cli('show', commandId);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.output)).toMatchObject({
        letter: { commandId },
        job: { command: { ticketId: ticket, reply: { body: 'Stuck behind a lock' } } },
      });
      expect(await repliesOf(h.db, ticket)).toHaveLength(0);

      await holder.query('UNLOCK TABLES');
      const replayed = await cli('replay', commandId);
      expect(replayed).toMatchObject({ code: 0, output: expect.stringContaining(`Replayed ${commandId}.`) });
      expect((await h.finished(commandId)).status).toBe('applied');

      const again = await cli('replay', commandId);
      expect(again.code).toBe(2);
      expect(again.output).toContain(`No dead letter ${commandId}`);
      expect((await cli('replay', '--all')).output).toContain('Replayed 0 dead letter(s).');
      expect(await repliesOf(h.db, ticket)).toHaveLength(1);
      expect((await cli('list')).output).toContain('No dead letters.');
    } finally {
      await holder.end();
      await worker.close();
    }
  });

  it('inside a chunk: each command is listed with its chunk, and replaying one replays the chunk, each applied once', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    // Others may still read the table (the test does), but nobody may write to it.
    await holder.query('LOCK TABLES ticket_replies READ');
    const bulk = await h.post(
      BULK,
      [
        { ticket_id: ticket, ticket_reply: 'First in the chunk' },
        { ticket_id: ticket, ticket_reply: 'Second in the chunk' },
      ],
      { key: world.keys.all },
    );
    const ids = bulk.body.data.map((item: { command_id: string }) => item.command_id) as [string, string];

    const worker = await h.startPeer(
      { intake: false, worker: true },
      { APPLY_MAX_ATTEMPTS: '2', APPLY_LOCK_WAIT_SECONDS: '1', APPLY_BACKOFF_MS: '100', APPLY_MAX_BACKOFF_MS: '100' },
    );
    try {
      let letters: Array<{ commandId: string; chunkId: string | null; ticketId: number }> = [];
      for (let i = 0; i < 100 && letters.length < 2; i++) {
        const listed = (await cli('list', '--json')).output;
        letters = listed
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line))
          .filter((letter) => ids.includes(letter.commandId));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(letters.map((l) => l.commandId).sort()).toEqual([...ids].sort());
      expect(new Set(letters.map((l) => l.chunkId)).size).toBe(1);
      expect(letters[0]?.chunkId).not.toBeNull();
      expect(JSON.parse((await cli('show', ids[1])).output)).toMatchObject({
        letter: { commandId: ids[1] },
        job: { command: { reply: { body: 'Second in the chunk' } } },
      });

      await holder.query('UNLOCK TABLES');
      const replayed = await cli('replay', ids[1], ids[0]);
      expect(replayed.code).toBe(0);
      expect(replayed.output).toContain(`Replayed ${ids[1]}. Its chunk's 1 other command(s) went with it.`);
      expect(replayed.output).toContain(`Replayed ${ids[0]} (with its chunk).`);
      for (const id of ids) expect((await h.finished(id)).status).toBe('applied');
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['First in the chunk', 'Second in the chunk']);
      expect((await cli('replay', ids[0])).code).toBe(2);
    } finally {
      await holder.end();
      await worker.close();
    }
  });
});
