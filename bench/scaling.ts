import mysql from 'mysql2/promise';
import { type LoadResult, runLoad } from './load.js';
import type { BenchContext, Ledger } from './measure.js';
import { fmt } from './results.js';
import { type BenchService, startBenchService, waitForLedger } from './service.js';
import { BENCH_KEY, freshBench } from './setup.js';
import { type WorkPerCommand, workPerCommand } from './work.js';

// `--scenarios scaling`: what more worker processes buy. One intake process and 1, 2, 4 … worker
// processes (`--scaling-workers`) on the same database, tickets and queue prefix, measured two ways
// for each count:
//
// - live: single commands through the intake at `connections` for `seconds` (after a 2 s warm-up),
//   applied/s from the first acceptance to the last commit, and the lag;
// - drain: the intake alone fills the queue for `seconds`, then the workers are started and drain
//   it; applied/s from the first commit to the last, so neither the filling nor the workers'
//   start-up counts. This is the workers' own capacity, which the live run hides whenever the one
//   intake (or the load generator, on a small machine) is the limit.
//
// Around each drain the server-wide counters give what one command costs the shared back ends —
// MariaDB statements, commands per COMMIT, row lock waits, Redis commands, CPU — the quantities of
// the capacity model in docs/scaling.md.

export interface ScalingOptions {
  /** Worker process counts, e.g. [1, 2, 4]. */
  workers: number[];
  connections: number;
  tickets: number;
  seconds: number;
  /** The intake's port; the workers' health ports follow it. */
  port: number;
  log: (line: string) => void;
}

export interface ScalingRun {
  workers: number;
  live: { result: LoadResult; appliedPerSecond: number; ledger: Ledger; work: WorkPerCommand };
  /** `commands`: those applied after every worker was ready (the ones measured). */
  drain: { commands: number; appliedPerSecond: number; work: WorkPerCommand };
}

/** Runs the live and drain measurements for each worker count; the runs in that order. */
export async function scalingScenario(ctx: BenchContext, options: ScalingOptions): Promise<ScalingRun[]> {
  const runs: ScalingRun[] = [];
  const env = { ...ctx.serviceEnv, PORT: String(options.port) };
  const createUrl = `http://127.0.0.1:${options.port}/api/v1/tickets/replies/create.php`;
  const load = (seconds: number) =>
    runLoad({ url: createUrl, key: BENCH_KEY, connections: options.connections, tickets: options.tickets, seconds });

  for (const count of options.workers) {
    options.log(`Scaling, ${count} worker process(es): live load at c=${options.connections}…`);
    await freshBench(ctx.databaseUrl, ctx.prefix);
    let intake = await startBenchService('intake', env);
    let workers = await startWorkers(count, env, options.port);
    let live: ScalingRun['live'];
    try {
      const before = await ctx.meter.snapshot(pidsOf(intake, workers));
      const warmup = await load(2);
      const result = await load(options.seconds);
      const sent = warmup.ok + result.ok;
      const ledger = await waitForLedger(ctx.databaseUrl, sent, 600_000);
      const work = workPerCommand(before, await ctx.meter.snapshot(pidsOf(intake, workers)), sent);
      live = { result, appliedPerSecond: (sent / ledger.spanMs) * 1000, ledger, work };
    } finally {
      await Promise.all([intake.stop(), ...workers.map((w) => w.stop())]);
    }

    options.log(`Scaling, ${count} worker process(es): the intake fills the queue for ${options.seconds} s, then they drain it…`);
    await freshBench(ctx.databaseUrl, ctx.prefix);
    intake = await startBenchService('intake', env);
    let drain: ScalingRun['drain'];
    try {
      const filled = await load(options.seconds);
      const commands = filled.ok;
      workers = await startWorkers(count, env, options.port);
      // Counted from the moment every worker answers /readyz: what the first ones to start applied
      // meanwhile is left out of both the rate and the work per command.
      const mark = await ledgerMark(ctx.databaseUrl);
      const before = await ctx.meter.snapshot(workers.flatMap((w) => w.pids));
      await waitForLedger(ctx.databaseUrl, commands, 600_000);
      const after = await ctx.meter.snapshot(workers.flatMap((w) => w.pids));
      const measured = commands - mark.applied;
      const work = workPerCommand(before, after, measured);
      drain = {
        commands: measured,
        appliedPerSecond: (measured / (await lastCommitMsAfter(ctx.databaseUrl, mark.at))) * 1000,
        work,
      };
    } finally {
      await Promise.all([intake.stop(), ...workers.map((w) => w.stop())]);
    }
    runs.push({ workers: count, live, drain });
  }
  return runs;
}

/** Starts `count` worker processes, each with /readyz on a port of its own after the intake's. */
function startWorkers(count: number, env: Record<string, string>, intakePort: number): Promise<BenchService[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) => startBenchService('worker', { ...env, PORT: String(intakePort + 1 + i) })),
  );
}

const pidsOf = (intake: BenchService, workers: BenchService[]) => [...intake.pids, ...workers.flatMap((w) => w.pids)];

/** How many commands the ledger holds, and MySQL's UTC clock now (the ledger's own clock). */
async function ledgerMark(url: string): Promise<{ applied: number; at: string }> {
  const conn = await mysql.createConnection({ uri: url, dateStrings: true });
  try {
    const [[row]] = (await conn.query('SELECT COUNT(*) AS n, UTC_TIMESTAMP(6) AS at FROM rq_commands')) as unknown as [
      [{ n: number; at: string }],
    ];
    return { applied: Number(row.n), at: row.at };
  } finally {
    await conn.end();
  }
}

/** Milliseconds from `at` (MySQL's UTC clock) to the ledger's last commit. */
async function lastCommitMsAfter(url: string, at: string): Promise<number> {
  const conn = await mysql.createConnection({ uri: url });
  try {
    const [[row]] = (await conn.query(
      'SELECT TIMESTAMPDIFF(MICROSECOND, ?, MAX(finished_at_utc)) / 1000 AS ms FROM rq_commands',
      [at],
    )) as unknown as [[{ ms: string }]];
    return Number(row.ms);
  } finally {
    await conn.end();
  }
}

/** The scaling table: per worker count, both measurements, the speed-up over one worker and the work per command. */
export function scalingTable(runs: ScalingRun[], ceilingPerSecond: number): Array<Record<string, string>> {
  const one = runs.find((r) => r.workers === 1) ?? runs[0];
  return runs.map((run) => ({
    'worker processes': String(run.workers),
    'live applied/s': fmt(run.live.appliedPerSecond),
    'live ÷ ceiling': `${fmt(run.live.appliedPerSecond / ceilingPerSecond, 2)}×`,
    'live lag p99 ms': fmt(run.live.ledger.lags[Math.floor(run.live.ledger.lags.length * 0.99)]),
    'drain applied/s': fmt(run.drain.appliedPerSecond),
    'drain ÷ ceiling': `${fmt(run.drain.appliedPerSecond / ceilingPerSecond, 2)}×`,
    'drain ÷ 1 worker': one ? `${fmt(run.drain.appliedPerSecond / one.drain.appliedPerSecond, 2)}×` : '',
    'SQL statements / cmd': fmt(run.drain.work.sqlStatements, 2),
    'commands / COMMIT': fmt(run.drain.work.commandsPerCommit, 1),
    'row lock waits / cmd': fmt(run.drain.work.rowLockWaits, 4),
    'row lock ms / cmd': fmt(run.drain.work.rowLockMs, 3),
    deadlocks: fmt(run.drain.work.deadlocks),
    'Redis commands / cmd': fmt(run.drain.work.redisCommands, 1),
    'workers CPU µs / cmd': fmt(run.drain.work.cpuUs.system),
    'MariaDB CPU µs / cmd': fmt(run.drain.work.cpuUs.mariadb),
    'Redis CPU µs / cmd': fmt(run.drain.work.cpuUs.redis),
  }));
}
