import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse } from 'node-html-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/service.js';
import { type Answer, type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The operator dashboard at /dashboard, against the running intake and real queued work: who
 * may open it, queue depth and the oldest waiting command by lane (chunks shown with the
 * commands they carry), dead letters listed, shown and replayed until applied, recent failures
 * from the ledger, and the progress of files sent by the import CLI.
 */

const API = '/dashboard/api';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('operator dashboard', () => {
  let h: Harness;
  let world: World;
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-dashboard-'));

  beforeAll(async () => {
    // No worker: what the tests queue stays in the lanes until a test starts one.
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });

  const admin = (path: string) => h.get(`${API}/${path}`, { key: world.keys.all });
  const replay = (commandId: string) => h.post(`${API}/dead-letters/${commandId}/replay`, undefined, { key: world.keys.all });
  const laneOf = (ticketId: number) => `replies-${String(ticketId % h.config.QUEUE_PARTITIONS).padStart(3, '0')}`;

  /** Polls `read` until `done` holds of its answer. */
  async function until(read: () => Promise<Answer>, done: (answer: Answer) => boolean, timeoutMs = 20_000): Promise<Answer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = await read();
      if (done(answer)) return answer;
      if (Date.now() > deadline) throw new Error(`gave up waiting; last answer ${JSON.stringify(answer.body).slice(0, 500)}`);
      await sleep(200);
    }
  }

  const startWorker = (env: Record<string, string> = {}): Promise<RunningService> =>
    h.startPeer({ intake: false, worker: true }, env);

  it('opens for an admin key only: no key 401, a technician 403, an expired key 401, an admin 200', async () => {
    const none = await h.get(`${API}/queues`);
    expect(none.status).toBe(401);
    expect(none.body.message).toBe('Authentication failed. API key is invalid or has expired.');

    const technician = await h.get(`${API}/queues`, { key: world.keys.clientA });
    expect(technician.status).toBe(403);
    expect(technician.body.message).toMatch(/^The dashboard is for administrators/);
    expect((await h.post(`${API}/dead-letters/replay-all`, undefined, { key: world.keys.clientA })).status).toBe(403);

    expect((await h.get(`${API}/queues`, { key: world.keys.expired })).status).toBe(401);
    // A wrong key leaves ITFlow's failed-login row, naming the dashboard.
    const failed = await h.query("SELECT log_description FROM logs WHERE log_type = 'API' AND log_action = 'Failed'");
    expect(failed.map((row) => row.log_description)).toContain('Incorrect or expired key (endpoint: /dashboard/api/queues)');

    const session = await admin('session');
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ user: 'Integration Admin', keyName: 'All clients key', lanes: 8 });
    expect(session.headers.get('cache-control')).toBe('no-store');
  });

  it('serves the page without a key: a sign-in form, its script and style from the service itself', async () => {
    const bare = await h.get('/dashboard');
    expect(bare.status).toBe(200); // fetch follows the redirect to /dashboard/
    const page = await h.get('/dashboard/');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = parse(page.body as string);
    expect(html.querySelector('label[for=key]')?.text).toBe('Admin API key');
    expect(html.querySelector('#key')?.getAttribute('type')).toBe('password');
    expect(html.querySelector('script')?.getAttribute('src')).toBe('dashboard.js');
    const script = await h.get('/dashboard/dashboard.js');
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.body).toContain("'X-API-Key': key");
    expect(script.body).toContain('sessionStorage');
    expect((await h.get('/dashboard/dashboard.css')).status).toBe(200);
  });

  it('shows depth and the oldest waiting command by lane, and the commands inside each chunk', async () => {
    const single = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const bulky = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    expect(laneOf(single)).not.toBe(laneOf(bulky));
    const before = Date.now();
    const first = await h.post(CREATE, { ticket_id: single, ticket_reply: 'First' }, { key: world.keys.all });
    await h.post(CREATE, { ticket_id: single, ticket_reply: 'Second' }, { key: world.keys.all });
    const items = Array.from({ length: 300 }, (_, i) => ({ ticket_id: bulky, ticket_reply: `Bulk ${i + 1}` }));
    expect((await h.post(BULK, items, { key: world.keys.all })).status).toBe(202);
    await sleep(2100);

    const queues = await admin('queues');
    expect(queues.status).toBe(200);
    const lanes = new Map<string, any>(queues.body.deepest.map((lane: { lane: string }) => [lane.lane, lane]));
    expect(queues.body.deepest).toHaveLength(8);
    // Two single commands, and the bulk request's 300 commands in two chunk jobs (250 + 50).
    expect(lanes.get(laneOf(single))).toMatchObject({ waiting: 2, active: 0, failed: 0, backlog: 2 });
    expect(lanes.get(laneOf(bulky))).toMatchObject({ waiting: 2, backlog: 2 });
    expect(queues.body.kinds).toEqual({ single: 2, chunks: 2 });
    expect(queues.body.oldestWaiting).toMatchObject({ commandId: first.body.data[0].command_id, lane: laneOf(single) });
    const oldest = lanes.get(laneOf(single));
    expect(Date.parse(oldest.oldestWaitingAt)).toBeGreaterThanOrEqual(before);
    expect(oldest.oldestWaitingSeconds).toBeGreaterThanOrEqual(2);
    expect(oldest.oldestWaitingSeconds).toBeLessThanOrEqual(Math.ceil((Date.now() - before) / 1000));

    const chunks = await admin(`lanes/${laneOf(bulky)}`);
    expect(chunks.body.jobs).toEqual([
      expect.objectContaining({ state: 'waiting', kind: 'chunk', commands: 250, tickets: [bulky], ticketCount: 1 }),
      expect.objectContaining({ state: 'waiting', kind: 'chunk', commands: 50, tickets: [bulky] }),
    ]);
    const singles = await admin(`lanes/${laneOf(single)}`);
    expect(singles.body.jobs.map((job: { kind: string; commands: number }) => [job.kind, job.commands])).toEqual([
      ['command', 1],
      ['command', 1],
    ]);
    expect(singles.body.jobs[0].jobId).toBe(first.body.data[0].command_id);
    expect((await admin('lanes/replies-999')).status).toBe(404);
  });

  it('lists recent failures from the ledger with their status, message and key', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const accepted = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Too late' }, { key: world.keys.all });
    const commandId = accepted.body.data[0].command_id;
    // Closed by an agent between acceptance and application: the worker refuses it for good.
    await h.query('UPDATE tickets SET ticket_status = 5, ticket_closed_at = NOW() WHERE ticket_id = ?', [ticket]);
    const worker = await startWorker();
    try {
      const row = await h.finished(commandId);
      expect(row.status).toBe('failed');
      const failures = await admin('failures?hours=1');
      expect(failures.status).toBe(200);
      expect(failures.body.reasons).toContainEqual({ httpStatus: row.http_status, message: 'Ticket is closed.', count: 1 });
      expect(failures.body.latest[0]).toMatchObject({
        commandId,
        ticketId: ticket,
        keyName: 'All clients key',
        httpStatus: row.http_status,
        message: 'Ticket is closed.',
      });
      expect((await admin('failures?hours=0')).status).toBe(400);
      // The worker drains what earlier tests left; the dashboard then shows empty lanes.
      await until(
        () => admin('queues'),
        (answer) => answer.body.backlog === 0,
      );
    } finally {
      await worker.close();
    }
  });

  it('lists dead letters (chunk-mates with their chunk), shows one, and replays them until applied', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('LOCK TABLES ticket_replies READ');
    const single = (
      await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Alone', external_id: 'crm-alone' }, { key: world.keys.all })
    ).body.data[0].command_id as string;
    const bulk = await h.post(
      BULK,
      [
        { ticket_id: ticket, ticket_reply: 'Chunk one' },
        { ticket_id: ticket, ticket_reply: 'Chunk two' },
      ],
      { key: world.keys.all },
    );
    const chunked = bulk.body.data.map((item: { command_id: string }) => item.command_id) as [string, string];
    const worker = await startWorker({
      APPLY_MAX_ATTEMPTS: '2',
      APPLY_LOCK_WAIT_SECONDS: '1',
      APPLY_BACKOFF_MS: '100',
      APPLY_MAX_BACKOFF_MS: '100',
    });
    try {
      const mine = (answer: Answer) =>
        (answer.body.letters ?? []).filter((l: { commandId: string }) => [single, ...chunked].includes(l.commandId));
      const listed = await until(
        () => admin('dead-letters'),
        (answer) => mine(answer).length === 3,
      );
      const letters = new Map<string, any>(mine(listed).map((l: { commandId: string }) => [l.commandId, l]));
      expect(letters.get(single)).toMatchObject({
        ticketId: ticket,
        chunkId: null,
        attempts: 2,
        lane: laneOf(ticket),
        externalId: 'crm-alone',
      });
      expect(letters.get(chunked[0]).externalId).toBeNull();
      expect(letters.get(single).reason).toMatch(/Gave up after 2 attempts/);
      expect(letters.get(chunked[0]).chunkId).not.toBeNull();
      expect(letters.get(chunked[1]).chunkId).toBe(letters.get(chunked[0]).chunkId);
      const queues = await admin('queues');
      expect(queues.body.deadLetters).toBe(2); // jobs: the single command's, and the chunk's
      expect(queues.body.deepest.find((l: { lane: string }) => l.lane === laneOf(ticket))).toMatchObject({ failed: 2 });

      const shown = await admin(`dead-letters/${chunked[1]}`);
      expect(shown.body).toMatchObject({
        letter: { commandId: chunked[1] },
        job: { command: { ticketId: ticket, reply: { body: 'Chunk two' } } },
      });
      expect(await repliesOf(h.db, ticket)).toHaveLength(0);

      await holder.query('UNLOCK TABLES');
      const replayedSingle = await replay(single);
      expect(replayedSingle.status).toBe(200);
      expect(replayedSingle.body).toEqual({ replayed: [single] });
      const replayedChunk = await replay(chunked[1]);
      expect(replayedChunk.body.replayed.sort()).toEqual([...chunked].sort());
      for (const id of [single, ...chunked]) expect((await h.finished(id)).status).toBe('applied');
      expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['Alone', 'Chunk one', 'Chunk two']);

      const again = await replay(single);
      expect(again.status).toBe(404);
      expect(again.body.message).toBe(`No dead letter ${single} (already replayed, applied, or unknown).`);
      expect(mine(await admin('dead-letters'))).toEqual([]);
    } finally {
      await holder.end();
      await worker.close();
    }
  });

  it("shows an import's progress: lines received, queued, refused, and finished per the ledger", async () => {
    const tickets = [
      await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
      await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
    ];
    const file = (name: string, lines: number, extra: string[] = []) => {
      const path = join(dir, name);
      const rows = Array.from({ length: lines }, (_, i) =>
        JSON.stringify({ ticket_id: tickets[i % 2], ticket_reply: `${name} line ${i + 1}`, created_at: '2026-01-01 10:00:00' }),
      );
      writeFileSync(path, `${[...rows, ...extra].join('\n')}\n`);
      return path;
    };
    const importFile = async (path: string, ...args: string[]) => {
      const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), [
        'import',
        path,
        '--url',
        h.url,
        '--api-key',
        world.keys.all,
        '--json',
        ...args,
      ]);
      return run.exited;
    };

    // Applied while the CLI waits; one line refused by bulk.php.
    const worker = await startWorker();
    try {
      expect(await importFile(file('applied.ndjson', 30, ['{"ticket_id": 999999, "ticket_reply": "no such ticket"}']))).toBe(3);
    } finally {
      await worker.close();
    }
    // Queued, with no worker to apply it.
    expect(await importFile(file('queued file.ndjson', 20), '--no-wait')).toBe(0);

    const { imports } = (await admin('imports')).body;
    expect(imports).toHaveLength(2);
    expect(imports[0]).toMatchObject({
      file: 'queued file.ndjson',
      keyName: 'All clients key',
      lines: 20,
      highestLine: 20,
      requests: 1,
      queued: 20,
      duplicates: 0,
      refused: 0,
      finished: 0,
    });
    expect(imports[1]).toMatchObject({
      file: 'applied.ndjson',
      lines: 31,
      highestLine: 31,
      queued: 30,
      refused: 1,
      finished: 30,
    });
    expect(imports[1].importId).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.parse(imports[0].lastAt)).toBeGreaterThanOrEqual(Date.parse(imports[1].lastAt));
  });
});

describe('operator dashboard on ITFlow 2.4.4 (keys scoped per key, no users)', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.4.4', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.4.4');
  });
  afterAll(() => h?.close());

  it('opens for a key of every client, not for a key of one client', async () => {
    const oneClient = await h.get(`${API}/queues`, { key: world.keys.clientA });
    expect(oneClient.status).toBe(403);
    expect(oneClient.body.message).toBe(
      'The dashboard is for administrators: this API key is for one client only; use a key for every client.',
    );
    const everyClient = await h.get(`${API}/session`, { key: world.keys.all });
    expect(everyClient.status).toBe(200);
    expect(everyClient.body).toMatchObject({ keyName: 'All clients key', user: 'API (All clients key)' });
  });
});
