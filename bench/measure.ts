import { type BareSetup, startBarePipeline } from './bare.js';
import { sendBulkLoad } from './bulk.js';
import { type LoadResult, runLoad } from './load.js';
import { type BenchService, startBenchService, type Topology, waitForLedger } from './service.js';
import { BENCH_KEY, freshBench } from './setup.js';
import { type WorkMeter, type WorkPerCommand, workPerCommand } from './work.js';

// One load on a fresh database and queue, against the service in a topology or against the bare
// pipeline: the same load generator and load shape for both, applied/s counted from the first
// command sent or accepted to the last one applied.

export interface BenchContext {
  databaseUrl: string;
  prefix: string;
  serviceEnv: Record<string, string>;
  /** The bare pipeline's settings, or null when it cannot run here. */
  bare: BareSetup | null;
  /** Seconds of HTTP load per measurement. */
  seconds: number;
  /** Reads the server-wide counters around each measurement (work per command). */
  meter: WorkMeter;
}

export type Ledger = Awaited<ReturnType<typeof waitForLedger>>;

/** Single commands: `connections` at a time over the first `tickets` tickets, or at a fixed `rate`. */
export interface SingleShape {
  connections: number;
  tickets: number;
  rate?: number;
}

export interface BulkShape {
  total: number;
  perRequest: number;
  inFlight: number;
  tickets: number;
  itemsPerSecond?: number;
  /** Historical replies: each item carries a created_at in the past, as an import sends them. */
  historical?: boolean;
}

export interface SingleRun {
  result: LoadResult;
  appliedPerSecond: number;
  /** The service's ledger (lags, failures); the bare pipeline has none. */
  ledger?: Ledger;
  work: WorkPerCommand;
}

export interface BulkRun {
  accepted: number;
  seconds: number;
  failed: number;
  appliedPerSecond: number;
  ledger?: Ledger;
  work: WorkPerCommand;
}

const DRAIN_TIMEOUT_MS = 600_000;

/**
 * Runs the load at as-fast-as-taken after a 2 s warm-up whose commands count for applied/s but
 * not for the accept figures (JIT, pools and caches filled); a paced load has no warm-up.
 */
async function singleLoad(url: string, shape: SingleShape, seconds: number): Promise<{ result: LoadResult; sent: number }> {
  const options = { url, key: BENCH_KEY, connections: shape.connections, tickets: shape.tickets };
  if (shape.rate !== undefined) {
    const result = await runLoad({ ...options, seconds, rate: shape.rate });
    return { result, sent: result.ok };
  }
  const warmup = await runLoad({ ...options, seconds: 2 });
  const result = await runLoad({ ...options, seconds });
  return { result, sent: warmup.ok + result.ok };
}

/**
 * Starts the service on a fresh database and queue, lets `drive` load it, waits until the
 * ledger holds every command `drive` got accepted, then stops the service.
 */
export async function onFreshService<T>(
  ctx: BenchContext,
  topology: Topology,
  drive: (service: BenchService) => Promise<T>,
  acceptedOf: (driven: T) => number,
): Promise<{ driven: T; ledger: Ledger; work: WorkPerCommand }> {
  await freshBench(ctx.databaseUrl, ctx.prefix);
  const service = await startBenchService(topology, ctx.serviceEnv);
  try {
    const before = await ctx.meter.snapshot(service.pids);
    const driven = await drive(service);
    const ledger = await waitForLedger(ctx.databaseUrl, acceptedOf(driven), DRAIN_TIMEOUT_MS);
    const work = workPerCommand(before, await ctx.meter.snapshot(service.pids), acceptedOf(driven));
    return { driven, ledger, work };
  } finally {
    await service.stop();
  }
}

/** Single commands through create.php; applied/s over the ledger's first acceptance to last commit. */
export async function singleOnService(ctx: BenchContext, topology: Topology, shape: SingleShape): Promise<SingleRun> {
  const { driven, ledger, work } = await onFreshService(
    ctx,
    topology,
    (service) => singleLoad(`${service.url}/api/v1/tickets/replies/create.php`, shape, ctx.seconds),
    (driven) => driven.sent,
  );
  return { result: driven.result, appliedPerSecond: (driven.sent / ledger.spanMs) * 1000, ledger, work };
}

/** Bulk items through bulk.php. */
export async function bulkOnService(ctx: BenchContext, topology: Topology, shape: BulkShape): Promise<BulkRun> {
  const { driven, ledger, work } = await onFreshService(
    ctx,
    topology,
    (service) => sendBulkLoad(`${service.url}/api/v1/tickets/replies/bulk.php`, shape),
    (load) => load.accepted,
  );
  return { ...driven, appliedPerSecond: (driven.accepted / ledger.spanMs) * 1000, ledger, work };
}

/**
 * The bare pipeline on a fresh database: started, loaded through `drive`, timed from the first
 * send until its ledger holds every accepted command (polled every 50 ms), stopped.
 */
async function onFreshBare<T>(
  ctx: BenchContext,
  drive: (url: string) => Promise<T>,
  acceptedOf: (driven: T) => number,
): Promise<{ driven: T; appliedPerSecond: number; work: WorkPerCommand }> {
  if (!ctx.bare) throw new Error('the bare pipeline is not available');
  await freshBench(ctx.databaseUrl, ctx.prefix);
  const bare = await startBarePipeline(ctx.bare);
  try {
    const before = await ctx.meter.snapshot(bare.pids);
    const started = performance.now();
    const driven = await drive(bare.url);
    const accepted = acceptedOf(driven);
    const done = await bare.waitApplied(accepted, DRAIN_TIMEOUT_MS);
    const work = workPerCommand(before, await ctx.meter.snapshot(bare.pids), accepted);
    return { driven, appliedPerSecond: (accepted / (done - started)) * 1000, work };
  } finally {
    await bare.stop();
  }
}

/** The same single-command load against the bare pipeline's /one (it ignores the key and `minutes`). */
export async function singleOnBare(ctx: BenchContext, shape: SingleShape): Promise<SingleRun> {
  const { driven, appliedPerSecond, work } = await onFreshBare(
    ctx,
    (url) => singleLoad(`${url}/one`, shape, ctx.seconds),
    (driven) => driven.sent,
  );
  return { result: driven.result, appliedPerSecond, work };
}

/** The same bulk load against the bare pipeline's /bulk. */
export async function bulkOnBare(ctx: BenchContext, shape: BulkShape): Promise<BulkRun> {
  const { driven, appliedPerSecond, work } = await onFreshBare(
    ctx,
    (url) => sendBulkLoad(`${url}/bulk`, shape),
    (load) => load.accepted,
  );
  return { ...driven, appliedPerSecond, work };
}
