import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';

// Where the time goes, per command: the statements MariaDB was sent, the commands Redis ran, and
// the CPU time of the system under test (its process tree), MariaDB, Redis and the bench itself
// (the load generator), read before and after a measurement. The counters are server-wide, so
// they are only clean when nothing else uses MariaDB and Redis during the run.

export interface WorkSnapshot {
  /** MariaDB's `Questions`: statements sent by clients. */
  sqlStatements: number;
  /** MariaDB's `Com_commit`: transactions committed with COMMIT (the worker's batches, and a few of other clients'). */
  commits: number;
  /** InnoDB's row lock waits (`Innodb_row_lock_waits`), the time spent in them (ms) and deadlocks. */
  rowLockWaits: number;
  rowLockMs: number;
  deadlocks: number;
  /** Redis's `total_commands_processed` (commands inside Lua scripts and MULTI count one by one). */
  redisCommands: number;
  cpuMs: { system: number; mariadb: number; redis: number; bench: number };
}

export interface WorkPerCommand {
  sqlStatements: number;
  /** Commands applied per COMMIT: the batches' size, server-wide (so a little under it). */
  commandsPerCommit: number;
  /** Row lock waits and their ms, per command; deadlocks over the whole measurement. */
  rowLockWaits: number;
  rowLockMs: number;
  deadlocks: number;
  redisCommands: number;
  /** CPU microseconds per command applied. */
  cpuUs: WorkSnapshot['cpuMs'];
}

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** utime + stime of one process in ms (fields 14 and 15 of /proc/<pid>/stat, after the name). */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0; // gone since it was listed
  }
}

/** The live children of `pid`, from every thread's `children` list. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** CPU ms of the processes `pids` and all their live descendants. */
function treeCpuMs(pids: number[]): number {
  let total = 0;
  const pending = [...pids];
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    total += processCpuMs(pid);
    pending.push(...childrenOf(pid));
  }
  return total;
}

/** The pid of the local process named `name` (its /proc/<pid>/comm), if there is one. */
function pidNamed(...names: string[]): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, 'utf8').trim())) return Number(entry);
    } catch {}
  }
  return undefined;
}

export class WorkMeter {
  private constructor(
    private readonly db: mysql.Connection,
    private readonly redis: Redis,
    private readonly mariadbPid: number | undefined,
    private readonly redisPid: number | undefined,
  ) {}

  static async open(mysqlUrl: string, redisUrl: string): Promise<WorkMeter> {
    const db = await mysql.createConnection({ uri: mysqlUrl });
    return new WorkMeter(db, new Redis(redisUrl), pidNamed('mariadbd', 'mysqld'), pidNamed('redis-server'));
  }

  /** The counters now; `systemPids` are the roots of the system under test's processes. */
  async snapshot(systemPids: number[]): Promise<WorkSnapshot> {
    const [rows] = (await this.db.query(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_commit', 'Innodb_row_lock_waits', 'Innodb_row_lock_time', 'Innodb_deadlocks')",
    )) as unknown as [Array<{ Variable_name: string; Value: string }>];
    const status = (name: string) => Number(rows.find((row) => row.Variable_name === name)?.Value ?? Number.NaN);
    const stats = await this.redis.info('stats');
    const usage = process.cpuUsage();
    const server = (pid: number | undefined) => (pid === undefined ? Number.NaN : processCpuMs(pid));
    return {
      sqlStatements: status('Questions'),
      commits: status('Com_commit'),
      rowLockWaits: status('Innodb_row_lock_waits'),
      rowLockMs: status('Innodb_row_lock_time'),
      deadlocks: status('Innodb_deadlocks'),
      redisCommands: Number(/total_commands_processed:(\d+)/.exec(stats)?.[1]),
      cpuMs: {
        system: treeCpuMs(systemPids),
        mariadb: server(this.mariadbPid),
        redis: server(this.redisPid),
        bench: (usage.user + usage.system) / 1000,
      },
    };
  }

  async close(): Promise<void> {
    await this.db.end();
    this.redis.disconnect();
  }
}

/** What happened between two snapshots, per command applied. */
export function workPerCommand(before: WorkSnapshot, after: WorkSnapshot, commands: number): WorkPerCommand {
  const per = (a: number, b: number) => (b - a) / commands;
  const cpuUs = (key: keyof WorkSnapshot['cpuMs']) => per(before.cpuMs[key], after.cpuMs[key]) * 1000;
  return {
    sqlStatements: per(before.sqlStatements, after.sqlStatements),
    commandsPerCommit: commands / (after.commits - before.commits),
    rowLockWaits: per(before.rowLockWaits, after.rowLockWaits),
    rowLockMs: per(before.rowLockMs, after.rowLockMs),
    deadlocks: after.deadlocks - before.deadlocks,
    redisCommands: per(before.redisCommands, after.redisCommands),
    cpuUs: { system: cpuUs('system'), mariadb: cpuUs('mariadb'), redis: cpuUs('redis'), bench: cpuUs('bench') },
  };
}
