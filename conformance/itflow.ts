// ITFlow driven the way a person drives it: its setup wizard, then its admin and agent pages,
// each change made by submitting the form ITFlow itself renders (a page, or an ajax modal), with
// the session's CSRF token taken from that form. Nothing here writes to ITFlow's tables; ids
// are read back from the database only to address the next form.
import { readFileSync } from 'node:fs';
import type { Connection } from 'mysql2/promise';
import { HandlerError, ItflowBrowser, type Overrides, oneLine, optionValue, type PageAnswer } from './browser.js';

export interface SetupOptions {
  database: string;
  timeZone: string;
  adminEmail: string;
  password: string;
}

/** What the scratch ITFlow holds once prepared; everything the actions address. */
export interface World {
  adminId: number;
  agentId: number;
  clientId: number;
  contactId: number;
  /** The custom status (pauses the SLA where ITFlow has SLAs). */
  customStatusId: number;
  /** The API key the service and ITFlow's API are called with. */
  apiKey: string;
  /** ≤ 2.4.6 only: a key limited to the client (ITFlow's resolve.php needs one, see actions). */
  clientApiKey: string | null;
  hasSla: boolean;
  /** ≥ 2.4.7: keys run as a user. */
  keysRunAsUser: boolean;
  databaseVersion: string;
}

export const WATCHER_EMAIL = 'watcher@conformance.example';
export const CONTACT_EMAIL = 'contact@conformance.example';

/** A handler's answer must be a redirect (every ITFlow form handler ends in one). */
export function expectRedirect(what: string, answer: PageAnswer, errorLog?: string): PageAnswer {
  if (answer.status === 302 || answer.status === 301) return answer;
  const tail = errorLog ? lastPhpError(errorLog) : '';
  throw new HandlerError(
    `${what}: ITFlow answered ${answer.status} instead of a redirect: ${oneLine(answer.body)}${tail ? ` (PHP: ${tail})` : ''}`,
  );
}

function lastPhpError(errorLog: string): string {
  try {
    const lines = readFileSync(errorLog, 'utf8').trim().split('\n');
    return oneLine(lines.at(-1) ?? '', 300);
  } catch {
    return '';
  }
}

export class ItflowUi {
  readonly browser: ItflowBrowser;

  constructor(
    baseUrl: string,
    private readonly errorLog: string,
  ) {
    this.browser = new ItflowBrowser(baseUrl);
  }

  /** The setup wizard, step by step, as its pages offer them. */
  async runSetupWizard(options: SetupOptions): Promise<void> {
    await this.wizardStep('database', 'add_database', {
      host: '127.0.0.1',
      database: options.database,
      username: 'root',
      password: '',
    });
    await this.wizardStep('user', 'add_user', {
      name: 'Conformance Admin',
      email: options.adminEmail,
      password: options.password,
    });
    await this.wizardStep('company', 'add_company_settings', {
      name: 'Conformance MSP',
      country: 'United States',
      email: 'office@conformance.example',
    });
    await this.wizardStep('localization', 'add_localization_settings', {
      locale: 'en_US',
      currency_code: 'USD',
      timezone: options.timeZone,
    });
    await this.wizardStep('telemetry', 'add_telemetry', { share_data: null });
  }

  private async wizardStep(step: string, submit: string, overrides: Overrides): Promise<void> {
    const page = `/setup/?${step}`;
    const html = await this.browser.get(page);
    if (html.status !== 200) throw new HandlerError(`setup page ${page} answered ${html.status}`);
    expectRedirect(`setup step ${step}`, await this.browser.submit(html.body, page, submit, overrides), this.errorLog);
  }

  async logIn(email: string, password: string): Promise<void> {
    const page = await this.browser.get('/login.php');
    if (page.status !== 200)
      throw new HandlerError(`login page answered ${page.status} ${page.location ?? ''}: ${oneLine(page.body)}`);
    const answer = await this.browser.submit(page.body, '/login.php', 'login', { email, password });
    if (answer.status !== 302 || !answer.location || answer.location.includes('login')) {
      throw new HandlerError(`login: ITFlow answered ${answer.status}: ${oneLine(answer.body)}`);
    }
  }

  /** Opens an ajax modal and submits its form (as the page `pagePath` holding it would). */
  async submitModal(modal: string, pagePath: string, submit: string, overrides: Overrides): Promise<PageAnswer> {
    const html = await this.browser.modal(modal);
    return expectRedirect(`${submit}`, await this.browser.submit(html, pagePath, submit, overrides), this.errorLog);
  }

  /** Submits one form of a full page. */
  async submitPage(pagePath: string, submit: string, overrides: Overrides): Promise<PageAnswer> {
    const page = await this.browser.get(pagePath);
    if (page.status !== 200) throw new HandlerError(`${pagePath} answered ${page.status}`);
    return expectRedirect(`${submit}`, await this.browser.submit(page.body, pagePath, submit, overrides), this.errorLog);
  }

  /** The first of `paths` that this ITFlow serves. */
  async firstPage(paths: string[]): Promise<string> {
    for (const path of paths) {
      if ((await this.browser.get(path)).status === 200) return path;
    }
    throw new HandlerError(`ITFlow serves none of ${paths.join(', ')}`);
  }

  async modalHtml(modal: string): Promise<string> {
    return this.browser.modal(modal);
  }

  /** A GET handler link as ITFlow's ticket page prints it (`post.php?resolve_ticket=ID&csrf_token=…`). */
  async followHandlerLink(pagePath: string, handler: string, ticketId: number): Promise<PageAnswer> {
    const page = await this.browser.get(pagePath);
    const token = this.browser.csrfToken(page.body);
    const link = `/agent/post.php?${handler}=${ticketId}&csrf_token=${encodeURIComponent(token)}`;
    return expectRedirect(handler, await this.browser.get(link, new URL(pagePath, this.browser.baseUrl).href), this.errorLog);
  }

  /** The agent ticket page's reply form (add_ticket_reply), submitted with `overrides`. */
  async replyForm(ticketId: number, clientId: number, overrides: Overrides): Promise<PageAnswer> {
    return this.submitPage(ticketPage(ticketId, clientId), 'add_ticket_reply', overrides);
  }
}

export function ticketPage(ticketId: number, clientId: number): string {
  return `/agent/ticket.php?client_id=${clientId}&ticket_id=${ticketId}`;
}

type Row = Record<string, unknown>;

async function one(db: Connection, sql: string, params: unknown[] = []): Promise<Row> {
  const [rows] = (await db.query(sql, params)) as unknown as [Row[]];
  const row = rows[0];
  if (!row) throw new HandlerError(`expected a row from: ${sql}`);
  return row;
}

async function hasColumn(db: Connection, table: string, column: string): Promise<boolean> {
  const [rows] = (await db.query(
    'SELECT 1 FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?',
    [table, column],
  )) as unknown as [Row[]];
  return rows.length > 0;
}

/**
 * Everything the actions need, made through ITFlow's admin and agent UI as the logged-in admin:
 * a second agent, a client with a contact that has an email address, the custom status, SLA and
 * business hours with their assignment (where ITFlow has SLAs), SMTP so that ITFlow queues mail,
 * client notifications on, and the API key(s).
 */
export async function prepareWorld(ui: ItflowUi, db: Connection, password: string): Promise<World> {
  const keysRunAsUser = await hasColumn(db, 'api_keys', 'api_key_user_id');
  const hasSla = await hasColumn(db, 'tickets', 'ticket_sla_id');
  const databaseVersion = String(
    (await one(db, 'SELECT config_current_database_version AS v FROM settings WHERE company_id = 1')).v,
  );
  const adminId = Number((await one(db, 'SELECT MIN(user_id) AS id FROM users')).id);

  const userModal = await ui.modalHtml('/admin/modals/user/user_add.php');
  await ui.browser
    .submit(userModal, '/admin/users.php', 'add_user', {
      name: 'Second Agent',
      email: 'agent@conformance.example',
      password,
      role: optionValue(userModal, 'role', /Technician/i),
    })
    .then((a) => expectRedirect('add_user', a));
  const agentId = Number(
    (await one(db, 'SELECT user_id AS id FROM users WHERE user_email = ?', ['agent@conformance.example'])).id,
  );

  await ui.submitModal('/agent/modals/client/client_add.php', '/agent/clients.php', 'add_client', {
    name: 'Conformance Client',
    contact: 'Casey Contact',
    contact_email: CONTACT_EMAIL,
  });
  const clientId = Number(
    (await one(db, 'SELECT client_id AS id FROM clients WHERE client_name = ?', ['Conformance Client'])).id,
  );
  const contactId = Number((await one(db, 'SELECT contact_id AS id FROM contacts WHERE contact_email = ?', [CONTACT_EMAIL])).id);

  const statusOverrides: Overrides = { name: 'Waiting on client', color: '#ff9900' };
  if (hasSla) statusOverrides.pauses_sla = '1';
  // ITFlow ≤ 2.4.6 picks the admin handler file by the Referer's page name, so the page named
  // must be the one that holds the modal (its name changed between generations).
  const statusPage = await ui.firstPage(['/admin/ticket_statuses.php', '/admin/ticket_status.php']);
  await ui.submitModal('/admin/modals/ticket_status/ticket_status_add.php', statusPage, 'add_ticket_status', statusOverrides);
  const customStatusId = Number(
    (await one(db, 'SELECT ticket_status_id AS id FROM ticket_statuses WHERE ticket_status_name = ?', ['Waiting on client'])).id,
  );

  if (hasSla) {
    await ui.submitModal('/admin/modals/sla/sla_add.php', '/admin/sla.php', 'add_sla', {
      name: 'Conformance SLA',
      description: 'response 60 min, resolution 240 min',
      response_minutes: '60',
      resolution_minutes: '240',
    });
    const slaId = String((await one(db, 'SELECT sla_id AS id FROM slas WHERE sla_name = ?', ['Conformance SLA'])).id);
    // Business hours every day, 07:00-22:00 in ITFlow's zone: the clock runs whenever the tool
    // is likely to be run, and the due times still go through ITFlow's business-hours math.
    await ui.submitPage('/admin/sla.php', 'edit_sla_settings', {
      'business_days[]': ['1', '2', '3', '4', '5', '6', '7'],
      business_hours_start: '07:00',
      business_hours_end: '22:00',
    });
    await ui.submitPage('/admin/sla.php', 'save_sla_assignments', {
      global_sla_low: slaId,
      global_sla_medium: slaId,
      global_sla_high: slaId,
      global_sla_urgent: slaId,
    });
  }

  // SMTP: a provider and a host make ITFlow queue mail in email_queue; no cron runs here, so
  // nothing is ever sent.
  await ui.submitPage('/admin/settings_mail.php', 'edit_mail_smtp_settings', {
    config_smtp_provider: 'standard_smtp',
    config_smtp_host: 'smtp.conformance.invalid',
    config_smtp_port: '587',
    config_smtp_encryption: 'tls',
    config_smtp_username: 'itflow@conformance.example',
    config_smtp_password: 'not-used',
  });
  await ui.submitPage('/admin/settings_mail.php', 'edit_mail_from_settings', {
    config_mail_from_email: 'itflow@conformance.example',
    config_mail_from_name: 'Conformance MSP',
    config_invoice_from_email: 'billing@conformance.example',
    config_invoice_from_name: 'Conformance Billing',
    config_quote_from_email: 'sales@conformance.example',
    config_quote_from_name: 'Conformance Sales',
    config_ticket_from_email: 'support@conformance.example',
    config_ticket_from_name: 'Conformance Support',
  });
  await ui.submitPage('/admin/settings_notification.php', 'edit_notification_settings', {
    config_ticket_client_general_notifications: '1',
  });

  const apiKey = await addApiKey(ui, 'conformance', keysRunAsUser ? { run_as_user: String(adminId) } : { client: '0' });
  const clientApiKey = keysRunAsUser ? null : await addApiKey(ui, 'conformance-client', { client: String(clientId) });

  return {
    adminId,
    agentId,
    clientId,
    contactId,
    customStatusId,
    apiKey,
    clientApiKey,
    hasSla,
    keysRunAsUser,
    databaseVersion,
  };
}

/** An API key from ITFlow's own "New API Key" modal; the secret is the one the modal generated. */
async function addApiKey(ui: ItflowUi, name: string, scope: Overrides): Promise<string> {
  const html = await ui.modalHtml('/admin/modals/api/api_key_add.php');
  const secret = /name="key" value="([^"]+)"/.exec(html)?.[1];
  if (!secret) throw new HandlerError('the API key modal offers no key');
  expectRedirect(
    'add_api_key',
    await ui.browser.submit(html, '/admin/api_keys.php', 'add_api_key', { name, expire: '2099-12-31', ack: '1', ...scope }),
  );
  return secret;
}

export interface TwinTicket {
  id: number;
  number: number;
  prefix: string;
  subject: string;
  urlKey: string;
}

/** A ticket from ITFlow's own "New Ticket" modal, assigned to the second agent, with a watcher. */
export async function addTicket(ui: ItflowUi, db: Connection, world: World, subject: string): Promise<TwinTicket> {
  const answer = await ui.submitModal(
    `/agent/modals/ticket/ticket_add.php?client_id=${world.clientId}`,
    `/agent/tickets.php?client_id=${world.clientId}`,
    'add_ticket',
    {
      client_id: String(world.clientId),
      contact_id: String(world.contactId),
      assigned_to: String(world.agentId),
      subject,
      details: '<p>Printer on the second floor is offline.</p>',
      priority: 'High',
      'watchers[]': [WATCHER_EMAIL],
    },
  );
  const id = Number(/ticket_id=(\d+)/.exec(answer.location ?? '')?.[1]);
  if (!id) throw new HandlerError(`add_ticket redirected to ${answer.location}, which names no ticket`);
  const row = await one(db, 'SELECT ticket_number, ticket_prefix, ticket_url_key FROM tickets WHERE ticket_id = ?', [id]);
  return {
    id,
    number: Number(row.ticket_number),
    prefix: String(row.ticket_prefix),
    subject,
    urlKey: String(row.ticket_url_key),
  };
}
