import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startTcpProxy, type TcpProxy } from './faults.js';

/**
 * A Redis Sentinel group of the test's own, from Debian's redis-server (sentinels are redis-server --sentinel): one
 * primary, one replica and three sentinels (quorum 2) on the ports given, no persistence, in a
 * temporary directory. Sentinels call the primary down after `downAfterMs` without an answer.
 *
 * The replica reaches its primary through a TCP proxy of the test's, so a test can hold the
 * replication stream back (`holdReplication`): what the primary takes meanwhile sits in the
 * proxy, acknowledged to clients but on no replica — a replica behind its primary, which is what
 * asynchronous replication loses when the primary dies. (Freezing the replica's process would not
 * do: the kernel would still take the stream into its socket buffer, and it would catch up.)
 */
export interface SentinelGroup {
  /** The name the sentinels know the primary by (REDIS_SENTINEL_NAME). */
  name: string;
  /** host:port of each sentinel (REDIS_SENTINELS). */
  sentinels: string;
  /** The port of the data node the sentinels call primary now. */
  primaryPort(): Promise<number>;
  /** Holds the replication stream from the first primary to its replica back in the proxy. */
  holdReplication(): Promise<void>;
  /** SIGKILLs the data node on `port`. */
  kill(port: number): Promise<void>;
  /** Waits until the sentinels name another primary than `port`; resolves with its port. */
  failedOver(from: number, timeoutMs?: number): Promise<number>;
  /** Starts the data node on `port` again as a replica of `primary` (as Sentinel would make it); resolves once it has synced. */
  rejoin(port: number, primary: number): Promise<void>;
  close(): Promise<void>;
}

interface Options {
  dataPorts: [number, number];
  sentinelPorts: [number, number, number];
  name?: string;
  downAfterMs?: number;
}

export async function startSentinelGroup(options: Options): Promise<SentinelGroup> {
  const name = options.name ?? 'replyqueue';
  const dir = mkdtempSync(join(tmpdir(), 'replyqueue-sentinel-'));
  const nodes = new Map<number, ChildProcess>();
  const sentinels: ChildProcess[] = [];
  const [primary, replica] = options.dataPorts;
  let link: TcpProxy | null = null;

  const startNode = async (port: number, replicaOf?: number) => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    // A replica's full sync starts at once, not after the 5 s Redis waits for other replicas to join.
    args.push('--repl-diskless-sync-delay', '0');
    if (replicaOf !== undefined) args.push('--replicaof', '127.0.0.1', String(replicaOf));
    nodes.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
    await answering(port);
  };
  const close = async () => {
    for (const child of [...sentinels, ...nodes.values()]) child.kill('SIGKILL');
    await link?.close();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await startNode(primary);
    link = await startTcpProxy({ host: '127.0.0.1', port: primary });
    await startNode(replica, link.port);
    await synced(replica);
    for (const port of options.sentinelPorts) {
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
          // Also how long sentinels leave a replica that names its primary by another address (the
          // proxy) before "fixing" it: longer than a test runs.
          `sentinel failover-timeout ${name} 120000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
    }
    for (const port of options.sentinelPorts) await answering(port);
    // Each sentinel has found the replica and the other sentinels (through the primary's hello channel).
    for (const port of options.sentinelPorts) {
      await until(async () => {
        const fields = pairs((await askSentinel(port, 'MASTER', name)) as string[]);
        return Number(fields['num-slaves']) >= 1 && Number(fields['num-other-sentinels']) >= 2;
      }, 20_000);
    }
  } catch (error) {
    await close();
    throw error;
  }

  const primaryPort = async (): Promise<number> => {
    for (const port of options.sentinelPorts) {
      const answer = (await askSentinel(port, 'GET-MASTER-ADDR-BY-NAME', name).catch(() => null)) as [string, string] | null;
      if (answer) return Number(answer[1]);
    }
    throw new Error('no sentinel answered');
  };

  return {
    name,
    sentinels: options.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(','),
    primaryPort,
    holdReplication: async () => link?.freeze(),
    async kill(port) {
      const node = nodes.get(port);
      if (!node || node.exitCode !== null) return;
      node.kill('SIGKILL');
      await once(node, 'exit');
      // What the proxy held back dies with the primary it came from.
      if (port === primary) await link?.close();
    },
    async failedOver(from, timeoutMs = 20_000) {
      let now = from;
      await until(async () => {
        now = await primaryPort();
        return now !== from;
      }, timeoutMs);
      return now;
    },
    async rejoin(port, primaryNow) {
      await startNode(port, primaryNow);
      await synced(port);
    },
    close,
  };
}

async function askSentinel(port: number, ...args: string[]): Promise<unknown> {
  const sentinel = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  sentinel.on('error', () => {});
  try {
    return await sentinel.call('SENTINEL', ...args);
  } finally {
    sentinel.disconnect();
  }
}

function pairs(list: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) fields[list[i] as string] = list[i + 1] as string;
  return fields;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves once a Redis (or sentinel) on `port` answers PING. */
async function answering(port: number): Promise<void> {
  await until(async () => {
    const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      return (await redis.ping()) === 'PONG';
    } finally {
      redis.disconnect();
    }
  }, 10_000);
}

/** Resolves once the replica on `port` has finished its sync with its primary. */
export async function synced(port: number): Promise<void> {
  let info = '';
  await until(async () => {
    const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      info = await redis.info('replication');
      return /master_link_status:up/.test(info);
    } finally {
      redis.disconnect();
    }
  }, 15_000).catch((error: Error) => {
    throw new Error(`replica on ${port} not synced: ${error.message}; INFO replication: ${info}`);
  });
}
