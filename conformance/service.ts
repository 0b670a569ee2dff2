// This service, started as `npm start` starts it (the compiled all-in-one process), against the
// scratch ITFlow database, on its own port and queue prefix so nothing else on the Redis is seen.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { deleteKeysUnder } from '../src/queue/redis.js';
import { CannotRun, stopChild } from './php.js';

export interface ServiceUnderTest {
  url: string;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  databaseUrl: string;
  redisUrl: string;
  port: number;
  queuePrefix: string;
  logFile: string;
  /** The folder whose dist/workers/service.js is started (a build of this repository). */
  serviceRoot: string;
  /** ITFlow's $config_base_url, for the links in the client mail the service queues. */
  itflowBaseUrl: string;
}

export async function startServiceUnderTest(options: ServiceOptions): Promise<ServiceUnderTest> {
  const entry = join(options.serviceRoot, 'dist/workers/service.js');
  if (!existsSync(entry)) throw new CannotRun(`no build of the service at ${entry} (npm run build)`);
  const log = createWriteStream(options.logFile);
  const child = spawn(process.execPath, [entry], {
    cwd: options.serviceRoot,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      REDIS_URL: options.redisUrl,
      PORT: String(options.port),
      QUEUE_PREFIX: options.queuePrefix,
      ITFLOW_BASE_URL: options.itflowBaseUrl,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let spawnError: Error | null = null;
  child.once('error', (error) => {
    spawnError = error;
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (spawnError) throw new CannotRun(`the service could not be started: ${(spawnError as Error).message}`);
    if (child.exitCode !== null) {
      const output = await readFile(options.logFile, 'utf8').catch(() => '');
      throw new CannotRun(`the service exited with code ${child.exitCode}: ${output.trim().split('\n').at(-1) ?? ''}`);
    }
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new CannotRun(`the service did not become ready on ${url} within 30 s (log: ${options.logFile})`);
    }
    await sleep(100);
  }
  return {
    url,
    async stop() {
      await stopChild(child);
      log.end();
      const redis = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        await deleteKeysUnder(redis, options.queuePrefix);
      } finally {
        redis.disconnect();
      }
    },
  };
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** A JSON POST, as an integration sends it. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': 'itflow-conformance', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text() };
}
