// Hot tickets, drained: queue single commands over a few tickets with the intake only, then start
// one worker and time how fast it applies them (ledger finished_at span), beside the direct-SQL
// ceiling (one transaction per command) on the same tickets.
//
//   npm run build && tsx bench/hotDrain.ts --tickets 3 --commands 6000 [--dist ../other/dist]
//
// --dist runs another build's intake and worker (an earlier commit's) on the same database.
import { resolve } from 'node:path';
import { Command } from 'commander';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { directSqlRate, firstTickets } from './directSql.js';
import { spawnEntry, stopProcess, waitReady } from './service.js';
import { BENCH_KEY, BENCH_MYSQL, BENCH_REDIS, benchServiceEnv, createBenchDatabase, freshBench } from './setup.js';

const opts = new Command()
  .option('--tickets <n>', 'tickets the commands go to', '3')
  .option('--commands <n>', 'single commands queued before the worker starts', '6000')
  .option('--connections <n>', 'HTTP clients queuing them', '32')
  .option('--ceiling-commands <n>', 'commands for the direct-SQL ceiling (0: skip it)', '3000')
  .option('--direct-connections <n>', 'mysql2 connections for the ceiling', '8')
  .option('--dist <dir>', 'the build to run (its workers/intake.js and workers/worker.js)', 'dist')
  .option('--keep-database', 'reuse itflow_hot as it is (tickets made by an earlier run)')
  .parse()
  .opts<{
    tickets: string;
    commands: string;
    connections: string;
    ceilingCommands: string;
    directConnections: string;
    dist: string;
    keepDatabase?: boolean;
  }>();

const DATABASE = 'itflow_hot';
const PREFIX = 'rqhot';
const tickets = Number(opts.tickets);
const total = Number(opts.commands);
const env = benchServiceEnv(DATABASE, PREFIX, '18191');
const dist = resolve(opts.dist);

const url = opts.keepDatabase
  ? `${BENCH_MYSQL.replace(/\/$/, '')}/${DATABASE}`
  : await createBenchDatabase(BENCH_MYSQL, DATABASE, tickets);
let ceiling = Number.NaN;
if (Number(opts.ceilingCommands) > 0) {
  await freshBench(url, PREFIX);
  ceiling = await directSqlRate(url, Number(opts.ceilingCommands), firstTickets(tickets), Number(opts.directConnections));
}
await freshBench(url, PREFIX);

const intake = spawnEntry(`${dist}/workers/intake.js`, env);
await waitReady(`http://127.0.0.1:${env.PORT}`, 20_000);
let next = 0;
const queueStarted = performance.now();
await Promise.all(
  Array.from({ length: Number(opts.connections) }, async () => {
    while (next < total) {
      const i = next++;
      const response = await fetch(`http://127.0.0.1:${env.PORT}/api/v1/tickets/replies/create.php`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': BENCH_KEY },
        body: JSON.stringify({ ticket_id: (i % tickets) + 1, ticket_reply: `hot ${i}` }),
      });
      if (response.status !== 202) throw new Error(`answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    }
  }),
);
const queueSeconds = (performance.now() - queueStarted) / 1000;

const conn = await mysql.createConnection({ uri: url, dateStrings: true });
const workerStarted = Date.now();
const worker = spawnEntry(`${dist}/workers/worker.js`, { ...env, PORT: '18192' });
for (;;) {
  const [[row]] = (await conn.query('SELECT COUNT(*) AS n FROM rq_commands')) as unknown as [[{ n: number }]];
  if (Number(row.n) >= total) break;
  if (Date.now() - workerStarted > 300_000) throw new Error(`only ${row.n} of ${total} applied in 300 s`);
  await new Promise((r) => setTimeout(r, 50));
}
const drainSeconds = (Date.now() - workerStarted) / 1000;
// The jobs applied ahead are still delivered (and completed from memory): the queue empties later.
const redis = new Redis(BENCH_REDIS);
const lanes = Number(env.QUEUE_PARTITIONS ?? 32);
for (;;) {
  const pipeline = redis.pipeline();
  for (let lane = 0; lane < lanes; lane++) {
    const name = `replies-${String(lane).padStart(3, '0')}`;
    pipeline.llen(`${PREFIX}:${name}:wait`).llen(`${PREFIX}:${name}:active`);
  }
  const left = ((await pipeline.exec()) ?? []).reduce((sum, [, n]) => sum + Number(n), 0);
  if (left === 0) break;
  await new Promise((r) => setTimeout(r, 20));
}
const queueEmptySeconds = (Date.now() - workerStarted) / 1000;
redis.disconnect();
const [[span]] = (await conn.query(
  `SELECT TIMESTAMPDIFF(MICROSECOND, MIN(finished_at_utc), MAX(finished_at_utc)) / 1e6 AS s,
          COUNT(*) AS n, SUM(status <> 'applied') AS failed, COUNT(DISTINCT finished_at_utc) AS commits
   FROM rq_commands`,
)) as unknown as [[{ s: string; n: number; failed: string; commits: number }]];
const [[replies]] = (await conn.query('SELECT COUNT(*) AS n FROM ticket_replies')) as unknown as [[{ n: number }]];
await conn.end();
await stopProcess(worker, 'SIGTERM');
await stopProcess(intake, 'SIGTERM');

const applied = Number(span.n) / Number(span.s);
console.log(
  JSON.stringify({
    dist: opts.dist,
    tickets,
    commands: total,
    queuedPerSecond: Math.round(total / queueSeconds),
    ceilingPerSecond: Math.round(ceiling),
    appliedPerSecond: Math.round(applied),
    ratioToCeiling: Math.round((applied / ceiling) * 100) / 100,
    drainSecondsFromWorkerStart: Math.round(drainSeconds * 10) / 10,
    queueEmptySecondsFromWorkerStart: Math.round(queueEmptySeconds * 10) / 10,
    ledgerRows: Number(span.n),
    replies: Number(replies.n),
    failed: Number(span.failed),
    distinctCommitTimes: Number(span.commits),
  }),
);
process.exit(0);
