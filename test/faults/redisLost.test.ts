import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { laneNames } from '../../src/queue/lanes.js';
import { expectExactlyOnce, sendReplies, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { freePort, killLeftovers, linesPerProcess, processNames, spawnEntry, startRedisServer } from '../helpers/processes.js';

// Redis losing what it held without the service restarting: FLUSHDB by an operator, or a
// failover to a replica that came up empty. The lanes' settings (their count, and the global
// concurrency of 1 that keeps each ticket's commands in order across worker processes) must
// come back by themselves, and the service must keep applying commands in order. And Redis going
// away and coming back is said once each way in the log, not once per connection or per retry.
// Each test runs its own redis-server, so the shared one is never flushed or stopped.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Redis loses the queue settings (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let server: ChildProcess;
  let redis: Redis;

  beforeAll(async () => {
    const port = await freePort();
    server = await startRedisServer(port);
    h = await startHarness({ generation: '2.6.7', env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    world = await seedWorld(h.db, '2.6.7');
    redis = new Redis(`redis://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
    server?.kill('SIGKILL');
  });

  const concurrencies = async () => {
    const values = [];
    for (const lane of laneNames(h.config.QUEUE_PARTITIONS, 'standalone')) {
      values.push(await redis.hget(`${h.config.QUEUE_PREFIX}:${lane}:meta`, 'concurrency'));
    }
    return values;
  };

  it('after FLUSHDB every lane has its global concurrency of 1 again within seconds, and commands apply in order', async () => {
    expect(new Set(await concurrencies())).toEqual(new Set(['1']));
    await redis.flushdb();
    expect(new Set(await concurrencies())).toEqual(new Set([null]));

    const deadline = Date.now() + 5_000;
    while ((await concurrencies()).some((c) => c !== '1')) {
      if (Date.now() > deadline) throw new Error(`lane settings not restored: ${JSON.stringify(await concurrencies())}`);
      await sleep(100);
    }
    expect(await redis.get(`${h.config.QUEUE_PREFIX}:replyqueue:lanes`)).toBe(String(h.config.QUEUE_PARTITIONS));

    // A second worker races the first on the same lanes: order still holds.
    const peer = await h.startPeer({ intake: false, worker: true });
    try {
      const tickets = await Promise.all(Array.from({ length: 4 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
      const sent = await sendReplies(h, world.keys.all, tickets, 25);
      await waitForLedger(
        h,
        sent.map((s) => s.commandId),
        20_000,
      );
      await expectExactlyOnce(h, sent);
    } finally {
      await peer.close();
    }
  });
});

describe('Redis going away and coming back, in the log (ITFlow 2.6.7)', () => {
  let h: Harness;
  let port: number;
  let server: ChildProcess | null = null;

  beforeAll(async () => {
    port = await freePort();
    server = await startRedisServer(port);
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    server?.kill('SIGKILL');
    await h?.close();
  });

  it('one line when it goes, one when it is back, from each process of the service', async () => {
    const service = spawnEntry('workers/service.ts', h.processEnv({ REDIS_URL: `redis://127.0.0.1:${port}` }));
    const names = processNames(await service.waitFor(/ITFlow Reply Queue started/));
    expect(names).toEqual(['intake', 'worker-1']);
    const dying = server as ChildProcess;
    dying.kill('SIGKILL');
    await once(dying, 'exit');
    await sleep(3_000);
    server = await startRedisServer(port);
    await service.waitForLines(/Redis is reachable again/, names.length, 15_000);
    await sleep(1_000);
    const each = Object.fromEntries(names.map((name) => [name, 1]));
    expect(linesPerProcess(service.output(), /Redis connection lost/)).toEqual(each);
    expect(linesPerProcess(service.output(), /Redis is reachable again/)).toEqual(each);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
  }, 90_000); // on a loaded machine start-up, reconnection and the graceful stop each take seconds
});
