import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('counts accepted, applied and failed commands, lag, batches and queue depth, in Prometheus text', async () => {
    const open = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const closedLater = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const key = { key: world.keys.all };
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

    const before = await scrape(h.url);
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
    expect(after.value('replyqueue_commands_accepted_total')).toBeUndefined();

    const intake = await scrape(h.url);
    expect(intake.value('replyqueue_commands_accepted_total')).toBe(7);
    expect(intake.value('replyqueue_commands_applied_total')).toBe(0);
  });
});
