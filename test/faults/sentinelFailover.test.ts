import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import type { Generation } from '../../src/demo/itflowDatabase.js';
import { type Answer, type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE, ITFLOW_CREATE } from '../helpers/paths.js';
import { killLeftovers, type ServiceProcess, spawnEntry } from '../helpers/processes.js';
import { startSentinelGroup } from '../helpers/sentinel.js';

/**
 * The Redis primary dies (SIGKILL) while a client posts 2,000 commands with idempotency keys —
 * single create.php requests, bulk.php requests and ITFlow's own synchronous path — through an
 * intake and a worker started as processes against a Sentinel group of the test's own (one
 * primary, one replica, three sentinels; Debian's redis-server, the sentinels run as redis-server --sentinel). The client
 * retries everything that did not get a 2xx (503, 409, a broken connection) with the same
 * idempotency key until it does; the killed node comes back as a replica of the new primary, as
 * Sentinel would make it.
 *
 * Just before the kill the replica falls behind (its replication stream is held back for
 * BEHIND_MS) and so does the worker (stopped with SIGSTOP, a backlog): asynchronous replication
 * then loses what the primary acknowledged in that time — the case REDIS_MIN_REPLICAS_ACK is for.
 *
 * What must survive, with REDIS_MIN_REPLICAS_ACK=1: every command that got a 2xx is applied
 * exactly once (its reply is in ticket_replies once, its ledger row says applied), none is applied
 * twice, and the intake and the worker follow the failover by themselves. With the setting off,
 * the acknowledged commands lost are counted and printed, not asserted (how many depends on where
 * the kill falls); none may be applied twice either way.
 */

const COMMANDS = 2_000;
const BULK_ITEMS = 20;
const BULK_REQUESTS = 25; // 500 commands through bulk.php
const SYNC_COMMANDS = 100; // through ITFlow's own synchronous path
const CLIENTS = 24;
/** The client sends at most this many commands a second, so the failover falls in the middle of the run. */
const RATE = 200;
const TICKETS = 40;
/** The primary is killed once this share of the commands has been acknowledged… */
const KILL_AT = 0.3;
/** …after its replica and the worker have fallen behind for this long, in ms. */
const BEHIND_MS = 700;

interface Work {
  kind: 'create' | 'itflow' | 'bulk';
  items: Array<{ ticket_id: number; body: string }>;
}

interface RunResult {
  acknowledged: number;
  lost: number;
  duplicates: number;
  /** Acknowledged commands whose ledger row says applied. */
  ledgerApplied: number;
  answers: Record<string, number>;
  failoverMs: number;
  seconds: number;
}

/** One run: a fresh Sentinel group, an intake and a worker on it, the client, the kill. */
async function failoverRun(
  h: Harness,
  world: World,
  label: string,
  ports: { data: [number, number]; sentinels: [number, number, number] },
  minReplicas: number,
): Promise<RunResult> {
  const started = Date.now();
  const group = await startSentinelGroup({ dataPorts: ports.data, sentinelPorts: ports.sentinels, name: `rq${label}` });
  const processes: ServiceProcess[] = [];
  try {
    const env = h.processEnv({
      REDIS_SENTINELS: group.sentinels,
      REDIS_SENTINEL_NAME: group.name,
      REDIS_MIN_REPLICAS_ACK: String(minReplicas),
      AUTH_CACHE_SECONDS: '5',
      WORKER_LOCK_SECONDS: '2',
      LOG_LEVEL: 'warn',
    });
    const worker = spawnEntry('workers/worker.ts', env);
    const intake = spawnEntry('workers/intake.ts', { ...env, LOG_LEVEL: 'info' });
    processes.push(worker, intake);
    const url = JSON.parse(await intake.waitFor(/intake started/, 30_000)).url as string;

    const tickets = await Promise.all(
      Array.from({ length: TICKETS }, () => addTicket(h.db, h.generation, { clientId: world.clientA })),
    );
    const work = plan(label, tickets);
    const acknowledged = new Map<string, string>(); // body → command id
    const answers: Record<string, number> = {};
    let killing: Promise<void> | null = null;
    let failoverMs = 0;
    const kill = async () => {
      const primary = await group.primaryPort();
      await group.holdReplication();
      worker.child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, BEHIND_MS));
      const killedAt = Date.now();
      await group.kill(primary);
      worker.child.kill('SIGCONT');
      const next = await group.failedOver(primary);
      failoverMs = Date.now() - killedAt;
      await group.rejoin(primary, next);
    };

    const send = async (piece: Work): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        const answer = await post(url, piece, world.keys.all).catch(() => null);
        const status = answer?.status ?? 0;
        answers[status] = (answers[status] ?? 0) + 1;
        const ids = answer ? commandIds(piece, answer) : null;
        if (ids) {
          for (const [i, item] of piece.items.entries()) acknowledged.set(item.body, ids[i] as string);
          if (!killing && acknowledged.size >= COMMANDS * KILL_AT) {
            killing = kill();
            killing.catch(() => {}); // awaited once the client is done
          }
          return;
        }
        if (answer !== null && ![200, 202, 409, 503].includes(status)) {
          throw new Error(`unexpected ${status}: ${JSON.stringify(answer.body)}`);
        }
        if (attempt === 600) throw new Error(`no 2xx after ${attempt} tries: ${JSON.stringify(answer?.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    let next = 0;
    let scheduled = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < work.length) {
          const piece = work[next++] as Work;
          const due = t0 + (scheduled / RATE) * 1000;
          scheduled += piece.items.length;
          await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
          await send(piece);
        }
      }),
    );
    expect(killing, 'the primary was killed mid-run').not.toBeNull();
    await killing;

    await settled(h, tickets, acknowledged.size);
    const rows = await h.query(
      'SELECT ticket_reply, COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id IN (?) GROUP BY ticket_reply',
      [tickets],
    );
    const times = new Map(rows.map((r) => [String(r.ticket_reply), Number(r.n)]));
    const [ledger] = await h.query("SELECT COUNT(*) AS n FROM rq_commands WHERE status = 'applied' AND command_id IN (?)", [
      [...acknowledged.values()].map(idBytes),
    ]);
    return {
      acknowledged: acknowledged.size,
      lost: [...acknowledged.keys()].filter((body) => !times.has(body)).length,
      duplicates: [...times.values()].filter((n) => n > 1).reduce((sum, n) => sum + n - 1, 0),
      ledgerApplied: Number(ledger?.n),
      answers,
      failoverMs,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } catch (error) {
    // What the service said about it (its warnings and errors) makes a failure readable.
    for (const p of processes) {
      const lines = p.output().split('\n');
      const errors = lines.filter((line) => /"level":[56]0/.test(line));
      console.error([...errors.slice(0, 10), '…', ...lines.slice(-20)].join('\n'));
    }
    throw error;
  } finally {
    for (const p of processes) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await group.close();
  }
}

/** Each command has a body of its own ('<run>-<n>', its idempotency key too); bulk and synchronous requests spread among the single ones. */
function plan(label: string, tickets: number[]): Work[] {
  let n = 0;
  const item = () => {
    n++;
    return { ticket_id: tickets[n % tickets.length] as number, body: `${label}-${n}` };
  };
  const others: Work[] = [
    ...Array.from({ length: BULK_REQUESTS }, (): Work => ({ kind: 'bulk', items: Array.from({ length: BULK_ITEMS }, item) })),
    ...Array.from({ length: SYNC_COMMANDS }, (): Work => ({ kind: 'itflow', items: [item()] })),
  ];
  const singles = COMMANDS - BULK_ITEMS * BULK_REQUESTS - SYNC_COMMANDS;
  const every = Math.floor(singles / others.length);
  const work: Work[] = [];
  for (let i = 0; i < singles; i++) {
    work.push({ kind: 'create', items: [item()] });
    if (i % every === 0 && others.length > 0) work.push(others.splice(i % 2 === 0 ? 0 : -1, 1)[0] as Work);
  }
  return [...work, ...others];
}

function post(url: string, piece: Work, key: string): Promise<Answer> {
  const headers = { 'X-API-Key': key };
  if (piece.kind === 'bulk') {
    const items = piece.items.map((i) => ({ ticket_id: i.ticket_id, ticket_reply: i.body, idempotency_key: i.body }));
    return httpRequest(url, 'POST', BULK, items, headers);
  }
  const [one] = piece.items as [{ ticket_id: number; body: string }];
  if (piece.kind === 'itflow') {
    const body = { ticket_id: one.ticket_id, ticket_reply: one.body, ticket_reply_type: 'Internal' };
    return httpRequest(url, 'POST', ITFLOW_CREATE, body, { ...headers, 'Idempotency-Key': one.body, Prefer: 'wait=10' });
  }
  const body = { ticket_id: one.ticket_id, ticket_reply: one.body };
  return httpRequest(url, 'POST', CREATE, body, { ...headers, 'Idempotency-Key': one.body });
}

/** The command ids a 2xx acknowledged, one per item; null when the request must be sent again. */
function commandIds(piece: Work, answer: Answer): string[] | null {
  if (answer.status < 200 || answer.status > 299) return null;
  const ids = (answer.body.data as Array<{ command_id?: string }>).map((item) => item.command_id);
  // A bulk item refused on its own (409 while its first request is still being accepted): all again.
  return ids.length === piece.items.length && ids.every((id) => id !== undefined) ? (ids as string[]) : null;
}

/** Waits until the run's replies stop changing: all `expected` written, or none new for 3 s (lost ones never come). */
async function settled(h: Harness, tickets: number[], expected: number): Promise<void> {
  const deadline = Date.now() + 40_000;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const [row] = await h.query('SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_ticket_id IN (?)', [tickets]);
    const now = Number(row?.n);
    if (now >= expected || Date.now() > deadline) return;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since > 3_000) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe.each([
  ['2.6.7', 0],
  ['2.4.4', 20],
] as Array<[Generation, number]>)('a Redis Sentinel failover under load (ITFlow %s)', (generation, offset) => {
  let h: Harness;
  let world: World;
  const ports = (base: number) => ({
    data: [16400 + base + offset, 16401 + base + offset] as [number, number],
    sentinels: [26400 + base + offset, 26401 + base + offset, 26402 + base + offset] as [number, number, number],
  });

  beforeAll(async () => {
    h = await startHarness({ generation, roles: { intake: false, worker: false } });
    world = await seedWorld(h.db, generation);
  });
  afterEach(killLeftovers);
  afterAll(() => h?.close());

  it('with REDIS_MIN_REPLICAS_ACK=1: every command answered 2xx is applied exactly once', { timeout: 90_000 }, async () => {
    const result = await failoverRun(h, world, `on${offset}`, ports(0), 1);
    console.info(`Sentinel failover, REDIS_MIN_REPLICAS_ACK=1, ITFlow ${generation}:`, result);
    expect(result).toMatchObject({ acknowledged: COMMANDS, lost: 0, duplicates: 0, ledgerApplied: COMMANDS });
  });

  // The figure with the setting off is measured on the newest generation only (a minute of the
  // suite's time each); for 2.4.4 there is no such test, rather than a skipped one.
  if (generation === '2.6.7') {
    it('with it off: none applied twice, and the acknowledged commands lost are counted', { timeout: 90_000 }, async () => {
      const result = await failoverRun(h, world, `off${offset}`, ports(10), 0);
      console.info(`Sentinel failover, REDIS_MIN_REPLICAS_ACK=0 (off), ITFlow ${generation}:`, result);
      expect(result).toMatchObject({ acknowledged: COMMANDS, duplicates: 0 });
    });
  }
});
