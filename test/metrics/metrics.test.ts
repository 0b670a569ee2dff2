import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import type { RunningService } from '../../src/service.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE, ITFLOW_CREATE } from '../helpers/paths.js';

/**
 * GET /metrics on the intake and on a worker-only process's operations port. Each service has
 * its own registry, so the intake counts what it accepted and the worker what it applied.
 */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format 0.0.4: every line is a # HELP, a # TYPE or a
 * sample `name{label="value",…} number`; anything else fails the test.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$/.exec(line);
    if (help) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!sample) throw new Error(`not Prometheus text format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const pair of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) {
      labels[pair[1] as string] = pair[2] as string;
    }
    samples.push({ name: sample[1] as string, labels, value: Number(sample[3]) });
  }
  return { samples, types };
}

async function scrape(url: string) {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const parsed = parseExposition(await response.text());
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = parsed.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    return found.length === 0 ? undefined : found.reduce((sum, s) => sum + s.value, 0);
  };
  return { ...parsed, value };
}

describe('GET /metrics (ITFlow 2.6.7)', () => {
  let h: Harness;
  let world: World;
  let worker: RunningService | undefined;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(async () => {
    await worker?.close();
    await h?.close();
  });

  it('a fresh process shows every labelled counter at 0, not nothing', async () => {
    const fresh = await scrape(h.url);
    const zero = (name: string, label: string, values: string[]) => {
      expect(fresh.types.get(name), name).toBe('counter');
      for (const value of values) expect(fresh.value(name, { [label]: value }), `${name}{${label}="${value}"}`).toBe(0);
    };
    zero('replyqueue_commands_accepted_total', 'endpoint', ['create', 'bulk', 'itflow_create', 'itflow_resolve']);
    zero('replyqueue_commands_failed_total', 'reason', ['400', '401', '403', '404', '409', 'dead_letter']);
    zero('replyqueue_commands_retried_total', 'reason', ['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'other']);
    for (const result of ['committed', 'rolled_back']) {
      expect(fresh.value('replyqueue_apply_batch_seconds_count', { result }), result).toBe(0);
    }
    for (const name of ['replyqueue_commands_applied_total', 'replyqueue_commands_parked_total']) {
      expect(fresh.value(name), name).toBe(0);
    }
    // Nothing queued: every lane is listed, and none has anything waiting.
    const lanes = fresh.samples.filter((s) => s.name === 'replyqueue_lane_oldest_waiting_seconds');
    expect(lanes.map((s) => s.labels.lane).sort()).toEqual(
      Array.from({ length: h.config.QUEUE_PARTITIONS }, (_, lane) => laneName(lane, 'standalone')),
    );
    expect(lanes.every((s) => s.value === 0)).toBe(true);
  });

  it('counts accepted, applied and failed commands, lag, batches and queue depth, in Prometheus text', async () => {
    const open = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const closedLater = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const key = { key: world.keys.all };
    const firstSentAt = Date.now();
    const commandIds: string[] = [];
    const accepted = (answer: { status: number; body: any }) => {
      expect(answer.status).toBe(202);
      for (const item of answer.body.data) commandIds.push(item.command_id);
    };

    for (let n = 0; n < 3; n++) accepted(await h.post(CREATE, { ticket_id: open, ticket_reply: `reply ${n}` }, key));
    accepted(
      await h.post(
        ITFLOW_CREATE,
        { ticket_id: open, ticket_reply: 'via ITFlow path' },
        { ...key, headers: { Prefer: 'respond-async' } },
      ),
    );
    accepted(
      await h.post(
        BULK,
        [
          { ticket_id: open, ticket_reply: 'bulk 1' },
          { ticket_id: open, ticket_reply: 'bulk 2' },
        ],
        key,
      ),
    );
    // Accepted while the ticket is open; closed (in the web UI, say) before a worker gets to it.
    accepted(await h.post(CREATE, { ticket_id: closedLater, ticket_reply: 'too late' }, key));
    await h.query('UPDATE tickets SET ticket_status = 5, ticket_closed_at = NOW() WHERE ticket_id = ?', [closedLater]);
    // Refused at the door: not accepted, not counted.
    expect((await h.post(CREATE, { ticket_id: 999_999, ticket_reply: 'nowhere' }, key)).status).toBe(404);

    // The oldest waiting command of each lane ages while no worker runs.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const scrapedFrom = Date.now();
    const before = await scrape(h.url);
    const age = (ticket: number) =>
      before.value('replyqueue_lane_oldest_waiting_seconds', {
        lane: laneName(laneOf(ticket, h.config.QUEUE_PARTITIONS), 'standalone'),
      });
    expect(before.types.get('replyqueue_lane_oldest_waiting_seconds')).toBe('gauge');
    for (const ticket of [open, closedLater]) {
      expect(age(ticket)).toBeGreaterThanOrEqual(1.2);
      expect(age(ticket)).toBeLessThanOrEqual((Date.now() - firstSentAt) / 1000);
    }
    // The lane of `open` holds its oldest command, sent before closedLater's.
    expect(age(open)).toBeGreaterThanOrEqual(age(closedLater) as number);
    expect(age(open)).toBeGreaterThan((scrapedFrom - firstSentAt) / 1000 - 1);
    const busyLanes = new Set([open, closedLater].map((t) => laneName(laneOf(t, h.config.QUEUE_PARTITIONS), 'standalone')));
    for (const sample of before.samples.filter((s) => s.name === 'replyqueue_lane_oldest_waiting_seconds')) {
      if (!busyLanes.has(sample.labels.lane as string)) expect(sample.value, sample.labels.lane).toBe(0);
    }

    expect(before.types.get('replyqueue_commands_accepted_total')).toBe('counter');
    expect(before.value('replyqueue_commands_accepted_total', { endpoint: 'create' })).toBe(4);
    expect(before.value('replyqueue_commands_accepted_total', { endpoint: 'itflow_create' })).toBe(1);
    expect(before.value('replyqueue_commands_accepted_total', { endpoint: 'bulk' })).toBe(2);
    // Nothing applies commands yet: five single jobs and one bulk chunk wait in the lanes.
    expect(before.value('replyqueue_queue_jobs', { state: 'waiting' })).toBe(6);
    for (const state of ['active', 'delayed', 'failed']) expect(before.value('replyqueue_queue_jobs', { state })).toBe(0);
    expect(before.value('replyqueue_mysql_pool_connections_open', { pool: 'lookup' })).toBeGreaterThan(0);
    expect(before.value('replyqueue_mysql_pool_connections_in_use', { pool: 'lookup' })).toBeGreaterThanOrEqual(0);
    expect(before.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(before.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');

    worker = await h.startPeer({ intake: false, worker: true }, { WORKER_PORT: '0' });
    const outcomes = await Promise.all(commandIds.map((id) => h.finished(id)));
    expect(outcomes.filter((row) => row.status === 'applied')).toHaveLength(6);
    expect(outcomes.filter((row) => row.status === 'failed').map((row) => row.http_status)).toEqual([409]);

    const after = await scrape(worker.url as string);
    expect(after.value('replyqueue_commands_applied_total')).toBe(6);
    expect(after.value('replyqueue_commands_failed_total', { reason: '409' })).toBe(1);
    expect(after.value('replyqueue_commands_failed_total')).toBe(1);
    expect(after.types.get('replyqueue_command_lag_seconds')).toBe('histogram');
    expect(after.value('replyqueue_command_lag_seconds_count')).toBe(6);
    expect(after.value('replyqueue_command_lag_seconds_sum')).toBeGreaterThan(0);
    expect(after.value('replyqueue_command_lag_seconds_bucket', { le: '+Inf' })).toBe(6);
    expect(after.value('replyqueue_apply_batch_commands_sum')).toBe(7);
    expect(after.value('replyqueue_apply_batch_commands_count')).toBeGreaterThanOrEqual(1);
    expect(after.value('replyqueue_apply_batch_seconds_count', { result: 'committed' })).toBeGreaterThanOrEqual(1);
    expect(after.value('replyqueue_mysql_pool_connections_open', { pool: 'apply' })).toBeGreaterThan(0);
    expect(after.value('replyqueue_mysql_pool_waiting_requests', { pool: 'apply' })).toBe(0);
    // A worker process sees the same queue: drained, no dead letters.
    for (const state of ['waiting', 'active', 'delayed', 'failed'])
      expect(after.value('replyqueue_queue_jobs', { state })).toBe(0);
    // The accepted counts are the intake's own; the worker accepted nothing.
    expect(after.value('replyqueue_commands_accepted_total')).toBe(0);
    // Drained: no lane has a command waiting.
    const ages = after.samples.filter((s) => s.name === 'replyqueue_lane_oldest_waiting_seconds');
    expect(ages).toHaveLength(h.config.QUEUE_PARTITIONS);
    expect(ages.filter((s) => s.value !== 0)).toEqual([]);

    const intake = await scrape(h.url);
    expect(intake.value('replyqueue_commands_accepted_total')).toBe(7);
    expect(intake.value('replyqueue_commands_applied_total')).toBe(0);
  });

  it('counts HTTP requests by method, route pattern and status, with their duration', async () => {
    const key = world.keys.all;
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const http = 'replyqueue_http_request_duration_seconds';
    const start = await scrape(h.url);
    const count = (sample: Awaited<ReturnType<typeof scrape>>, labels: Record<string, string>) =>
      sample.value(`${http}_count`, labels) ?? 0;

    for (let n = 0; n < 3; n++)
      expect((await h.post(CREATE, { ticket_id: ticket, ticket_reply: `r${n}` }, { key })).status).toBe(202);
    expect((await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'x' }, { key: 'not-a-key' })).status).toBe(401);
    // The key in the query string never becomes a label: the route is the pattern.
    expect((await h.post(`${CREATE}?api_key=${key}&n=1`, { ticket_id: ticket, ticket_reply: 'q' })).status).toBe(202);
    // Every unknown path is one route, whatever it is.
    for (const path of ['/nope', `/nope/${key}`, '/api/v1/x.php?y=1']) expect((await h.get(path)).status).toBe(404);
    expect((await h.get('/healthz')).status).toBe(200);

    const end = await scrape(h.url);
    const grew = (labels: Record<string, string>) => count(end, labels) - count(start, labels);
    expect(end.types.get(http)).toBe('histogram');
    expect(grew({ method: 'POST', route: CREATE, status_code: '202' })).toBe(4);
    expect(grew({ method: 'POST', route: CREATE, status_code: '401' })).toBe(1);
    expect(grew({ method: 'GET', route: '(unmatched)', status_code: '404' })).toBe(3);
    expect(grew({ method: 'GET', route: '/healthz', status_code: '200' })).toBe(1);
    // Scrapes are requests too: the first one is counted by the second.
    expect(count(end, { method: 'GET', route: '/metrics', status_code: '200' })).toBeGreaterThanOrEqual(1);
    expect(end.value(`${http}_sum`, { method: 'POST', route: CREATE, status_code: '202' })).toBeGreaterThan(0);
    expect(end.value(`${http}_bucket`, { method: 'POST', route: CREATE, status_code: '202', le: '+Inf' })).toBe(
      count(end, { method: 'POST', route: CREATE, status_code: '202' }),
    );
    const routes = new Set(end.samples.filter((s) => s.name === `${http}_count`).map((s) => s.labels.route));
    for (const route of routes) expect(route === '(unmatched)' || /^\/[^?]*$/.test(route as string), route).toBe(true);
    expect([...routes].some((route) => route?.includes(key) || route?.includes('nope'))).toBe(false);

    // A worker-only process counts the requests its operations port answers.
    const ops = await scrape(worker?.url as string);
    expect(ops.value(`${http}_count`, { method: 'GET', route: '/metrics', status_code: '200' })).toBeGreaterThanOrEqual(1);
  });
});
