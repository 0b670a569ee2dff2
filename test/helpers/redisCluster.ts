// A real Redis Cluster on local ports, made by a test from Debian's redis-server and redis-cli:
// each node a process of its own in a temporary directory, nothing saved to disk, its cluster bus
// on its port + 10000 (Redis's default), and the cluster formed by `redis-cli --cluster create`.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LocalCluster {
  /** host:port of every node, comma-separated, as REDIS_CLUSTER_NODES takes them. */
  nodes: string;
  ports: number[];
  /** `redis-cli -p <port> <args…>`'s answer on one node. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** SIGKILLs one node's process. */
  kill(port: number): Promise<void>;
  /** The ports of the nodes that are primaries now, as a live node sees them. */
  primaryPorts(): Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * Starts `primaries × (1 + replicasEach)` nodes on consecutive ports from `firstPort` and forms a
 * cluster of them (the first `primaries` ports become the primaries); resolves once every node
 * says cluster_state:ok.
 */
export async function startRedisCluster({
  firstPort,
  primaries = 3,
  replicasEach = 1,
}: {
  firstPort: number;
  primaries?: number;
  replicasEach?: number;
}): Promise<LocalCluster> {
  const ports = Array.from({ length: primaries * (1 + replicasEach) }, (_, i) => firstPort + i);
  const dir = await mkdtemp(join(tmpdir(), 'rq-cluster-'));
  const servers: ChildProcess[] = [];
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  const stop = async () => {
    for (const server of servers) if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await Promise.all(
      servers.map((server) => (server.exitCode === null && server.signalCode === null ? once(server, 'exit') : null)),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      const server = spawn(
        'redis-server',
        [
          ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
          ...['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'],
          ...['--save', '', '--appendonly', 'no', '--logfile', join(dir, `redis-${port}.log`)],
          // A replica's first copy starts at once (not after Redis's default 5 s wait for others).
          ...['--repl-diskless-sync-delay', '0'],
        ],
        { stdio: 'ignore' },
      );
      servers.push(server);
    }
    for (const port of ports)
      await until(async () => (await cli(port, 'PING').catch(() => '')) === 'PONG', `node ${port} to answer`);
    // redis-cli makes the first `primaries` addresses the primaries, the others their replicas.
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      String(replicasEach),
      '--cluster-yes',
    ]);
    for (const port of ports) {
      await until(
        async () => (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
        `node ${port} to be in a cluster`,
      );
    }
    // A replica that has not copied its primary yet would not take over from it.
    for (const port of ports.slice(primaries)) {
      await until(
        async () => (await cli(port, 'INFO', 'replication')).includes('master_link_status:up'),
        `replica ${port} to copy its primary`,
      );
    }
    const alive = (port: number) => {
      const server = servers[ports.indexOf(port)];
      return server !== undefined && server.exitCode === null && server.signalCode === null;
    };
    return {
      nodes: ports.map((port) => `127.0.0.1:${port}`).join(','),
      ports,
      cli,
      async kill(port) {
        const server = servers[ports.indexOf(port)];
        if (!server || !alive(port)) return;
        server.kill('SIGKILL');
        await once(server, 'exit');
      },
      async primaryPorts() {
        const nodes = await cli(ports.find(alive) as number, 'CLUSTER', 'NODES');
        return nodes
          .split('\n')
          .filter((line) => / (myself,)?master /.test(line) && !line.includes('fail'))
          .map((line) => Number(/:(\d+)@/.exec(line)?.[1]));
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
