// The one place that decides what a failed apply (or look-up) means, and so how it is retried:
// - `final`: the command's own answer (ticket gone, closed, out of scope…, or a value ITFlow's
//   tables refuse): recorded, never retried;
// - `outage`: MySQL is away or refusing us (connection refused or lost, login refused, too many
//   connections, read-only): wait as long as it lasts, spending no attempts — once a probe
//   confirms it really is away (src/db/availability.ts);
// - `contention`: deadlocks and lock waits: retried soon, within a bounded budget of attempts;
// - `unknown`: anything else — retried within the same budget (it may be a passing fault), and a
//   batch that fails with it is split so a poisoned command fails alone.
import { Invalid, NETWORK_ERROR_CODES, ServiceError, TransientDbError } from '../errors.js';

const OUTAGE_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  ...NETWORK_ERROR_CODES,
  'QUERY_DEADLINE', // src/db/pool.ts: no answer within LOOKUP_TIMEOUT_MS
]);
const OUTAGE_ERRNOS = new Set([
  1040, // too many connections
  1044, // access denied to the database
  1045, // access denied (password changed, user dropped)
  1053, // server shutdown in progress
  1129, // host blocked
  1130, // host not allowed
  1203, // user has too many connections
  1226, // user exceeded a resource limit
  1290, // --read-only (a failover's new replica, maintenance)
  1792, // read-only transaction
  1836, // running in read-only mode
  1927, // connection killed (MariaDB)
  2002, // cannot connect (socket)
  2003, // cannot connect (TCP)
  2006, // server has gone away
  2013, // lost connection during query
  4031, // disconnected by the server for inactivity
  4151, // account locked (MariaDB)
  3118, // account locked (MySQL)
]);
const CONTENTION_ERRNOS = new Set([
  1205, // lock wait timeout
  1213, // deadlock
  1317, // query interrupted (KILL QUERY)
  1206, // lock table full
  1062, // duplicate key: two workers recording the same command; the loser's retry finds it in the ledger
]);

/** ITFlow's tables refusing a value (too long, out of range, wrong encoding): retrying won't help. */
const DATA_ERRNOS = new Set([1048, 1264, 1292, 1366, 1406]);
/** One statement larger than max_allowed_packet: a batch of it splits; a lone command cannot be stored. */
const PACKET_TOO_LARGE = 1153;

export type Verdict =
  | { kind: 'final'; error: ServiceError }
  | { kind: 'outage' | 'contention'; error: TransientDbError }
  | { kind: 'unknown'; error: Error };

export function classify(error: unknown): Verdict {
  if (error instanceof ServiceError) return { kind: 'final', error };
  const e = error as { code?: string; errno?: number; fatal?: boolean; message?: string };
  const message = e?.message ?? String(error);
  const code = e?.code ?? String(e?.errno);
  if (e?.errno !== undefined && DATA_ERRNOS.has(e.errno)) {
    return {
      kind: 'final',
      error: new Invalid("ITFlow's database refused this command's data (a value is too long or out of range)."),
    };
  }
  if (e?.errno === PACKET_TOO_LARGE) {
    return { kind: 'final', error: new Invalid("The command is larger than ITFlow's database accepts (max_allowed_packet).") };
  }
  if (error instanceof TransientDbError) {
    return { kind: OUTAGE_CODES.has(error.code) ? 'outage' : 'contention', error };
  }
  if ((e?.code !== undefined && OUTAGE_CODES.has(e.code)) || (e?.errno !== undefined && OUTAGE_ERRNOS.has(e.errno))) {
    return { kind: 'outage', error: new TransientDbError(message, code) };
  }
  if (e?.errno !== undefined && CONTENTION_ERRNOS.has(e.errno)) {
    return { kind: 'contention', error: new TransientDbError(message, code) };
  }
  // A connection that broke in a way not named above is still a connection problem.
  if (e?.fatal === true) return { kind: 'outage', error: new TransientDbError(message, code) };
  return { kind: 'unknown', error: error instanceof Error ? error : new Error(message) };
}

/** Whether a batch failing with this error should be retried whole (not split into its commands). */
export function isTransient(error: unknown): boolean {
  const { kind } = classify(error);
  return kind === 'outage' || kind === 'contention';
}
