import mysql from 'mysql2/promise';
import { percentile } from './setup.js';
import type { AcceptedIds } from './soakLoad.js';

/** What the database shows for the soak's commands once the queue has drained. */
export interface Verification {
  /** Accepted commands (202s) with a ledger row saying 'applied'. */
  applied: number;
  /** Accepted commands whose ledger row says 'failed' (validation passed, the apply refused it). */
  failedInLedger: number;
  /** Accepted commands without a ledger row. */
  lost: number;
  ledgerRows: number;
  /** `soak %` replies in ticket_replies, and reply texts found more than once. */
  replies: number;
  duplicateReplies: number;
  /** Accept→applied lag p50/p99 (ms) of the commands sent in each quarter of the run. */
  quarters: Array<{ commands: number; lagP50Ms: number; lagP99Ms: number }>;
}

const BATCH = 5000;

/**
 * The exactly-once check: every command id a 202 returned has exactly one ledger row, and it
 * says 'applied' (the ledger's primary key is the id, so a second row cannot exist; a second
 * effect would show as a repeated reply text, which is checked separately), and the replies
 * written are as many as the commands accepted.
 */
export async function verifyExactlyOnce(url: string, ids: AcceptedIds, scheduled: number): Promise<Verification> {
  const conn = await mysql.createConnection({ uri: url });
  try {
    let applied = 0;
    let failedInLedger = 0;
    let lost = 0;
    const lags: number[][] = [[], [], [], []];
    for (let start = 0; start < ids.length; start += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, ids.length - start) }, (_, i) => start + i);
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT command_id, status, TIMESTAMPDIFF(MICROSECOND, accepted_at_utc, finished_at_utc) / 1000 AS lag
         FROM rq_commands WHERE command_id IN (?)`,
        [batch.map((i) => ids.id(i))],
      );
      const found = new Map(rows.map((row) => [(row.command_id as Buffer).toString('hex'), row]));
      for (const i of batch) {
        const row = found.get(ids.id(i).toString('hex'));
        if (!row) lost++;
        else if (row.status !== 'applied') failedInLedger++;
        else {
          applied++;
          lags[Math.min(3, Math.floor((ids.seq(i) / scheduled) * 4))]?.push(Number(row.lag));
        }
      }
    }
    const [[ledger]] = (await conn.query('SELECT COUNT(*) AS n FROM rq_commands')) as unknown as [[{ n: number }]];
    const [[replies]] = (await conn.query(
      "SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply LIKE 'soak %'",
    )) as unknown as [[{ n: number }]];
    const [[duplicates]] = (await conn.query(
      `SELECT COUNT(*) AS n FROM (
         SELECT ticket_reply FROM ticket_replies WHERE ticket_reply LIKE 'soak %' GROUP BY ticket_reply HAVING COUNT(*) > 1
       ) AS repeated`,
    )) as unknown as [[{ n: number }]];
    return {
      applied,
      failedInLedger,
      lost,
      ledgerRows: Number(ledger.n),
      replies: Number(replies.n),
      duplicateReplies: Number(duplicates.n),
      quarters: lags.map((quarter) => {
        const sorted = quarter.sort((a, b) => a - b);
        return { commands: sorted.length, lagP50Ms: percentile(sorted, 50), lagP99Ms: percentile(sorted, 99) };
      }),
    };
  } finally {
    await conn.end();
  }
}
