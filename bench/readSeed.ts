import mysql from 'mysql2/promise';
import { createItflowDatabase, type Generation, withDatabase } from '../src/demo/itflowDatabase.js';

/**
 * A large ITFlow for the read benchmark (generated here, never committed): 10,000 tickets over
 * ten clients — nine of ~1,110 tickets each and one "sparse" client with 10 — and 1,000,000
 * replies spread over the tickets in random order, 2 % archived. Built once per generation and
 * reused while it has the expected row count.
 */
export const READ_TICKETS = 10_000;
export const READ_REPLIES = 1_000_000;
export const SPARSE_CLIENT = 10;

export interface ReadKeys {
  all: string;
  clientOne: string;
  sparse: string;
}

const keyFor = (generation: Generation, name: string) => `read-bench-${generation}-${name}`;

export async function seedReadDatabase(
  serverUrl: string,
  generation: Generation,
  log: (line: string) => void,
): Promise<{ url: string; keys: ReadKeys }> {
  const database = `itflow_bench_read_${generation.replace(/\./g, '')}`;
  const url = withDatabase(serverUrl, database);
  const keys = { all: keyFor(generation, 'all'), clientOne: keyFor(generation, 'client1'), sparse: keyFor(generation, 'sparse') };
  if (await seeded(url)) return { url, keys };

  log(`Seeding ${database}: ${READ_TICKETS.toLocaleString()} tickets, ${READ_REPLIES.toLocaleString()} replies…`);
  await createItflowDatabase(serverUrl, database, generation);
  const conn = await mysql.createConnection({ uri: url });
  try {
    await conn.query('INSERT INTO clients (client_name) VALUES ?', [Array.from({ length: 10 }, (_, i) => [`Client ${i + 1}`])]);
    const tickets = Array.from({ length: READ_TICKETS }, (_, i) => {
      const client = i < 10 ? SPARSE_CLIENT : (i % 9) + 1;
      return ['TCK-', i + 1, `Ticket ${i + 1}`, '', 2, client, 1];
    });
    for (let i = 0; i < tickets.length; i += 5000) {
      await conn.query(
        'INSERT INTO tickets (ticket_prefix, ticket_number, ticket_subject, ticket_details, ticket_status, ticket_client_id, ticket_created_by) VALUES ?',
        [tickets.slice(i, i + 5000)],
      );
    }
    if (generation === '2.4.4') {
      await conn.query(
        `INSERT INTO api_keys (api_key_name, api_key_secret, api_key_decrypt_hash, api_key_expire, api_key_client_id)
         VALUES ('All', ?, '', '2099-12-31', 0), ('Client 1', ?, '', '2099-12-31', 1), ('Sparse', ?, '', '2099-12-31', ?)`,
        [keys.all, keys.clientOne, keys.sparse, SPARSE_CLIENT],
      );
    } else {
      await conn.query("INSERT INTO user_roles (role_id, role_name, role_is_admin) VALUES (1, 'Admin', 1), (2, 'Tech', 0)");
      await conn.query(
        'INSERT INTO user_role_permissions (user_role_id, module_id, user_role_permission_level) VALUES (2, 2, 2)',
      );
      await conn.query(
        "INSERT INTO users (user_id, user_name, user_email, user_password, user_role_id) VALUES (1, 'Admin', 'a@x', '!', 1), (2, 'One', 'o@x', '!', 2), (3, 'Sparse', 's@x', '!', 2)",
      );
      await conn.query(
        "INSERT INTO user_client_permissions (user_id, client_id, permission_type) VALUES (2, 1, 'allow'), (3, ?, 'allow')",
        [SPARSE_CLIENT],
      );
      await conn.query(
        `INSERT INTO api_keys (api_key_name, api_key_secret, api_key_decrypt_hash, api_key_expire, api_key_user_id)
         VALUES ('All', ?, '', '2099-12-31', 1), ('Client 1', ?, '', '2099-12-31', 2), ('Sparse', ?, '', '2099-12-31', 3)`,
        [keys.all, keys.clientOne, keys.sparse],
      );
    }
    const start = Date.UTC(2024, 0, 1);
    const batch = 10_000;
    for (let done = 0; done < READ_REPLIES; done += batch) {
      const rows = Array.from({ length: batch }, (_, i) => {
        const n = done + i;
        const created = new Date(start + n * 60_000).toISOString().slice(0, 19).replace('T', ' ');
        return [
          `Reply ${n}: checked the logs, restarted the service, all green again.`,
          n % 3 === 0 ? 'Public' : 'Internal',
          '00:05:00',
          created,
          n % 50 === 0 ? created : null,
          1,
          1 + Math.floor(Math.random() * READ_TICKETS),
        ];
      });
      await conn.query(
        `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_created_at,
                                     ticket_reply_archived_at, ticket_reply_by, ticket_reply_ticket_id) VALUES ?`,
        [rows],
      );
      if ((done + batch) % 200_000 === 0) log(`  ${(done + batch).toLocaleString()} replies`);
    }
    await conn.query('ANALYZE TABLE ticket_replies, tickets');
  } finally {
    await conn.end();
  }
  return { url, keys };
}

async function seeded(url: string): Promise<boolean> {
  const conn = await mysql.createConnection({ uri: url }).catch(() => null);
  if (!conn) return false;
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM ticket_replies');
    return Number(rows[0]?.n) === READ_REPLIES;
  } catch {
    return false;
  } finally {
    await conn.end();
  }
}
