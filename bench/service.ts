import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { deleteKeysUnder } from '../src/queue/redis.js';

/** The service under test, started as `npm start` starts it (compiled, separate processes). */
export interface BenchService {
  url: string;
  /** Its processes as started (a supervisor's children are theirs). */
  pids: number[];
  stop(): Promise<void>;
}

/**
 * The processes of each topology: `start` is `npm start` as it is by default, `single` the same
 * entry in its one-process mode, `split` the intake and a worker started apart by the bench (as
 * `docker-compose.yml` runs them); `intake` and `worker` alone for the phases scenario and the soak.
 */
export const ENTRIES = {
  start: ['dist/workers/service.js'],
  single: ['dist/workers/service.js'],
  split: ['dist/workers/intake.js', 'dist/workers/worker.js'],
  intake: ['dist/workers/intake.js'],
  worker: ['dist/workers/worker.js'],
};

export type Topology = keyof typeof ENTRIES;

/** The topologies a bench run compares (`--topology start,single,split`). */
export const SERVICE_TOPOLOGIES = ['start', 'single', 'split'] as const satisfies readonly Topology[];

/** Settings a topology adds to the service's environment. */
const TOPOLOGY_ENV: Partial<Record<Topology, Record<string, string>>> = {
  single: { SERVICE_WORKERS: '0' },
};

/**
 * The port where a topology's one separate worker process answers /readyz (WORKER_PORT), so a
 * measurement starts with the worker running as it does in one process; none when the worker
 * shares the intake's process or there are several (they would share the port).
 */
function workerHealthPort(topology: Topology, env: Record<string, string>): string | undefined {
  if (topology === 'worker') return env.PORT;
  const workers = Number(env.SERVICE_WORKERS ?? process.env.SERVICE_WORKERS ?? 1);
  if (topology === 'split' || (topology === 'start' && workers === 1)) return String(Number(env.PORT) + 1);
  return undefined;
}

/** Starts the processes of a topology and waits until they (the intake, a separate worker) answer /readyz. */
export async function startBenchService(topology: Topology, env: Record<string, string>): Promise<BenchService> {
  const workerPort = workerHealthPort(topology, env);
  const processEnv = { ...env, ...TOPOLOGY_ENV[topology], ...(workerPort ? { WORKER_PORT: workerPort } : {}) };
  const children = ENTRIES[topology].map((entry) => spawnEntry(entry, processEnv));
  const url = `http://127.0.0.1:${env.PORT}`;
  const probes = [...new Set([url, ...(workerPort ? [`http://127.0.0.1:${workerPort}`] : [])])];
  const ready = await Promise.all(probes.map((probe) => waitReady(probe, 20_000)));
  if (ready.includes(false)) {
    await Promise.all(children.map((child) => stopProcess(child, 'SIGTERM')));
    throw new Error(`the ${topology} topology did not answer ${probes.join(' and ')} /readyz within 20 s`);
  }
  return {
    url,
    pids: children.map((child) => child.pid as number),
    async stop() {
      await Promise.all(children.map((child) => stopProcess(child, 'SIGTERM')));
    },
  };
}

/** One process of the service from its compiled entry point; its stderr goes to ours. */
export function spawnEntry(entry: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [entry], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Polls `${url}/readyz` until it answers 2xx; false if it has not within `timeoutMs`. */
export async function waitReady(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

/** Sends `signal` and resolves once the process has exited. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

export async function clearRedisPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  await deleteKeysUnder(redis, prefix);
  redis.disconnect();
}

/** Waits until the ledger holds `count` finished commands; returns accept→finish lags (ms) and the span. */
export async function waitForLedger(url: string, count: number, timeoutMs: number) {
  const conn = await mysql.createConnection({ uri: url, dateStrings: true });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [[row]] = (await conn.query('SELECT COUNT(*) AS n FROM rq_commands')) as unknown as [[{ n: number }]];
      if (Number(row.n) >= count) break;
      if (Date.now() > deadline) throw new Error(`only ${row.n} of ${count} commands applied within ${timeoutMs} ms`);
      await sleep(100);
    }
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT TIMESTAMPDIFF(MICROSECOND, accepted_at_utc, finished_at_utc) / 1000 AS lag FROM rq_commands',
    );
    const lags = rows.map((r) => Number(r.lag)).sort((a, b) => a - b);
    const [[span]] = (await conn.query(
      `SELECT TIMESTAMPDIFF(MICROSECOND, MIN(accepted_at_utc), MAX(finished_at_utc)) / 1000 AS ms,
              SUM(status <> 'applied') AS failed
       FROM rq_commands`,
    )) as unknown as [[{ ms: string; failed: string }]];
    return { lags, spanMs: Number(span.ms), failed: Number(span.failed) };
  } finally {
    await conn.end();
  }
}
