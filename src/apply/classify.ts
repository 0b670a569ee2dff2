import { Invalid, ServiceError, TransientDbError } from '../errors.js';

/**
 * The one place that decides what a failed apply means:
 * - a ServiceError is the command's final answer (ticket gone, closed, out of scope…), and
 *   so is a value ITFlow's tables refuse;
 * - a transient MySQL/network error is retried with backoff;
 * - anything else is retried too: it may be a passing fault, and a command that keeps
 *   failing ends as a dead letter an operator can inspect and replay, never lost.
 */
const TRANSIENT_CODES = new Set([
  'ER_LOCK_DEADLOCK', // 1213
  'ER_LOCK_WAIT_TIMEOUT', // 1205
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ER_SERVER_SHUTDOWN', // 1053
  'ER_CON_COUNT_ERROR', // 1040
  'ER_QUERY_INTERRUPTED', // 1317
  'ER_CONNECTION_KILLED', // 1927 (MariaDB)
  'ER_CLIENT_INTERACTION_TIMEOUT',
  'ER_LOCK_TABLE_FULL',
  // Two workers recording the same command: the loser's retry finds it in the ledger.
  'ER_DUP_ENTRY',
]);
const TRANSIENT_ERRNOS = new Set([1205, 1213, 1040, 1053, 1317, 1927, 2006, 2013, 4031]);

/** ITFlow's tables refusing a value (too long, out of range, wrong encoding): retrying won't help. */
const DATA_ERRNOS = new Set([1048, 1264, 1292, 1366, 1406]);

export type Verdict = { kind: 'final'; error: ServiceError } | { kind: 'retry'; error: Error };

export function classify(error: unknown): Verdict {
  if (error instanceof ServiceError) return { kind: 'final', error };
  if (error instanceof TransientDbError) return { kind: 'retry', error };
  const e = error as { code?: string; errno?: number; fatal?: boolean; message?: string };
  if (e?.errno !== undefined && DATA_ERRNOS.has(e.errno)) {
    return {
      kind: 'final',
      error: new Invalid("ITFlow's database refused this command's data (a value is too long or out of range)."),
    };
  }
  const transient =
    (e?.code !== undefined && TRANSIENT_CODES.has(e.code)) ||
    (e?.errno !== undefined && TRANSIENT_ERRNOS.has(e.errno)) ||
    e?.fatal === true;
  const message = e?.message ?? String(error);
  return {
    kind: 'retry',
    error: transient ? new TransientDbError(message, e.code ?? String(e.errno)) : new Error(message),
  };
}
