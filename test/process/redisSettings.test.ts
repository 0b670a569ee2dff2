import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The Redis high-availability settings (REDIS_SENTINELS, REDIS_SENTINEL_NAME,
 * REDIS_SENTINEL_PASSWORD, REDIS_MIN_REPLICAS_ACK, REDIS_MIN_REPLICAS_TIMEOUT_MS): a wrong value,
 * or one that needs another, stops start-up with one line that names the variable and says what
 * to write; a password is never repeated.
 */
describe('Redis Sentinel and replica settings', () => {
  const refused = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error(`accepted: ${JSON.stringify(env)}`);
  };
  const LIST = 'must be a comma-separated list of host:port (e.g. 10.0.0.5:26379,10.0.0.6:26379)';

  it('sentinels, their primary’s name and password, and the replica acknowledgements are read as written', () => {
    const config = loadConfig({
      REDIS_SENTINELS: '10.0.0.5:26379, sentinel-b.internal:26380,[fd00::7]:26379',
      REDIS_SENTINEL_NAME: 'replyqueue',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      REDIS_MIN_REPLICAS_ACK: '1',
      REDIS_MIN_REPLICAS_TIMEOUT_MS: '250',
    });
    expect(config).toMatchObject({
      REDIS_SENTINELS: [
        { host: '10.0.0.5', port: 26379 },
        { host: 'sentinel-b.internal', port: 26380 },
        { host: 'fd00::7', port: 26379 },
      ],
      REDIS_SENTINEL_NAME: 'replyqueue',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      REDIS_MIN_REPLICAS_ACK: 1,
      REDIS_MIN_REPLICAS_TIMEOUT_MS: 250,
    });
    expect(loadConfig({})).toMatchObject({ REDIS_MIN_REPLICAS_ACK: 0, REDIS_MIN_REPLICAS_TIMEOUT_MS: 1000 });
  });

  it('sentinels without the primary’s name, or a name or password without sentinels, are refused saying what is missing', () => {
    expect(refused({ REDIS_SENTINELS: '10.0.0.5:26379' })).toBe(
      "Invalid configuration: REDIS_SENTINEL_NAME must name the primary the sentinels watch (sentinel.conf's `sentinel monitor <name> …`) when REDIS_SENTINELS is set",
    );
    expect(refused({ REDIS_SENTINEL_NAME: 'replyqueue' })).toBe(
      'Invalid configuration: REDIS_SENTINEL_NAME is set but REDIS_SENTINELS is not: list the sentinels (host:port,…) too',
    );
    const password = refused({ REDIS_SENTINEL_PASSWORD: 'sentinel-secret' });
    expect(password).toBe(
      "Invalid configuration: REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not: it is the sentinels' own password (the data nodes' goes in REDIS_URL)",
    );
  });

  it('replica acknowledgements are refused on a Redis Cluster, saying why', () => {
    expect(refused({ REDIS_CLUSTER_NODES: '10.0.0.5:7000', REDIS_MIN_REPLICAS_ACK: '1' })).toBe(
      "Invalid configuration: REDIS_MIN_REPLICAS_ACK works with one primary (REDIS_URL or REDIS_SENTINELS), not yet with REDIS_CLUSTER_NODES: a command's writes spread over shards that one WAIT cannot speak for. Leave it at 0",
    );
  });

  it.each([
    ['10.0.0.5', "'10.0.0.5' has no port"],
    ['10.0.0.5:26379,10.0.0.6:99999', "'10.0.0.6:99999' has a port above 65535"],
    ['redis://10.0.0.5:26379', "'redis://10.0.0.5:26379' is not one"],
    [' , ', 'none is given'],
  ])('REDIS_SENTINELS=%s is refused naming the entry that is wrong', (value, why) => {
    expect(refused({ REDIS_SENTINELS: value, REDIS_SENTINEL_NAME: 'replyqueue' })).toBe(
      `Invalid configuration: REDIS_SENTINELS ${LIST}; ${why} (got '${value}')`,
    );
  });

  it.each([
    ['REDIS_MIN_REPLICAS_ACK', 'one', 'must be a whole number between 0 and 16'],
    ['REDIS_MIN_REPLICAS_ACK', '-1', 'must be a whole number between 0 and 16'],
    ['REDIS_MIN_REPLICAS_ACK', '17', 'must be at most 16'],
    ['REDIS_MIN_REPLICAS_TIMEOUT_MS', '5', 'must be at least 10'],
    ['REDIS_MIN_REPLICAS_TIMEOUT_MS', '1s', 'must be a whole number between 10 and 60000'],
  ])('%s=%s is refused: %s', (name, value, message) => {
    expect(refused({ [name]: value })).toBe(`Invalid configuration: ${name} ${message} (got '${value}')`);
  });

  it('a bad sentinel setting stops a process with its one line, and the password is not in it', async () => {
    const proc = spawnEntry('workers/intake.ts', {
      REDIS_SENTINELS: '10.0.0.5',
      REDIS_SENTINEL_NAME: 'replyqueue',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      REDIS_MIN_REPLICAS_ACK: 'one',
    });
    try {
      expect(await proc.exited).toBe(1);
      expect(proc.output().trim().split('\n')).toEqual([
        `Invalid configuration: REDIS_SENTINELS ${LIST}; '10.0.0.5' has no port (got '10.0.0.5')`,
        "Invalid configuration: REDIS_MIN_REPLICAS_ACK must be a whole number between 0 and 16 (got 'one')",
      ]);
      expect(proc.output()).not.toContain('sentinel-secret');
    } finally {
      killLeftovers();
    }
  });
});
