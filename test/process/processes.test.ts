import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createItflowDatabase, dropDatabase, withDatabase } from '../../src/demo/itflowDatabase.js';
import { deleteQueueKeys, uniqueName } from '../helpers/harness.js';
import { addTicket, seedWorld } from '../helpers/itflow.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';

/**
 * The processes as an operator runs them: configuration errors, a database that is not
 * ITFlow, the migration on start, and a graceful stop on SIGTERM/SIGINT.
 */
describe('service processes', () => {
  const database = uniqueName('proc');
  const emptyDatabase = uniqueName('empty');
  let env: Record<string, string>;

  beforeAll(async () => {
    await createItflowDatabase(inject('mysqlUrl'), database, '2.6.7');
    const conn = await mysql.createConnection({ uri: inject('mysqlUrl') });
    await conn.query(`CREATE DATABASE \`${emptyDatabase}\``);
    await conn.end();
    env = {
      DATABASE_URL: withDatabase(inject('mysqlUrl'), database),
      REDIS_URL: inject('redisUrl'),
      PORT: '0',
      QUEUE_PREFIX: database,
      QUEUE_PARTITIONS: '4',
      LOG_LEVEL: 'info',
    };
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await dropDatabase(inject('mysqlUrl'), database);
    await dropDatabase(inject('mysqlUrl'), emptyDatabase);
    await deleteQueueKeys(inject('redisUrl'), database);
  });

  it('a bad setting stops the process with one line naming the variable', async () => {
    const proc = spawnEntry('workers/service.ts', { ...env, PORT: 'eighty', WORKER_CONCURRENCY: '0' });
    expect(await proc.exited).toBe(1);
    expect(proc.output().trim().split('\n')).toEqual([
      "Invalid configuration: PORT must be a whole number between 0 and 65535 (got 'eighty')",
      "Invalid configuration: WORKER_CONCURRENCY must be at least 1 (got '0')",
    ]);
  });

  it('a database without ITFlow’s tables stops the process with a message pointing at the demo', async () => {
    const proc = spawnEntry('workers/service.ts', { ...env, DATABASE_URL: withDatabase(inject('mysqlUrl'), emptyDatabase) });
    expect(await proc.exited).toBe(1);
    expect(proc.output()).toContain(`Database '${emptyDatabase}' has no ITFlow tables`);
    expect(proc.output()).toContain('npm run demo');
  });

  it('the all-in-one process migrates its own tables, serves, and exits 0 on SIGTERM', async () => {
    const proc = spawnEntry('workers/service.ts', env);
    const listening = await proc.waitFor(/Server listening at/);
    const url = JSON.parse(listening).msg.replace('Server listening at ', '');
    const conn = await mysql.createConnection({ uri: env.DATABASE_URL });
    try {
      const [tables] = await conn.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE 'rq_%'");
      expect(tables.map((t) => Object.values(t)[0]).sort()).toEqual([
        'rq_commands',
        'rq_external_ids',
        'rq_hook_outbox',
        'rq_key_settings',
        'rq_migrations',
        'rq_read_replies',
        'rq_read_state',
        'rq_read_tickets',
        'rq_webhooks',
      ]);
      const db = mysql.createPool({ uri: env.DATABASE_URL });
      const world = await seedWorld(db, '2.6.7');
      const ticket = await addTicket(db, '2.6.7', { clientId: world.clientA });
      await db.end();
      const response = await fetch(`${url}/api/v1/tickets/replies/create.php`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': world.keys.all, Prefer: 'wait=10' },
        body: JSON.stringify({ ticket_id: ticket, ticket_reply: 'From a real process' }),
      });
      expect(response.status).toBe(201);
    } finally {
      await conn.end();
    }
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toContain('"msg":"stopped"');
  });

  it('separate intake and worker processes each stop cleanly on SIGINT; WORKER_PORT gives the worker /readyz', async () => {
    const intake = spawnEntry('workers/intake.ts', env);
    const worker = spawnEntry('workers/worker.ts', { ...env, WORKER_PORT: '0' });
    await intake.waitFor(/intake started/);
    const started = JSON.parse(await worker.waitFor(/worker started/));
    const ready = await fetch(`${started.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', mysql: 'ok', redis: 'ok' });
    const create = await fetch(`${started.url}/api/v1/tickets/replies/create.php`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(create.status).toBe(404);
    intake.child.kill('SIGINT');
    worker.child.kill('SIGINT');
    expect(await intake.exited).toBe(0);
    expect(await worker.exited).toBe(0);
  });
});
