import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Harness, startHarness, uniqueName } from '../helpers/harness.js';
import { addTicket, createMysqlUser, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The intake's early ticket checks under concurrency: requests for tickets it has not cached,
 * arriving together (an integration posting over thousands of tickets), each get their own
 * answer — 202, 404 for a ticket that does not exist or is outside the key's scope, 409 for a
 * closed one — while MySQL is asked once per turn of the event loop rather than once per request.
 * The statements are counted by MariaDB itself (USER_STATISTICS) for a MySQL user only this
 * test's intake logs in as.
 */
describe('ticket checks at the intake under concurrent requests', () => {
  let h: Harness;
  let world: World;
  let admin: mysql.Connection;
  let userstatWas = 0;
  const user = uniqueName('t').slice(0, 32);
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let dropUser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    admin = await mysql.createConnection({ uri: inject('mysqlUrl') });
    dropUser = await createMysqlUser(admin, new URL(h.config.DATABASE_URL).pathname.slice(1), user, password);
    const [[row]] = (await admin.query('SELECT @@GLOBAL.userstat AS on_')) as unknown as [[{ on_: number }]];
    userstatWas = Number(row.on_);
    await admin.query('SET GLOBAL userstat = 1');
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await admin?.query(`SET GLOBAL userstat = ${userstatWas}`);
    await dropUser?.();
    await admin?.end();
    await h?.close();
  });

  /** The intake's statements waiting for the lock on `tickets`. */
  const waiting = async (): Promise<number> => {
    const [rows] = await admin.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ? AND STATE LIKE 'Waiting for table%'",
      [user],
    );
    return Number(rows[0]?.n ?? 0);
  };
  const waitUntil = async (done: () => Promise<boolean>, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error('the intake never asked MySQL for the tickets');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const selectsBy = async (): Promise<number> => {
    const [rows] = await admin.query<mysql.RowDataPacket[]>(
      'SELECT SELECT_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = ?',
      [user],
    );
    return Number(rows[0]?.SELECT_COMMANDS ?? 0);
  };

  /**
   * Sends every request at once: the connections are opened first, then all the requests are
   * written in one go, so they reach the intake together as a busy integration's would.
   * Resolves with each request's HTTP status, in order.
   */
  const sendTogether = async (url: string, bodies: unknown[], key: string): Promise<number[]> => {
    const { hostname, port } = new URL(url);
    const sockets = await Promise.all(
      bodies.map(
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(Number(port), hostname, () => resolve(socket));
            socket.on('error', reject);
          }),
      ),
    );
    const answers = sockets.map(
      (socket) =>
        new Promise<number>((resolve) => {
          let text = '';
          socket.on('data', (chunk: Buffer) => {
            text += chunk.toString();
          });
          socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
        }),
    );
    bodies.forEach((body, i) => {
      const json = JSON.stringify(body);
      (sockets[i] as Socket).write(
        `POST ${CREATE} HTTP/1.1\r\nHost: ${hostname}\r\nX-API-Key: ${key}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
      );
    });
    return Promise.all(answers);
  };

  it('answers 40 concurrent requests over 40 uncached tickets each on its own, in a few SELECTs', async () => {
    const url = new URL(h.config.DATABASE_URL);
    url.username = user;
    url.password = password;
    // The intake in a process of its own, as it runs in production, so the requests reach its
    // event loop together rather than as this process's client sends them.
    const intake = spawnEntry('workers/intake.ts', h.processEnv({ DATABASE_URL: url.toString(), AUTH_CACHE_SECONDS: '60' }));
    const intakeUrl = JSON.parse(await intake.waitFor(/"intake started"/)).url as string;
    const open = await Promise.all(Array.from({ length: 25 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    const otherClient = await Promise.all(Array.from({ length: 5 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientB })));
    const closed = await Promise.all(
      Array.from({ length: 5 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA, closedAt: '2026-01-01 00:00:00' })),
    );
    const missing = Array.from({ length: 5 }, (_, i) => 900_000 + i);
    const tickets = [...open, ...otherClient, ...closed, ...missing];
    const expected = [...open.map(() => 202), ...otherClient.map(() => 404), ...closed.map(() => 409), ...missing.map(() => 404)];
    // A first request so the key, statuses and settings are cached before counting.
    expect(await sendTogether(intakeUrl, [{ ticket_id: open[0], ticket_reply: 'warm-up' }], world.keys.clientA)).toEqual([202]);

    // The first look-ups wait behind a lock on `tickets` (as behind a backup's LOCK TABLES) until
    // every request has arrived, so what is measured is the gathering, not how fast this machine
    // happens to deliver 40 requests.
    const database = new URL(h.config.DATABASE_URL).pathname.slice(1);
    const locker = await mysql.createConnection({ uri: inject('mysqlUrl') });
    await locker.query(`LOCK TABLES \`${database}\`.tickets WRITE`);
    const before = await selectsBy();
    let sent: Promise<number[]>;
    try {
      sent = sendTogether(
        intakeUrl,
        tickets.map((ticket) => ({ ticket_id: ticket, ticket_reply: `to ${ticket}` })),
        world.keys.clientA,
      );
      await waitUntil(async () => (await waiting()) > 0);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
    const statuses = await sent;
    const selects = (await selectsBy()) - before;
    intake.child.kill('SIGTERM');
    await intake.exited;

    expect(statuses).toEqual(expected);
    // One SELECT per request would be 40 (the key, statuses and settings are cached since the
    // warm-up; 39 seen before the look-ups were gathered, 3 after): the ones that were waiting, then the rest
    // gathered into a few.
    expect(selects).toBeGreaterThan(0);
    expect(selects).toBeLessThanOrEqual(6);
  });
});
