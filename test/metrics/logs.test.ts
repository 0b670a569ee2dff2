import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { deleteQueueKeys, type Harness, startHarness, uniqueName } from '../helpers/harness.js';
import { addTicket, createMysqlUser, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE, READ } from '../helpers/paths.js';
import { freePort, killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * Service processes started as an operator starts them, their whole output read back. At
 * LOG_LEVEL=info, with a MySQL password in DATABASE_URL: one line per request when it is
 * answered (request id, method, route pattern, status, time, and the error the client got),
 * none for probes and scrapes; accepted and applied commands carry their command id; no API key
 * (valid or not, in the header, the query string or the body) and no password ever appears. At
 * debug, the arrival of each request with its URL masked. Output that is not a terminal is JSON;
 * a terminal, LOG_FORMAT=pretty and the demo get one readable line per entry.
 */

describe('logs: request and command ids in, secrets out', () => {
  let h: Harness;
  let world: World;
  let admin: mysql.Connection;
  const user = uniqueName('l').slice(0, 32);
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let dropUser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    admin = await mysql.createConnection({ uri: inject('mysqlUrl') });
    dropUser = await createMysqlUser(admin, h.config.DATABASE_URL.split('/').pop() as string, user, password);
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await dropUser?.();
    await admin?.end();
    await h?.close();
  });

  it('carries request and command ids, and never an API key or the database password', async () => {
    const databaseUrl = new URL(h.config.DATABASE_URL);
    databaseUrl.username = user;
    databaseUrl.password = password;
    const service = spawnEntry('workers/service.ts', h.processEnv({ DATABASE_URL: databaseUrl.toString(), LOG_LEVEL: 'info' }));
    const url = JSON.parse(await service.waitFor(/"ITFlow Reply Queue started"/)).url as string;

    const key = world.keys.all;
    const badKey = `bad-${randomBytes(12).toString('hex')}`;
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const send = async (
      requestId: string,
      path: string,
      body: unknown,
      headers: Record<string, string> = {},
      method = 'POST',
    ): Promise<{ status: number; body: any }> => {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId, ...headers },
        body: method === 'POST' ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, body: await response.json() };
    };

    const accepted = new Map<string, string[]>(); // request id → command ids
    const expectAccepted = (requestId: string, answer: { status: number; body: any }) => {
      expect(answer.status, JSON.stringify(answer.body)).toBe(202);
      accepted.set(
        requestId,
        answer.body.data.map((item: { command_id: string }) => item.command_id),
      );
    };
    expectAccepted(
      'obs-header',
      await send('obs-header', CREATE, { ticket_id: ticket, ticket_reply: 'a' }, { 'X-API-Key': key }),
    );
    expectAccepted('obs-query', await send('obs-query', `${CREATE}?api_key=${key}`, { ticket_id: ticket, ticket_reply: 'b' }));
    expectAccepted('obs-body', await send('obs-body', CREATE, { ticket_id: ticket, ticket_reply: 'c', api_key: key }));
    // A percent-encoded parameter name is still api_key to the query parser, so to the redaction.
    expectAccepted(
      'obs-encoded-query',
      await send('obs-encoded-query', `${CREATE}?api%5Fkey=${key}`, { ticket_id: ticket, ticket_reply: 'f' }),
    );
    expectAccepted(
      'obs-bulk',
      await send('obs-bulk', `${BULK}?api_key=${key}`, [
        { ticket_id: ticket, ticket_reply: 'd' },
        { ticket_id: ticket, ticket_reply: 'e' },
      ]),
    );
    const reply = { ticket_id: ticket, ticket_reply: 'refused' };
    expect((await send('obs-bad-header', CREATE, reply, { 'X-API-Key': badKey })).status).toBe(401);
    expect((await send('obs-bad-query', `${CREATE}?api_key=${badKey}&x=1`, reply)).status).toBe(401);
    expect((await send('obs-bad-body', CREATE, { ...reply, api_key: badKey })).status).toBe(401);
    expect((await send('obs-bad-encoded', `${CREATE}?x=1&%61pi%5fkey=${badKey}`, reply)).status).toBe(401);
    expect((await send('obs-bad-bearer', CREATE, reply, { Authorization: `Bearer ${badKey}` })).status).toBe(401);
    // The ticket has a reply by the time it is read (read.php answers 404 for a ticket without one).
    await service.waitFor(new RegExp(`"commandId":"${accepted.get('obs-header')?.[0]}".*"command applied"`));
    expect((await send('obs-read', `${READ}?api_key=${key}&ticket_id=${ticket}`, undefined, {}, 'GET')).status).toBe(200);
    expect((await send('obs-unknown', `/api/v1/nowhere.php?api_key=${key}`, {})).status).toBe(404);
    // Probes and scrapes: answered, but not logged at info.
    for (const path of ['/healthz', '/readyz', '/metrics', '/docs/json']) {
      expect((await fetch(`${url}${path}`, { headers: { 'X-Request-Id': `obs-quiet${path}` } })).status).toBe(200);
    }

    const commandIds = [...accepted.values()].flat();
    for (const id of commandIds) await service.waitFor(new RegExp(`"commandId":"${id}".*"command applied"`));
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    const output = service.output();
    expect(output).not.toContain(key);
    expect(output).not.toContain(badKey);
    expect(output).not.toContain(password);

    // Not a terminal: every line is JSON (LOG_FORMAT=auto).
    const text = output.split('\n').filter((line) => line !== '');
    expect(text.filter((line) => !line.startsWith('{'))).toEqual([]);
    const lines = text.map((line) => JSON.parse(line) as Record<string, any>);
    // One line per request, when it is answered: its id, method, route pattern (never the URL, so
    // never a query string), status, time and client address; for an error, what the client read.
    const completed = (requestId: string) => {
      const found = lines.filter((l) => l.reqId === requestId && l.msg === 'request completed');
      expect(found, requestId).toHaveLength(1);
      return found[0] as Record<string, any>;
    };
    for (const [requestId, method, route, statusCode] of [
      ['obs-header', 'POST', CREATE, 202],
      ['obs-query', 'POST', CREATE, 202],
      ['obs-body', 'POST', CREATE, 202],
      ['obs-encoded-query', 'POST', CREATE, 202],
      ['obs-bulk', 'POST', BULK, 202],
      ['obs-read', 'GET', READ, 200],
    ] as const) {
      const line = completed(requestId);
      expect(line, requestId).toMatchObject({ level: 30, method, route, statusCode, ip: '127.0.0.1' });
      expect(line.responseTime, requestId).toEqual(expect.any(Number));
      expect(line, requestId).not.toHaveProperty('error');
    }
    for (const requestId of ['obs-bad-header', 'obs-bad-query', 'obs-bad-body', 'obs-bad-encoded', 'obs-bad-bearer']) {
      expect(completed(requestId), requestId).toMatchObject({
        level: 30,
        method: 'POST',
        route: CREATE,
        statusCode: 401,
        error: 'Authentication failed. API key is invalid or has expired.',
      });
    }
    // A path no route knows: one route for all of them, the path without its query string.
    expect(completed('obs-unknown')).toMatchObject({
      route: '(unmatched)',
      path: '/api/v1/nowhere.php',
      statusCode: 404,
      error: 'Unknown endpoint.',
    });
    for (const line of lines.filter((l) => l.msg === 'request completed')) expect(line.route).not.toContain('?');
    // Probes, scrapes and the docs are debug lines, and nothing is logged when a request arrives.
    expect(lines.filter((l) => String(l.reqId).startsWith('obs-quiet'))).toEqual([]);
    expect(lines.filter((l) => l.msg === 'incoming request')).toEqual([]);

    // The accepting request's log names each command it queued.
    for (const requestId of ['obs-header', 'obs-query', 'obs-body', 'obs-encoded-query']) {
      const [commandId] = accepted.get(requestId) as string[];
      expect(lines.find((l) => l.msg === 'command accepted' && l.reqId === requestId)).toMatchObject({
        commandId,
        ticketId: ticket,
      });
    }
    expect(lines.find((l) => l.msg === 'commands accepted' && l.reqId === 'obs-bulk')).toMatchObject({
      accepted: 2,
      commandIds: accepted.get('obs-bulk'),
    });
    // And the worker's line for each applied command carries the same id.
    for (const commandId of commandIds) {
      expect(lines.find((l) => l.msg === 'command applied' && l.commandId === commandId)).toMatchObject({ ticketId: ticket });
    }
  }, 60_000);

  it('at LOG_LEVEL=debug: each request as it arrives, its URL with the key masked, and the probes and scrapes', async () => {
    const service = spawnEntry('workers/intake.ts', h.processEnv({ LOG_LEVEL: 'debug' }));
    const url = JSON.parse(await service.waitFor(/"intake started"/)).url as string;
    const badKey = `bad-${randomBytes(12).toString('hex')}`;
    const reply = JSON.stringify({ ticket_id: 1, ticket_reply: 'refused' });
    for (const [requestId, query] of [
      ['dbg-query', `?api_key=${badKey}`],
      ['dbg-query-x', `?api_key=${badKey}&x=1`],
      ['dbg-encoded', `?api%5Fkey=${badKey}`],
      ['dbg-encoded-x', `?x=1&%61pi%5fkey=${badKey}`],
    ]) {
      const answer = await fetch(`${url}${CREATE}${query}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
        body: reply,
      });
      expect(answer.status, requestId).toBe(401);
    }
    for (const path of ['/healthz', '/metrics']) {
      expect((await fetch(`${url}${path}`, { headers: { 'X-Request-Id': `dbg${path}` } })).status).toBe(200);
    }
    await service.waitFor(/"reqId":"dbg\/metrics".*"request completed"/);
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    const output = service.output();
    expect(output).not.toContain(badKey);
    const lines = output
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, any>);
    const arrived = (requestId: string) => lines.find((l) => l.reqId === requestId && l.msg === 'incoming request');
    expect(arrived('dbg-query')).toMatchObject({ level: 20, req: { method: 'POST', url: `${CREATE}?api_key=[redacted]` } });
    expect(arrived('dbg-query-x')?.req.url).toBe(`${CREATE}?api_key=[redacted]&x=1`);
    // A parameter is known by its decoded name, as the query parser knows it.
    expect(arrived('dbg-encoded')?.req.url).toBe(`${CREATE}?api%5Fkey=[redacted]`);
    expect(arrived('dbg-encoded-x')?.req.url).toBe(`${CREATE}?x=1&%61pi%5fkey=[redacted]`);
    for (const route of ['/healthz', '/metrics']) {
      expect(lines.find((l) => l.reqId === `dbg${route}` && l.msg === 'request completed')).toMatchObject({
        level: 20,
        method: 'GET',
        route,
        statusCode: 200,
      });
    }
  }, 30_000);

  it('pretty logs with LOG_FORMAT=pretty, and by default on a terminal: one readable line per entry', async () => {
    const badKey = `bad-${randomBytes(12).toString('hex')}`;
    /** Starts an intake, sends one refused request, and returns its output once that is logged, as plain text. */
    const run = async (output: { text(): string; waitFor(pattern: RegExp): Promise<string> }) => {
      const started = stripVTControlCharacters(await output.waitFor(/intake started/));
      const url = /"url":"(http:\/\/[^"]+)"/.exec(started)?.[1] as string;
      expect(url, started).toBeDefined();
      const answer = await fetch(`${url}${CREATE}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': badKey, 'X-Request-Id': 'pretty-1' },
        body: JSON.stringify({ ticket_id: 1, ticket_reply: 'refused' }),
      });
      expect(answer.status).toBe(401);
      await output.waitFor(/pretty-1/);
      return stripVTControlCharacters(output.text()).replace(/\r/g, '');
    };
    const expectPretty = (text: string) => {
      const lines = text.split('\n').filter((line) => line !== '');
      expect(
        lines.filter((line) => line.startsWith('{')),
        'no JSON line',
      ).toEqual([]);
      expect(lines.find((line) => line.includes('intake started'))).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: intake started /);
      const request = lines.find((line) => line.includes('pretty-1')) as string;
      expect(request).toMatch(
        /^\[[\d:.]+\] INFO: POST \/api\/v1\/tickets\/replies\/create\.php 401 \d+\.\d ms: Authentication failed\. API key is invalid or has expired\. \{.*"reqId":"pretty-1"/,
      );
      expect(text).not.toContain(badKey);
    };

    // Asked for, with stdout a pipe.
    const piped = spawnEntry('workers/intake.ts', h.processEnv({ LOG_FORMAT: 'pretty' }));
    expectPretty(await run({ text: piped.output, waitFor: (pattern) => piped.waitFor(pattern) }));
    piped.child.kill('SIGTERM');
    expect(await piped.exited).toBe(0);

    // LOG_FORMAT unset, stdout a terminal: `script` gives the process a pseudo-terminal.
    const env: Record<string, string> = { ...process.env, ...h.processEnv() } as Record<string, string>;
    delete env.LOG_FORMAT;
    const terminal = spawn('script', ['-qfec', `'${process.execPath}' --import tsx workers/intake.ts`, '/dev/null'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let text = '';
    terminal.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const exited = once(terminal, 'exit');
    try {
      expectPretty(
        await run({
          text: () => text,
          waitFor: async (pattern) => {
            const deadline = Date.now() + 20_000;
            for (;;) {
              const line = text.split('\n').find((l) => pattern.test(l));
              if (line !== undefined) return line;
              if (Date.now() > deadline) throw new Error(`no line matching ${pattern}; output:\n${text}`);
              await new Promise((resolve) => setTimeout(resolve, 50));
            }
          },
        }),
      );
    } finally {
      // The whole group: `script` and the service it runs.
      process.kill(-(terminal.pid as number), 'SIGTERM');
      await exited;
    }
  }, 60_000);

  it('the demo logs pretty lines even when its output is piped', async () => {
    const database = uniqueName('demo');
    const prefix = uniqueName('demoq');
    const demo = spawnEntry(
      'workers/cli.ts',
      {
        DATABASE_URL: withDatabase(inject('mysqlUrl'), 'itflow'),
        REDIS_URL: h.config.REDIS_URL,
        QUEUE_PREFIX: prefix,
        PORT: String(await freePort()),
        LOG_LEVEL: 'info',
      },
      ['demo', '--database', database],
    );
    try {
      await demo.waitFor(/Press Ctrl-C to stop/, 30_000);
      const lines = stripVTControlCharacters(demo.output())
        .split('\n')
        .filter((line) => line.startsWith('{') || line.startsWith('['));
      expect(lines.filter((line) => line.startsWith('{'))).toEqual([]);
      expect(lines.find((line) => line.includes('ITFlow schema detected'))).toMatch(
        /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: ITFlow schema detected \{.*"database":"/,
      );
      demo.child.kill('SIGINT');
      expect(await demo.exited, demo.output()).toBe(0);
    } finally {
      await dropDatabase(inject('mysqlUrl'), database);
      await deleteQueueKeys(h.config.REDIS_URL, prefix);
    }
  }, 60_000);
});
