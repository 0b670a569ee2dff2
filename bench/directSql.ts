import mysql from 'mysql2/promise';
import { idBytes } from '../src/apply/ledger.js';
import { newCommandId } from '../src/commands/commandId.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/db/migrate.js';
import { serviceTables } from '../src/db/tables.js';

/**
 * The ceiling: the same effects as the worker's transaction for an Internal reply — lock the
 * ticket, check the ledger, insert the reply, update the ticket, one audit row, one ledger
 * row — done directly with mysql2, one transaction per command, `connections` at a time, the
 * commands going round `ticketIds` (all the bench's tickets, or the few of the hot scenario).
 */
export async function directSqlRate(
  url: string,
  commands: number,
  ticketIds: readonly number[],
  connections: number,
): Promise<number> {
  const config = loadConfig({ DATABASE_URL: url });
  const tables = serviceTables(config);
  const pool = mysql.createPool({ uri: url, connectionLimit: connections, dateStrings: true });
  await migrate(pool, tables);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const conn = await pool.getConnection();
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      try {
        while (next < commands) {
          const i = next++;
          const ticket = ticketIds[i % ticketIds.length] as number;
          const id = idBytes(newCommandId());
          const now = new Date().toISOString().slice(0, 19).replace('T', ' ');
          await conn.beginTransaction();
          await conn.query('SELECT ticket_id, ticket_status, ticket_client_id FROM tickets WHERE ticket_id = ? FOR UPDATE', [
            ticket,
          ]);
          await conn.query(`SELECT status FROM ${tables.commands} WHERE command_id = ?`, [id]);
          const [reply] = await conn.query<mysql.ResultSetHeader>(
            `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_by, ticket_reply_ticket_id, ticket_reply_created_at)
             VALUES (?, 'Internal', '00:01:00', 1, ?, ?)`,
            [`Direct reply ${i}`, ticket, now],
          );
          await conn.query('UPDATE tickets SET ticket_updated_at = ? WHERE ticket_id = ?', [now, ticket]);
          await conn.query(
            `INSERT INTO logs (log_type, log_action, log_description, log_ip, log_user_agent, log_created_at, log_client_id, log_user_id, log_entity_id)
             VALUES ('Ticket', 'Reply', ?, '127.0.0.1', 'bench', ?, 1, 1, ?)`,
            [`Added an Internal reply to ticket ${ticket} via API (Bench)`, now, ticket],
          );
          await conn.query(
            `INSERT INTO ${tables.commands} (command_id, api_key_id, ticket_id, accepted_at_utc, finished_at_utc, status, insert_id)
             VALUES (?, 1, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), 'applied', ?)`,
            [id, ticket, reply.insertId],
          );
          await conn.commit();
        }
      } finally {
        conn.release();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.end();
  return commands / seconds;
}

/** Ticket ids 1…`count`: the bench's tickets, or the first few of them. */
export function firstTickets(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}
