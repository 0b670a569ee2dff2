import mysql from 'mysql2/promise';
import { wallClock } from '../itflow/clock.js';

/** Keys the demo database is seeded with (local demo only; never use these anywhere else). */
export const DEMO_KEYS = {
  admin: 'demo-admin-key',
  acmeTechnician: 'demo-acme-tech-key',
  readOnly: 'demo-read-only-key',
} as const;

/**
 * A small ITFlow as a new user would see it: three clients, an admin, a technician limited to
 * one client, a read-only user, an API key for each, and tickets in every status (one
 * already closed, one with no client) with a couple of replies written "by the web UI".
 */
export async function seedDemoData(databaseUrl: string): Promise<void> {
  const conn = await mysql.createConnection({ uri: databaseUrl });
  try {
    const [settings] = await conn.query<mysql.RowDataPacket[]>('SELECT config_timezone FROM settings WHERE company_id = 1');
    const zone = String(settings[0]?.config_timezone ?? 'UTC');
    // ITFlow's DATETIMEs are wall-clock times in its configured zone.
    const now = (offsetMinutes: number) => wallClock(Date.now() + offsetMinutes * 60_000, zone);
    await conn.beginTransaction();
    await conn.query(
      `INSERT INTO clients (client_id, client_name) VALUES
        (1, 'Acme Corporation'), (2, 'Globex Industries'), (3, 'Initech')`,
    );
    await conn.query(
      `INSERT INTO contacts (contact_id, contact_name, contact_email, contact_client_id) VALUES
        (1, 'Wile E. Coyote', 'wile@acme.example', 1), (2, 'Hank Scorpio', 'hank@globex.example', 2)`,
    );
    await conn.query(
      `INSERT INTO user_roles (role_id, role_name, role_description, role_is_admin) VALUES
        (1, 'Administrator', 'Full access', 1),
        (2, 'Technician', 'Works tickets', 0),
        (3, 'Read only', 'Can look, not touch', 0)`,
    );
    await conn.query(
      `INSERT INTO user_role_permissions (user_role_id, module_id, user_role_permission_level) VALUES
        (2, 1, 1), (2, 2, 2), (3, 1, 1), (3, 2, 1)`,
    );
    await conn.query(
      `INSERT INTO users (user_id, user_name, user_email, user_password, user_role_id) VALUES
        (1, 'Ada Admin', 'ada@msp.example', '!', 1),
        (2, 'Tim Technician', 'tim@msp.example', '!', 2),
        (3, 'Rita Reader', 'rita@msp.example', '!', 3)`,
    );
    await conn.query(`INSERT INTO user_client_permissions (user_id, client_id, permission_type) VALUES (2, 1, 'allow')`);
    await conn.query(
      `INSERT INTO api_keys (api_key_name, api_key_secret, api_key_decrypt_hash, api_key_expire, api_key_user_id) VALUES
        ('Demo admin integration', ?, '', '2099-12-31', 1),
        ('Demo Acme RMM bridge', ?, '', '2099-12-31', 2),
        ('Demo reporting', ?, '', '2099-12-31', 3)`,
      [DEMO_KEYS.admin, DEMO_KEYS.acmeTechnician, DEMO_KEYS.readOnly],
    );
    await conn.query(
      `INSERT INTO tickets (ticket_id, ticket_prefix, ticket_number, ticket_subject, ticket_details, ticket_status,
                            ticket_client_id, ticket_created_by, ticket_assigned_to, ticket_created_at,
                            ticket_resolved_at, ticket_closed_at, ticket_closed_by) VALUES
        (1, 'TCK-', 1, 'Backups failing on the file server', 'Nightly job fails since Monday.', 2, 1, 1, 2, ?, NULL, NULL, 0),
        (2, 'TCK-', 2, 'Laptop for a new starter', 'Needs to be ready by the 1st.', 1, 1, 1, 0, ?, NULL, NULL, 0),
        (3, 'TCK-', 3, 'VPN drops every hour', 'Waiting on the ISP.', 3, 2, 1, 1, ?, NULL, NULL, 0),
        (4, 'TCK-', 4, 'Printer offline', 'Second floor printer.', 4, 2, 1, 1, ?, ?, NULL, 0),
        (5, 'TCK-', 5, 'Email migration', 'Moved to the new tenant.', 5, 3, 1, 1, ?, ?, ?, 1),
        (6, 'TCK-', 6, 'Renew the SSL certificate', 'Internal task, no client.', 2, 0, 1, 1, ?, NULL, NULL, 0)`,
      [now(-4000), now(-3000), now(-2500), now(-2000), now(-100), now(-1500), now(-200), now(-150), now(-60)],
    );
    await conn.query(
      `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_created_at,
                                   ticket_reply_by, ticket_reply_ticket_id) VALUES
        ('<p>Looking into it now.</p>', 'Public', '00:05:00', ?, 2, 1),
        ('<p>Backup agent log shows a full disk.</p>', 'Internal', '00:20:00', ?, 2, 1)`,
      [now(-3900), now(-3800)],
    );
    // The tickets' contacts, who ITFlow's client mail goes to, and the url keys of ITFlow's guest
    // links in that mail (ITFlow gives every new ticket a random one).
    await conn.query('UPDATE tickets SET ticket_contact_id = ticket_client_id WHERE ticket_client_id IN (1, 2)');
    await conn.query("UPDATE tickets SET ticket_url_key = LEFT(SHA2(CONCAT('itflow-demo-ticket-', ticket_id), 256), 32)");
    await conn.query(
      `UPDATE settings SET config_ticket_next_number = 7,
         -- Mail "set up" so Public + email replies, resolves and closes queue ITFlow's client mail in
         -- email_queue; a demo has no ITFlow cron, so nothing is ever sent.
         config_smtp_provider = 'standard_smtp', config_smtp_host = 'smtp.demo.example',
         config_ticket_from_name = 'Demo MSP Support', config_ticket_from_email = 'support@msp.example'
       WHERE company_id = 1`,
    );
    await conn.commit();
  } finally {
    await conn.end();
  }
}
