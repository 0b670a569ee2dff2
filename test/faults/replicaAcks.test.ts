import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotReplicated } from '../../src/errors.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE, ITFLOW_CREATE } from '../helpers/paths.js';
import { startRedisServer } from '../helpers/processes.js';
import { synced } from '../helpers/sentinel.js';

/**
 * REDIS_MIN_REPLICAS_ACK=1 against a Redis of the test's own (a primary and one replica, ports of
 * this file's own), the replica taken away and brought back. The intake runs alone at first, so
 * what it queued stays queued until a worker is started at the end.
 *
 * What must hold: with the replica there, commands are acknowledged as usual; without it, every
 * accepting path (create.php, bulk.php, ITFlow's synchronous path) answers 503 with Retry-After
 * and says why — at once, not after the synchronous path's wait — and a retry with the same
 * idempotency key is 503 too until the replica is back, then answers as the first command (the
 * command queued by the refused request, never a second one). Every command is applied exactly
 * once. /readyz and /metrics say how many replicas are online.
 */

const PRIMARY = 16490;
const REPLICA = 16491;
const NOT_REPLICATED = new NotReplicated().message;

describe('REDIS_MIN_REPLICAS_ACK=1: acknowledged only once a replica holds the command', () => {
  let h: Harness;
  let world: World;
  let ticket: number;
  const servers: ChildProcess[] = [];

  // A replica writes the primary's snapshot to its directory when it syncs: a temporary one.
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-replica-'));
  const startReplica = async () => {
    const args = ['--replicaof', '127.0.0.1', String(PRIMARY), '--repl-diskless-sync-delay', '0', '--dir', dir];
    servers.push(await startRedisServer(REPLICA, args));
    await synced(REPLICA);
  };

  beforeAll(async () => {
    servers.push(await startRedisServer(PRIMARY, ['--appendonly', 'no']));
    await startReplica();
    h = await startHarness({
      generation: '2.6.7',
      roles: { intake: true, worker: false },
      env: { REDIS_URL: `redis://127.0.0.1:${PRIMARY}`, REDIS_MIN_REPLICAS_ACK: '1', REDIS_MIN_REPLICAS_TIMEOUT_MS: '300' },
    });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
  });
  afterAll(async () => {
    await h?.close();
    for (const server of servers) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const create = (key: string) =>
    h.post(CREATE, { ticket_id: ticket, ticket_reply: key }, { key: world.keys.all, headers: { 'Idempotency-Key': key } });
  const bulk = () =>
    h.post(
      BULK,
      ['bulk-1', 'bulk-2'].map((key) => ({ ticket_id: ticket, ticket_reply: key, idempotency_key: key })),
      { key: world.keys.all },
    );
  const itflow = (prefer: string) =>
    h.post(
      ITFLOW_CREATE,
      { ticket_id: ticket, ticket_reply: 'itflow-1', ticket_reply_type: 'Internal' },
      { key: world.keys.all, headers: { 'Idempotency-Key': 'itflow-1', Prefer: prefer } },
    );
  const metric = async (name: string) => {
    const text = (await h.get('/metrics')).body as string;
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };

  it('503 + Retry-After while no replica holds the command, then the retry answers as the command first queued', async () => {
    const first = await create('before');
    expect(first.status).toBe(202);
    expect((await h.get('/readyz')).body).toMatchObject({ status: 'ready', redisReplicas: { online: 1, required: 1 } });

    const replica = servers.pop() as ChildProcess;
    replica.kill('SIGKILL');
    await once(replica, 'exit');

    const refused = [await create('during'), await bulk()];
    const started = Date.now();
    refused.push(await itflow('wait=10'));
    expect(Date.now() - started, 'the synchronous path does not wait for the worker first').toBeLessThan(3_000);
    for (const answer of refused) {
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('2');
      expect(answer.body).toEqual({ success: 'False', message: NOT_REPLICATED });
    }
    // Retried with the same key while still alone: still not acknowledged, and still one command.
    expect((await create('during')).status).toBe(503);
    expect((await h.get('/readyz')).body).toMatchObject({ status: 'ready', redisReplicas: { online: 0, required: 1 } });
    expect(await metric('replyqueue_redis_replicas_online')).toBe(0);
    expect(await metric('replyqueue_commands_not_replicated_total')).toBeGreaterThanOrEqual(4);

    await startReplica();
    const retried = await create('during');
    expect(retried).toMatchObject({ status: 202, body: { data: [{ status: 'queued' }] } });
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    const bulkRetried = await bulk();
    expect(bulkRetried.status).toBe(200);
    expect(bulkRetried.body.data).toEqual([
      expect.objectContaining({ status: 'queued', replayed: true }),
      expect.objectContaining({ status: 'queued', replayed: true }),
    ]);
    expect((await itflow('respond-async')).status).toBe(202);
    expect(await metric('replyqueue_redis_replicas_online')).toBe(1);

    await h.startPeer({ intake: false, worker: true });
    const bodies = ['before', 'during', 'bulk-1', 'bulk-2', 'itflow-1'];
    for (let i = 0; i < 100; i++) {
      const [row] = await h.query('SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id = ?', [ticket]);
      if (Number(row?.n) >= bodies.length) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // a second one of anything would show now
    const rows = await h.query('SELECT ticket_reply FROM ticket_replies WHERE ticket_reply_ticket_id = ? ORDER BY ticket_reply', [
      ticket,
    ]);
    expect(rows.map((r) => r.ticket_reply)).toEqual([...bodies].sort());
  });
});
