// What must hold: the service's Redis connections send the commands made in one event-loop turn
// together (one socket write, so Redis receives them in one read), in the order they were made,
// and each command still gets its own answer. Counted on the wire, by a proxy between the
// connection and Redis that tallies the chunks it receives.
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createRedis, deleteKeysUnder, type RedisClient, redisReady } from '../../src/queue/redis.js';
import { uniqueName } from '../helpers/harness.js';

describe('Redis writes of one turn', () => {
  const prefix = uniqueName('turnwrites');
  const target = new URL(inject('redisUrl'));
  let server: Server;
  let chunks = 0;
  let redis: RedisClient;

  beforeAll(async () => {
    server = createServer((client) => {
      const upstream = connect({ host: target.hostname, port: Number(target.port || 6379) });
      client.on('data', () => chunks++);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const proxied = new URL(target);
    proxied.host = `127.0.0.1:${port}`;
    redis = createRedis(loadConfig({ REDIS_URL: proxied.toString() }), 'command', 'turn-writes-test');
    await redisReady(redis);
  });

  afterAll(async () => {
    await deleteKeysUnder(redis, prefix);
    redis.disconnect();
    server.close();
  });

  it('sends a turn’s 200 commands in one write, in order, each with its own answer', async () => {
    await nextTurn();
    const before = chunks;
    const answers = Promise.all(Array.from({ length: 200 }, () => redis.incr(`${prefix}:counter`)));
    expect(await answers).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(chunks - before).toBe(1);
  });

  it('sends the next turn’s commands in a write of their own', async () => {
    await nextTurn();
    const before = chunks;
    const first = redis.rpush(`${prefix}:list`, 'a', 'b');
    await nextTurn();
    const second = redis.rpush(`${prefix}:list`, 'c');
    expect([await first, await second]).toEqual([2, 3]);
    expect(chunks - before).toBe(2);
    expect(await redis.lrange(`${prefix}:list`, 0, -1)).toEqual(['a', 'b', 'c']);
  });
});
