import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Answer, type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { CREATE } from '../helpers/paths.js';
import { freePort, startRedisServer } from '../helpers/processes.js';

/**
 * /readyz while a dependency is away. This file runs its own redis-server (no persistence) so
 * it can kill it without touching the shared one. What must hold: /readyz answers 503 with
 * Retry-After while Redis is unreachable and 200 again once it is back; create.php answers
 * 503 + Retry-After meanwhile; /healthz and /metrics keep answering.
 */

async function until(check: () => Promise<Answer>, accept: (answer: Answer) => boolean, timeoutMs = 10_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await check();
    if (accept(answer) || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('/readyz and the intake while Redis is unreachable', () => {
  let h: Harness;
  let world: World;
  let redis: ChildProcess | null = null;
  let port: number;

  async function startRedis(): Promise<void> {
    redis = await startRedisServer(port, ['--appendonly', 'no']);
  }

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    h = await startHarness({
      generation: '2.6.7',
      roles: { intake: true, worker: false },
      env: { REDIS_URL: `redis://127.0.0.1:${port}` },
    });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterAll(async () => {
    await h?.close();
    redis?.kill('SIGKILL');
  });

  it('answers 503 + Retry-After from /readyz and create.php while Redis is down, and recovers', async () => {
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    const post = () => h.post(CREATE, { ticket_id: ticket, ticket_reply: 'while Redis is away' }, { key: world.keys.all });

    expect(await h.get('/readyz')).toMatchObject({ status: 200, body: { status: 'ready', mysql: 'ok', redis: 'ok' } });

    redis?.kill('SIGKILL');
    await once(redis as ChildProcess, 'exit');

    const notReady = await until(
      () => h.get('/readyz'),
      (a) => a.status === 503,
    );
    expect(notReady).toMatchObject({ status: 503, body: { status: 'not ready', mysql: 'ok', redis: 'unreachable' } });
    expect(notReady.headers.get('retry-after')).toMatch(/^\d+$/);

    const refused = await post();
    expect(refused).toMatchObject({ status: 503, body: { success: 'False' } });
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);

    // The process itself is fine, and a scrape neither fails nor hangs: queue depth is left out.
    expect((await h.get('/healthz')).status).toBe(200);
    const metrics = await h.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('replyqueue_commands_accepted_total');
    expect(metrics.body).not.toMatch(/^replyqueue_queue_jobs\{/m);

    await startRedis();
    expect(
      await until(
        () => h.get('/readyz'),
        (a) => a.status === 200,
      ),
    ).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect((await until(post, (a) => a.status === 202)).status).toBe(202);
    expect((await h.get('/metrics')).body).toMatch(/^replyqueue_queue_jobs\{state="waiting"\} 1$/m);
  });
});
