import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * `import FILE`, as an operator runs it (the CLI process, against the running service):
 * NDJSON and CSV, rejected lines written beside the file, a dry run that writes nothing, and
 * an import interrupted — Ctrl-C, or killed outright — then resumed, with exact row counts.
 */
describe('CLI import', () => {
  let h: Harness;
  let world: World;
  let tickets: number[];
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-import-'));

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    world = await seedWorld(h.db, '2.6.7');
    tickets = await Promise.all([1, 2, 3, 4].map(() => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  const runImport = (file: string, ...args: string[]) =>
    spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), [
      'import',
      file,
      '--url',
      h.url,
      '--api-key',
      world.keys.all,
      '--json',
      ...args,
    ]);
  const summaryOf = (output: string) => JSON.parse(output.split('\n').find((line) => line.startsWith('{"file"')) as string);
  const repliesOn = async (ticketIds: number[]) => (await Promise.all(ticketIds.map((t) => repliesOf(h.db, t)))).flat();

  function ndjson(name: string, lines: number, ticketIds: number[], extra: string[] = []): string {
    const file = join(dir, name);
    const rows = Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        ticket_id: ticketIds[i % ticketIds.length],
        ticket_reply: `${name} line ${i + 1}`,
        created_at: '2026-01-01 10:00:00',
      }),
    );
    writeFileSync(file, `${[...rows, ...extra].join('\n')}\n`);
    return file;
  }

  it('imports an NDJSON file, writing refused lines with their reasons beside it', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const file = ndjson('basic.ndjson', 30, [ticket], ['{"ticket_id": 999999, "ticket_reply": "no such ticket"}', 'not json']);
    const run = runImport(file);
    expect(await run.exited).toBe(3); // finished, with refused lines
    expect(summaryOf(run.output())).toMatchObject({
      read: 32,
      queued: 30,
      applied: 30,
      rejected: 2,
      duplicates: 0,
      interrupted: false,
    });
    expect(await repliesOf(h.db, ticket)).toHaveLength(30);
    const rejected = readFileSync(`${file}.rejected.ndjson`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rejected).toEqual([
      expect.objectContaining({
        line: 31,
        http_status: 404,
        message: "Ticket 999999 was not found within this API key's scope.",
      }),
      expect.objectContaining({ line: 32, http_status: 400, message: 'Line 32 is not valid JSON.' }),
    ]);
  });

  it('imports a CSV file whose header names the fields, with authors', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const file = join(dir, 'replies.csv');
    writeFileSync(
      file,
      [
        'ticket_id,ticket_reply,public_reply_type,minutes,created_at,author_user_id',
        `${ticket},"Called the customer, all good",1,15,2026-01-02T09:00:00-05:00,${world.agent}`,
        `${ticket},"Second, with a comma",,,2026-01-02 10:00:00,`,
      ].join('\n'),
    );
    const run = runImport(file);
    expect(await run.exited).toBe(0);
    expect(summaryOf(run.output())).toMatchObject({ read: 2, applied: 2, rejected: 0 });
    expect(
      (await repliesOf(h.db, ticket)).map((r) => [
        r.ticket_reply,
        r.ticket_reply_type,
        r.ticket_reply_by,
        r.ticket_reply_time_worked,
      ]),
    ).toEqual([
      ['Called the customer, all good', 'Public', world.agent, '00:15:00'],
      ['Second, with a comma', 'Internal', world.author, '00:00:00'],
    ]);
  });

  it('a dry run validates every line and writes nothing', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const file = ndjson('dry.ndjson', 20, [ticket], ['{"ticket_id": 999999, "ticket_reply": "x"}']);
    const run = runImport(file, '--dry-run');
    expect(await run.exited).toBe(3);
    expect(summaryOf(run.output())).toMatchObject({ dryRun: true, read: 21, rejected: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await repliesOf(h.db, ticket)).toHaveLength(0);
    expect(existsSync(`${file}.import-state.json`)).toBe(false);
  });

  it('a ticket’s lines land in file order across concurrent requests, and in time order within one', async () => {
    const pair = [
      await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
      await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
    ];
    const file = join(dir, 'history.ndjson');
    // Hour i of a day, for 90 lines over two tickets; each 5-line stretch reversed, so every
    // request (batch size 5) holds its ticket's lines newest first.
    const hours = Array.from({ length: 90 }, (_, i) => i);
    const order = hours.flatMap((_, i) => (i % 5 === 0 ? hours.slice(i, i + 5).reverse() : []));
    const at = (i: number) => new Date(Date.UTC(2025, 0, 1) + i * 3_600_000).toISOString().replace('T', ' ').slice(0, 19);
    const lines = order.map((i) => JSON.stringify({ ticket_id: pair[i % 2], ticket_reply: `hour ${i}`, created_at: at(i) }));
    writeFileSync(file, `${lines.join('\n')}\n`);
    const run = runImport(file, '--batch-size', '5', '--concurrency', '4');
    expect(await run.exited).toBe(0);
    for (const [t, ticket] of pair.entries()) {
      const replies = await repliesOf(h.db, ticket as number);
      expect(replies.map((r) => r.ticket_reply)).toEqual(hours.filter((i) => i % 2 === t).map((i) => `hour ${i}`));
      const times = replies.map((r) => r.ticket_reply_created_at);
      expect(times).toEqual([...times].sort());
    }
  });

  it.each([
    ['Ctrl-C', 'SIGINT'],
    ['a crash', 'SIGKILL'],
  ] as const)('interrupted by %s and started again, imports every line exactly once', async (_how, signal) => {
    const lines = 20_000;
    const file = ndjson(`resume-${signal}.ndjson`, lines, tickets);
    const first = runImport(file, '--batch-size', '100', '--concurrency', '1');
    // Interrupt once the import has saved that a good part is answered (it saves every second).
    const answeredSoFar = () =>
      existsSync(`${file}.import-state.json`) ? JSON.parse(readFileSync(`${file}.import-state.json`, 'utf8')).answeredThrough : 0;
    for (let i = 0; i < 800 && answeredSoFar() < 2000; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    first.child.kill(signal);
    expect(await first.exited).toBe(signal === 'SIGINT' ? 130 : 'SIGKILL');
    const answeredBefore = JSON.parse(readFileSync(`${file}.import-state.json`, 'utf8')).answeredThrough;
    expect(answeredBefore).toBeLessThan(lines);

    const second = runImport(file, '--batch-size', '500', '--concurrency', '4');
    expect(await second.exited).toBe(0);
    const summary = summaryOf(second.output());
    expect(summary.resumedFrom).toBe(answeredBefore);
    // Every line counted once: queued now, or already queued before (a duplicate skipped).
    expect(summary).toMatchObject({ read: lines, queued: lines - summary.duplicates, applied: lines, rejected: 0 });

    const replies = (await repliesOn(tickets)).filter((r) => String(r.ticket_reply).startsWith(`resume-${signal}.ndjson `));
    const bodies = replies.map((r) => r.ticket_reply);
    expect(new Set(bodies).size).toBe(lines);
    expect(bodies).toHaveLength(lines);
    console.info(`import interrupted by ${signal}:`, {
      lines,
      answeredBefore,
      duplicatesSkipped: summary.duplicates,
      replies: bodies.length,
    });
  });
});
