import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import type { RunningService } from '../../src/service.js';
import { expectExactlyOnce, proxiedDatabase, type Sent, type TcpProxy, waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, ITFLOW_CREATE, ITFLOW_READ, READ } from '../helpers/paths.js';

/**
 * MySQL unreachable from the service while Redis stays up. The service (intake and worker in
 * one process) reaches MariaDB through a TCP proxy of this file's own, which is cut — listener
 * closed, every piped connection reset — and then restored on the same port; the shared
 * MariaDB keeps running for the other test files. What must survive:
 * - /healthz keeps answering 200; /readyz answers 503 + Retry-After within a few seconds of the
 *   cut — and within its own deadline when the network goes silent instead (nothing answers,
 *   nothing refuses) — and 200 again once MySQL is back;
 * - create.php, bulk.php, read.php (both path generations) and commands.php answer 503 with
 *   Retry-After and the v1 envelope, quickly — never a 500, a hang, a stack trace or SQL text;
 *   an idempotency key refused with 503 is free to use again afterwards;
 * - every command accepted before the outage (including one the worker was in the middle of
 *   applying when its connection was cut) is applied after it, exactly once: none lost, none
 *   doubled, none dead-lettered.
 */

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
  ms: number;
}

/** A 503 as SPEC §3 wants it: Retry-After, the v1 envelope, nothing from the inside. */
function expectUnavailable(answer: Answer, what: string): void {
  expect(answer.status, `${what}: ${answer.text}`).toBe(503);
  expect(answer.headers.get('retry-after'), what).toMatch(/^[1-9]\d*$/);
  expect(answer.body, what).toEqual({ success: 'False', message: expect.any(String) });
  expect(answer.text, what).not.toMatch(/ECONN|PROTOCOL_|SELECT|INSERT|FROM |mysql|127\.0\.0\.1|stack|\.ts:\d+|at \w+ \(/i);
  // Refused at once, not after a connect timeout or a hang.
  expect(answer.ms, what).toBeLessThan(3_000);
}

describe('the service while MySQL is unreachable', () => {
  let h: Harness;
  let world: World;
  let proxy: TcpProxy;
  let service: RunningService;
  let admin: mysql.Connection;

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const started = performance.now();
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: { 'X-API-Key': world.keys.all, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: response.status, headers: response.headers, text, body: parsed, ms: performance.now() - started };
  };
  const get = (path: string) => call('GET', path);
  /** Polls /readyz until it answers `status` (or the time is up); returns its last answer. */
  const readyzAnswers = async (status: number, timeoutMs: number): Promise<Answer> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = await get('/readyz');
      if (answer.status === status || Date.now() > deadline) return answer;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const post = (path: string, body: unknown, headers?: Record<string, string>) => call('POST', path, body, headers);

  /** Sends one reply and expects it accepted; returns what the exactly-once check needs. */
  const sendAccepted = async (ticketId: number, n: number, headers?: Record<string, string>): Promise<Sent> => {
    const body = `t${ticketId} #${n}`;
    const answer = await post(CREATE, { ticket_id: ticketId, ticket_reply: body }, headers);
    expect(answer.status, answer.text).toBe(202);
    return { commandId: answer.body.data[0].command_id, ticketId, body };
  };

  beforeAll(async () => {
    // The harness only builds the database (and the test's own direct pool, h.db); the service
    // under test is a peer whose DATABASE_URL points at the proxy.
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    const proxied = await proxiedDatabase(h.config.DATABASE_URL, inject('mysqlUrl'));
    proxy = proxied.proxy;
    service = await h.startPeer(
      { intake: true, worker: true },
      {
        DATABASE_URL: proxied.url,
        // Retries close together so the command is applied soon after MySQL is back, and
        // enough of them to outlast the outage (the defaults would too, only slower).
        APPLY_BACKOFF_MS: '100',
        APPLY_MAX_BACKOFF_MS: '1000',
        APPLY_MAX_ATTEMPTS: '100',
        // The worker must still be waiting for the ticket's lock when the proxy is cut.
        APPLY_LOCK_WAIT_SECONDS: '20',
        // Few lookup connections, so /readyz probes on a silent network run out of pooled ones.
        INTAKE_DB_POOL_SIZE: '2',
        // Look-ups give up after 1.5 s on a silent network (the default is 10 s).
        LOOKUP_TIMEOUT_MS: '1500',
      },
    );
    admin = await mysql.createConnection({ uri: h.config.DATABASE_URL });
  });
  afterAll(async () => {
    await admin?.end();
    await proxy?.restore(); // the service's close needs MySQL (its worker hands jobs back)
    await h?.close();
    await proxy?.close();
  });

  it('answers 503 + Retry-After while MySQL is away, keeps /healthz, recovers, and loses nothing', async () => {
    expect(proxy.accepted).toBeGreaterThan(0);
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    expect(await get('/readyz')).toMatchObject({ status: 200, body: { status: 'ready', mysql: 'ok', redis: 'ok' } });
    const sent: Sent[] = [await sendAccepted(ticket, 1)];

    await proxy.cut();
    const cutAt = performance.now();

    const notReady = await readyzAnswers(503, 5_000);
    expect(notReady).toMatchObject({ status: 503, body: { status: 'not ready', mysql: 'unreachable', redis: 'ok' } });
    expect(notReady.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(performance.now() - cutAt).toBeLessThan(5_000);

    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('replyqueue_commands_accepted_total');

    const idempotencyKey = `outage-${ticket}`;
    const refusals: Array<[string, () => Promise<Answer>]> = [
      ['create.php', () => post(CREATE, { ticket_id: ticket, ticket_reply: `t${ticket} #2` })],
      [
        'create.php with an idempotency key',
        () => post(CREATE, { ticket_id: ticket, ticket_reply: `t${ticket} #2` }, { 'Idempotency-Key': idempotencyKey }),
      ],
      ['create.php waiting for the worker', () => post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { Prefer: 'wait=5' })],
      ['ITFlow create.php', () => post(ITFLOW_CREATE, { ticket_id: ticket, ticket_reply: 'x', ticket_reply_type: 'Internal' })],
      [
        'bulk.php',
        () =>
          post(BULK, [
            { ticket_id: ticket, ticket_reply: 'bulk a' },
            { ticket_id: ticket, ticket_reply: 'bulk b' },
          ]),
      ],
      ['read.php', () => get(`${READ}?ticket_id=${ticket}`)],
      ['read.php unfiltered', () => get(READ)],
      ['ITFlow read.php', () => get(`${ITFLOW_READ}?ticket_id=${ticket}`)],
      ['commands.php', () => get(`${COMMANDS}?command_id=${sent[0]?.commandId}`)],
    ];
    for (const [what, request] of refusals) expectUnavailable(await request(), what);

    await proxy.restore();
    const restoredAt = performance.now();
    expect(await readyzAnswers(200, 10_000)).toMatchObject({ status: 200, body: { status: 'ready', mysql: 'ok', redis: 'ok' } });
    console.info(`readyz back ${Math.round(performance.now() - restoredAt)} ms after MySQL`);

    // The key refused with 503 was given back: the client's retry is accepted, not 409/422.
    sent.push(await sendAccepted(ticket, 2, { 'Idempotency-Key': idempotencyKey }));
    sent.push(await sendAccepted(ticket, 3));
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      15_000,
    );
    await expectExactlyOnce(h, sent);
    expect((await get(`${READ}?ticket_id=${ticket}`)).body).toMatchObject({ success: 'True', count: 3 });
  });

  /**
   * Sends one command, holds the worker's transaction with a table lock until the statement named
   * by `waitingFor` (a LIKE pattern of the query text) waits for it, then cuts the network to MySQL
   * and releases the lock.
   */
  async function cutWhileWaiting(ticket: number, lock: string, waitingFor: string): Promise<Sent> {
    const database = new URL(h.config.DATABASE_URL).pathname.slice(1);
    await admin.query(`LOCK TABLES ${lock} READ`);
    try {
      const sent = await sendAccepted(ticket, 1);
      const waiting = async () => {
        const [rows] = await admin.query<mysql.RowDataPacket[]>(
          `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
            WHERE DB = ? AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE ?`,
          [database, waitingFor],
        );
        return Number(rows[0]?.n);
      };
      const deadline = Date.now() + 5_000;
      while ((await waiting()) === 0) {
        if (Date.now() > deadline) throw new Error(`the worker never waited for ${lock}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await proxy.cut();
      return sent;
    } finally {
      await admin.query('UNLOCK TABLES');
    }
  }

  it('applies after the outage, once, a command the worker was applying when its connection was cut', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    // Cut while the worker's first round trip (locking its tickets) waits for our table lock: the
    // server runs that round trip, then finds the client gone and rolls the transaction back.
    const sent = await cutWhileWaiting(ticket, 'tickets', '%FROM tickets WHERE ticket_id IN%FOR UPDATE%');

    // Down for a while: the worker's retries meet refused connections; nothing is written.
    expect(await readyzAnswers(503, 5_000)).toMatchObject({ status: 503, body: { mysql: 'unreachable' } });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await repliesOf(h.db, ticket)).toEqual([]);
    expect(await h.query('SELECT 1 FROM rq_commands WHERE command_id = ?', [idBytes(sent.commandId)])).toEqual([]);

    await proxy.restore();
    await waitForLedger(h, [sent.commandId], 15_000);
    await expectExactlyOnce(h, [sent]);
    const [ledger] = await h.query('SELECT attempts FROM rq_commands WHERE command_id = ?', [idBytes(sent.commandId)]);
    expect(Number(ledger?.attempts), 'retried, not applied on its first try').toBeGreaterThan(1);
  });

  it('a command whose last round trip (replies, ledger, COMMIT) was on its way when the connection was cut is applied once, whether or not that commit went through', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    // The whole last round trip is with the server, waiting for our lock on ticket_replies; the
    // worker never hears how it ended. What must hold: one reply, one ledger row, and the
    // command's answer names that reply — however the server ended the transaction.
    const sent = await cutWhileWaiting(ticket, 'ticket_replies', 'INSERT INTO ticket_replies%');
    expect(await readyzAnswers(503, 5_000)).toMatchObject({ status: 503, body: { mysql: 'unreachable' } });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const during = await repliesOf(h.db, ticket);
    expect(during.length).toBeLessThanOrEqual(1);

    await proxy.restore();
    const finished = await h.finished(sent.commandId, 15_000);
    await expectExactlyOnce(h, [sent]);
    const replies = await repliesOf(h.db, ticket);
    expect(replies).toHaveLength(1);
    expect(finished).toMatchObject({ status: 'applied', insert_id: replies[0]?.ticket_reply_id });
    // Committed during the cut: the retry found it in the ledger and wrote nothing more.
    if (during.length === 1) expect(replies[0]?.ticket_reply_id).toBe(during[0]?.ticket_reply_id);
  });

  it('answers /readyz, and 503 to the API, within their deadlines while the network to MySQL is silent, and recovers', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    expect((await get('/readyz')).status).toBe(200);

    await proxy.freeze();
    // More probes than the intake's pool holds connections: the first ones meet stalled pooled
    // connections, the last a new connection that never gets its handshake. Each answers in time.
    for (let probe = 0; probe < 3; probe++) {
      const answer = await get('/readyz');
      expect(answer).toMatchObject({ status: 503, body: { status: 'not ready', mysql: 'unreachable', redis: 'ok' } });
      expect(answer.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(answer.ms).toBeLessThan(3_500);
    }
    const alive = await get('/healthz');
    expect(alive.status).toBe(200);
    expect(alive.ms).toBeLessThan(500);
    // Requests that need MySQL give up at LOOKUP_TIMEOUT_MS (1.5 s here) with a 503, whether
    // they meet a stalled pooled connection or a new one that never gets its handshake.
    for (const [what, answer] of [
      ['create.php', await post(CREATE, { ticket_id: ticket, ticket_reply: 'during the silence' })],
      ['read.php', await get(`${READ}?ticket_id=${ticket}`)],
      ['create.php again', await post(CREATE, { ticket_id: ticket, ticket_reply: 'still silent' })],
      ['bulk.php', await post(BULK, [{ ticket_id: ticket, ticket_reply: 'silent bulk' }])],
    ] as const) {
      expectUnavailable(answer, what);
    }

    await proxy.restore();
    expect(await readyzAnswers(200, 10_000)).toMatchObject({ status: 200, body: { status: 'ready' } });
    const sent = await sendAccepted(ticket, 1);
    await waitForLedger(h, [sent.commandId], 15_000);
    await expectExactlyOnce(h, [sent]);
  });
});
