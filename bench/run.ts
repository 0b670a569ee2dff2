import { Command } from 'commander';
import { GENERATIONS } from '../src/demo/itflowDatabase.js';
import { sendBulkLoad } from './bulk.js';
import { directSqlRate } from './directSql.js';
import { runImport } from './importRun.js';
import { type LoadResult, runLoad } from './load.js';
import { readScenario } from './read.js';
import { type BenchService, startBenchService, type Topology, waitForLedger } from './service.js';
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

/**
 * `npm run bench`: the service and the same machine's direct-SQL ceiling, measured in one run,
 * so the results read as ratios rather than absolute times.
 *
 * Scenarios:
 * - pipeline: single commands over HTTP with the intake and the worker running together, as in
 *   production (the headline figures: accepted/s, latency, applied/s, lag).
 * - phases: the intake alone under the same load (no worker), then the worker alone draining
 *   the backlog it left: each side's capacity without the other competing for the CPU.
 * - bulk: replies through bulk.php, 1,000 items a request, as fast as they are taken.
 * - import: the CLI importing a file of 1,000,000 historical replies over 10,000 tickets,
 *   waiting until all are applied; its peak memory (VmHWM) is reported.
 * - steady: accept-to-applied lag at half of the maximum throughput measured earlier in the
 *   run (single commands at a fixed rate, and bulk requests paced the same way).
 * - read: read.php over 1,000,000 replies in both ITFlow generations (see bench/read.ts).
 */
const program = new Command('bench')
  .option('--scenarios <list>', 'pipeline,phases,bulk,import,steady,read', 'pipeline,phases,bulk,import,steady,read')
  .option('--bulk-total <n>', 'replies sent through bulk.php', '200000')
  .option('--import-lines <n>', 'lines in the CLI import file', '1000000')
  .option('--steady-rate <n>', 'single commands/s for the steady scenario (default: half the pipeline maximum)')
  .option('--steady-bulk-rate <n>', 'bulk items/s for the steady scenario (default: half the bulk maximum)')
  .option('--seconds <n>', 'seconds of HTTP load per scenario', '15')
  .option('--connections <list>', 'HTTP client connections, comma separated', '1,8,32')
  .option('--tickets <n>', 'tickets the commands are spread over', '10000')
  .option('--commands <n>', 'commands for the direct-SQL ceiling', '20000')
  .option('--direct-connections <n>', 'mysql2 connections for the direct-SQL ceiling', '8')
  .option('--topology <t>', 'all-in-one | split (intake and worker as separate processes)', 'all-in-one')
  .parse();
const opts = program.opts<{
  scenarios: string;
  bulkTotal: string;
  importLines: string;
  steadyRate?: string;
  steadyBulkRate?: string;
  seconds: string;
  connections: string;
  tickets: string;
  commands: string;
  directConnections: string;
  topology: Topology;
}>();

const MYSQL = BENCH_MYSQL;
const REDIS = BENCH_REDIS;
const DATABASE = 'itflow_bench';
const PREFIX = 'rqbench';
const tickets = Number(opts.tickets);
const serviceEnv = benchServiceEnv(DATABASE, PREFIX, '18181');
const tuning = Object.entries(tuningFromEnvironment()).map(([name, value]) => `${name}=${value}`);
if (tuning.length > 0) console.log(`Service tuning: ${tuning.join(' ')}`);

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';
const rows: Array<Record<string, string>> = [];

const scenarios = new Set(opts.scenarios.split(','));
const writes = ['pipeline', 'phases', 'bulk', 'import', 'steady'].some((s) => scenarios.has(s));
/** The best applied/s seen in this run, for the steady scenario's half-rate. */
const best = { single: 0, bulk: 0 };
let url = '';
let ceiling = Number.NaN;
if (writes) {
  console.log(`Creating ${DATABASE} with ${tickets} tickets…`);
  url = await createBenchDatabase(MYSQL, DATABASE, tickets);
  console.log(`Direct SQL: ${opts.commands} replies, one transaction each, over ${opts.directConnections} connections…`);
  ceiling = await directSqlRate(url, Number(opts.commands), tickets, Number(opts.directConnections));
  rows.push({
    scenario: `direct SQL ceiling: 1 txn/command, ${opts.directConnections} conns`,
    'applied/s': fmt(ceiling),
    'vs ceiling': '100 %',
  });
}

const fresh = () => freshBench(url, PREFIX);

/**
 * Load for the scenario's duration, after a 2 s warm-up whose commands are not counted (JIT,
 * connection pools and caches filled); returns the measured part and how many the warm-up added.
 */
async function load(service: BenchService, connections: number): Promise<{ result: LoadResult; warmup: number }> {
  const options = { url: `${service.url}/api/v1/tickets/replies/create.php`, key: BENCH_KEY, connections, tickets };
  const warmup = await runLoad({ ...options, seconds: 2 });
  return { result: await runLoad({ ...options, seconds: Number(opts.seconds) }), warmup: warmup.ok };
}

type Ledger = Awaited<ReturnType<typeof waitForLedger>>;

/**
 * One scenario on a fresh database and queue: starts the service, lets `drive` load it, waits
 * until the ledger holds every command `drive` got accepted, then stops the service.
 */
async function onFreshService<T>(
  drive: (service: BenchService) => Promise<T>,
  acceptedOf: (driven: T) => number,
): Promise<{ driven: T; ledger: Ledger }> {
  await fresh();
  const service = await startBenchService(opts.topology, serviceEnv);
  try {
    const driven = await drive(service);
    return { driven, ledger: await waitForLedger(url, acceptedOf(driven), 600_000) };
  } finally {
    await service.stop();
  }
}

/** The accept→applied lag percentiles and failures a ledger shows. */
function lagColumns(ledger: Ledger): Record<string, string> {
  return {
    'lag p50 ms': fmt(percentile(ledger.lags, 50)),
    'lag p99 ms': fmt(percentile(ledger.lags, 99)),
    failed: String(ledger.failed),
  };
}

function acceptRow(name: string, result: LoadResult): Record<string, string> {
  return {
    scenario: `${name}, ${result.generator}`,
    'accepted/s': fmt(result.ok / result.seconds),
    'accept p50 ms': fmt(result.p50, 1),
    'accept p99 ms': fmt(result.p99, 1),
    'not accepted': String(result.requests - result.ok),
  };
}

if (scenarios.has('bulk')) {
  const total = Number(opts.bulkTotal);
  console.log(`Bulk: ${total.toLocaleString()} replies through bulk.php, 1,000 a request, 4 requests at a time…`);
  const { driven: load, ledger } = await onFreshService(
    (service) => sendBulkLoad(service.url, { total, perRequest: 1000, inFlight: 4, tickets }),
    (load) => load.accepted,
  );
  const applied = (load.accepted / ledger.spanMs) * 1000;
  best.bulk = Math.max(best.bulk, applied);
  rows.push({
    scenario: `bulk.php (${opts.topology}), 1,000 items/request`,
    'accepted/s': fmt(load.accepted / load.seconds),
    'applied/s': fmt(applied),
    'vs ceiling': `${fmt((applied / ceiling) * 100)} %`,
    ...lagColumns(ledger),
    'not accepted': String(load.failed),
  });
}

const connectionCounts = opts.connections.split(',').map(Number);
if (scenarios.has('import')) {
  const lines = Number(opts.importLines);
  console.log(`Import: the CLI importing ${lines.toLocaleString()} historical replies over ${tickets.toLocaleString()} tickets…`);
  const { driven: run, ledger } = await onFreshService(
    (service) => runImport(service.url, lines, tickets),
    (run) => run.summary.queued,
  );
  const applied = run.summary.applied / run.summary.elapsedSeconds;
  rows.push({
    scenario: `CLI import (${opts.topology}), ${fmt(lines)} lines, ${fmt(tickets)} tickets`,
    'applied/s': fmt(applied),
    'vs ceiling': `${fmt((applied / ceiling) * 100)} %`,
    ...lagColumns(ledger),
    'not accepted': String(run.summary.rejected),
    'client RSS MiB': fmt(run.peakRssMiB),
  });
}

for (const connections of scenarios.has('pipeline') || scenarios.has('phases') ? connectionCounts : []) {
  if (scenarios.has('pipeline')) {
    console.log(`Pipeline (${opts.topology}): single commands for ${opts.seconds}s at ${connections} connections…`);
    const { driven, ledger } = await onFreshService(
      (service) => load(service, connections),
      ({ result, warmup }) => warmup + result.ok,
    );
    const applied = ((driven.warmup + driven.result.ok) / ledger.spanMs) * 1000;
    best.single = Math.max(best.single, applied);
    rows.push({
      ...acceptRow(`pipeline (${opts.topology}), c=${connections}`, driven.result),
      'applied/s': fmt(applied),
      'vs ceiling': `${fmt((applied / ceiling) * 100)} %`,
      ...lagColumns(ledger),
    });
  }

  // Each side's capacity alone: measured once, at the most connections.
  if (scenarios.has('phases') && connections === Math.max(...connectionCounts)) {
    await fresh();
    const intake = await startBenchService('intake', serviceEnv);
    console.log(`Phases: the intake alone for ${opts.seconds}s at ${connections} connections, then a worker drains…`);
    const { result, warmup } = await load(intake, connections);
    await intake.stop();
    rows.push(acceptRow(`intake alone, c=${connections}`, result));
    const backlog = warmup + result.ok;
    const started = Date.now();
    const worker = await startBenchService('worker', serviceEnv);
    const ledger = await waitForLedger(url, backlog, 600_000);
    const drainSeconds = (Date.now() - started) / 1000;
    await worker.stop();
    const applied = backlog / drainSeconds;
    rows.push({
      scenario: `worker alone draining ${fmt(backlog)} commands (incl. start-up)`,
      'applied/s': fmt(applied),
      'vs ceiling': `${fmt((applied / ceiling) * 100)} %`,
      failed: String(ledger.failed),
    });
  }
}

if (scenarios.has('steady')) {
  const singleRate = opts.steadyRate ? Number(opts.steadyRate) : best.single / 2;
  const bulkRate = opts.steadyBulkRate ? Number(opts.steadyBulkRate) : best.bulk / 2;
  if (singleRate > 0) {
    const rate = Math.round(singleRate);
    console.log(`Steady: single commands at a fixed ${fmt(rate)}/s for ${opts.seconds}s…`);
    const { driven: result, ledger } = await onFreshService(
      (service) =>
        runLoad({
          url: `${service.url}/api/v1/tickets/replies/create.php`,
          key: BENCH_KEY,
          connections: 32,
          tickets,
          seconds: Number(opts.seconds),
          rate,
        }),
      (result) => result.ok,
    );
    rows.push({
      ...acceptRow(`steady single commands at ${fmt(rate)}/s (half max)`, result),
      'applied/s': fmt((result.ok / ledger.spanMs) * 1000),
      ...lagColumns(ledger),
    });
  } else console.log('Steady (single): no rate; run it with pipeline or give --steady-rate.');
  if (bulkRate > 0) {
    const rate = Math.round(bulkRate);
    const total = rate * Number(opts.seconds);
    console.log(`Steady: bulk items paced at ${fmt(rate)}/s, 100 a request, for ${opts.seconds}s…`);
    const { driven: load, ledger } = await onFreshService(
      (service) => sendBulkLoad(service.url, { total, perRequest: 100, inFlight: 8, tickets, itemsPerSecond: rate }),
      (load) => load.accepted,
    );
    rows.push({
      scenario: `steady bulk.php at ${fmt(rate)} items/s (half max), 100 items/request`,
      'accepted/s': fmt(load.accepted / load.seconds),
      'applied/s': fmt((load.accepted / ledger.spanMs) * 1000),
      ...lagColumns(ledger),
      'not accepted': String(load.failed),
    });
  } else console.log('Steady (bulk): no rate; run it with bulk or give --steady-bulk-rate.');
}

if (writes) {
  console.log();
  console.table(rows);
}

if (scenarios.has('read')) {
  for (const generation of GENERATIONS) {
    const read = await readScenario(MYSQL, REDIS, generation, (line) => console.log(line));
    console.log(
      `\nread.php over 1,000,000 replies, ITFlow ${generation} schema (HTTP round trip through the service, 30 requests each):`,
    );
    console.table(read.map((r) => ({ case: r.case, 'p50 ms': fmt(r.p50, 1), 'p95 ms': fmt(r.p95, 1) })));
    for (const r of read) console.log(`  ${r.case}\n    ${r.plan}`);
  }
}
