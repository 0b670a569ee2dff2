// ITFlow's own settings that decide what its handlers write beside a reply: whether it emails
// clients (an SMTP provider configured, ticket notifications on), who the mail is from, the
// company's signature lines, and the business calendar the SLA clock counts in. Read from its
// `settings` and `companies` rows, briefly cached; plus the one thing ITFlow keeps outside its
// database, the host its links point at ($config_base_url in its config.php), from ours.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ttlMemo } from '../cache.js';
import { type BusinessCalendar, businessCalendar } from './businessTime.js';
import { formatPhoneNumber, sanitize } from './format.js';
import type { ItflowSchema } from './schema.js';

export interface ItflowSettings {
  mail: {
    /** settings.config_smtp_provider is set: ITFlow queues client mail. */
    smtpConfigured: boolean;
    /** config_ticket_client_general_notifications: resolve/close mail the client. */
    clientNotifications: boolean;
    fromName: string;
    fromEmail: string;
  };
  company: { name: string; phone: string };
  calendar: BusinessCalendar;
  /** The host ITFlow's links use (ITFLOW_BASE_URL), or null when not configured here. */
  baseUrl: string | null;
}

export class ItflowSettingsReader {
  private readonly memo;

  constructor(pool: Pool, schema: ItflowSchema, baseUrl: string | undefined, cacheMs: number) {
    this.memo = ttlMemo<number, ItflowSettings>(
      cacheMs,
      1,
      async () => {
        const [settings] = await pool.query<RowDataPacket[]>('SELECT * FROM settings WHERE company_id = 1');
        const [companies] = schema.mail.company
          ? await pool.query<RowDataPacket[]>(
              'SELECT company_name, company_phone, company_phone_country_code FROM companies WHERE company_id = 1',
            )
          : [[]];
        const s: RowDataPacket = settings[0] ?? ({} as RowDataPacket);
        const c: RowDataPacket = companies[0] ?? ({} as RowDataPacket);
        return {
          mail: {
            smtpConfigured: typeof s.config_smtp_provider === 'string' && s.config_smtp_provider !== '',
            clientNotifications: Number(s.config_ticket_client_general_notifications ?? 0) === 1,
            fromName: sanitize(s.config_ticket_from_name),
            fromEmail: sanitize(s.config_ticket_from_email),
          },
          company: {
            name: sanitize(c.company_name),
            phone: sanitize(formatPhoneNumber(c.company_phone ?? null, c.company_phone_country_code ?? null)),
          },
          calendar: businessCalendar(s.config_business_days, s.config_business_hours_start, s.config_business_hours_end),
          baseUrl: baseUrl === undefined || baseUrl === '' ? null : sanitize(baseUrl),
        };
      },
      undefined,
      { staleWhileRefreshing: true },
    );
  }

  get(): Promise<ItflowSettings> {
    return this.memo.get(0);
  }
}

/** Why ITFlow would not email a client from this install, or null when it would. */
export function whyNoClientMail(schema: ItflowSchema, settings: ItflowSettings): string | null {
  if (!schema.mail.queue) return 'this ITFlow database has no email_queue table, so it cannot queue client mail';
  if (!settings.mail.smtpConfigured) {
    return 'ITFlow has no mail server configured (Admin > Settings > Mail: SMTP provider), so it would not email the client';
  }
  if (settings.baseUrl === null) {
    return "the service does not know ITFlow's address for the links in the email: set ITFLOW_BASE_URL to ITFlow's $config_base_url (its host, e.g. itflow.example.com)";
  }
  return null;
}
