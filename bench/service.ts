import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { deleteKeysUnder } from '../src/queue/redis.js';

/** The service under test, started as `npm start` starts it (compiled, separate processes). */
export interface BenchService {
  url: string;
  stop(): Promise<void>;
}

export const ENTRIES = {
  'all-in-one': ['dist/workers/service.js'],
  split: ['dist/workers/intake.js', 'dist/workers/worker.js'],
  intake: ['dist/workers/intake.js'],
  worker: ['dist/workers/worker.js'],
};

export type Topology = keyof typeof ENTRIES;

/** Starts the processes of a topology and waits until they answer /readyz. */
export async function startBenchService(topology: Topology, env: Record<string, string>): Promise<BenchService> {
  // A worker alone answers health checks on WORKER_PORT.
  const processEnv = { ...env, ...(topology === 'worker' ? { WORKER_PORT: env.PORT } : {}) };
  const children = ENTRIES[topology].map((entry) => spawnEntry(entry, processEnv));
  const url = `http://127.0.0.1:${env.PORT}`;
  await waitReady(url, 20_000);
  return {
    url,
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
