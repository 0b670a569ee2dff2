import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idText } from '../../src/apply/ledger.js';
import { addWebhook } from '../../src/cli/webhooks.js';
import { serviceTables } from '../../src/db/tables.js';
import type { Generation } from '../../src/demo/itflowDatabase.js';
import { ImportTraffic } from '../../src/queue/imports.js';
import { redisKeys } from '../../src/queue/keys.js';
import { laneName, laneOf } from '../../src/queue/lanes.js';
import { readQueues } from '../../src/queue/overview.js';
import { createRedis, primaries, type RedisClient, redisReady } from '../../src/queue/redis.js';
import { expectExactlyOnce, type Sent, sendRound, waitForLedger } from '../helpers/faults.js';
import { type Harness, httpRequest, startHarness } from '../helpers/harness.js';
import { importFile } from '../helpers/imports.js';
import { addKey, addTicket, repliesOf, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, COMMANDS, CREATE, READ } from '../helpers/paths.js';
import { killLeftovers, spawnEntry } from '../helpers/processes.js';
import { Receiver, signatureMatches } from '../helpers/receiver.js';
import { type LocalCluster, startRedisCluster } from '../helpers/redisCluster.js';

// The service on a Redis Cluster (REDIS_CLUSTER_NODES): three primaries, each with a replica, made
// by this file on ports 17000–17005 (cluster bus 27000–27005). Everything a client does works as
// on one server, on both ITFlow generations — single and bulk commands, Prefer: wait, idempotency
// keys, external ids, read-your-writes, rate limits, commands.php, a locked ticket's commands
// parked and drained in order, completion and import webhooks, the dashboard's and the
// operator's `queues` — and the keys are laid out for the
// cluster: every lane's keys in one slot, the lanes over more than one shard. REDIS_URL points
// where nothing listens: in cluster mode only its credentials count.

const FIRST_PORT = 17000;
const NOWHERE = 'redis://127.0.0.1:17099';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: LocalCluster;
/** Each generation's queue prefix, to check nothing of it is left once its harness closed. */
const prefixes: string[] = [];
beforeAll(async () => {
  cluster = await startRedisCluster({ firstPort: FIRST_PORT, primaries: 3, replicasEach: 1 });
}, 60_000);
afterAll(async () => {
  killLeftovers();
  await cluster?.stop();
});

describe.each(['2.4.4', '2.6.7'] as Generation[])('on a Redis Cluster (ITFlow %s)', (generation) => {
  let h: Harness;
  let world: World;
  let redis: RedisClient;
  beforeAll(async () => {
    h = await startHarness({ generation, env: { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_URL: NOWHERE } });
    prefixes.push(h.config.QUEUE_PREFIX);
    world = await seedWorld(h.db, generation);
    redis = createRedis(h.config, 'blocking', 'cluster-test');
    await redisReady(redis);
  });
  afterAll(async () => {
    redis?.disconnect();
    await h?.close();
  });
  const lanes = () => h.config.QUEUE_PARTITIONS;
  /** Tickets, one in each of `count` different lanes. */
  const ticketsInLanes = async (count: number) => {
    const byLane = new Map<number, number>();
    while (byLane.size < count) {
      const ticket = await addTicket(h.db, generation, { clientId: world.clientA });
      byLane.set(laneOf(ticket, lanes()), ticket);
    }
    return [...byLane.values()];
  };

  it('a command is queued (202) and applied; with Prefer: wait the answer is 201 with its reply id', async () => {
    const [ticket] = (await ticketsInLanes(1)) as [number];
    const queued = await h.post(CREATE, { ticket_id: ticket, ticket_reply: 'Queued on a cluster' }, { key: world.keys.all });
    expect(queued.status).toBe(202);
    expect((await h.finished(queued.body.data[0].command_id)).status).toBe('applied');
    const waited = await h.post(
      CREATE,
      { ticket_id: ticket, ticket_reply: 'Waited for on a cluster', status: 3 },
      { key: world.keys.all, headers: { Prefer: 'wait=10' } },
    );
    expect(waited.status).toBe(201);
    const replies = await repliesOf(h.db, ticket);
    expect(replies.map((r) => r.ticket_reply)).toEqual(['Queued on a cluster', 'Waited for on a cluster']);
    expect(waited.body.data[0].insert_id).toBe(replies[1]?.ticket_reply_id);
  });

  it('bulk.php spreads its commands over the lanes, each applied once and in order; an import is recorded', async () => {
    const tickets = await ticketsInLanes(lanes());
    const items = [1, 2, 3].flatMap((n) =>
      tickets.map((ticketId) => ({ ticket_id: ticketId, ticket_reply: `t${ticketId} #${n}` })),
    );
    const answer = await h.post(BULK, items, {
      key: world.keys.all,
      headers: { 'X-Import-Id': '0123456789abcdef', 'X-Import-File': 'history.ndjson', 'X-Import-Lines': String(items.length) },
    });
    expect(answer.status).toBe(202);
    const sent: Sent[] = items.map((item, i) => ({
      commandId: answer.body.data[i].command_id,
      ticketId: item.ticket_id,
      body: item.ticket_reply,
    }));
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      15_000,
    );
    await expectExactlyOnce(h, sent);
    const [record] = await new ImportTraffic(redis, h.config.QUEUE_PREFIX).recent(5);
    expect(record).toMatchObject({ importId: '0123456789abcdef', file: 'history.ndjson', requests: 1, queued: items.length });
  });

  it('webhooks from a cluster: each applied command and the import that carried them are delivered, signed; the dashboard reads every lane', async () => {
    const receiver = await new Receiver().start();
    try {
      const key = await addKey(h.db, generation, { name: 'Cluster bridge', owner: world.author });
      const [row] = await h.query('SELECT api_key_id FROM api_keys WHERE api_key_secret = ?', [key]);
      const hook = await addWebhook(h.db, serviceTables(h.config), h.config, {
        apiKeyId: Number(row?.api_key_id),
        url: receiver.url,
        events: ['command.applied', 'import.finished'],
      });
      // An import as the CLI sends it: bulk.php with the import's headers and a key per line.
      const tickets = await ticketsInLanes(4);
      const items = tickets.map((ticketId) => ({ ticket_id: ticketId, ticket_reply: `Imported on a cluster, t${ticketId}` }));
      const file = join(mkdtempSync(join(tmpdir(), 'rq-cluster-import-')), 'cluster.ndjson');
      writeFileSync(file, `${items.map((item) => JSON.stringify(item)).join('\n')}\n`);
      const summary = await importFile({
        file,
        format: 'ndjson',
        url: h.url,
        apiKey: key,
      });
      expect(summary).toMatchObject({ read: items.length, queued: items.length, applied: items.length });
      const applied = await h.query('SELECT command_id FROM rq_commands WHERE api_key_id = ? AND status = ?', [
        Number(row?.api_key_id),
        'applied',
      ]);
      const commandIds = applied.map((r) => idText(r.command_id));
      const ofType = (type: string) => receiver.events().filter((event) => event.type === type);
      await receiver.waitFor(
        () => ofType('import.finished').length > 0 && new Set(ofType('command.applied').map((e) => e.id)).size === items.length,
        20_000,
        'a command.applied for each command and the import.finished',
      );
      expect(commandIds).toHaveLength(items.length);
      expect(new Set(ofType('command.applied').map((event) => event.data.command_id))).toEqual(new Set(commandIds));
      expect(ofType('import.finished')[0]?.data).toMatchObject({
        file: 'cluster.ndjson',
        lines: items.length,
        applied: items.length,
      });
      for (const delivery of receiver.received) expect(signatureMatches(hook.secret, delivery)).toBe(true);
    } finally {
      await receiver.stop();
    }
    const queues = await h.get('/dashboard/api/queues', { key: world.keys.all });
    expect(queues.status).toBe(200);
    expect(queues.body.deepest).toHaveLength(8);
    expect(queues.body.kinds).toEqual({ single: 0, chunks: 0 });
  });

  it('an idempotency key sent twice is one command, and an external_id names its reply', async () => {
    const [ticket] = (await ticketsInLanes(1)) as [number];
    const body = { ticket_id: ticket, ticket_reply: 'Sent twice' };
    const headers = { 'Idempotency-Key': `twice-${generation}` };
    const first = await h.post(CREATE, body, { key: world.keys.all, headers });
    const again = await h.post(CREATE, body, { key: world.keys.all, headers });
    expect(again.body.data[0].command_id).toBe(first.body.data[0].command_id);
    // A bulk item reusing the key is the same command too (its claim goes through a pipeline).
    const bulk = await h.post(
      BULK,
      [
        { ...body, idempotency_key: `twice-${generation}` },
        { ticket_id: ticket, ticket_reply: 'Once' },
      ],
      {
        key: world.keys.all,
      },
    );
    expect(bulk.body.data[0].command_id).toBe(first.body.data[0].command_id);

    const external = { ticket_id: ticket, ticket_reply: 'From the chat bridge', external_id: `chat-${generation}` };
    const made = await h.post(CREATE, external, { key: world.keys.all, headers: { Prefer: 'wait=10' } });
    expect(made.status).toBe(201);
    const repeated = await h.post(CREATE, external, { key: world.keys.all });
    expect(repeated.body.data[0].insert_id).toBe(made.body.data[0].insert_id);
    const found = await h.get(`${READ}?external_id=chat-${generation}`, { key: world.keys.all });
    expect(found.body.data.map((r: { ticket_reply: string }) => r.ticket_reply)).toEqual(['From the chat bridge']);

    await waitForLedger(h, [first.body.data[0].command_id, bulk.body.data[1].command_id], 10_000);
    expect((await repliesOf(h.db, ticket)).map((r) => r.ticket_reply)).toEqual(['Sent twice', 'Once', 'From the chat bridge']);
  });

  it('a locked ticket’s commands are parked — pending for read.php, queued for commands.php — and applied in order once it is free', async () => {
    const [locked, ...free] = (await ticketsInLanes(4)) as [number, ...number[]];
    const holder = await mysql.createConnection({ uri: h.config.DATABASE_URL });
    await holder.query('START TRANSACTION');
    await holder.query('SELECT ticket_id FROM tickets WHERE ticket_id = ? FOR UPDATE', [locked]);
    const sent: Sent[] = [];
    try {
      for (let n = 1; n <= 3; n++) sent.push(...(await sendRound(h, world.keys.all, [locked, ...free], n, n === 2)));
      const freeSent = sent.filter((s) => s.ticketId !== locked);
      await waitForLedger(
        h,
        freeSent.map((s) => s.commandId),
        10_000,
      );
      const lockedSent = sent.filter((s) => s.ticketId === locked);
      let view = await readQueues(redis, h.config.QUEUE_PREFIX, lanes());
      for (let i = 0; i < 30 && view.parked.commands < lockedSent.length; i++) {
        await sleep(100);
        view = await readQueues(redis, h.config.QUEUE_PREFIX, lanes());
      }
      expect(view.parked).toEqual({ tickets: 1, commands: lockedSent.length });
      // Parked beside its lane: the ticket's list in the slot of the lane's BullMQ keys.
      const lane = laneName(laneOf(locked, lanes()), 'cluster');
      const keys = redisKeys(h.config.QUEUE_PREFIX, 'cluster');
      const slot = (key: string) => cluster.cli(FIRST_PORT, 'CLUSTER', 'KEYSLOT', key);
      expect(await slot(keys.parkedCommands(lane, locked))).toBe(await slot(keys.laneWait(lane)));
      expect(await redis.llen(keys.parkedCommands(lane, locked))).toBe(lockedSent.length);

      const pending = await h.get(`${READ}?ticket_id=${locked}&include_pending=1`, { key: world.keys.all });
      expect(pending.status).toBe(200);
      expect(pending.body.data.map((r: { command_id: string; pending: boolean }) => [r.command_id, r.pending])).toEqual(
        lockedSent.map((s) => [s.commandId, true]).reverse(),
      );
      const status = await h.get(`${COMMANDS}?command_id=${lockedSent[0]?.commandId}`, { key: world.keys.all });
      expect(status.body.data[0]).toMatchObject({ status: 'queued', waiting_for: 'ticket_lock' });
      const many = await h.post(
        COMMANDS,
        { command_ids: [freeSent[0]?.commandId, lockedSent[0]?.commandId] },
        { key: world.keys.all },
      );
      expect(many.body.data.map((r: { status: string }) => r.status)).toEqual(['applied', 'unfinished']);
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    await waitForLedger(
      h,
      sent.map((s) => s.commandId),
      10_000,
    );
    await expectExactlyOnce(h, sent);
    expect((await readQueues(redis, h.config.QUEUE_PREFIX, lanes())).parked).toEqual({ tickets: 0, commands: 0 });
  });

  it('rate limits hold on the cluster: past a small per-key limit, 429 with Retry-After', async () => {
    // An intake of its own with a limit of 3 a minute per key (the per-IP limit on too), and a key
    // no earlier request used.
    const limited = await h.startPeer(
      { intake: true, worker: false },
      { RATE_LIMIT_PER_KEY_PER_MINUTE: '3', RATE_LIMIT_PER_IP_PER_MINUTE: '100000' },
    );
    const key = await addKey(h.db, generation, { name: 'Rate limited', owner: generation === '2.4.4' ? 0 : world.author });
    const [ticket] = (await ticketsInLanes(1)) as [number];
    const answers = [];
    for (let n = 1; n <= 5; n++) {
      answers.push(
        await httpRequest(
          limited.url as string,
          'POST',
          CREATE,
          { ticket_id: ticket, ticket_reply: `limited #${n}` },
          { 'X-API-Key': key },
        ),
      );
    }
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 429, 429]);
    expect(Number(answers[3]?.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  if (generation === '2.6.7') {
    it('`cli queues` reads every lane on the cluster; each lane’s keys are in one slot, the lanes on more than one shard', async () => {
      const run = spawnEntry('workers/cli.ts', h.processEnv({ LOG_LEVEL: 'silent' }), ['queues', '--json']);
      expect(await run.exited).toBe(0);
      const view = JSON.parse(
        run
          .output()
          .split('\n')
          .find((line) => line.startsWith('{')) as string,
      );
      expect(view).toMatchObject({ prefix: h.config.QUEUE_PREFIX, lanes: lanes(), recordedLanes: lanes(), deadLetters: 0 });

      // Each primary's keys of this queue, by the lane they belong to.
      const lanesOnShard = new Map<string, Set<string>>();
      for (const server of primaries(redis)) {
        const where = `${server.options.host}:${server.options.port}`;
        for (let cursor = '0'; ; ) {
          const [next, found] = await server.scan(cursor, 'MATCH', `${h.config.QUEUE_PREFIX}:*`, 'COUNT', 1000);
          for (const key of found) {
            const tag = /\{(replies-\d{3})\}/.exec(key)?.[1];
            if (tag) lanesOnShard.set(tag, new Set([...(lanesOnShard.get(tag) ?? []), where]));
          }
          cursor = next;
          if (cursor === '0') break;
        }
      }
      expect(lanesOnShard.size).toBe(lanes());
      for (const [lane, shards] of lanesOnShard) expect([lane, shards.size]).toEqual([lane, 1]);
      const shards = new Set([...lanesOnShard.values()].flatMap((s) => [...s]));
      expect(shards.size).toBeGreaterThan(1);
      console.info(`${lanes()} lanes over ${shards.size} shards of the cluster`);
    });

    it('a primary killed: its replica takes over, and every lane takes and applies commands again (clients retry 503s with their keys)', async () => {
      const tickets = await ticketsInLanes(lanes());
      const victim = FIRST_PORT;
      expect(await cluster.primaryPorts()).toContain(victim);
      const killedAt = Date.now();
      await cluster.kill(victim);
      const statuses = new Map<number, number>();
      const sent = await Promise.all(
        tickets.map(async (ticketId): Promise<Sent> => {
          const body = { ticket_id: ticketId, ticket_reply: `t${ticketId} #1` };
          for (;;) {
            const answer = await h.post(CREATE, body, {
              key: world.keys.all,
              headers: { 'Idempotency-Key': `failover-${ticketId}` },
            });
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            if (answer.status === 202) return { commandId: answer.body.data[0].command_id, ticketId, body: body.ticket_reply };
            if (answer.status !== 503 || Date.now() - killedAt > 30_000)
              throw new Error(`${answer.status} ${JSON.stringify(answer.body)}`);
            await sleep(200);
          }
        }),
      );
      const acceptedAfter = Date.now() - killedAt;
      await waitForLedger(
        h,
        sent.map((s) => s.commandId),
        30_000,
      );
      await expectExactlyOnce(h, sent);
      // Completion notices reach a waiting client again (the intake's subscription follows the cluster).
      const waited = await h.post(
        CREATE,
        { ticket_id: tickets[0], ticket_reply: 'Waited for after the failover' },
        { key: world.keys.all, headers: { Prefer: 'wait=10' } },
      );
      expect(waited.status).toBe(201);
      const primaries = await cluster.primaryPorts();
      expect(primaries).toHaveLength(3);
      expect(primaries).not.toContain(victim);
      console.info(
        `primary ${victim} killed: every lane accepting again after ${acceptedAfter} ms, applying after ${Date.now() - killedAt} ms; answers ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
    }, 60_000);
  }
});

describe('after the services stopped', () => {
  it('deleting a queue prefix (the harness’s cleanup, the demo’s --reset) empties it on every primary', async () => {
    expect(prefixes).toHaveLength(2);
    for (const port of await cluster.primaryPorts()) {
      for (const prefix of prefixes) expect(await cluster.cli(port, '--scan', '--pattern', `${prefix}:*`)).toBe('');
    }
  });
});
