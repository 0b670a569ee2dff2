// Whether MySQL is there: the worker's judge of an outage. An error of the outage class (refused
// or lost connection, login refused, read-only…) is only a clue — a killed connection or a
// poisoned command looks the same — so a fresh connection is tried at once: if MySQL answers and
// takes writes, the error was not an outage and costs the command an attempt; if it does not,
// MySQL is down, everyone waiting on it waits (spending no attempts) while one probe loop tries
// with capped backoff, and all resume together when it answers. One log line when it goes away,
// one when it is back.
import mysql from 'mysql2/promise';
import type { Logger } from 'pino';

export type AfterError = 'answering' | 'recovered' | 'aborted';

/** Connects afresh and asks whether the server takes writes (read_only off). */
export function mysqlProbe(databaseUrl: string, timeoutMs: number): () => Promise<boolean> {
  return async () => {
    let connection: mysql.Connection | undefined;
    const timer = setTimeout(() => connection?.destroy(), timeoutMs);
    try {
      connection = await mysql.createConnection({ uri: databaseUrl, connectTimeout: timeoutMs });
      const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT @@global.read_only AS ro');
      return Number(rows[0]?.ro) === 0;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      await connection?.end().catch(() => connection?.destroy());
    }
  };
}

export class MysqlAvailability {
  private outage: { since: number; back: Promise<void> } | null = null;
  private probing: Promise<boolean> | null = null;
  private stopped = false;

  constructor(
    private readonly probe: () => Promise<boolean>,
    private readonly logger: Logger,
    private readonly maxBackoffMs = 5_000,
  ) {}

  /** True while an outage is confirmed and not over. */
  get down(): boolean {
    return this.outage !== null;
  }

  /**
   * After an outage-class error: 'answering' when MySQL answers now (the error was not an
   * outage), 'recovered' once it answers again after being away, 'aborted' when `signal` fires
   * first (shutting down).
   */
  async afterError(error: Error, signal?: AbortSignal): Promise<AfterError> {
    if (!this.outage && (await this.probeOnce())) return 'answering';
    const outage = this.beginOutage(error);
    return untilAborted(outage.back, signal);
  }

  /** Reports an outage-class error without waiting (the intake: its client retries). */
  notice(error: Error): void {
    if (this.outage) return;
    void this.probeOnce().then((answering) => {
      if (!answering) this.beginOutage(error);
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private probeOnce(): Promise<boolean> {
    this.probing ??= this.probe().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  /** The outage under way, or a new one (told once in the log) if none is. */
  private beginOutage(error: Error): { since: number; back: Promise<void> } {
    if (this.outage) return this.outage;
    const since = Date.now();
    this.logger.warn(
      { err: error.message },
      'MySQL is unreachable or refusing writes; requests that need it answer 503, commands wait for it without spending attempts',
    );
    const back = (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(this.maxBackoffMs, 250 * 2 ** attempt)).unref());
        if (await this.probeOnce()) return;
      }
    })().then(() => {
      this.outage = null;
      if (!this.stopped) this.logger.info({ outageMs: Date.now() - since }, 'MySQL is reachable again; commands resume');
    });
    this.outage = { since, back };
    return this.outage;
  }
}

function untilAborted(promise: Promise<void>, signal: AbortSignal | undefined): Promise<AfterError> {
  if (signal?.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => {
    const onAbort = () => resolve('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve('recovered');
    });
  });
}
