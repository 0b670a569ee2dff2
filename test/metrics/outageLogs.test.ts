import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { proxiedDatabase, type Sent, sendRound, type TcpProxy, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { freePort, killLeftovers, linesPerProcess, processNames, spawnEntry, startRedisServer } from '../helpers/processes.js';

// A dependency going away is one warning for the whole process, and its return one line —
// not a warning from each of the 32 lanes' workers at every reconnection attempt, nor one per
// poll. Each outage is caused for real: this file's own redis-server killed and restarted, a
// TCP proxy in front of MariaDB cut and restored; the shared servers stay up.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON lines of a process's output at warn level or above. */
function warnings(output: string): Array<Record<string, any>> {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, any>)
    .filter((line) => line.level >= 40);
}

describe('Redis away for a few seconds, in the log of npm start (intake and worker processes)', () => {
  let h: Harness;
  let port: number;
  let server: ChildProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-outage-log-'));
  // Persisted like production Redis (AOF), so the restart finds the lanes as they were.
  const startRedis = async () => {
    server = await startRedisServer(port, ['--appendonly', 'yes', '--dir', dir]);
  };

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    server?.kill('SIGKILL');
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one warning when it goes, one line when it is back, nothing else above info', async () => {
    const service = spawnEntry(
      'workers/service.ts',
      h.processEnv({ REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PARTITIONS: '32' }),
    );
    const names = processNames(await service.waitFor(/"ITFlow Reply Queue started"/));
    const dying = server as ChildProcess;
    dying.kill('SIGKILL');
    await once(dying, 'exit');
    // Long enough for every lane's worker and the parked-ticket poll to retry many times.
    await sleep(4_000);
    await startRedis();
    await service.waitForLines(/Redis is reachable again/, names.length, 15_000);
    await sleep(1_500);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    // npm start's processes (the intake and a worker) each say it once, and nothing else.
    const output = service.output();
    const each = Object.fromEntries(names.map((name) => [name, 1]));
    expect(warnings(output).map((line) => line.msg)).toEqual(
      names.map(() => 'Redis connection lost; the intake answers 503 and workers wait until it is back'),
    );
    expect(linesPerProcess(output, /Redis connection lost/)).toEqual(each);
    expect(linesPerProcess(output, /Redis is reachable again/)).toEqual(each);
  }, 40_000);
});

describe('MySQL away for a few seconds, in the log of a worker with commands in many lanes', () => {
  let h: Harness;
  let world: World;
  let proxy: TcpProxy;
  let databaseUrl: string;

  beforeAll(async () => {
    // The intake (this harness) reaches MySQL directly and keeps accepting; the worker, a process
    // of its own, reaches it through the proxy.
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    ({ proxy, url: databaseUrl } = await proxiedDatabase(h.config.DATABASE_URL, inject('mysqlUrl')));
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await proxy?.restore();
    await h?.close();
    await proxy?.close();
  });

  it('one warning when it goes, one line when it is back, and every command applied', async () => {
    const worker = spawnEntry('workers/worker.ts', h.processEnv({ DATABASE_URL: databaseUrl }));
    await worker.waitFor(/"worker started"/);
    // One ticket per lane, so every lane's worker meets the outage.
    const tickets = await Promise.all(
      Array.from({ length: h.config.QUEUE_PARTITIONS }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })),
    );
    await proxy.cut();
    const sent: Sent[] = [];
    const cutAt = Date.now();
    for (let n = 1; Date.now() - cutAt < 5_000; n++) {
      sent.push(...(await sendRound(h, world.keys.all, tickets, n, n % 2 === 0)));
      await sleep(500);
    }
    await proxy.restore();
    await worker.waitFor(/MySQL is reachable again/, 15_000);
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      30_000,
    );
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);

    const output = worker.output();
    expect(warnings(output).map((line) => line.msg)).toEqual([
      'MySQL is unreachable or refusing writes; requests that need it answer 503, commands wait for it without spending attempts',
    ]);
    expect(output.split('\n').filter((line) => line.includes('MySQL is reachable again'))).toHaveLength(1);
  }, 60_000);
});
