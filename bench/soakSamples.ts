import { readFileSync } from 'node:fs';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type mysql from 'mysql2/promise';
import { utcTimestamp } from '../src/apply/ledger.js';
import { laneQueues } from '../src/queue/lanes.js';

/** One row of the soak's time series; rates and lags cover the interval since the previous row. */
export interface Sample {
  /** Seconds since the load started. */
  t: number;
  intakeRssMiB: number;
  workerRssMiB: number;
  workerPid: number;
  /** Jobs waiting in the lanes (a job is one single command here), being applied, dead-lettered. */
  waiting: number;
  active: number;
  deadLetters: number;
  inFlight: number;
  sentPerSecond: number;
  acceptedPerSecond: number;
  appliedPerSecond: number;
  refused503: number;
  failed5xx: number;
  networkErrors: number;
  skipped: number;
  acceptP99Ms: number;
  lagP50Ms: number;
  lagP99Ms: number;
}

/** Resident memory of a process in MiB (VmRSS), NaN once it has gone. */
export function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const kB = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kB === undefined ? Number.NaN : Number(kB) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Job counts summed over every lane, one getJobCounts script per lane sent together. */
export class QueueDepth {
  private readonly queues: Queue[];

  constructor(redis: Redis, prefix: string, lanes: number) {
    this.queues = laneQueues(redis, prefix, lanes);
  }

  async read(): Promise<{ waiting: number; active: number; deadLetters: number }> {
    const counts = await Promise.all(
      this.queues.map((queue) => queue.getJobCounts('waiting', 'prioritized', 'active', 'failed')),
    );
    const sum = (state: string) => counts.reduce((total, lane) => total + (lane[state] ?? 0), 0);
    return { waiting: sum('waiting') + sum('prioritized'), active: sum('active'), deadLetters: sum('failed') };
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
  }
}

/**
 * Rows finished more than this long before the previous look are not looked at again: longer
 * than the load's 30 s request timeout, so a command applied before its 202 was read is seen.
 */
const FINISHED_MARGIN_MS = 60_000;
/** A command pending for longer no longer holds back the range scanned; it is looked up by id instead. */
const LOOKBACK_MS = 5 * 60_000;

/**
 * Accept→applied lags of the commands that finished since the last call, read without scanning
 * the ledger: it has no index on finished_at_utc, but its primary key is the command id, a
 * UUIDv7 that starts with the acceptance time. So each look reads the primary-key range from
 * the oldest command still pending onwards (a few seconds of rows in a steady state, the
 * backlog's age after a crash) and picks out the pending ones.
 */
export class LagTracker {
  private readonly pending = new Set<string>();
  private lastLookMs = Date.now();

  constructor(private readonly conn: mysql.Connection) {}

  accepted(commandId: string): void {
    this.pending.add(commandId.replace(/-/g, ''));
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  async finishedSinceLastLook(): Promise<number[]> {
    const lookMs = Date.now();
    if (this.pending.size === 0) return [];
    const floor = uuidv7Floor(lookMs - LOOKBACK_MS);
    let oldest = 'f'.repeat(32);
    const overdue: Buffer[] = [];
    for (const id of this.pending) {
      if (id < floor) {
        if (overdue.length < 5000) overdue.push(Buffer.from(id, 'hex'));
      } else if (id < oldest) oldest = id;
    }
    const [recent] = await this.conn.query<mysql.RowDataPacket[]>(
      `SELECT command_id, TIMESTAMPDIFF(MICROSECOND, accepted_at_utc, finished_at_utc) / 1000 AS lag
       FROM rq_commands WHERE command_id >= ? AND finished_at_utc >= ?`,
      [Buffer.from(oldest, 'hex'), utcTimestamp(this.lastLookMs - FINISHED_MARGIN_MS)],
    );
    // Commands pending for longer than the lookback are few (or lost): looked up by id.
    const [late] =
      overdue.length === 0
        ? [[]]
        : await this.conn.query<mysql.RowDataPacket[]>(
            `SELECT command_id, TIMESTAMPDIFF(MICROSECOND, accepted_at_utc, finished_at_utc) / 1000 AS lag
             FROM rq_commands WHERE command_id IN (?)`,
            [overdue],
          );
    this.lastLookMs = lookMs;
    const lags: number[] = [];
    for (const row of [...recent, ...late]) {
      if (this.pending.delete((row.command_id as Buffer).toString('hex'))) lags.push(Number(row.lag));
    }
    return lags;
  }
}

/** The smallest UUIDv7 (as 32 hex digits) created at `ms`. */
function uuidv7Floor(ms: number): string {
  return `${ms.toString(16).padStart(12, '0')}${'0'.repeat(20)}`;
}
