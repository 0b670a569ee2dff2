import type { ChildProcess } from 'node:child_process';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { laneOfTicket } from '../../src/queue/lanes.js';
import { expectExactlyOnce, sendReplies, waitsForTableLock } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { freePort, killLeftovers, spawnEntry, startRedisServer } from '../helpers/processes.js';

// A worker applies a hot ticket's waiting commands with the job in front of them, and once the
// transaction has committed takes their jobs out of the lane (src/queue/lookahead.ts). Here it is
// killed (SIGKILL) in between: committed, the jobs still in the lane. What must survive: the next
// worker delivers those jobs, finds each in the ledger, and writes nothing twice; the lane ends
// empty; the ticket's replies are in acceptance order. The window is held open for real: Redis
// refuses writes (CLIENT PAUSE WRITE) from just before the commit, so taking the jobs out waits.
// The test runs its own redis-server, so pausing it stalls no other test.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a worker killed between a run’s commit and taking its jobs out of the lane (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let server: ChildProcess;
  let redis: Redis;
  const workerEnv = { WORKER_LOCK_SECONDS: '2', APPLY_LOCK_WAIT_SECONDS: '30' };

  beforeAll(async () => {
    const port = await freePort();
    server = await startRedisServer(port);
    h = await startHarness({
      generation: '2.6.7',
      roles: { intake: true, worker: false },
      env: { REDIS_URL: `redis://127.0.0.1:${port}`, WORKER_LOCK_SECONDS: '2' },
    });
    world = await seedWorld(h.db, '2.6.7');
    redis = new Redis(`redis://127.0.0.1:${port}`);
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await redis?.call('CLIENT', 'UNPAUSE').catch(() => {});
    redis?.disconnect();
    await h?.close();
    server?.kill('SIGKILL');
  });

  const committedFor = async (ticket: number) =>
    Number((await h.query('SELECT COUNT(*) AS n FROM rq_commands WHERE ticket_id = ?', [ticket]))[0]?.n);

  it('the next worker finds the run in the ledger: nothing applied twice, the lane ends empty, replies in order', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const sent = await sendReplies(h, world.keys.all, [ticket], 40);
    const laneName = laneOfTicket(ticket, h.config.QUEUE_PARTITIONS, 'standalone');
    const wait = `${h.config.QUEUE_PREFIX}:${laneName}:wait`;
    expect(await redis.llen(wait)).toBe(sent.length);

    // The lane paused while the worker starts (its start-up checks read ITFlow's tables too);
    // then ITFlow's audit table held by another session, and the lane resumed: the worker's batch
    // (the first job and the 39 behind it) waits at its last round trip, transaction open, its
    // look behind done.
    const lane = new Queue(laneName, { connection: redis.duplicate(), prefix: h.config.QUEUE_PREFIX });
    await lane.pause();
    const worker = spawnEntry('workers/worker.ts', h.processEnv(workerEnv));
    await worker.waitFor(/worker started/);
    // Long enough for the worker to have looked at the paused lane and found nothing: the jobs
    // queued before that still go as one run (they did not come in on an idle lane).
    await sleep(1000);
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('LOCK TABLES logs WRITE');
    await lane.resume();
    await lane.close();
    expect(await waitsForTableLock(h, '%INSERT INTO logs%'), "the worker's batch waits for the audit table").toBe(true);

    // Redis takes no writes from now on; then the batch commits, and taking its run out of the lane waits.
    await redis.call('CLIENT', 'PAUSE', '30000', 'WRITE');
    await holder.query('UNLOCK TABLES');
    await holder.end();
    for (let i = 0; i < 300; i++) {
      if ((await committedFor(ticket)) === sent.length) break;
      await sleep(20);
    }
    await sleep(200);
    worker.child.kill('SIGKILL');
    expect(await worker.exited).toBe('SIGKILL');
    await redis.call('CLIENT', 'UNPAUSE');

    // The window was hit: every command committed, 39 of their jobs still waiting in the lane.
    expect(await committedFor(ticket)).toBe(sent.length);
    expect(await redis.llen(wait)).toBe(sent.length - 1);

    const rescuer = spawnEntry('workers/worker.ts', h.processEnv(workerEnv));
    await rescuer.waitFor(/worker started/);
    for (let i = 0; i < 300 && (await redis.llen(wait)) > 0; i++) await sleep(100);
    expect(await redis.llen(wait)).toBe(0);
    const tally = await expectExactlyOnce(h, sent);
    console.info('killed between the commit and taking the run out:', tally);
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);
  });
});
