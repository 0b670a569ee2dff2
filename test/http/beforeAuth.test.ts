import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, ITFLOW_CREATE } from '../helpers/paths.js';
import { killLeftovers, type ServiceProcess, spawnEntry } from '../helpers/processes.js';
import { RawConnection } from '../helpers/rawHttp.js';

/**
 * Nobody without a key makes the intake read, hold or parse a body. The key in the X-API-Key
 * header or the query string is checked before the body is read: a wrong one gets 401 at once
 * and the connection is closed, so nothing of the body is kept; only create.php and POST
 * commands.php also take the key in the body, and their bodies are bounded by BODY_LIMIT_BYTES.
 * A body that does not arrive within REQUEST_TIMEOUT_SECONDS is cut off, NDJSON is parsed no
 * further than BULK_MAX_ITEMS lines and in slices, so no request holds the event loop that
 * /healthz and (in `npm start`) the worker share.
 *
 * The service runs as its own process, as an operator runs it, so its memory can be read.
 */
const AUTH_FAILED = { success: 'False', message: 'Authentication failed. API key is invalid or has expired.' };
const BULK_MAX_ITEMS = 100_000;
const REQUEST_TIMEOUT_SECONDS = 3;
const MB = 1024 * 1024;

/** Resident memory of a process, in bytes. */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** GETs /healthz every few ms until stopped; reports the slowest answer. */
function watchHealth(url: string) {
  let slowest = 0;
  let answers = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const response = await fetch(`${url}/healthz`);
      await response.text();
      slowest = Math.max(slowest, performance.now() - started);
      answers++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { slowestMs: Math.round(slowest), answers };
    },
  };
}

describe('no body is read, held or parsed before the key is checked', () => {
  let h: Harness;
  let world: World;
  let service: ServiceProcess;
  let url: string;
  let ticket: number;
  let intakePid: number;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    service = spawnEntry(
      'workers/service.ts',
      h.processEnv({
        LOG_LEVEL: 'info',
        BULK_MAX_ITEMS: String(BULK_MAX_ITEMS),
        REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS),
        AUTH_FAILURE_LOGS_PER_MINUTE: '1000',
      }),
    );
    const started = JSON.parse(await service.waitFor(/"ITFlow Reply Queue started"/));
    url = started.url as string;
    // npm start runs the intake in a process of its own: that is the one that reads (or not) the bodies.
    intakePid = (started.processes as Array<{ name: string; pid: number }>).find((p) => p.name === 'intake')?.pid as number;
  });
  afterAll(async () => {
    killLeftovers();
    await h?.close();
  });

  it('20 wrong-key connections dribbling 25 MB bulk bodies each get 401 at once, are closed, and memory stays flat', async () => {
    const pid = intakePid;
    expect(pid).toBeGreaterThan(0);
    const before = rssOf(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 50);
    const chunk = Buffer.alloc(MB, '[');
    // Half the clients stop sending and close once answered, as HTTP clients do; the other half
    // go on sending their 1 MiB every 100 ms regardless, even once the server has closed its side.
    const politeness = Array.from({ length: 20 }, (_, i) => i % 2 === 0);
    const connections = await Promise.all(politeness.map((polite) => RawConnection.open(url, { allowHalfOpen: !polite })));
    const results = await Promise.all(
      connections.map(async (connection, i) => {
        const polite = politeness[i] === true;
        const sentAt = Date.now();
        connection.write(
          RawConnection.head('POST', BULK, {
            'X-API-Key': `wrong-key-${i}`,
            'Content-Type': 'application/json',
            'Content-Length': 25 * MB,
          }),
        );
        const answered = connection.answered(5_000).then((answer) => ({ answer, at: Date.now() }));
        const sent = await connection.dribble(chunk, {
          everyMs: 100,
          totalBytes: 25 * MB,
          forMs: 4_000,
          stopWhen: () => polite && connection.answer() !== null,
        });
        const { answer, at } = await answered;
        if (polite) connection.end();
        await connection.closes(4_000);
        return {
          polite,
          status: answer?.status,
          body: answer?.body,
          answerMs: at - sentAt,
          closedAfterAnswerMs: connection.closedAt === null ? null : connection.closedAt - at,
          sentMB: Math.round(sent / MB),
        };
      }),
    );
    clearInterval(sampler);
    peak = Math.max(peak, rssOf(pid));
    for (const connection of connections) connection.destroy();

    const slowest = Math.max(...results.map((r) => r.answerMs));
    const closedAfter = (polite: boolean) =>
      Math.max(...results.filter((r) => r.polite === polite).map((r) => r.closedAfterAnswerMs ?? Number.POSITIVE_INFINITY));
    const growthMB = Math.round((peak - before) / MB);
    console.info('wrong-key slow bulk bodies:', {
      slowest401Ms: slowest,
      politeClosedWithinMs: closedAfter(true),
      persistentClosedWithinMs: closedAfter(false),
      mostSentMB: Math.max(...results.map((r) => r.sentMB)),
      rssBeforeMB: Math.round(before / MB),
      rssPeakMB: Math.round(peak / MB),
      growthMB,
    });
    expect(results.map((r) => [r.status, r.body])).toEqual(Array(20).fill([401, AUTH_FAILED]));
    expect(slowest).toBeLessThan(1_000);
    // The server closes the connection: at once for a client that stops, and after at most its
    // 2 s linger for one that goes on sending.
    expect(closedAfter(true)).toBeLessThan(1_000);
    expect(closedAfter(false)).toBeLessThan(3_000);
    // Bodies held: 20 × 25 MB (724 MB of growth seen before the key was checked first). What
    // grows now is transient: the buffers of what the persistent clients still send during the
    // 2 s linger (~200 MB in all), read and dropped (10-51 MB of growth seen; ~10-24 MB when
    // every client stops at its answer).
    expect(growthMB).toBeLessThan(100);
  }, 30_000);

  it('bulk.php without any key answers 401 before the body; so does a wrong key in the query string', async () => {
    for (const path of [BULK, `${BULK}?api_key=wrong-query-key`]) {
      const connection = await RawConnection.open(url);
      connection.write(RawConnection.head('POST', path, { 'Content-Type': 'application/json', 'Content-Length': 25 * MB }));
      connection.write('[{"ticket_id": 1, "ticket_reply": "x", "api_key": "in the body of bulk.php"}');
      const answer = await connection.answered(1_000);
      expect({ path, status: answer?.status, body: answer?.body }).toEqual({ path, status: 401, body: AUTH_FAILED });
      expect(answer?.head).toMatch(/\r\nConnection: close\r\n/i);
      connection.end();
      expect(await connection.closes(1_000)).toBe(true);
    }
  });

  it('a wrong-key 8 MB NDJSON body answers 401 well under a second while /healthz keeps answering', async () => {
    // Lines that are not JSON: the costliest thing to parse, an exception each.
    const body = Buffer.from('x\n'.repeat(4 * MB));
    const health = watchHealth(url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const connection = await RawConnection.open(url);
    const sentAt = Date.now();
    connection.write(
      RawConnection.head('POST', BULK, {
        'X-API-Key': 'wrong-ndjson-key',
        'Content-Type': 'application/x-ndjson',
        'Content-Length': body.length,
      }),
    );
    connection.write(body);
    const answer = await connection.answered(30_000);
    const ms = Date.now() - sentAt;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { slowestMs, answers } = await health.stop();
    connection.destroy();
    console.info('wrong-key 8 MB NDJSON:', { answeredMs: ms, healthzSlowestMs: slowestMs, healthzAnswers: answers });
    expect(answer).toMatchObject({ status: 401, body: AUTH_FAILED });
    // Seen: tens of ms for both (before the key was checked first: 30 s, and /healthz 56 s).
    expect(ms).toBeLessThan(750);
    expect(slowestMs).toBeLessThan(500);
  }, 40_000);

  it('NDJSON past BULK_MAX_ITEMS lines answers 413 without parsing the rest, never holding /healthz up', async () => {
    // BULK_MAX_ITEMS lines that are not JSON, one more, then 8 MB of the same.
    const body = Buffer.from('x\n'.repeat(BULK_MAX_ITEMS + 1 + 4 * MB));
    const health = watchHealth(url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const connection = await RawConnection.open(url);
    const sentAt = Date.now();
    connection.write(
      RawConnection.head('POST', BULK, {
        'X-API-Key': world.keys.all,
        'Content-Type': 'application/x-ndjson',
        'Content-Length': body.length,
      }),
    );
    connection.write(body);
    const answer = await connection.answered(40_000);
    const ms = Date.now() - sentAt;
    connection.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { slowestMs, answers } = await health.stop();
    console.info('NDJSON past BULK_MAX_ITEMS:', { answeredMs: ms, healthzSlowestMs: slowestMs, healthzAnswers: answers });
    expect(answer).toMatchObject({
      status: 413,
      body: { success: 'False', message: `A bulk request may carry at most ${BULK_MAX_ITEMS} commands; this one has more.` },
    });
    // Seen: under a second, /healthz within tens of ms (parsing every line: 56 s, /healthz 40 s).
    expect(ms).toBeLessThan(5_000);
    expect(slowestMs).toBeLessThan(500);
  }, 60_000);

  it('the right key still works: bulk.php as JSON and NDJSON, create.php and commands.php with the key in the body', async () => {
    const key = { 'X-API-Key': world.keys.all };
    const json = await httpRequest(url, 'POST', BULK, [{ ticket_id: ticket, ticket_reply: 'json' }], key);
    expect(json).toMatchObject({ status: 202, body: { data: [{ status: 'queued' }] } });
    const ndjson = await httpRequest(
      url,
      'POST',
      `${BULK}?api_key=${world.keys.all}`,
      `{"ticket_id": ${ticket}, "ticket_reply": "nd"}\n{"ticket_id": ${ticket}, "ticket_reply": "json"}\n`,
      { 'Content-Type': 'application/x-ndjson' },
    );
    expect(ndjson).toMatchObject({ status: 202, body: { data: [{ status: 'queued' }, { status: 'queued' }] } });
    const inBody = await httpRequest(url, 'POST', CREATE, {
      ticket_id: ticket,
      ticket_reply: 'body key',
      api_key: world.keys.all,
    });
    expect(inBody).toMatchObject({ status: 202, body: { data: [{ status: 'queued' }] } });
    const itflow = await httpRequest(
      url,
      'POST',
      ITFLOW_CREATE,
      {
        ticket_id: ticket,
        ticket_reply: 'body key, ITFlow’s path',
        api_key: world.keys.all,
      },
      { Prefer: 'respond-async' },
    );
    expect(itflow.status).toBe(202);
    const statuses = await httpRequest(url, 'POST', COMMANDS, {
      command_ids: [inBody.body.data[0].command_id],
      api_key: world.keys.all,
    });
    expect(statuses).toMatchObject({ status: 200, body: { data: [{ command_id: inBody.body.data[0].command_id }] } });
    // A wrong key in the body is still a 401 (and a header key wins over it).
    expect((await httpRequest(url, 'POST', CREATE, { ticket_id: ticket, api_key: 'wrong' })).body).toEqual(AUTH_FAILED);
    const headerWins = await httpRequest(url, 'POST', CREATE, { ticket_id: ticket, ticket_reply: 'h', api_key: 'wrong' }, key);
    expect(headerWins.status).toBe(202);
  });

  it(`a body that stalls is cut off after REQUEST_TIMEOUT_SECONDS (${REQUEST_TIMEOUT_SECONDS} s) with 408, key or not`, async () => {
    const stalls: Array<{ path: string; headers: Record<string, string> }> = [
      { path: BULK, headers: { 'X-API-Key': world.keys.all } },
      { path: CREATE, headers: {} }, // the key may still come in the body
    ];
    const results = await Promise.all(
      stalls.map(async ({ path, headers }) => {
        const connection = await RawConnection.open(url);
        connection.write(
          RawConnection.head('POST', path, { ...headers, 'Content-Type': 'application/json', 'Content-Length': 1000 }),
        );
        connection.write('[{"ticket_id": ');
        const closed = await connection.closes((REQUEST_TIMEOUT_SECONDS + 5) * 1000);
        const seconds = (Date.now() - connection.openedAt) / 1000;
        return { path, closed, seconds, answer: connection.answer() };
      }),
    );
    console.info(
      'stalled bodies cut off after (s):',
      results.map((r) => r.seconds),
    );
    for (const result of results) {
      expect(result).toMatchObject({
        closed: true,
        answer: {
          status: 408,
          body: { success: 'False', message: `The request did not arrive within ${REQUEST_TIMEOUT_SECONDS} seconds.` },
        },
      });
      expect(result.seconds).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_SECONDS - 0.1);
      expect(result.seconds).toBeLessThan(REQUEST_TIMEOUT_SECONDS + 2);
    }
    // The log line travels through the process's stdout, which may trail the closed socket.
    expect(await service.waitFor(/request did not arrive in time; connection closed/, 2_000)).toContain('"level":30');
  }, 20_000);

  it('Expect: 100-continue gets 401 and no 100 Continue with a wrong key, 100 Continue with the right one', async () => {
    const expecting = async (path: string, headers: Record<string, string>, body: string) => {
      const connection = await RawConnection.open(url);
      connection.write(
        RawConnection.head('POST', path, {
          ...headers,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Expect: '100-continue',
        }),
      );
      // A client waits for 100 Continue (or a final answer) before it sends the body.
      await connection.until((text) => text.startsWith('HTTP/1.1 '), 2_000);
      const first = connection.text.split('\r\n')[0];
      if (first === 'HTTP/1.1 100 Continue') connection.write(body);
      const answer = await connection.answered(2_000);
      connection.end();
      const closed = await connection.closes(1_000);
      connection.destroy();
      return { first, status: answer?.status, closed };
    };
    const items = JSON.stringify([{ ticket_id: ticket, ticket_reply: 'after 100 Continue' }]);
    expect(await expecting(BULK, { 'X-API-Key': 'wrong-key' }, items)).toEqual({
      first: 'HTTP/1.1 401 Unauthorized',
      status: 401,
      closed: true,
    });
    expect(await expecting(BULK, {}, items)).toMatchObject({ first: 'HTTP/1.1 401 Unauthorized', status: 401 });
    expect(await expecting(BULK, { 'X-API-Key': world.keys.all }, items)).toMatchObject({
      first: 'HTTP/1.1 100 Continue',
      status: 202,
    });
    // create.php may carry its key in the (small) body, so it is asked for.
    const reply = JSON.stringify({ ticket_id: ticket, ticket_reply: 'key in the body', api_key: world.keys.all });
    expect(await expecting(CREATE, {}, reply)).toMatchObject({ first: 'HTTP/1.1 100 Continue', status: 202 });
  });
});
