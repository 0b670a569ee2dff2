import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { deleteKeysUnder } from '../src/queue/redis.js';
import { stopProcess } from './service.js';

// The bare pipeline of ../shared/ceiling/ (Fastify → BullMQ → mysql2, no auth, order, idempotency
// or fidelity), run in place as two child processes on the bench's database, so the bench can
// print service ÷ bare in the same run. Its applied commands are the rows of `ceiling_ledger`.

/** The queue prefix pipeline.mjs uses (fixed in the file). */
const BARE_PREFIX = 'ceiling';

/** Run with `node --import` so pipeline.mjs resolves its packages from this project's node_modules. */
const MODULES_HOOK = fileURLToPath(new URL('./bareModules.mjs', import.meta.url));

export interface BareSetup {
  /** The folder holding pipeline.mjs. */
  dir: string;
  /** The bench database's name and full URL (pipeline.mjs connects as root@127.0.0.1:3306, no password). */
  database: string;
  databaseUrl: string;
  /** Redis with the bare pipeline's own database index. */
  redisUrl: string;
  port: number;
}

/**
 * Why the bare pipeline cannot run here (its folder is missing, or the bench's MySQL is not the
 * one pipeline.mjs connects to), or null when it can.
 */
export function bareUnavailable(dir: string, mysqlUrl: string): string | null {
  if (!existsSync(join(dir, 'pipeline.mjs')))
    return `no bare pipeline at ${resolve(dir)} (pipeline.mjs missing): bare rows skipped`;
  const server = new URL(mysqlUrl);
  const local = ['127.0.0.1', 'localhost'].includes(server.hostname) && (server.port === '' || server.port === '3306');
  if (!local || server.username !== 'root' || server.password !== '')
    return `the bare pipeline connects as root@127.0.0.1:3306 without a password, the bench's MySQL is ${server.host}: bare rows skipped`;
  return null;
}

/** `base` (a Redis URL) with database index `db`. */
export function redisWithDatabase(base: string, db: number): string {
  const url = new URL(base);
  url.pathname = `/${db}`;
  return url.toString();
}

export interface BarePipeline {
  url: string;
  /** Its worker's and intake's processes. */
  pids: number[];
  /** Rows in `ceiling_ledger`: the commands it has applied. */
  applied(): Promise<number>;
  /** Waits until `count` commands are applied; resolves with the time (performance.now()) it saw them. */
  waitApplied(count: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts the bare worker and intake on an empty `ceiling_ledger` and queue, and waits until the
 * intake answers and the worker has created its ledger.
 */
export async function startBarePipeline(setup: BareSetup): Promise<BarePipeline> {
  const db = await mysql.createConnection({ uri: setup.databaseUrl });
  const redis = new Redis(setup.redisUrl);
  const children: ChildProcess[] = [];
  try {
    await db.query('DROP TABLE IF EXISTS ceiling_ledger');
    await deleteKeysUnder(redis, BARE_PREFIX);
    const env = { ...process.env, DB: setup.database, REDIS_URL: setup.redisUrl, PORT: String(setup.port) };
    for (const role of ['worker', 'intake']) {
      children.push(
        spawn(process.execPath, ['--import', MODULES_HOOK, join(setup.dir, 'pipeline.mjs'), role], {
          env,
          stdio: ['ignore', 'ignore', 'inherit'],
        }),
      );
    }
    const url = `http://127.0.0.1:${setup.port}`;
    await waitBareReady(db, url, children, 20_000);
    const applied = async () => {
      const [[row]] = (await db.query('SELECT COUNT(*) AS n FROM ceiling_ledger')) as unknown as [[{ n: number }]];
      return Number(row.n);
    };
    return {
      url,
      pids: children.map((child) => child.pid as number),
      applied,
      async waitApplied(count, timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const n = await applied();
          if (n >= count) return performance.now();
          if (Date.now() > deadline)
            throw new Error(`bare pipeline: only ${n} of ${count} commands applied within ${timeoutMs} ms`);
          await sleep(50);
        }
      },
      async stop() {
        await Promise.all(children.map((child) => stopProcess(child, 'SIGTERM')));
        await db.end();
        redis.disconnect();
      },
    };
  } catch (error) {
    for (const child of children) child.kill('SIGKILL');
    await db.end();
    redis.disconnect();
    throw error;
  }
}

/** The intake answers (an empty body: 400) and the worker has created `ceiling_ledger`. */
async function waitBareReady(db: mysql.Connection, url: string, children: ChildProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exited = children.find((child) => child.exitCode !== null || child.signalCode !== null);
    if (exited) throw new Error(`bare pipeline: ${exited.spawnargs.at(-1)} exited (${exited.exitCode ?? exited.signalCode})`);
    const answers = await fetch(`${url}/one`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }).then(
      (r) => r.status === 400,
      () => false,
    );
    const [tables] = await db.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE 'ceiling_ledger'");
    if (answers && tables.length > 0) return;
    if (Date.now() > deadline) throw new Error(`bare pipeline not ready within ${timeoutMs} ms`);
    await sleep(100);
  }
}
