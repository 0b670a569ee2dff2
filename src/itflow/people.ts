import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../cache.js';
import { Forbidden, Invalid } from '../errors.js';
import type { Principal } from './apiKeys.js';

/**
 * Who an imported reply may be attributed to: an agent (users.user_type 1; archived agents
 * too, since history has them), or a contact of the ticket's client, whose reply ITFlow stores
 * as ticket_reply_type 'Client' with the contact's id in ticket_reply_by, as its portal does.
 */
export type Author = { userId: number } | { contactId: number };

export class People {
  private readonly agents;
  private readonly contacts;

  constructor(pool: Pool, cacheMs: number) {
    this.agents = ttlMemo<number, boolean>(cacheMs, 10_000, async (userId) => {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT user_type FROM users WHERE user_id = ?', [userId]);
      return Number(rows[0]?.user_type) === 1;
    });
    this.contacts = ttlMemo<number, number | null>(cacheMs, 100_000, async (contactId) => {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT contact_client_id FROM contacts WHERE contact_id = ?', [
        contactId,
      ]);
      return rows[0] ? Number(rows[0].contact_client_id) : null;
    });
  }

  /** Throws the refusal a client sees when `author` cannot be used on a ticket of `ticketClientId`. */
  async check(principal: Principal, author: Author, ticketClientId: number): Promise<void> {
    // Attribution speaks for someone else: only what ITFlow treats as an admin may do it.
    if (!principal.isAdmin) {
      throw new Forbidden(
        principal.keyModel === 'key-runs-as-user'
          ? 'Setting an author needs an admin API key.'
          : 'Setting an author needs an API key for every client.',
      );
    }
    if ('userId' in author) {
      if (!(await this.agents.get(author.userId))) throw new Invalid(`author.user_id ${author.userId} is not an agent.`);
    } else if ((await this.contacts.get(author.contactId)) !== ticketClientId) {
      throw new Invalid(`author.contact_id ${author.contactId} is not a contact of this ticket's client.`);
    }
  }
}
