import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { addWebhook, WebhookCliError } from '../../src/cli/webhooks.js';
import { serviceTables } from '../../src/db/tables.js';
import { checkTarget, specialAddress } from '../../src/webhooks/address.js';
import { listDeliveries, purgeDeliveries, replayEvent } from '../../src/webhooks/deliveries.js';
import type { EventType } from '../../src/webhooks/events.js';
import { postWebhook } from '../../src/webhooks/send.js';
import { signatureHeader } from '../../src/webhooks/signature.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { importFile } from '../helpers/imports.js';
import { addKey, addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { freePort, killLeftovers, spawnEntry } from '../helpers/processes.js';
import { Receiver, signatureMatches } from '../helpers/receiver.js';

/**
 * Completion webhooks against a real receiver (a node:http server): what a receiver gets for an
 * applied and a failed command (signed, the HMAC recomputed here), that nothing is written for a
 * key or an event nobody subscribed to, retries through a slow answer, a 500, a redirect and an
 * endless body, giving up after the retry window and replaying from the dashboard, the outbound
 * limits, import.finished, and the CLI that manages it all.
 */
describe('completion webhooks', () => {
  let h: Harness;
  let world: World;
  const receivers: Receiver[] = [];
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  // Short backoff, timeout and retry window, so retries and giving up happen within the test.
  const env = {
    WEBHOOK_BACKOFF_MS: '200',
    WEBHOOK_MAX_BACKOFF_MS: '400',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_RETRY_SECONDS: '4',
    WEBHOOK_SECRET_KEY: 'a1'.repeat(32),
  };

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', env });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    for (const receiver of receivers) await receiver.stop();
    await h?.close();
  });

  const tables = () => serviceTables(h.config);
  const receiver = async () => {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  };
  /** A key of its own per test, so each test's webhooks hear only its own commands. */
  const newKey = async (name: string) => {
    const secret = await addKey(h.db, '2.6.7', { name, owner: world.author });
    const [row] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [secret]);
    return { secret, id: Number(row?.api_key_id) };
  };
  const subscribe = (apiKeyId: number, url: string, events: EventType[] = ['command.applied', 'command.failed']) =>
    addWebhook(h.db, tables(), h.config, { apiKeyId, url, events });
  const send = async (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const answer = await h.post(CREATE, body, { key, headers });
    expect(answer.status).toBe(202);
    return answer.body.data[0].command_id as string;
  };
  const deliveriesOf = (commandId: string) =>
    h.query(
      `SELECT HEX(event_id) AS event, webhook_id, event_type, state, attempts, last_status, last_error
         FROM rq_hook_outbox WHERE JSON_VALUE(payload, '$.data.command_id') = ?`,
      [commandId],
    );
  const waitForState = async (commandId: string, state: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [row] = await deliveriesOf(commandId);
      if (row?.state === state) return row;
      if (Date.now() > deadline)
        throw new Error(`delivery of ${commandId} not ${state} within ${timeoutMs} ms: ${JSON.stringify(row)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it('an applied command: one signed delivery whose body names the command, its reply and its idempotency key', async () => {
    const key = await newKey('Bridge applied');
    const r = await receiver();
    const hook = await subscribe(key.id, r.url);
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const commandId = await send(
      key.secret,
      { ticket_id: ticket, ticket_reply: 'Disk replaced.' },
      { 'Idempotency-Key': 'rmm-4711' },
    );
    await r.waitFor(() => r.received.length >= 1, 10_000);
    const [got] = r.received;
    if (!got) throw new Error('nothing received');

    // What a receiver checks: the HMAC of `t.body` with its secret, and nothing else matches.
    expect(signatureMatches(hook.secret, got)).toBe(true);
    expect(signatureMatches(`${hook.secret}x`, got)).toBe(false);
    expect(signatureMatches(hook.secret, { ...got, body: got.body.replace('"rmm-4711"', '"rmm-4712"') })).toBe(false);
    const t = Number(/t=(\d+)/.exec(String(got.headers['webhook-signature']))?.[1]);
    expect(Math.abs(Date.now() / 1000 - t)).toBeLessThan(10);

    const ledger = await h.finished(commandId);
    const [reply] = await h.query('SELECT ticket_reply_id FROM ticket_replies WHERE ticket_reply_ticket_id = ?', [ticket]);
    const body = JSON.parse(got.body);
    expect(body).toEqual({
      id: got.headers['webhook-id'],
      type: 'command.applied',
      created_at: body.data.finished_at,
      data: {
        command_id: commandId,
        api_key_id: key.id,
        ticket_id: ticket,
        idempotency_key: 'rmm-4711',
        external_id: null,
        status: 'applied',
        insert_id: Number(reply?.ticket_reply_id),
        http_status: null,
        message: null,
        accepted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        finished_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      },
    });
    expect(body.id).toMatch(UUID);
    expect(Number(ledger.insert_id)).toBe(body.data.insert_id);
    expect(got.headers).toMatchObject({
      'content-type': 'application/json',
      'webhook-event': 'command.applied',
      'webhook-attempt': '1',
      'user-agent': 'ITFlow-Reply-Queue-Webhooks/1',
    });
    expect(await waitForState(commandId, 'delivered')).toMatchObject({ attempts: 1, last_status: 200, last_error: null });

    // The body is what the OpenAPI document's webhooks promise.
    const doc = (await h.get('/openapi.json')).body;
    const ajv = new Ajv2020({ allowUnionTypes: true, strictTypes: false });
    ajv.addFormat('uuid', UUID);
    ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(doc.webhooks['command.applied'].post.requestBody.content['application/json'].schema.$ref).toBe(
      '#/components/schemas/WebhookCommandEvent',
    );
    expect(ajv.validate(doc.components.schemas.WebhookCommandEvent, body), JSON.stringify(ajv.errors)).toBe(true);
    // And so are the document's own examples.
    for (const [type, webhook] of Object.entries(doc.webhooks as Record<string, any>)) {
      const media = webhook.post.requestBody.content['application/json'];
      const schema = doc.components.schemas[media.schema.$ref.split('/').pop()];
      for (const example of Object.values(media.examples as Record<string, { value: { type: string } }>)) {
        expect(example.value.type).toBe(type);
        expect(ajv.validate(schema, example.value), `${type}: ${JSON.stringify(ajv.errors)}`).toBe(true);
      }
    }

    // The secret is stored sealed (WEBHOOK_SECRET_KEY is set), never as shown.
    const [stored] = await h.query('SELECT secret FROM rq_webhooks WHERE webhook_id = ?', [hook.webhook_id]);
    expect(String(stored?.secret)).toMatch(/^aes256gcm:/);
    expect(String(stored?.secret)).not.toContain(hook.secret.slice(6));
  });

  it('a command a worker refuses: command.failed with the status and message a synchronous call would get', async () => {
    const key = await newKey('Bridge failed');
    const r = await receiver();
    const hook = await subscribe(key.id, r.url);
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    // Accepted while the ticket is open; applied after the close before it: 409.
    const close = await send(key.secret, { ticket_id: ticket, status: 5 });
    const late = await send(key.secret, { ticket_id: ticket, ticket_reply: 'Too late.' });
    await r.waitFor(() => r.received.length >= 2, 10_000);
    const events = r.events();
    expect(events.map((e) => [e.type, e.data.command_id])).toEqual([
      ['command.applied', close],
      ['command.failed', late],
    ]);
    expect(events[1]?.data).toMatchObject({ status: 'failed', insert_id: null, http_status: 409, message: 'Ticket is closed.' });
    expect(r.received.every((got) => signatureMatches(hook.secret, got))).toBe(true);
    expect(new Set(events.map((e) => e.id)).size).toBe(2);
  });

  it('writes no event for a key without a webhook, nor for an event its webhooks do not hear', async () => {
    const quiet = await newKey('No webhooks');
    const failuresOnly = await newKey('Failures only');
    const r = await receiver();
    await subscribe(failuresOnly.id, r.url, ['command.failed']);
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const a = await send(quiet.secret, { ticket_id: ticket, ticket_reply: 'Nobody listens.' });
    const b = await send(failuresOnly.secret, { ticket_id: ticket, ticket_reply: 'Applied, not failed.' });
    await h.finished(a);
    await h.finished(b);
    expect(await deliveriesOf(a)).toEqual([]);
    expect(await deliveriesOf(b)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(r.received).toEqual([]);
  });

  it('retries a slow answer, a 500 with an endless body and a redirect (not followed), then a 2xx: the same event id each time', async () => {
    const key = await newKey('Bridge flaky');
    const r = await receiver();
    const elsewhere = await receiver();
    const hook = await subscribe(key.id, r.url);
    const answers = [
      { status: 200, delayMs: 2500 }, // past WEBHOOK_TIMEOUT_MS (1 s): a failed attempt
      { status: 500, endless: true },
      { status: 302, headers: { Location: elsewhere.url } },
      { status: 200, endless: true },
    ];
    r.answer = (_request, index) => answers[index] ?? { status: 200 };
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const commandId = await send(key.secret, { ticket_id: ticket, ticket_reply: 'Flaky receiver.' });
    const row = await waitForState(commandId, 'delivered', 15_000);
    expect(row).toMatchObject({ attempts: 4, last_status: 200 });
    expect(r.received.map((got) => got.headers['webhook-attempt'])).toEqual(['1', '2', '3', '4']);
    expect(new Set(r.received.map((got) => got.headers['webhook-id'])).size).toBe(1);
    expect(new Set(r.received.map((got) => got.body)).size).toBe(1);
    expect(r.received.every((got) => signatureMatches(hook.secret, got))).toBe(true);
    expect(elsewhere.received).toEqual([]);
    // Backoff between attempts (base 200 ms, jitter down to half), and the endless 500 did not hold the next one up.
    const gaps = r.received.slice(1).map((got, i) => got.at - (r.received[i] as { at: number }).at);
    expect(gaps[0]).toBeGreaterThanOrEqual(1000 + 90);
    expect(gaps[1]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeLessThan(1500);
  });

  it('two workers dispatching the same outbox (SKIP LOCKED claims): every event delivered once, no attempt made twice', async () => {
    const delivered = async (service: { metrics: { registry: { getSingleMetric(name: string): any } } }) =>
      ((await service.metrics.registry.getSingleMetric('replyqueue_webhook_attempts_total').get()).values as Array<any>).find(
        (v) => v.labels.outcome === 'delivered',
      )?.value ?? 0;
    const before = await delivered(h.service); // the earlier tests' deliveries (roughly: the last may still be counting)
    const peer = await h.startPeer({ intake: false, worker: true });
    const key = await newKey('Busy bridge');
    const r = await receiver();
    r.answer = () => ({ status: 200, delayMs: 300 });
    const hook = await subscribe(key.id, r.url);
    const tickets = await Promise.all([1, 2, 3, 4].map(() => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    const items = tickets.flatMap((ticket) =>
      Array.from({ length: 10 }, (_, n) => ({ ticket_id: ticket, ticket_reply: `#${n}` })),
    );
    const answer = await h.post('/api/v1/tickets/replies/bulk.php', items, { key: key.secret });
    expect(answer.status).toBe(202);
    await r.waitFor(() => r.received.length >= items.length, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const commandIds = r.events().map((event) => event.data.command_id);
    expect(commandIds).toHaveLength(items.length);
    expect(new Set(commandIds)).toEqual(new Set(answer.body.data.map((item: { command_id: string }) => item.command_id)));
    expect(r.received).toHaveLength(items.length);
    // Each delivery claimed once (a claim counts an attempt) and delivered: no dispatcher took another's.
    const rows = await h.query(`SELECT state, attempts FROM rq_hook_outbox WHERE webhook_id = ?`, [hook.webhook_id]);
    expect(rows).toHaveLength(items.length);
    expect(rows.every((row) => row.state === 'delivered' && Number(row.attempts) === 1)).toBe(true);
    // Who sent what, from each process's metrics (the first's counter also holds the earlier tests'
    // deliveries, and the last of those may be counted just after `before` was read: not asserted).
    console.info('deliveries per dispatcher:', [(await delivered(h.service)) - before, await delivered(peer)]);
  });

  it('gives up after WEBHOOK_RETRY_SECONDS: failed, listed with the last answer, and replayed from the dashboard and the CLI', async () => {
    const key = await newKey('Bridge down');
    const r = await receiver();
    await subscribe(key.id, r.url);
    r.answer = () => ({ status: 503 });
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const commandId = await send(key.secret, { ticket_id: ticket, ticket_reply: 'Nobody home.' });
    const failed = await waitForState(commandId, 'failed', 15_000);
    expect(failed.attempts).toBeGreaterThanOrEqual(3);
    expect(failed).toMatchObject({ last_status: 503, last_error: 'HTTP 503: receiver refused' });
    const eventId = r.events()[0]?.id as string;
    const tried = r.received.length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(r.received.length).toBe(tried); // no more attempts once failed

    expect((await listDeliveries(h.db, tables(), { state: 'failed', limit: 100 })).map((d) => d.eventId)).toContain(eventId);
    const board = await h.get('/dashboard/api/webhooks', { key: world.keys.all });
    expect(board.status).toBe(200);
    expect(board.body.failed).toContainEqual(
      expect.objectContaining({ eventId, eventType: 'command.applied', state: 'failed', lastStatus: 503 }),
    );

    r.answer = () => ({ status: 200 });
    const replayed = await h.post(`/dashboard/api/webhooks/events/${eventId}/replay`, undefined, { key: world.keys.all });
    expect(replayed).toMatchObject({ status: 200, body: { eventId, deliveries: 1 } });
    expect((await waitForState(commandId, 'delivered')).attempts).toBe(1);
    expect(r.received.at(-1)?.headers).toMatchObject({ 'webhook-id': eventId, 'webhook-attempt': '1' });
    // The CLI's replay sends a delivered event again: a duplicate carrying the same event id.
    expect(await replayEvent(h.db, tables(), eventId)).toBe(1);
    await r.waitFor(() => r.received.length === tried + 2, 10_000);
    expect(r.received.at(-1)?.headers['webhook-id']).toBe(eventId);
    const unknown = await h.post(
      `/dashboard/api/webhooks/events/${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)}/replay`,
      undefined,
      {
        key: world.keys.all,
      },
    );
    expect(unknown.status).toBe(404);
    expect((await h.get('/dashboard/api/webhooks', { key: world.keys.clientA })).status).toBe(403);
  });

  it('the retention purge deletes delivered and failed deliveries past it, never a pending one', async () => {
    const ids = [
      '01000000-0000-7000-8000-00000000000a',
      '01000000-0000-7000-8000-00000000000b',
      '01000000-0000-7000-8000-00000000000c',
    ];
    const old = '2026-01-01 00:00:00.000';
    for (const [i, state] of ['delivered', 'failed', 'pending'].entries()) {
      await h.query(
        `INSERT INTO rq_hook_outbox (event_id, webhook_id, event_type, payload, state, attempts, created_at_utc, retry_from_utc, next_attempt_at_utc)
         VALUES (?, ?, 'command.applied', '{}', ?, 1, ?, ?, ?)`,
        [idBytes(ids[i] as string), 999_999, state, old, old, old],
      );
    }
    // Nothing else in the outbox is that old: exactly these two go.
    expect(await purgeDeliveries(h.db, tables(), Date.parse('2026-02-01T00:00:00Z'))).toBe(2);
    const left = await h.query('SELECT HEX(event_id) AS id, state FROM rq_hook_outbox WHERE event_id IN (?)', [ids.map(idBytes)]);
    expect(left).toEqual([{ id: (ids[2] as string).replace(/-/g, '').toUpperCase(), state: 'pending' }]);
    await h.query('DELETE FROM rq_hook_outbox WHERE event_id = ?', [idBytes(ids[2] as string)]);
  });

  it('with WEBHOOK_ALLOW_PRIVATE=false refuses private, loopback and link-local targets, when added and when connecting', async () => {
    const refused = async (url: string) =>
      checkTarget(url, false).then(
        () => 'allowed',
        (error: Error) => error.message,
      );
    expect(await refused('http://127.0.0.1:9/hook')).toMatch(/loopback address/);
    expect(await refused('http://localhost:9/hook')).toMatch(/localhost \((127\.0\.0\.1|::1)\) is a loopback address/);
    expect(await refused('http://169.254.169.254/latest/meta-data')).toMatch(/link-local/);
    expect(await refused('http://10.0.0.8/hook')).toMatch(/private/);
    expect(await refused('http://[::ffff:192.168.1.1]/hook')).toMatch(/private/);
    expect(await refused('http://[fe80::1]/hook')).toMatch(/link-local/);
    expect(await checkTarget('https://93.184.215.14/hook', false)).toBe('https://93.184.215.14/hook');
    for (const bad of ['ftp://example.com/hook', 'file:///etc/passwd', 'http://user:pass@example.com/hook', 'not a url']) {
      await expect(checkTarget(bad, true)).rejects.toThrow(/http:\/\/ or https:\/\/|user name or password|not a URL/);
    }
    expect([
      specialAddress('8.8.8.8'),
      specialAddress('2606:4700::1111'),
      specialAddress('::1'),
      specialAddress('100.64.1.1'),
    ]).toEqual([null, null, 'loopback', 'shared (carrier-grade NAT)']);

    const key = await newKey('Hosted');
    await expect(
      addWebhook(
        h.db,
        tables(),
        { ...h.config, WEBHOOK_ALLOW_PRIVATE: false },
        { apiKeyId: key.id, url: 'http://127.0.0.1:9/', events: ['command.applied'] },
      ),
    ).rejects.toThrow(WebhookCliError);

    // At delivery time, the address connected to is checked: an IP literal, and a name resolved then.
    const r = await receiver();
    const strict = { timeoutMs: 1000, allowPrivate: false };
    const direct = await postWebhook(r.url, '{}', {}, strict);
    const named = await postWebhook(`http://localhost:${r.port}/hook`, '{}', {}, strict);
    expect(direct).toMatchObject({
      ok: false,
      error: expect.stringMatching(/loopback address, and WEBHOOK_ALLOW_PRIVATE is false/),
    });
    expect(named).toMatchObject({ ok: false, error: expect.stringMatching(/loopback address/) });
    expect(r.received).toEqual([]);
    expect(await postWebhook(`http://localhost:${r.port}/hook`, '{}', {}, { ...strict, allowPrivate: true })).toMatchObject({
      ok: true,
      status: 200,
    });
    await expect(
      addWebhook(h.db, tables(), h.config, { apiKeyId: 999_999, url: r.url, events: ['command.applied'] }),
    ).rejects.toThrow('ITFlow has no API key 999999');
  });

  it('import.finished once every line of an imported file is applied or refused, with the counts', async () => {
    const key = await newKey('Importer');
    const r = await receiver();
    const hook = await subscribe(key.id, r.url, ['import.finished']);
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const dir = mkdtempSync(join(tmpdir(), 'rq-webhook-import-'));
    const file = join(dir, 'comments.ndjson');
    const lines = [
      { ticket_id: ticket, ticket_reply: 'First comment.', created_at: '2026-01-05 09:00:00' },
      { ticket_id: ticket, status: 5 },
      { ticket_id: ticket, ticket_reply: 'After the close: refused by the worker.' },
      { ticket_reply: 'No ticket: refused by bulk.php.' },
    ];
    writeFileSync(file, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
    const summary = await importFile({
      file,
      format: 'ndjson',
      url: h.url,
      apiKey: key.secret,
    });
    expect(summary).toMatchObject({ read: 4, queued: 3, applied: 2, rejected: 2 });
    await r.waitFor(() => r.received.length >= 1, 15_000, 'import.finished');
    const [event] = r.events();
    expect(event).toMatchObject({
      type: 'import.finished',
      data: {
        api_key_id: key.id,
        file: 'comments.ndjson',
        lines: 4,
        queued: 3,
        applied: 2,
        failed: 1,
        refused: 1,
        duplicates: 0,
      },
    });
    expect(event?.data.import_id).toMatch(/^[0-9a-f]{16}$/);
    expect(signatureMatches(hook.secret, r.received[0] as never)).toBe(true);
    // Written once, however many more looks the dispatcher takes.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const [count] = await h.query<RowDataPacket>('SELECT COUNT(*) AS n FROM rq_hook_outbox WHERE event_id = ?', [
      idBytes(event?.id as string),
    ]);
    expect(Number(count?.n)).toBe(1);
    expect(r.received).toHaveLength(1);
  });

  it('the Node and PHP receivers of docs/webhooks.md verify real deliveries, and refuse another secret, a changed body, an old time', async () => {
    const docs = readFileSync(new URL('../../docs/webhooks.md', import.meta.url), 'utf8');
    const snippet = (name: string) => {
      const found = new RegExp(`<!-- receiver: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)^\`\`\``, 'm').exec(docs)?.[1];
      if (!found) throw new Error(`docs/webhooks.md has no ${name} receiver`);
      return found;
    };
    const dir = mkdtempSync(join(tmpdir(), 'rq-webhook-docs-'));
    writeFileSync(join(dir, 'receiver.mjs'), snippet('node'));
    writeFileSync(join(dir, 'receiver.php'), snippet('php'));
    const key = await newKey('Docs receivers');
    const [nodePort, phpPort] = [await freePort(), await freePort()];
    const nodeHook = await subscribe(key.id, `http://127.0.0.1:${nodePort}/itflow-hook`);
    const phpHook = await subscribe(key.id, `http://127.0.0.1:${phpPort}/receiver.php`);
    const started: Array<{ child: ChildProcess; output: () => string }> = [];
    const run = (command: string, args: string[], extra: Record<string, string>) => {
      const child = spawn(command, args, { env: { ...process.env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout?.on('data', (chunk: Buffer) => (text += chunk));
      child.stderr?.on('data', (chunk: Buffer) => (text += chunk));
      started.push({ child, output: () => text });
      return () => text;
    };
    try {
      const nodeOutput = run(process.execPath, [join(dir, 'receiver.mjs')], {
        WEBHOOK_SECRET: nodeHook.secret,
        PORT: String(nodePort),
      });
      const phpOutput = run('php', ['-S', `127.0.0.1:${phpPort}`, join(dir, 'receiver.php')], { WEBHOOK_SECRET: phpHook.secret });
      for (const port of [nodePort, phpPort]) {
        const deadline = Date.now() + 10_000;
        while (
          !(await fetch(`http://127.0.0.1:${port}/`).then(
            () => true,
            () => false,
          ))
        ) {
          if (Date.now() > deadline) throw new Error(`no receiver on ${port}: ${started.map((s) => s.output()).join('\n')}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }

      const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
      const commandId = await send(key.secret, { ticket_id: ticket, ticket_reply: 'Checked by the docs’ receivers.' });
      // Delivered (a 2xx) to both: each receiver found the signature good.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const rows = await deliveriesOf(commandId);
        if (rows.length === 2 && rows.every((row) => row.state === 'delivered')) break;
        if (Date.now() > deadline)
          throw new Error(`not delivered to both: ${JSON.stringify(rows)} ${nodeOutput()} ${phpOutput()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect((await deliveriesOf(commandId)).map((row) => row.last_status)).toEqual([204, 204]);
      expect(nodeOutput()).toContain(`command.applied ${commandId}`);
      expect(phpOutput()).toContain(`command.applied ${commandId}`);

      // And each refuses what it should, with the secret it was given.
      const body = JSON.stringify({ id: 'x', type: 'command.applied', data: {} });
      const now = Math.floor(Date.now() / 1000);
      const answer = async (url: string, signature: string, sent = body) =>
        (await postWebhook(url, sent, { 'Webhook-Signature': signature }, { timeoutMs: 3000, allowPrivate: true })).status;
      for (const [url, secret] of [
        [`http://127.0.0.1:${nodePort}/itflow-hook`, nodeHook.secret],
        [`http://127.0.0.1:${phpPort}/receiver.php`, phpHook.secret],
      ] as const) {
        expect(await answer(url, signatureHeader(secret, body, now)), url).toBe(204);
        expect(await answer(url, signatureHeader(`${secret}x`, body, now)), url).toBe(400);
        expect(await answer(url, signatureHeader(secret, body, now), body.replace('x', 'y')), url).toBe(400);
        expect(await answer(url, signatureHeader(secret, body, now - 600)), url).toBe(400);
        expect(await answer(url, ''), url).toBe(400);
      }
    } finally {
      for (const { child } of started) child.kill('SIGKILL');
    }
  });

  it('cli webhooks: add shows the secret once (stored sealed), list never shows it, test sends a signed webhook.test, remove', async () => {
    const key = await newKey('CLI bridge');
    const r = await receiver();
    const cli = async (...args: string[]) => {
      const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), ['webhooks', ...args]);
      return { code: await run.exited, output: run.output() };
    };
    const added = await cli('add', String(key.id), r.url, '--events', 'command.applied,import.finished', '--json');
    expect(added.code).toBe(0);
    const webhook = JSON.parse(added.output);
    expect(webhook).toMatchObject({
      api_key_id: key.id,
      api_key_name: 'CLI bridge',
      url: r.url,
      events: ['command.applied', 'import.finished'],
    });
    expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);

    const [listed, tested] = await Promise.all([cli('list'), cli('test', String(webhook.webhook_id))]);
    expect(listed.code).toBe(0);
    expect(listed.output).toContain(r.url);
    expect(listed.output).toContain(`${key.id} CLI bridge`);
    expect(listed.output).not.toContain(webhook.secret);
    expect(tested).toMatchObject({
      code: 0,
      output: expect.stringMatching(/^Delivered a webhook\.test event \(.+\) to .+: HTTP 200 in \d+ ms\./),
    });
    expect(r.events()).toEqual([
      expect.objectContaining({ type: 'webhook.test', data: expect.objectContaining({ webhook_id: webhook.webhook_id }) }),
    ]);
    expect(signatureMatches(webhook.secret, r.received[0] as never)).toBe(true);

    const [refused, removed] = await Promise.all([
      cli('add', String(key.id), r.url, '--events', 'ticket.closed'),
      cli('remove', String(webhook.webhook_id)),
    ]);
    expect(refused).toMatchObject({
      code: 1,
      output: expect.stringContaining(
        'Events must be among command.applied, command.failed, import.finished (not ticket.closed).',
      ),
    });
    expect(removed).toMatchObject({ code: 0, output: expect.stringContaining(`Webhook ${webhook.webhook_id} removed`) });
    expect(await h.query('SELECT * FROM rq_webhooks WHERE webhook_id = ?', [webhook.webhook_id])).toEqual([]);
  });
});
