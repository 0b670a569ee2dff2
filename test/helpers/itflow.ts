import { randomBytes } from 'node:crypto';
import type { Connection, Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Generation } from '../../src/demo/itflowDatabase.js';

/**
 * Factories for the ITFlow rows tests need, written the way ITFlow itself stores them.
 */
async function insert(db: Pool, sql: string, params: unknown[]): Promise<number> {
  const [result] = await db.query<ResultSetHeader>(sql, params);
  return result.insertId;
}

export const addClient = (db: Pool, name: string) => insert(db, 'INSERT INTO clients (client_name) VALUES (?)', [name]);

/** A role with a module_support level (1 read, 2 write, 3 full), or an admin role. */
export async function addRole(db: Pool, { admin = false, support = 0 }: { admin?: boolean; support?: number }) {
  const roleId = await insert(db, 'INSERT INTO user_roles (role_name, role_is_admin) VALUES (?, ?)', [
    admin ? 'Admin' : `Support ${support}`,
    admin ? 1 : 0,
  ]);
  if (support > 0) {
    await db.query(
      `INSERT INTO user_role_permissions (user_role_id, module_id, user_role_permission_level)
       SELECT ?, module_id, ? FROM modules WHERE module_name = 'module_support'`,
      [roleId, support],
    );
  }
  return roleId;
}

export async function addUser(
  db: Pool,
  {
    name,
    roleId,
    type = 1,
    status = 1,
    archived = false,
  }: { name: string; roleId: number; type?: number; status?: number; archived?: boolean },
) {
  return insert(
    db,
    `INSERT INTO users (user_name, user_email, user_password, user_type, user_status, user_archived_at, user_role_id)
     VALUES (?, ?, '!', ?, ?, ?, ?)`,
    [
      name,
      `${name.toLowerCase().replace(/\W+/g, '.')}@msp.example`,
      type,
      status,
      archived ? '2026-01-01 00:00:00' : null,
      roleId,
    ],
  );
}

export async function setClientPermissions(db: Pool, userId: number, type: 'allow' | 'deny', clientIds: number[]) {
  for (const clientId of clientIds) {
    await db.query('INSERT INTO user_client_permissions (user_id, client_id, permission_type) VALUES (?, ?, ?)', [
      userId,
      clientId,
      type,
    ]);
  }
}

/** An API key; `owner` is api_key_client_id (2.4.4) or api_key_user_id (newer). Returns the secret. */
export async function addKey(
  db: Pool,
  generation: Generation,
  { name, owner, expire = '2099-12-31' }: { name: string; owner: number; expire?: string },
): Promise<string> {
  const secret = randomBytes(12).toString('hex');
  const ownerColumn = generation === '2.4.4' ? 'api_key_client_id' : 'api_key_user_id';
  await db.query(
    `INSERT INTO api_keys (api_key_name, api_key_secret, api_key_decrypt_hash, api_key_expire, ${ownerColumn})
     VALUES (?, ?, '', ?, ?)`,
    [name, secret, expire, owner],
  );
  return secret;
}

export interface TicketOptions {
  clientId?: number;
  status?: number;
  subject?: string;
  createdBy?: number;
  assignedTo?: number;
  resolvedAt?: string | null;
  closedAt?: string | null;
  firstResponseAt?: string | null;
  responseDueAt?: string | null;
  resolutionDueAt?: string | null;
  /** ITFlow ≥ 2.6: the SLA the ticket runs on, and when it was raised (its clock's start). */
  slaId?: number;
  createdAt?: string;
  contactId?: number;
  urlKey?: string;
}

let ticketNumber = 100;

export async function addTicket(db: Pool, generation: Generation, options: TicketOptions = {}): Promise<number> {
  const number = ticketNumber++;
  const sla =
    generation === '2.4.4'
      ? {}
      : {
          ticket_response_due_at: options.responseDueAt ?? null,
          ticket_resolution_due_at: options.resolutionDueAt ?? null,
          ticket_sla_id: options.slaId ?? 0,
        };
  const columns: Record<string, unknown> = {
    ticket_prefix: 'TCK-',
    ticket_number: number,
    ticket_subject: options.subject ?? `Ticket ${number}`,
    ticket_details: 'Details',
    ticket_status: options.status ?? 2,
    ticket_client_id: options.clientId ?? 0,
    ticket_created_by: options.createdBy ?? 0,
    ticket_assigned_to: options.assignedTo ?? 0,
    ticket_resolved_at: options.resolvedAt ?? null,
    ticket_closed_at: options.closedAt ?? null,
    ticket_first_response_at: options.firstResponseAt ?? null,
    ticket_contact_id: options.contactId ?? 0,
    ticket_url_key: options.urlKey ?? `key${number}`,
    ...(options.createdAt ? { ticket_created_at: options.createdAt } : {}),
    ...sla,
  };
  const names = Object.keys(columns);
  return insert(
    db,
    `INSERT INTO tickets (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
    Object.values(columns),
  );
}

export async function addContact(db: Pool, { name, email, clientId }: { name: string; email: string | null; clientId: number }) {
  return insert(db, 'INSERT INTO contacts (contact_name, contact_email, contact_client_id) VALUES (?, ?, ?)', [
    name,
    email,
    clientId,
  ]);
}

export async function addWatcher(db: Pool, ticketId: number, email: string, name: string | null = null) {
  return insert(db, 'INSERT INTO ticket_watchers (watcher_name, watcher_email, watcher_ticket_id) VALUES (?, ?, ?)', [
    name,
    email,
    ticketId,
  ]);
}

/** ITFlow's mail settings: an SMTP provider (so it queues client mail), the sender, client notifications. */
export async function setMailSettings(
  db: Pool,
  { smtp = 'standard_smtp', notifications = 1 }: { smtp?: string | null; notifications?: number } = {},
) {
  await db.query(
    `UPDATE settings SET config_smtp_provider = ?, config_smtp_host = 'smtp.msp.example', config_ticket_from_name = 'MSP Support',
            config_ticket_from_email = 'support@msp.example', config_ticket_client_general_notifications = ? WHERE company_id = 1`,
    [smtp, notifications],
  );
}

/** An SLA (ITFlow ≥ 2.6) with response and resolution budgets in business minutes. */
export async function addSla(db: Pool, { response, resolution }: { response: number; resolution: number | null }) {
  return insert(db, 'INSERT INTO slas (sla_name, sla_response_minutes, sla_resolution_minutes) VALUES (?, ?, ?)', [
    `SLA ${response}/${resolution}`,
    response,
    resolution,
  ]);
}

export async function ticketRow(db: Pool, ticketId: number): Promise<RowDataPacket> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT * FROM tickets WHERE ticket_id = ?', [ticketId]);
  if (!rows[0]) throw new Error(`no ticket ${ticketId}`);
  return rows[0];
}

export async function repliesOf(db: Pool, ticketId: number): Promise<RowDataPacket[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT * FROM ticket_replies WHERE ticket_reply_ticket_id = ? ORDER BY ticket_reply_id',
    [ticketId],
  );
  return rows;
}

/**
 * The same small world in either generation: two clients, a key that sees every client and a
 * key restricted to client A. `author` is what ITFlow stores in ticket_reply_by for `all`.
 */
export interface World {
  clientA: number;
  clientB: number;
  keys: { all: string; clientA: string; expired: string };
  author: number;
  agent: number;
}

export async function seedWorld(db: Pool, generation: Generation): Promise<World> {
  const clientA = await addClient(db, 'Client A');
  const clientB = await addClient(db, 'Client B');
  const agentRole = await addRole(db, { support: 2 });
  const agent = await addUser(db, { name: 'Assigned Agent', roleId: agentRole });
  if (generation === '2.4.4') {
    return {
      clientA,
      clientB,
      keys: {
        all: await addKey(db, generation, { name: 'All clients key', owner: 0 }),
        clientA: await addKey(db, generation, { name: 'Client A key', owner: clientA }),
        expired: await addKey(db, generation, { name: 'Expired key', owner: 0, expire: '2020-01-01' }),
      },
      author: 0,
      agent,
    };
  }
  const admin = await addUser(db, { name: 'Integration Admin', roleId: await addRole(db, { admin: true }) });
  const tech = await addUser(db, { name: 'Client A Tech', roleId: agentRole });
  await setClientPermissions(db, tech, 'allow', [clientA]);
  return {
    clientA,
    clientB,
    keys: {
      all: await addKey(db, generation, { name: 'All clients key', owner: admin }),
      clientA: await addKey(db, generation, { name: 'Client A key', owner: tech }),
      expired: await addKey(db, generation, { name: 'Expired key', owner: admin, expire: '2020-01-01' }),
    },
    author: admin,
    agent,
  };
}

/**
 * A MySQL user of a test's own with every right on `database`, so a service can log in as it
 * (to have its connections killed, or a password to look for in logs); returns its removal.
 */
export async function createMysqlUser(
  admin: Connection,
  database: string,
  user: string,
  password: string,
): Promise<() => Promise<void>> {
  const hosts = ['localhost', '127.0.0.1', '%'];
  for (const host of hosts) {
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, host, password]);
    await admin.query(`GRANT ALL ON \`${database}\`.* TO ?@?`, [user, host]);
  }
  return async () => {
    for (const host of hosts) await admin.query('DROP USER IF EXISTS ?@?', [user, host]);
  };
}

/**
 * A MySQL user of a test's own holding only the privileges `grants` give it: `grants(account)`
 * returns the GRANT statements for one account (`'user'@'host'`). The user exists for the hosts
 * a local connection may be matched as; returns its removal.
 */
export async function createMysqlUserWithGrants(
  admin: Connection,
  user: string,
  password: string,
  grants: (account: string) => string[],
): Promise<() => Promise<void>> {
  const hosts = ['localhost', '127.0.0.1', '%'];
  const drop = async () => {
    for (const host of hosts) await admin.query('DROP USER IF EXISTS ?@?', [user, host]);
  };
  try {
    for (const host of hosts) {
      await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, host, password]);
      for (const grant of grants(`'${user}'@'${host}'`)) await admin.query(grant);
    }
  } catch (error) {
    await drop(); // a refused GRANT leaves no user behind
    throw error;
  }
  return drop;
}
