import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { uniqueName } from '../helpers/harness.js';
import { freePort, killLeftovers, spawnEntry, startRedisServer } from '../helpers/processes.js';

/**
 * `npm run demo` as a newcomer runs it, on a Redis of the test's own (so a demo's reset can be
 * seen to leave every other queue alone): `--reset` checks the port before it drops anything,
 * the demo keeps its queue under a prefix of its own unless QUEUE_PREFIX is set, and its
 * instructions point at the docs, the metrics and the dashboard.
 */
describe('cli demo', () => {
  let redisServer: ChildProcess;
  let redis: Redis;
  let redisUrl: string;
  let root: mysql.Connection;
  const databases: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    redisServer = await startRedisServer(port);
    redisUrl = `redis://127.0.0.1:${port}`;
    redis = new Redis(redisUrl);
    root = await mysql.createConnection({ uri: withDatabase(inject('mysqlUrl'), '') });
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    redis?.disconnect();
    redisServer?.kill('SIGKILL');
    await root?.end();
    for (const database of databases) await dropDatabase(inject('mysqlUrl'), database);
  });

  const demoDatabase = () => {
    const name = uniqueName('demo');
    databases.push(name);
    return name;
  };
  const demo = (database: string, env: Record<string, string>, ...args: string[]) =>
    spawnEntry(
      'workers/cli.ts',
      { DATABASE_URL: withDatabase(inject('mysqlUrl'), 'itflow'), REDIS_URL: redisUrl, LOG_LEVEL: 'warn', ...env },
      ['demo', '--database', database, ...args],
    );
  /** Keys of a real service (prefix rq) and of an earlier run of this demo, in the test's Redis. */
  const seedKeys = async (demoPrefix: string) => {
    await redis.flushall();
    await redis.set('rq:replies-000:meta', 'a real service');
    await redis.set('rq:replyqueue:lanes', '32');
    await redis.set(`${demoPrefix}:replies-000:stale`, 'left by an earlier demo');
  };
  const keys = async () => (await redis.keys('*')).sort();

  it('--reset with the port taken refuses in one line before dropping the database or touching Redis', async () => {
    const database = demoDatabase();
    await root.query(`CREATE DATABASE \`${database}\``);
    await root.query(`CREATE TABLE \`${database}\`.kept (id INT)`);
    const prefix = `rq_${database}`;
    await seedKeys(prefix);
    const before = await keys();
    const port = await freePort();
    const holder: Server = createServer().listen(port, '127.0.0.1');
    try {
      const run = demo(database, { PORT: String(port) }, '--reset');
      expect(await run.exited).toBe(1);
      expect(run.output().trim().split('\n')).toEqual([
        `Cannot start the demo: 127.0.0.1:${port} is already in use (another demo, or the service?). Stop it, or set PORT to a free port.`,
      ]);
    } finally {
      holder.close();
    }
    const [tables] = await root.query<mysql.RowDataPacket[]>(
      'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
      [database],
    );
    expect(tables.map((t) => t.t)).toEqual(['kept']);
    expect(await keys()).toEqual(before);
  });

  it('--reset empties only the demo’s own queue prefix; the instructions name it and point at /docs, /metrics and /dashboard', async () => {
    const database = demoDatabase();
    const prefix = `rq_${database}`;
    await seedKeys(prefix);
    const port = await freePort();
    const run = demo(database, { PORT: String(port) }, '--reset');
    await run.waitFor(/Press Ctrl-C to stop/, 30_000);
    const output = run.output();
    const url = `http://127.0.0.1:${port}`;
    expect(output).toContain(`Queue: Redis keys under '${prefix}:'`);
    expect(output).toMatch(new RegExp(`${url}/docs\\s.*Swagger UI`));
    expect(output).toMatch(new RegExp(`${url}/metrics\\s.*Prometheus`));
    expect(output).toMatch(new RegExp(`${url}/dashboard\\s.*demo-admin-key`));
    expect((await fetch(`${url}/docs`)).status).toBeLessThan(400);

    const after = await keys();
    expect(after).toEqual(expect.arrayContaining(['rq:replies-000:meta', 'rq:replyqueue:lanes', `${prefix}:replyqueue:lanes`]));
    expect(after).not.toContain(`${prefix}:replies-000:stale`);
    expect(after.filter((k) => k.startsWith('rq:'))).toEqual(['rq:replies-000:meta', 'rq:replyqueue:lanes']);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
  });

  it('--reset --no-start empties the demo’s prefix, or the QUEUE_PREFIX the user set, and no other', async () => {
    const database = demoDatabase();
    const prefix = `rq_${database}`;
    await seedKeys(prefix);
    await redis.set('mine:replies-000:stale', 'x');
    const own = demo(database, {}, '--reset', '--no-start');
    expect(await own.exited).toBe(0);
    expect(await keys()).toEqual(['mine:replies-000:stale', 'rq:replies-000:meta', 'rq:replyqueue:lanes']);

    await seedKeys(prefix);
    await redis.set('mine:replies-000:stale', 'x');
    const set = demo(database, { QUEUE_PREFIX: 'mine' }, '--reset', '--no-start');
    expect(await set.exited).toBe(0);
    expect(await keys()).toEqual(['rq:replies-000:meta', 'rq:replyqueue:lanes', `${prefix}:replies-000:stale`]);
  });
});
