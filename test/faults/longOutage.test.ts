import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { laneNames } from '../../src/queue/lanes.js';
import { expectExactlyOnce, proxiedDatabase, type Sent, sendRound, type TcpProxy, waitForLedger } from '../helpers/faults.js';
import { type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addTicket, createMysqlUser, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { killLeftovers, type ServiceProcess, spawnEntry } from '../helpers/processes.js';

// Outages of any length lose nothing and dead-letter nothing. A worker's retry budget is for
// contention (deadlocks, lock waits); an outage — MySQL unreachable, or refusing the service's
// logins — is waited out without spending it, however long it lasts, and said once in the log
// when it begins and once when it ends. What must survive: every accepted command, applied
// exactly once, in order, after MySQL is back; no dead letter.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Dead letters over every lane of a queue prefix (BullMQ's failed sets). */
async function deadLetterCount(redisUrl: string, prefix: string, lanes: number): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    let total = 0;
    for (const lane of laneNames(lanes, 'standalone')) total += await redis.zcard(`${prefix}:${lane}:failed`);
    return total;
  } finally {
    redis.disconnect();
  }
}

describe('an outage longer than any retry budget (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let proxy: TcpProxy;
  let worker: ServiceProcess;

  beforeAll(async () => {
    // The intake (this harness) reaches MySQL directly and keeps accepting; the worker, a process
    // of its own, reaches it through a proxy the test cuts.
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    const proxied = await proxiedDatabase(h.config.DATABASE_URL, inject('mysqlUrl'));
    proxy = proxied.proxy;
    worker = spawnEntry(
      'workers/worker.ts',
      h.processEnv({
        DATABASE_URL: proxied.url,
        // A budget of two tries 50–100 ms apart: any outage outlasts it many times over.
        APPLY_MAX_ATTEMPTS: '2',
        APPLY_BACKOFF_MS: '50',
        APPLY_MAX_BACKOFF_MS: '100',
      }),
    );
    await worker.waitFor(/"worker started"/);
  });
  afterAll(async () => {
    await proxy?.restore();
    killLeftovers();
    await h?.close();
    await proxy?.close();
  });

  it('is waited out: nothing lost, nothing applied twice, no dead letter, one log line each way', async () => {
    const tickets = await Promise.all(Array.from({ length: 12 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    const sent: Sent[] = [];
    let n = 0;
    const round = async (bulk: boolean) => {
      n++;
      sent.push(...(await sendRound(h, world.keys.all, tickets, n, bulk)));
    };

    for (let r = 0; r < 5; r++) await round(r % 2 === 1);
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      20_000,
    );

    await proxy.cut();
    const cutAt = Date.now();
    // Commands keep coming in for the whole outage, single and bulk.
    while (Date.now() - cutAt < 12_000) {
      await round(n % 3 === 0);
      await sleep(250);
    }
    expect(await deadLetterCount(h.config.REDIS_URL, h.config.QUEUE_PREFIX, h.config.QUEUE_PARTITIONS)).toBe(0);
    const [{ applied }] = (await h.query('SELECT COUNT(*) AS applied FROM rq_commands')) as [{ applied: number }];
    expect(Number(applied), 'nothing applied while MySQL was away').toBe(60);

    await proxy.restore();
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      60_000,
    );
    await expectExactlyOnce(h, sent);
    expect(await deadLetterCount(h.config.REDIS_URL, h.config.QUEUE_PREFIX, h.config.QUEUE_PARTITIONS)).toBe(0);
    console.info(`${sent.length} commands, ${sent.length - 60} of them accepted during a 12 s outage: all applied once`);

    const lines = worker.output().split('\n');
    console.info(lines.filter((l) => l.includes('MySQL is')).join('\n'));
    expect(lines.filter((l) => l.includes('MySQL is unreachable'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('MySQL is reachable again'))).toHaveLength(1);
  }, 120_000);
});

describe('MySQL refusing the service’s logins (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let root: mysql.Connection;
  let dropUser: () => Promise<void>;
  const user = `rq_login_${process.pid}`;
  const hosts = ['localhost', '127.0.0.1', '%'];

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    root = await mysql.createConnection({ uri: inject('mysqlUrl') });
    dropUser = await createMysqlUser(root, new URL(h.config.DATABASE_URL).pathname.slice(1), user, 'first-password');
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await dropUser?.();
    await root?.end();
    await h?.close();
  });

  /** Ends every connection the service holds as `user`, so its next query must log in again. */
  const killSessions = async () => {
    const [rows] = await root.query<mysql.RowDataPacket[]>('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [
      user,
    ]);
    for (const row of rows) await root.query('KILL CONNECTION ?', [row.ID]).catch(() => {});
  };
  const alterUser = async (clause: string) => {
    for (const host of hosts) await root.query(`ALTER USER ?@? ${clause}`, [user, host]);
  };

  it('the intake answers 503 + Retry-After and gives the idempotency key back; the worker waits and applies once', async () => {
    const asUser = new URL(h.config.DATABASE_URL);
    asUser.username = user;
    asUser.password = 'first-password';
    const service = await h.startPeer(
      { intake: true, worker: true },
      { DATABASE_URL: asUser.toString(), APPLY_MAX_ATTEMPTS: '2', APPLY_BACKOFF_MS: '50', APPLY_MAX_BACKOFF_MS: '100' },
    );
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const post = (body: object, headers: Record<string, string> = {}) =>
      httpRequest(service.url as string, 'POST', CREATE, body, { 'X-API-Key': world.keys.all, ...headers });

    // Accepted while the login works; its worker will find MySQL refusing it.
    const queuedBefore = await post({ ticket_id: ticket, ticket_reply: 't #1' }, { Prefer: 'respond-async' });
    expect(queuedBefore.status).toBe(202);
    const ids: string[] = [queuedBefore.body.data[0].command_id];

    for (const [what, clause, restore] of [
      ['account locked', 'ACCOUNT LOCK', 'ACCOUNT UNLOCK'],
      ['password changed', "IDENTIFIED BY 'second-password'", "IDENTIFIED BY 'first-password'"],
    ] as const) {
      await alterUser(clause);
      await killSessions();
      const refused = await post({ ticket_id: ticket, ticket_reply: `during: ${what}` }, { 'Idempotency-Key': what });
      expect(refused.status, `${what}: ${JSON.stringify(refused.body)}`).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(refused.body).toEqual({ success: 'False', message: expect.any(String) });
      expect(JSON.stringify(refused.body)).not.toMatch(/denied|locked|mysql|ER_/i);

      await alterUser(restore);
      // The retry right away is accepted: the claim was given back, not held as "in flight".
      const retried = await post({ ticket_id: ticket, ticket_reply: `during: ${what}` }, { 'Idempotency-Key': what });
      expect(retried.status, `${what} retried: ${JSON.stringify(retried.body)}`).toBe(202);
      ids.push(retried.body.data[0].command_id);
    }

    await waitForLedger(h, ids, 30_000);
    const rows = await h.query('SELECT status FROM rq_commands WHERE ticket_id = ?', [ticket]);
    expect(rows.map((r) => r.status)).toEqual(['applied', 'applied', 'applied']);
    expect(await deadLetterCount(h.config.REDIS_URL, h.config.QUEUE_PREFIX, h.config.QUEUE_PARTITIONS)).toBe(0);
  }, 60_000);
});

describe('an intake while MySQL is away, in the log (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let proxy: TcpProxy;
  let databaseUrl: string;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    const proxied = await proxiedDatabase(h.config.DATABASE_URL, inject('mysqlUrl'));
    proxy = proxied.proxy;
    databaseUrl = proxied.url;
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await proxy?.restore();
    await h?.close();
    await proxy?.close();
  });

  it('says once that MySQL went away and once that it is back, however many requests got 503', async () => {
    const intake = spawnEntry('workers/intake.ts', h.processEnv({ DATABASE_URL: databaseUrl }));
    const line = await intake.waitFor(/intake started/);
    const url = JSON.parse(line).url as string;
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const post = () =>
      httpRequest(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { 'X-API-Key': world.keys.all });

    await proxy.cut();
    for (let i = 0; i < 20; i++) expect((await post()).status).toBe(503);
    await intake.waitFor(/MySQL is unreachable/, 10_000);
    await proxy.restore();
    await intake.waitFor(/MySQL is reachable again/, 15_000);
    expect((await post()).status).toBe(202);

    const lines = intake.output().split('\n');
    expect(lines.filter((l) => l.includes('MySQL is unreachable'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('MySQL is reachable again'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"level":40')).length, 'no warning per refused request').toBe(1);
    intake.child.kill('SIGTERM');
    expect(await intake.exited).toBe(0);
  }, 40_000);
});
