import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { redisKeys } from '../../src/queue/keys.js';
import { laneName, laneNames } from '../../src/queue/lanes.js';

// The key names, without a server. On one server (standalone or Sentinel) every name is exactly
// what earlier versions wrote, so an upgraded install finds the jobs, parked commands and claims
// it left in Redis. On a Redis Cluster the keys that a script or a transaction takes together
// share a slot, and the lanes do not all share one.

describe('Redis key names', () => {
  it('on one server are the names every earlier version used', () => {
    const keys = redisKeys('rq', 'standalone');
    const lane = laneName(7, 'standalone');
    expect(lane).toBe('replies-007');
    expect(laneNames(3, 'standalone')).toEqual(['replies-000', 'replies-001', 'replies-002']);
    expect({
      lanes: keys.lanes,
      completions: keys.completions,
      idempotency: keys.idempotency(3, 'abc'),
      externalId: keys.externalId(3, 'abc'),
      pending: keys.pending(lane, 3, 39),
      authFailures: keys.authFailures('10.0.0.1', 29_000_000),
      rateLimits: keys.rateLimits,
      parkedTickets: keys.parkedTickets(lane),
      parkedCommands: keys.parkedCommands(lane, 39),
      parkedIndex: keys.parkedIndex(lane),
      parkedLease: keys.parkedLease(39),
      importTraffic: keys.importTraffic(3, '0123456789abcdef'),
      imports: keys.imports,
      laneJob: keys.laneJob(lane, 'job-1'),
      laneWait: keys.laneWait(lane),
      laneJobPrefix: keys.laneJobPrefix(lane),
    }).toEqual({
      lanes: 'rq:replyqueue:lanes',
      completions: 'rq:replyqueue:done',
      idempotency: 'rq:replyqueue:idem:3:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      externalId: 'rq:replyqueue:ext:3:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      pending: 'rq:replyqueue:pending:3:39',
      authFailures: 'rq:replyqueue:authfail:10.0.0.1:29000000',
      rateLimits: 'rq:replyqueue:ratelimit:',
      parkedTickets: 'rq:replyqueue:parked',
      parkedCommands: 'rq:replyqueue:parked:39',
      parkedIndex: 'rq:replyqueue:parked-index',
      parkedLease: 'rq:replyqueue:parked-lease:39',
      importTraffic: 'rq:replyqueue:import:3:0123456789abcdef',
      imports: 'rq:replyqueue:imports',
      laneJob: 'rq:replies-007:job-1',
      laneWait: 'rq:replies-007:wait',
      laneJobPrefix: 'rq:replies-007:',
    });
  });

  it('on a cluster put what goes together in one slot, and spread the lanes', () => {
    const keys = redisKeys('rq', 'cluster');
    const lanes = laneNames(32, 'cluster');
    expect(lanes[7]).toBe('{replies-007}');
    for (const lane of lanes) {
      // BullMQ's keys of the lane, and the lane's own keys that its scripts take with them.
      const together = [
        `rq:${lane}:wait`,
        `rq:${lane}:active`,
        `rq:${lane}:meta`,
        keys.laneJob(lane, 'job-1'),
        keys.parkedTickets(lane),
        keys.parkedIndex(lane),
        keys.parkedCommands(lane, 39),
        keys.parkedCommands(lane, 71),
        keys.pending(lane, 3, 39),
        keys.pending(lane, 4, 71),
      ];
      expect(new Set(together.map(calculateSlot)).size, lane).toBe(1);
    }
    // Three equal shards hold slots 0–5460, 5461–10922 and 10923–16383 (redis-cli --cluster create).
    const shardOf = (slot: number) => (slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);
    const shards = new Set(lanes.map((lane) => shardOf(calculateSlot(keys.laneWait(lane)))));
    expect(shards.size).toBe(3);
    expect(calculateSlot(keys.importTraffic(3, '0123456789abcdef'))).toBe(calculateSlot(keys.imports));
    // Every key still under the prefix, so one install's keys can be found and deleted.
    for (const key of [keys.parkedTickets(lanes[0] as string), keys.imports, keys.laneWait(lanes[0] as string)]) {
      expect(key.startsWith('rq:')).toBe(true);
    }
  });
});

describe('REDIS_CLUSTER_NODES', () => {
  it('is a list of host:port, exclusive with Sentinel, and takes no database from REDIS_URL', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000, 10.0.0.6:7000' }).REDIS_CLUSTER_NODES).toEqual([
      { host: '10.0.0.5', port: 7000 },
      { host: '10.0.0.6', port: 7000 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5' })).toThrow(/REDIS_CLUSTER_NODES must be a comma-separated list/);
    expect(() =>
      loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000', REDIS_SENTINELS: '10.0.0.5:26379', REDIS_SENTINEL_NAME: 'x' }),
    ).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000', REDIS_URL: 'redis://:secret@10.0.0.5:7000/2' })).toThrow(
      /database 0 only/,
    );
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000', REDIS_URL: 'rediss://:secret@10.0.0.5:7000/0' }).REDIS_URL).toBe(
      'rediss://:secret@10.0.0.5:7000/0',
    );
  });
});
