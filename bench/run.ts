import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { HandlerError } from '../conformance/browser.js';
import { CannotRun } from '../conformance/php.js';
import { GENERATIONS } from '../src/demo/itflowDatabase.js';
import { type BareSetup, bareUnavailable, redisWithDatabase } from './bare.js';
import { directSqlRate, firstTickets } from './directSql.js';
import { runImport } from './importRun.js';
import { type ItflowPathResult, itflowJson, itflowPathScenario, itflowTableRow } from './itflowPath.js';
import { type LoadResult, runLoad } from './load.js';
import {
  type BenchContext,
  type BulkRun,
  type BulkShape,
  bulkOnBare,
  bulkOnService,
  type Ledger,
  onFreshService,
  type SingleRun,
  type SingleShape,
  singleOnBare,
  singleOnService,
} from './measure.js';
import { readScenario } from './read.js';
import { type BenchRow, fmt, type ResultSection, tableRow, workRow, writeResults } from './results.js';
import { type ScalingRun, scalingScenario, scalingTable } from './scaling.js';
import { SERVICE_TOPOLOGIES, startBenchService, type Topology, waitForLedger } from './service.js';
import {
  BENCH_KEY,
  BENCH_MYSQL,
  BENCH_REDIS,
  benchServiceEnv,
  createBenchDatabase,
  freshBench,
  percentile,
  tuningFromEnvironment,
} from './setup.js';
import { WorkMeter } from './work.js';

/**
 * `npm run bench`: the service, the same machine's direct-SQL ceiling and the bare pipeline of
 * ../shared/ceiling/ under the same loads, measured in one run, so the results read as ratios
 * (service ÷ ceiling, service ÷ bare) rather than absolute times.
 *
 * Scenarios:
 * - pipeline: single commands over HTTP with the intake and the worker running together, as in
 *   production (the headline figures: accepted/s, latency, applied/s, lag), and the bare
 *   pipeline under the same load.
 * - phases: the intake alone under the same load (no worker), then the worker alone draining
 *   the backlog it left: each side's capacity without the other competing for the CPU.
 * - bulk: replies through bulk.php, 1,000 items a request, 4 in flight, as fast as they are
 *   taken; the bare pipeline's /bulk the same way.
 * - historical: a bulk import of old comments through bulk.php (20,000 replies with their
 *   created_at over 2,000 tickets, 1,000 a request, 4 in flight), on the bare pipeline and the service.
 * - import: the CLI importing a file of 1,000,000 historical replies over 10,000 tickets,
 *   waiting until all are applied; its peak memory (VmHWM) is reported.
 * - steady: accept-to-applied lag at half of the maximum throughput measured earlier in the
 *   run (single commands at a fixed rate, and bulk requests paced the same way).
 * - hot: single commands over only the first 3 tickets at c=32, against a direct-SQL ceiling
 *   measured on those 3 tickets, then paced at half that ceiling for the lag.
 * - read: read.php over 1,000,000 replies in both ITFlow generations (see bench/read.ts).
 * - itflow: ITFlow's own synchronous reply endpoint (api/v1/ticket_replies/create.php) on a real
 *   ITFlow install (--itflow DIR), answered by ITFlow's PHP and by the service on the same
 *   tickets, spread and hot, at c=8 and c=32 (see bench/itflowPath.ts).
 * - scaling: one intake process and 1, 2 and 4 worker processes (--scaling-workers), each count
 *   under live load and draining a filled queue, with the work per command (statements, commands
 *   per COMMIT, row lock waits, Redis commands, CPU) behind docs/scaling.md (see bench/scaling.ts).
 */
const ALL_SCENARIOS = 'pipeline,phases,bulk,historical,import,steady,hot,read,itflow,scaling';
const program = new Command('bench')
  .option('--scenarios <list>', ALL_SCENARIOS, ALL_SCENARIOS)
  .option('--bulk-total <n>', 'replies sent through bulk.php', '200000')
  .option('--historical-total <n>', 'historical replies (with created_at) sent through bulk.php', '20000')
  .option('--import-lines <n>', 'lines in the CLI import file', '1000000')
  .option('--steady-rate <n>', 'single commands/s for the steady scenario (default: half the pipeline maximum)')
  .option('--steady-bulk-rate <n>', 'bulk items/s for the steady scenario (default: half the bulk maximum)')
  .option('--seconds <n>', 'seconds of HTTP load per scenario', '15')
  .option('--connections <list>', 'HTTP client connections, comma separated', '1,8,32')
  .option('--tickets <n>', 'tickets the commands are spread over', '10000')
  .option('--hot-tickets <n>', 'tickets the hot scenario goes round (the first n)', '3')
  .option('--hot-connections <n>', 'HTTP client connections in the hot scenario', '32')
  .option('--hot-rate <n>', 'commands/s of the paced hot run (default: half the direct-SQL ceiling on the hot tickets)')
  .option('--commands <n>', 'commands for each direct-SQL ceiling', '20000')
  .option('--direct-connections <n>', 'mysql2 connections for the direct-SQL ceiling', '8')
  .option(
    '--topology <list>',
    'start (npm start as it is), single (its one-process mode), split (intake and worker started by the bench); several: start,single',
    'start',
  )
  .option('--ceiling-dir <dir>', "the bare pipeline's folder (pipeline.mjs), relative to the repository", '../shared/ceiling')
  .option('--ceiling-redis-db <n>', "the Redis database index of the bare pipeline's queue", '12')
  .option('--ceiling-port <n>', "the bare pipeline's HTTP port", '18999')
  .option('--itflow <dir>', 'an ITFlow ≥ 2.4.7 checkout for the itflow scenario (without it, itflow is skipped)')
  .option('--php-workers <n>', "PHP_CLI_SERVER_WORKERS of ITFlow's php -S in the itflow scenario", '4')
  .option('--itflow-tickets <n>', 'spread tickets of the itflow scenario (its hot ones: --hot-tickets)', '2000')
  .option('--itflow-connections <list>', 'HTTP client connections of the itflow scenario, comma separated', '8,32')
  .option('--itflow-port <n>', "the service's port in the itflow scenario (its worker's: the next one)", '18271')
  .option('--keep', "keep the itflow scenario's scratch ITFlow database and copy")
  .option('--scaling-workers <list>', 'worker process counts of the scaling scenario, comma separated', '1,2,4')
  .option('--scaling-connections <n>', 'HTTP client connections of the scaling scenario', '32')
  .option(
    '--port <n>',
    "the service's port (a separate worker's health port is the next one, the scaling scenario's the next ones)",
    '18181',
  )
  .option('--database <name>', 'the bench database (created afresh, dropped by nothing)', 'itflow_bench')
  .option('--prefix <prefix>', "the service's QUEUE_PREFIX in the bench", 'rqbench')
  .option('--out <dir>', 'where the JSON and Markdown results go', 'bench/results')
  .parse();
const opts = program.opts<{
  scenarios: string;
  bulkTotal: string;
  historicalTotal: string;
  importLines: string;
  steadyRate?: string;
  steadyBulkRate?: string;
  seconds: string;
  connections: string;
  tickets: string;
  hotTickets: string;
  hotConnections: string;
  hotRate?: string;
  commands: string;
  directConnections: string;
  topology: string;
  ceilingDir: string;
  ceilingRedisDb: string;
  ceilingPort: string;
  itflow?: string;
  phpWorkers: string;
  itflowTickets: string;
  itflowConnections: string;
  itflowPort: string;
  keep?: boolean;
  scalingWorkers: string;
  scalingConnections: string;
  port: string;
  database: string;
  prefix: string;
  out: string;
}>();

const DATABASE = opts.database;
const PREFIX = opts.prefix;
const tickets = Number(opts.tickets);
const hotTickets = Number(opts.hotTickets);
const directConnections = Number(opts.directConnections);
const topologies = opts.topology.split(',') as Topology[];
for (const t of topologies) {
  if (!(SERVICE_TOPOLOGIES as readonly string[]).includes(t))
    throw new Error(`--topology: ${t} is not one of ${SERVICE_TOPOLOGIES.join(', ')}`);
}
const tuning = Object.entries(tuningFromEnvironment()).map(([name, value]) => `${name}=${value}`);
if (tuning.length > 0) console.log(`Service tuning: ${tuning.join(' ')}`);

const rows: BenchRow[] = [];
const scenarios = new Set(opts.scenarios.split(','));
const writes = ['pipeline', 'phases', 'bulk', 'historical', 'import', 'steady', 'hot', 'scaling'].some((s) => scenarios.has(s));
/** The best applied/s each topology reached in this run, for the steady scenario's half-rate. */
const best = new Map<Topology, { single: number; bulk: number }>(topologies.map((t) => [t, { single: 0, bulk: 0 }]));
const ceiling = { spread: Number.NaN, hot: Number.NaN };
const startedAt = new Date();
let ctx: BenchContext | null = null;

if (writes) {
  console.log(`Creating ${DATABASE} with ${tickets} tickets…`);
  const databaseUrl = await createBenchDatabase(BENCH_MYSQL, DATABASE, tickets);
  ctx = {
    databaseUrl,
    prefix: PREFIX,
    serviceEnv: benchServiceEnv(DATABASE, PREFIX, opts.port),
    bare: bareSetup(databaseUrl),
    seconds: Number(opts.seconds),
    meter: await WorkMeter.open(databaseUrl, BENCH_REDIS),
  };
  console.log(
    `Direct SQL: ${opts.commands} replies over ${fmt(tickets)} tickets, one transaction each, ${directConnections} connections…`,
  );
  ceiling.spread = await directSqlRate(databaseUrl, Number(opts.commands), firstTickets(tickets), directConnections);
  rows.push(ceilingRow(`over ${fmt(tickets)} tickets`, ceiling.spread));
  if (scenarios.has('hot')) {
    console.log(`Direct SQL: ${opts.commands} replies over the first ${hotTickets} tickets, the same way…`);
    ceiling.hot = await directSqlRate(databaseUrl, Number(opts.commands), firstTickets(hotTickets), directConnections);
    rows.push(ceilingRow(`over ${hotTickets} hot tickets`, ceiling.hot));
  }
}

/** The bare pipeline's settings, or null (said in one line) when it cannot run here. */
function bareSetup(databaseUrl: string): BareSetup | null {
  const dir = resolve(opts.ceilingDir);
  const unavailable = bareUnavailable(dir, BENCH_MYSQL);
  if (unavailable) {
    console.log(unavailable);
    return null;
  }
  return {
    dir,
    database: DATABASE,
    databaseUrl,
    redisUrl: redisWithDatabase(BENCH_REDIS, Number(opts.ceilingRedisDb)),
    port: Number(opts.ceilingPort),
  };
}

function ceilingRow(over: string, perSecond: number): BenchRow {
  return {
    scenario: `direct SQL ceiling ${over}`,
    system: `direct SQL, 1 txn/command, ${directConnections} conns`,
    appliedPerSecond: perSecond,
    ceilingPerSecond: perSecond,
  };
}

function lagFigures(ledger: Ledger | undefined): Partial<BenchRow> {
  if (!ledger) return {};
  return { lagP50Ms: percentile(ledger.lags, 50), lagP99Ms: percentile(ledger.lags, 99), failed: ledger.failed };
}

function acceptFigures(result: LoadResult): Partial<BenchRow> {
  return {
    generator: result.generator,
    acceptedPerSecond: result.ok / result.seconds,
    acceptP50Ms: result.p50,
    acceptP99Ms: result.p99,
    notAccepted: result.requests - result.ok,
  };
}

/** A row of single commands; a paced run (offered below the maximum) has no ceiling to be read against. */
function singleRow(scenario: string, system: string, run: SingleRun, ceilingPerSecond?: number, bare?: SingleRun): BenchRow {
  return {
    scenario,
    system,
    ...acceptFigures(run.result),
    appliedPerSecond: run.appliedPerSecond,
    ...lagFigures(run.ledger),
    ...(ceilingPerSecond === undefined ? {} : { ceilingPerSecond }),
    ...(bare ? { bare: { appliedPerSecond: bare.appliedPerSecond, acceptP99Ms: bare.result.p99 } } : {}),
    work: run.work,
  };
}

function bulkRow(scenario: string, system: string, run: BulkRun, ceilingPerSecond?: number, bare?: BulkRun): BenchRow {
  return {
    scenario,
    system,
    acceptedPerSecond: run.accepted / run.seconds,
    appliedPerSecond: run.appliedPerSecond,
    ...lagFigures(run.ledger),
    notAccepted: run.failed,
    ...(ceilingPerSecond === undefined ? {} : { ceilingPerSecond }),
    ...(bare ? { bare: { appliedPerSecond: bare.appliedPerSecond } } : {}),
    work: run.work,
  };
}

/** The same single-command load on the bare pipeline (when it runs here), then on each topology. */
async function singleScenario(
  context: BenchContext,
  scenario: string,
  shape: SingleShape,
  ceilingPerSecond: number,
): Promise<Map<Topology, SingleRun>> {
  let bare: SingleRun | undefined;
  if (context.bare) {
    console.log(`${scenario}: the bare pipeline…`);
    bare = await singleOnBare(context, shape);
    rows.push(singleRow(scenario, 'bare pipeline', bare, ceilingPerSecond));
  }
  const runs = new Map<Topology, SingleRun>();
  for (const topology of topologies) {
    console.log(`${scenario}: the service (${topology})…`);
    const run = await singleOnService(context, topology, shape);
    runs.set(topology, run);
    rows.push(singleRow(scenario, topology, run, ceilingPerSecond, bare));
  }
  return runs;
}

/** A bulk.php load on the bare pipeline and on each topology, each row against the spread ceiling; the service's runs by topology. */
async function bulkScenario(context: BenchContext, scenario: string, shape: BulkShape): Promise<Map<Topology, BulkRun>> {
  let bare: BulkRun | undefined;
  if (context.bare) {
    console.log(`${scenario}: the bare pipeline…`);
    bare = await bulkOnBare(context, shape);
    rows.push(bulkRow(scenario, 'bare pipeline', bare, ceiling.spread));
  }
  const runs = new Map<Topology, BulkRun>();
  for (const topology of topologies) {
    console.log(`${scenario}: the service (${topology})…`);
    const run = await bulkOnService(context, topology, shape);
    runs.set(topology, run);
    rows.push(bulkRow(scenario, topology, run, ceiling.spread, bare));
  }
  return runs;
}

if (ctx && scenarios.has('bulk')) {
  const shape = { total: Number(opts.bulkTotal), perRequest: 1000, inFlight: 4, tickets };
  const runs = await bulkScenario(ctx, `bulk, ${fmt(shape.total)} items, 1,000 a request, 4 in flight`, shape);
  for (const [topology, run] of runs) {
    const topBest = best.get(topology)!;
    topBest.bulk = Math.max(topBest.bulk, run.appliedPerSecond);
  }
}

if (ctx && scenarios.has('historical')) {
  const shape = { total: Number(opts.historicalTotal), perRequest: 1000, inFlight: 4, tickets: Math.min(2000, tickets) };
  await bulkScenario(
    ctx,
    `historical import, ${fmt(shape.total)} replies with created_at over ${fmt(shape.tickets)} tickets, bulk.php`,
    { ...shape, historical: true },
  );
}

if (ctx && scenarios.has('import')) {
  const lines = Number(opts.importLines);
  for (const topology of topologies) {
    console.log(`Import (${topology}): the CLI importing ${fmt(lines)} historical replies over ${fmt(tickets)} tickets…`);
    const {
      driven: run,
      ledger,
      work,
    } = await onFreshService(
      ctx,
      topology,
      (service) => runImport(service.url, lines, tickets),
      (run) => run.summary.queued,
    );
    rows.push({
      scenario: `CLI import, ${fmt(lines)} lines (client peak RSS ${fmt(run.peakRssMiB)} MiB)`,
      system: topology,
      appliedPerSecond: run.summary.applied / run.summary.elapsedSeconds,
      ...lagFigures(ledger),
      notAccepted: run.summary.rejected,
      ceilingPerSecond: ceiling.spread,
      work,
    });
  }
}

const connectionCounts = opts.connections.split(',').map(Number);
for (const connections of ctx && scenarios.has('pipeline') ? connectionCounts : []) {
  const runs = await singleScenario(ctx!, `single commands, c=${connections}`, { connections, tickets }, ceiling.spread);
  for (const [topology, run] of runs) {
    const topBest = best.get(topology)!;
    topBest.single = Math.max(topBest.single, run.appliedPerSecond);
  }
}

// Each side's capacity alone: measured once, at the most connections.
if (ctx && scenarios.has('phases')) {
  const connections = Math.max(...connectionCounts);
  await freshBench(ctx.databaseUrl, PREFIX);
  const intake = await startBenchService('intake', ctx.serviceEnv);
  console.log(`Phases: the intake alone for ${opts.seconds}s at ${connections} connections, then a worker drains…`);
  const options = { url: `${intake.url}/api/v1/tickets/replies/create.php`, key: BENCH_KEY, connections, tickets };
  const warmup = await runLoad({ ...options, seconds: 2 });
  const result = await runLoad({ ...options, seconds: Number(opts.seconds) });
  const sent = warmup.ok + result.ok;
  await intake.stop();
  rows.push({ scenario: `intake alone, c=${connections}`, system: 'intake', ...acceptFigures(result) });
  const started = Date.now();
  const worker = await startBenchService('worker', ctx.serviceEnv);
  const ledger = await waitForLedger(ctx.databaseUrl, sent, 600_000);
  const drainSeconds = (Date.now() - started) / 1000;
  await worker.stop();
  rows.push({
    scenario: `worker alone draining ${fmt(sent)} commands (incl. start-up)`,
    system: 'worker',
    appliedPerSecond: sent / drainSeconds,
    failed: ledger.failed,
    ceilingPerSecond: ceiling.spread,
  });
}

if (ctx && scenarios.has('hot')) {
  const connections = Number(opts.hotConnections);
  await singleScenario(ctx, `hot: ${hotTickets} tickets, c=${connections}`, { connections, tickets: hotTickets }, ceiling.hot);
  const rate = Math.round(opts.hotRate ? Number(opts.hotRate) : ceiling.hot / 2);
  const scenario = `hot: ${hotTickets} tickets paced at ${fmt(rate)}/s (${opts.hotRate ? 'given' : 'half the hot ceiling'})`;
  for (const topology of topologies) {
    console.log(`${scenario}: the service (${topology})…`);
    const run = await singleOnService(ctx, topology, { connections, tickets: hotTickets, rate });
    rows.push(singleRow(scenario, topology, run));
  }
}

if (ctx && scenarios.has('steady')) {
  for (const topology of topologies) {
    const topBest = best.get(topology)!;
    const singleRate = opts.steadyRate ? Number(opts.steadyRate) : topBest.single / 2;
    const bulkRate = opts.steadyBulkRate ? Number(opts.steadyBulkRate) : topBest.bulk / 2;
    if (singleRate > 0) {
      const rate = Math.round(singleRate);
      const scenario = `steady single commands at ${fmt(rate)}/s`;
      console.log(`${scenario}: the service (${topology})…`);
      const run = await singleOnService(ctx, topology, { connections: 32, tickets, rate });
      rows.push(singleRow(scenario, topology, run));
    } else console.log('Steady (single): no rate; run it with pipeline or give --steady-rate.');
    if (bulkRate > 0) {
      const rate = Math.round(bulkRate);
      const scenario = `steady bulk at ${fmt(rate)} items/s, 100 a request`;
      console.log(`${scenario}: the service (${topology})…`);
      const shape = { total: rate * Number(opts.seconds), perRequest: 100, inFlight: 8, tickets, itemsPerSecond: rate };
      rows.push(bulkRow(scenario, topology, await bulkOnService(ctx, topology, shape)));
    } else console.log('Steady (bulk): no rate; run it with bulk or give --steady-bulk-rate.');
  }
}

let scaling: ScalingRun[] | null = null;
if (ctx && scenarios.has('scaling')) {
  scaling = await scalingScenario(ctx, {
    workers: opts.scalingWorkers.split(',').map(Number),
    connections: Number(opts.scalingConnections),
    tickets,
    seconds: Number(opts.seconds),
    port: Number(opts.port),
    log: (line) => console.log(line),
  });
  for (const run of scaling) {
    const label = `${run.workers} worker process${run.workers === 1 ? '' : 'es'}`;
    rows.push(
      singleRow(`scaling, live: c=${opts.scalingConnections}, 1 intake + ${label}`, label, { ...run.live }, ceiling.spread),
      {
        scenario: `scaling, drain of ${fmt(run.drain.commands)} queued commands by ${label}`,
        system: label,
        appliedPerSecond: run.drain.appliedPerSecond,
        ceilingPerSecond: ceiling.spread,
        work: run.drain.work,
      },
    );
  }
}

let itflow: ItflowPathResult | null = null;
if (scenarios.has('itflow')) {
  if (!opts.itflow) console.log('itflow: skipped (give --itflow DIR, an ITFlow ≥ 2.4.7 checkout).');
  else {
    itflow = await itflowPathScenario({
      checkout: resolve(opts.itflow),
      phpWorkers: Number(opts.phpWorkers),
      spreadTickets: Number(opts.itflowTickets),
      hotTickets,
      connections: opts.itflowConnections.split(',').map(Number),
      seconds: Number(opts.seconds),
      port: Number(opts.itflowPort),
      keep: opts.keep === true,
      log: (line) => console.log(line),
    }).catch((error: Error) => {
      if (!(error instanceof CannotRun || error instanceof HandlerError)) throw error;
      console.log(`itflow: could not run: ${error.message.split('\n')[0]}`);
      process.exitCode = 1;
      return null;
    });
  }
}
const sections: ResultSection[] = itflow
  ? [
      {
        heading: `ITFlow's own path, POST /api/v1/ticket_replies/create.php (Internal reply, 00:01:00 worked): the service (npm start) ÷ ITFlow's PHP ${itflow.php} (php -S, PHP_CLI_SERVER_WORKERS=${itflow.phpWorkers}), same ITFlow database, same tickets, ${opts.seconds} s each after a 2 s warm-up`,
        table: itflow.rows.map(itflowTableRow),
      },
    ]
  : [];
if (scaling) {
  sections.push({
    heading:
      `Scaling: 1 intake process and N worker processes, ${fmt(tickets)} tickets; live = single commands at ` +
      `c=${opts.scalingConnections} for ${opts.seconds} s (after a 2 s warm-up), drain = a queue the intake filled for ` +
      `${opts.seconds} s, applied by the workers from the moment all are ready; work per command measured over the drain ` +
      `(server-wide counters); ceiling = this run's direct SQL over ${fmt(tickets)} tickets (${fmt(ceiling.spread)}/s)`,
    table: scalingTable(scaling, ceiling.spread),
  });
}

if (ctx || itflow) {
  if (rows.length > 0) {
    console.log();
    console.table(rows.map(tableRow));
    console.log('\nWork per command applied (server-wide counters; clean only when nothing else uses MariaDB and Redis):');
    console.table(rows.flatMap(workRow));
  }
  for (const section of sections) {
    console.log(`\n${section.heading}:`);
    console.table(section.table);
  }
  await ctx?.meter.close();
  const files = writeResults(
    opts.out,
    {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      options: opts,
      tuning: tuningFromEnvironment(),
      ceiling: { spreadPerSecond: ceiling.spread, hotPerSecond: ceiling.hot },
      bare: ctx?.bare ? { dir: ctx.bare.dir, redisUrl: ctx.bare.redisUrl } : null,
      ...(itflow ? { itflow: itflowJson(itflow) } : {}),
    },
    rows,
    sections,
  );
  console.log(`Written: ${files.join(', ')}`);
}

if (scenarios.has('read')) {
  for (const generation of GENERATIONS) {
    const read = await readScenario(BENCH_MYSQL, BENCH_REDIS, generation, (line) => console.log(line));
    console.log(
      `\nread.php over 1,000,000 replies, ITFlow ${generation} schema (HTTP round trip through the service, 30 requests each), ` +
        "ITFlow's tables (PROJECTION_MAX_LAG_SECONDS=0) and the read projection, answers identical byte for byte:",
    );
    console.table(
      read.rows.map((r) => ({
        case: r.case,
        'ITFlow p50 ms': fmt(r.direct.p50, 1),
        'ITFlow p95 ms': fmt(r.direct.p95, 1),
        'projection p50 ms': fmt(r.projection.p50, 1),
        'projection p95 ms': fmt(r.projection.p95, 1),
        'answered by': r.source,
      })),
    );
    for (const r of read.rows) console.log(`  ${r.case}\n    ITFlow's tables: ${r.plan}\n    projection: ${r.projectionPlan}`);
    console.log(
      `  projection rebuild from empty: ${fmt(read.rebuild.replies)} replies in ${fmt(read.rebuild.seconds, 1)} s; ` +
        `a follower round with nothing new: p50 ${fmt(read.round.p50, 1)} ms, p95 ${fmt(read.round.p95, 1)} ms`,
    );
  }
}
