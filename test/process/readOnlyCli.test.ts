import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepareLanes } from '../../src/queue/lanes.js';
import { freePort, killLeftovers, spawnEntry, startRedisServer } from '../helpers/processes.js';

/**
 * `queues` and `dead-letters list|show` only look: run against a Redis of the test's own, the
 * keys (as `redis-cli --scan` lists them) and the server's count of writes are the same before
 * and after, whether the prefix is in use or unknown (an unknown one is reported, not created).
 */
describe('the CLI’s reading commands write nothing to Redis', () => {
  let server: ChildProcess;
  let port: number;
  let redis: Redis;

  beforeAll(async () => {
    port = await freePort();
    server = await startRedisServer(port);
    redis = new Redis(`redis://127.0.0.1:${port}`);
    await prepareLanes(redis, 'inuse', 4); // a prefix a service has used
  });
  afterEach(killLeftovers);
  afterAll(() => {
    redis?.disconnect();
    server?.kill('SIGKILL');
  });

  const scan = () =>
    execFileSync('redis-cli', ['-p', String(port), '--scan'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();
  /** Redis's count of changes to the data since its last save (never saved here: every write so far). */
  const writes = async () => Number(/rdb_changes_since_last_save:(\d+)/.exec(await redis.info('persistence'))?.[1]);
  const cli = async (prefix: string, args: string[]) => {
    const run = spawnEntry(
      'workers/cli.ts',
      { REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PREFIX: prefix, QUEUE_PARTITIONS: '4', LOG_LEVEL: 'silent' },
      args,
    );
    return { code: await run.exited, output: run.output() };
  };

  it.each([
    ['queues', ['queues']],
    ['queues --json', ['queues', '--json']],
    ['dead-letters list', ['dead-letters', 'list']],
    ['dead-letters show', ['dead-letters', 'show', '0190a3c4-0000-7000-8000-000000000000']],
  ])('%s, on a prefix in use and on an unknown one', async (_name, args) => {
    const keysBefore = scan();
    const writesBefore = await writes();
    const inUse = await cli('inuse', args);
    const unknown = await cli('typo', args);
    expect(scan()).toEqual(keysBefore);
    expect(await writes()).toBe(writesBefore);
    expect(inUse.output).not.toContain('no service has used');
    expect(unknown.output.toLowerCase()).toContain("no service has used the prefix 'typo' on this redis yet");
    if (args[0] === 'dead-letters') expect(unknown.code).not.toBe(0);
  });
});
