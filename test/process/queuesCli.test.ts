import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import type { QueuesView } from '../../src/queue/overview.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * `cli queues`, the operator's view of the lanes, run as an operator runs it against an intake
 * with no worker, so everything accepted stays waiting: totals by state, single commands vs
 * bulk chunks, the deepest lanes, the age of the oldest waiting command, and the dead letters.
 */

describe('cli queues', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  const queues = async (args: string[] = [], env: Record<string, string> = {}) => {
    const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent', ...env }), ['queues', ...args]);
    const code = await run.exited;
    return { code, output: run.output() };
  };
  const json = async (args: string[] = [], env: Record<string, string> = {}) => {
    const { code, output } = await queues(['--json', ...args], env);
    expect(code).toBe(0);
    return JSON.parse(output.split('\n').find((line) => line.startsWith('{')) as string) as QueuesView;
  };
  const lanes = () => h.config.QUEUE_PARTITIONS;

  it('on an empty queue reports zeros, no oldest command, and every lane empty', async () => {
    const view = await json();
    expect(view).toMatchObject({
      prefix: h.config.QUEUE_PREFIX,
      lanes: lanes(),
      recordedLanes: lanes(),
      totals: { waiting: 0, active: 0, delayed: 0, failed: 0 },
      backlog: 0,
      kinds: { single: 0, chunks: 0 },
      deadLetters: 0,
      parked: { tickets: 0, commands: 0 },
      oldestWaiting: null,
      deepest: [],
    });
    expect((await queues()).output).toContain('Every lane is empty.');
  });

  it('counts waiting commands and chunks by lane, deepest first, with the oldest command’s age and the dead letters', async () => {
    const [t1, t2, t3] = [
      await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
      await addTicket(h.db, '2.6.7', { clientId: world.clientA }),
      await addTicket(h.db, '2.6.7', { clientId: world.clientB }),
    ] as [number, number, number];
    const laneOfTicket = (ticket: number) => laneName(laneOf(ticket, lanes()), 'standalone');
    expect(new Set([t1, t2, t3].map(laneOfTicket)).size).toBe(3);

    const create = (ticket: number, reply: string) =>
      h.post(CREATE, { ticket_id: ticket, ticket_reply: reply }, { key: world.keys.all, headers: { 'Idempotency-Key': reply } });
    const postedAt = Date.now();
    const first = await create(t1, 'first');
    const answeredAt = Date.now();
    expect(first.status).toBe(202);
    const firstId = first.body.data[0].command_id as string;
    for (const [ticket, reply] of [
      [t1, 'second'],
      [t1, 'third'],
      [t2, 'fourth'],
      [t3, 'fifth'],
    ] as const) {
      expect((await create(ticket, reply)).status).toBe(202);
    }
    // Three bulk commands: one chunk in t2's lane (two commands), one in t3's (one).
    const bulk = await h.post(
      BULK,
      [
        { ticket_id: t2, ticket_reply: 'bulk one' },
        { ticket_id: t2, ticket_reply: 'bulk two' },
        { ticket_id: t3, ticket_reply: 'bulk three' },
      ],
      { key: world.keys.all },
    );
    expect(bulk.status).toBe(202);

    // A dead letter in a lane of its own.
    const spare = Array.from({ length: lanes() }, (_, i) => laneName(i, 'standalone')).find(
      (l) => ![t1, t2, t3].map(laneOfTicket).includes(l),
    );
    await addDeadLetter(spare as string);

    await new Promise((resolve) => setTimeout(resolve, 1100));
    const before = Date.now();
    const view = await json();

    expect(view.totals).toEqual({ waiting: 7, active: 0, delayed: 0, prioritized: 0, failed: 1 });
    expect(view).toMatchObject({ backlog: 7, kinds: { single: 5, chunks: 2 }, deadLetters: 1, pausedLanes: [] });
    expect(view.oldestWaiting?.commandId).toBe(firstId);
    expect(view.oldestWaiting?.lane).toBe(laneOfTicket(t1));
    const acceptedAt = Date.parse(view.oldestWaiting?.acceptedAt as string);
    expect(acceptedAt).toBeGreaterThanOrEqual(postedAt);
    expect(acceptedAt).toBeLessThanOrEqual(answeredAt);
    expect(view.oldestWaiting?.ageSeconds).toBeGreaterThanOrEqual(Math.floor((before - answeredAt) / 1000));
    expect(view.oldestWaiting?.ageSeconds).toBeGreaterThanOrEqual(1);

    expect(view.deepest.map((l) => [l.lane, l.waiting, l.failed])).toEqual([
      [laneOfTicket(t1), 3, 0],
      ...[
        [laneOfTicket(t2), 2, 0],
        [laneOfTicket(t3), 2, 0],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [spare, 0, 1],
    ]);
    expect(view.deepest[0]?.oldestWaitingAt).toBe(view.oldestWaiting?.acceptedAt);

    expect((await json(['--top', '1'])).deepest.map((l) => l.lane)).toEqual([laneOfTicket(t1)]);
    const all = await json(['--all']);
    expect(all.deepest).toHaveLength(lanes());
    expect(all.deepest.slice(0, 3).map((l) => l.backlog)).toEqual([3, 2, 2]);

    const text = await queues();
    expect(text.code).toBe(0);
    expect(text.output).toMatch(/waiting\s+7\n/);
    expect(text.output).toMatch(/dead letters\s+1\n/);
    expect(text.output).toContain('Not applied yet: 7 jobs (5 single-command jobs, 2 chunks of several commands)');
    expect(text.output).toContain(`Oldest waiting command: ${firstId} in ${laneOfTicket(t1)}`);
    expect(text.output).toMatch(/\(\d+ s ago\)/);
    expect(text.output).toContain('Dead letters: 1; see them with `npm run cli -- dead-letters list`.');
    expect(text.output).toMatch(new RegExp(`${laneOfTicket(t1)}\\s+3\\s+0\\s+0\\s+0\\s+${view.oldestWaiting?.acceptedAt}`));
  });

  it('says when the prefix was never used, or the lane count differs from the one recorded', async () => {
    const unused = await queues([], { QUEUE_PREFIX: `${h.config.QUEUE_PREFIX}_typo` });
    expect(unused.output).toContain(`no service has used the prefix '${h.config.QUEUE_PREFIX}_typo' on this Redis yet`);
    const fewer = await queues([], { QUEUE_PARTITIONS: '4' });
    expect(fewer.output).toContain(`the service recorded ${lanes()} lanes under this prefix, but QUEUE_PARTITIONS is 4`);
  });

  /** A job in `lane` taken and failed as a worker does when it gives up (the lane is otherwise empty). */
  async function addDeadLetter(lane: string): Promise<void> {
    const connection = new Redis(h.config.REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(lane, null, { connection, prefix: h.config.QUEUE_PREFIX, autorun: false });
    try {
      const queue = new Queue(lane, { connection, prefix: h.config.QUEUE_PREFIX });
      await queue.add('command', { v: 1 }, { jobId: 'dead-letter-for-queues-test' });
      await queue.close();
      const job = await worker.getNextJob('queues-test');
      await job?.moveToFailed(new Error('Gave up after 1 attempt'), 'queues-test');
    } finally {
      await worker.close();
      connection.disconnect();
    }
  }
});
