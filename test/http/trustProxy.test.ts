import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { withDatabase } from '../../src/demo/itflowDatabase.js';
import type { RunningService } from '../../src/service.js';
import { deleteQueueKeys, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * TRUST_PROXY names the proxies whose X-Forwarded-For entries are believed, by address. The
 * client IP it yields is what the per-IP limit counts and what a failed-key `logs` row records,
 * so a client must never choose it: entries written by anyone but a trusted proxy are ignored,
 * and `true` (every hop) or a hop count (which cannot tell a proxy from a client connecting
 * directly) is refused at start-up.
 */
const INTAKE_ONLY = { intake: true, worker: false };

describe('TRUST_PROXY: whose X-Forwarded-For counts', () => {
  let h: Harness;
  let world: World;
  let ticket: number;
  /** An intake on the same database and Redis prefix that trusts the test as its proxy. */
  let proxied: RunningService;
  let redis: Redis;
  const ratePrefix = () => `${h.config.QUEUE_PREFIX}:replyqueue:ratelimit`;
  const wrongKey = (url: string, forwardedFor: string) =>
    httpRequest(
      url,
      'POST',
      CREATE,
      { ticket_id: ticket, ticket_reply: 'x' },
      {
        'X-API-Key': 'not-a-key',
        'X-Forwarded-For': forwardedFor,
      },
    );
  const loggedIps = async () =>
    (await h.query("SELECT log_ip FROM logs WHERE log_type = 'API' ORDER BY log_id")).map((r) => r.log_ip);

  beforeAll(async () => {
    // This intake trusts a proxy at an address that is not the test's: whatever the test
    // writes in X-Forwarded-For, it is the client, 127.0.0.1.
    h = await startHarness({
      generation: '2.6.7',
      roles: INTAKE_ONLY,
      env: { TRUST_PROXY: '10.9.9.9, 192.0.2.0/24', RATE_LIMIT_PER_IP_PER_MINUTE: '5', AUTH_FAILURE_LOGS_PER_MINUTE: '100' },
    });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    // The test plays the proxy's part for this one: it connects from 127.0.0.1, the proxy's address.
    proxied = await h.startPeer(INTAKE_ONLY, { TRUST_PROXY: '127.0.0.1' });
    redis = new Redis(h.config.REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });
  beforeEach(async () => {
    await h.query("DELETE FROM logs WHERE log_type = 'API'");
    await deleteQueueKeys(h.config.REDIS_URL, ratePrefix());
    await deleteQueueKeys(h.config.REDIS_URL, `${h.config.QUEUE_PREFIX}:replyqueue:authfail`);
  });

  it('from a client that is not a trusted proxy, X-Forwarded-For is ignored: logs and the per-IP limit see 127.0.0.1', async () => {
    for (let i = 0; i < 5; i++) expect((await wrongKey(h.url, `203.0.113.${i}`)).status).toBe(401);
    expect(await loggedIps()).toEqual(Array(5).fill('127.0.0.1'));
    const sixth = await httpRequest(
      h.url,
      'POST',
      CREATE,
      { ticket_id: ticket, ticket_reply: 'x' },
      {
        'X-API-Key': world.keys.all,
        'X-Forwarded-For': '198.51.100.77',
      },
    );
    expect(sixth.status).toBe(429);
    expect(sixth.body.message).toMatch(/^Too many requests from this IP address/);
    expect((await redis.keys(`${ratePrefix()}:ip:*`)).sort()).toEqual([`${ratePrefix()}:ip:127.0.0.1`]);
  });

  it('behind a trusted proxy, the address the proxy appended is the client, not one the client wrote before it', async () => {
    const url = proxied.url as string;
    // The client sent "X-Forwarded-For: 10.0.0.1"; the proxy appended the address it saw.
    expect((await wrongKey(url, '10.0.0.1, 203.0.113.9')).status).toBe(401);
    expect((await wrongKey(url, '203.0.113.10')).status).toBe(401);
    expect(await loggedIps()).toEqual(['203.0.113.9', '203.0.113.10']);
    expect((await redis.keys(`${ratePrefix()}:ip:*`)).sort()).toEqual([
      `${ratePrefix()}:ip:203.0.113.10`,
      `${ratePrefix()}:ip:203.0.113.9`,
    ]);
  });
});

describe('TRUST_PROXY settings', () => {
  afterEach(killLeftovers);

  it.each([
    ['false', false],
    ['0', false],
    ['127.0.0.1', ['127.0.0.1']],
    [' 10.0.0.5 , 10.1.0.0/16,::1, fd00::/8 ', ['10.0.0.5', '10.1.0.0/16', '::1', 'fd00::/8']],
    ['loopback, uniquelocal', ['loopback', 'uniquelocal']],
  ])('TRUST_PROXY=%s is read as %j', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).TRUST_PROXY).toEqual(expected);
  });

  const examples = 'e.g. 10.0.0.5,10.0.1.0/24, loopback for a proxy on this host, uniquelocal for private networks';

  it.each(['10.0.0.300', '10.0.0.0/33', 'proxy.example.com', '10.0.0.5,,10.0.0.6', '-1'])(
    'TRUST_PROXY=%s is refused with one line saying what it may be',
    (value) => {
      expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(
        new ConfigError(
          `Invalid configuration: TRUST_PROXY must be false or a comma-separated list of proxy addresses or CIDR ranges (${examples}) (got '${value}')`,
        ),
      );
    },
  );

  it.each(['1', '2'])('TRUST_PROXY=%s (a hop count) is refused: it cannot tell a proxy from a direct client', (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(
      new ConfigError(
        `Invalid configuration: TRUST_PROXY must list the proxies’ addresses, not a number of hops: a hop count cannot tell a proxy from a client that connects directly and writes its own X-Forwarded-For (${examples}) (got '${value}')`,
      ),
    );
  });

  it('TRUST_PROXY=true stops the process with one line saying why and what to write instead', async () => {
    // A database that does not exist: should the setting pass, the process stops all the same.
    const databaseUrl = withDatabase(inject('mysqlUrl'), 'rqt_trust_proxy_never_created');
    const proc = spawnEntry('workers/intake.ts', { TRUST_PROXY: 'true', PORT: '0', DATABASE_URL: databaseUrl });
    expect(await proc.exited).toBe(1);
    expect(proc.output().trim().split('\n')).toEqual([
      "Invalid configuration: TRUST_PROXY must not be true: trusting every hop lets any client choose its IP address with X-Forwarded-For. List the addresses of the proxies in front of the service instead (e.g. 10.0.0.5,10.0.1.0/24, loopback for a proxy on this host, uniquelocal for private networks) (got 'true')",
    ]);
  });
});
