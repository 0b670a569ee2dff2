import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForLedger } from '../helpers/faults.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { freePort, startRedisServer } from '../helpers/processes.js';

/**
 * Redis crashes (SIGKILL) and comes back while clients keep posting. This test runs its own
 * redis-server, configured as docs/operations.md asks for production (AOF, fsync on every write), so
 * the shared one stays up for the other test files.
 *
 * What must hold: while Redis is gone the intake answers 503 with Retry-After — never 500, never
 * a hang, never a 202 for a command it could not queue; it recovers by itself when Redis is
 * back; and clients retrying with their idempotency keys end with exactly one effect each.
 */

describe('Redis restarted under load', () => {
  let h: Harness;
  let world: World;
  let redis: ChildProcess | null = null;
  let port: number;
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-redis-'));

  async function startRedis(): Promise<void> {
    redis = await startRedisServer(port, ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]);
  }

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    h = await startHarness({ generation: '2.6.7', env: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(async () => {
    await h?.close();
    redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 + Retry-After while Redis is down, recovers, and every command applies exactly once', async () => {
    const tickets = await Promise.all(Array.from({ length: 4 }, () => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    const statuses = new Map<number, number>();
    const missingRetryAfter: number[] = [];
    const accepted = new Map<string, string>(); // idempotency key → command id
    let acceptedAfterRestart = 0;
    let restartedAt = Number.POSITIVE_INFINITY;
    let stop = false;

    const client = async (ticket: number, n: number) => {
      for (let i = 0; !stop; i++) {
        const key = `client-${n}-${i}`;
        for (;;) {
          const answer = await h
            .post(CREATE, { ticket_id: ticket, ticket_reply: key }, { key: world.keys.all, headers: { 'Idempotency-Key': key } })
            .catch(() => ({ status: 0, headers: new Headers(), body: null }));
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (answer.status === 202 || answer.status === 201) {
            accepted.set(key, answer.body.data[0].command_id);
            if (Date.now() > restartedAt) acceptedAfterRestart++;
            break;
          }
          if (answer.status === 503 || answer.status === 409) {
            if (!answer.headers.get('retry-after')) missingRetryAfter.push(answer.status);
            await new Promise((resolve) => setTimeout(resolve, 150));
            continue;
          }
          throw new Error(`unexpected answer ${answer.status}: ${JSON.stringify(answer.body)}`);
        }
      }
    };

    const clients = tickets.map((ticket, n) => client(ticket, n));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    redis?.kill('SIGKILL');
    await once(redis as ChildProcess, 'exit');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await startRedis();
    restartedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    stop = true;
    await Promise.all(clients);

    await waitForLedger(h, [...accepted.values()], 60_000);
    const rows = await h.query(
      'SELECT ticket_reply, COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id IN (?) GROUP BY ticket_reply',
      [tickets],
    );
    const duplicates = rows.filter((r) => Number(r.n) > 1).length;
    const lost = [...accepted.keys()].filter((key) => !rows.some((r) => r.ticket_reply === key)).length;
    console.info('Redis restart under load:', {
      answers: Object.fromEntries(statuses),
      commandsAccepted: accepted.size,
      acceptedAfterRestart,
      repliesWritten: rows.length,
      duplicates,
      lost,
    });

    expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
    expect(missingRetryAfter).toEqual([]);
    expect([...statuses.keys()].filter((s) => ![201, 202, 409, 503].includes(s))).toEqual([]);
    expect(acceptedAfterRestart).toBeGreaterThan(0);
    expect({ duplicates, lost, written: rows.length }).toEqual({ duplicates: 0, lost: 0, written: accepted.size });
  });
});
