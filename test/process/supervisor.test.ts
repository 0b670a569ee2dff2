import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { freePorts, killLeftovers, type ServiceProcess, spawnEntry } from '../helpers/processes.js';

/**
 * `npm start` as an operator runs it: the intake and a worker, each a process of its own under
 * one supervisor. What must hold: commands are applied by the worker process; /metrics on the
 * intake answers for the whole service; a process that dies is started again and nothing sent
 * meanwhile is lost or applied twice; SIGTERM stops everything with exit 0; a supervisor killed
 * with SIGKILL leaves no process behind; SERVICE_WORKERS chooses how many workers, 0 one process.
 */
describe('npm start: the intake and its workers as supervised processes', () => {
  let h: Harness;
  let world: World;

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  interface Started {
    url: string;
    processes?: Array<{ name: string; pid: number }>;
  }

  async function start(env: Record<string, string> = {}): Promise<{ service: ServiceProcess; started: Started }> {
    const service = spawnEntry('workers/service.ts', h.processEnv(env));
    const started = JSON.parse(await service.waitFor(/"ITFlow Reply Queue started"/)) as Started;
    return { service, started };
  }

  const parentOf = (pid: number) => Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const pidOf = (started: Started, name: string) => started.processes?.find((p) => p.name === name)?.pid as number;
  /** A process's nice value (field 19 of /proc/PID/stat; the 17th after the command name). */
  const niceOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  };

  async function reply(url: string, ticketId: number, text: string, wait = 10): Promise<{ status: number; body: any }> {
    const response = await fetch(`${url}/api/v1/tickets/replies/create.php`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': world.keys.all, Prefer: `wait=${wait}` },
      body: JSON.stringify({ ticket_id: ticketId, ticket_reply: text }),
    });
    return { status: response.status, body: await response.json() };
  }

  async function metric(url: string, name: string): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  }

  async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('runs the intake and a worker as child processes; the worker applies, /metrics counts for both', async () => {
    const { service, started } = await start();
    expect(started.processes?.map((p) => p.name)).toEqual(['intake', 'worker-1']);
    const supervisor = service.child.pid as number;
    for (const { pid } of started.processes ?? []) expect(parentOf(pid)).toBe(supervisor);

    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    for (let n = 1; n <= 3; n++) expect((await reply(started.url, ticket, `supervised #${n}`)).status).toBe(201);
    // Applied by the worker process, counted by the intake's /metrics all the same.
    expect(await metric(started.url, 'replyqueue_commands_applied_total')).toBe(3);
    expect(await metric(started.url, 'replyqueue_commands_accepted_total\\{endpoint="create"\\}')).toBe(3);
    expect(await metric(started.url, 'replyqueue_mysql_up')).toBe(1);
    expect(await metric(started.url, 'replyqueue_queue_jobs\\{state="waiting"\\}')).toBe(0);
    expect(service.output()).toMatch(/"process":"worker-1".*"msg":"command applied"/);

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    for (const { pid } of started.processes ?? []) expect(alive(pid)).toBe(false);
  });

  it('starts a worker that died again; what was sent while it was gone is applied once', async () => {
    const { service, started } = await start();
    const worker = pidOf(started, 'worker-1');
    const tickets = await Promise.all([1, 2, 3].map(() => addTicket(h.db, '2.6.7', { clientId: world.clientA })));
    process.kill(worker, 'SIGKILL');
    // Accepted while no worker runs: 202, applied once the worker is back.
    const sent = await Promise.all(tickets.map((ticket) => reply(started.url, ticket, `while down ${ticket}`, 0)));
    for (const answer of sent) expect(answer.status).toBe(202);
    const restarted = JSON.parse(await service.waitFor(/"process started again"/, 15_000));
    expect(restarted).toMatchObject({ process: 'worker-1' });
    expect(restarted.pid).not.toBe(worker);
    expect(service.output()).toMatch(
      /"process":"worker-1".*"signal":"SIGKILL".*a process of the service exited; starting it again/,
    );

    await until(async () => {
      const [rows] = (await h.db.query(
        'SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id IN (?) AND ticket_reply LIKE ?',
        [tickets, 'while down %'],
      )) as unknown as [[{ n: number }]];
      return Number(rows[0].n) >= tickets.length;
    }, 20_000);
    const [rows] = (await h.db.query(
      'SELECT ticket_reply FROM ticket_replies WHERE ticket_reply_ticket_id IN (?) ORDER BY ticket_reply',
      [tickets],
    )) as unknown as [Array<{ ticket_reply: string }>];
    expect(rows.map((r) => r.ticket_reply)).toEqual(tickets.map((t) => `while down ${t}`).sort());

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
  });

  it('runs the workers at a lower CPU priority than the intake (WORKER_NICE, 10 by default), a restarted one too', async () => {
    const byDefault = await start();
    const supervisor = byDefault.service.child.pid as number;
    expect(niceOf(pidOf(byDefault.started, 'intake'))).toBe(niceOf(supervisor));
    expect(niceOf(pidOf(byDefault.started, 'worker-1'))).toBe(Math.min(19, niceOf(supervisor) + 10));
    byDefault.service.child.kill('SIGTERM');
    expect(await byDefault.service.exited).toBe(0);

    const { service, started } = await start({ WORKER_NICE: '7' });
    const base = niceOf(service.child.pid as number);
    expect(niceOf(pidOf(started, 'intake'))).toBe(base);
    const worker = pidOf(started, 'worker-1');
    expect(niceOf(worker)).toBe(Math.min(19, base + 7));
    // Still applies what it is sent.
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    expect((await reply(started.url, ticket, 'applied by a niced worker')).status).toBe(201);
    process.kill(worker, 'SIGKILL');
    const restarted = JSON.parse(await service.waitFor(/"process started again"/, 15_000)) as { pid: number };
    expect(niceOf(restarted.pid)).toBe(Math.min(19, base + 7));
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    const same = await start({ WORKER_NICE: '0' });
    expect(niceOf(pidOf(same.started, 'worker-1'))).toBe(niceOf(same.service.child.pid as number));
    same.service.child.kill('SIGTERM');
    expect(await same.service.exited).toBe(0);
  });

  it('a supervisor killed with SIGKILL leaves no process behind', async () => {
    const { service, started } = await start();
    const children = (started.processes ?? []).map((p) => p.pid);
    expect(children).toHaveLength(2);
    service.child.kill('SIGKILL');
    await service.exited;
    // Each child sees its channel to the supervisor close and stops gracefully on its own.
    await until(() => children.every((pid) => !alive(pid)), 15_000);
  });

  it('SERVICE_WORKERS=2 runs two workers; SERVICE_WORKERS=0 one process doing both', async () => {
    const workerPort = await freePorts(2);
    const two = await start({ SERVICE_WORKERS: '2', WORKER_PORT: String(workerPort) });
    expect(two.started.processes?.map((p) => p.name)).toEqual(['intake', 'worker-1', 'worker-2']);
    // Each worker serves its health and metrics on a port of its own: WORKER_PORT, WORKER_PORT + 1.
    for (const port of [workerPort, workerPort + 1]) expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    two.service.child.kill('SIGTERM');
    expect(await two.service.exited).toBe(0);

    const one = await start({ SERVICE_WORKERS: '0' });
    expect(one.started.processes).toBeUndefined();
    expect(one.started).toMatchObject({ roles: { intake: true, worker: true } });
    const ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
    expect((await reply(one.started.url, ticket, 'one process')).status).toBe(201);
    one.service.child.kill('SIGTERM');
    expect(await one.service.exited).toBe(0);
  });
});
