// The client emails ITFlow queues in its email_queue (sent by its own cron), worded as its
// handlers word them: a Public reply that emails the client ("Ticket update", or "Ticket
// resolved … (pending closure)" when the reply resolves the ticket), a resolve and a close when
// ITFlow's client notifications are on, and a Public reply on ITFlow's own API path. To the
// ticket's contact (when the address is valid) and to every watcher, whose copy says they are a
// collaborator. Text values pass through ITFlow's escapeSql (strip_tags, trim) as there.
import { isValidEmail, sanitize } from '../itflow/format.js';
import type { ItflowSettings } from '../itflow/settings.js';
import type { LockedTicket, Mailbox } from './lockTickets.js';

export type MailKind =
  /** agent UI add_ticket_reply, public_reply_type 2. */
  | 'reply'
  /** agent UI resolve_ticket. */
  | 'resolved'
  /** agent UI close_ticket. */
  | 'closed'
  /** api/v1/ticket_replies/create.php, a Public reply. */
  | 'apiReply';

export interface MailInput {
  kind: MailKind;
  ticket: LockedTicket;
  mailbox: Mailbox;
  settings: ItflowSettings;
  /** The ticket's status name after the action. */
  statusName: string;
  /** The reply as stored (with the signature, where ITFlow adds one). */
  reply?: string;
  /** When the mail was queued, ITFlow's wall clock. */
  now: string;
}

const COLLABORATOR = '<br><br>----------------------------------------<br>YOU ARE A COLLABORATOR ON THIS TICKET';

/** The email_queue rows: recipient, name, from, from name, subject, content, queued at, cal_str. */
export function clientMailRows(input: MailInput): unknown[][] {
  const { kind, ticket, mailbox, settings, statusName, reply = '', now } = input;
  const ref = `${sanitize(ticket.prefix)}${ticket.number}`;
  const subject = sanitize(ticket.subject);
  const contactName = sanitize(mailbox.contact?.name);
  const contactEmail = sanitize(mailbox.contact?.email);
  const base = settings.baseUrl ?? '';
  const guest = `https://${base}/guest/guest_view_ticket.php?ticket_id=${ticket.id}&url_key=${sanitize(ticket.urlKey)}`;
  const from = settings.mail.fromEmail;
  const signOff = `<br><br>--<br>${settings.company.name} - Support<br>${from}<br>${settings.company.phone}`;
  const prompt = "<i style='color: #808080'>##- Please type your reply above this line -##</i><br><br>";
  const quoted = `<br><br>--------------------------------<br>${reply}<br>--------------------------------`;
  const details = `Ticket: ${ref}<br>Subject: ${subject}<br>Status: ${sanitize(statusName)}<br>Portal: <a href='${guest}'>View ticket</a>`;
  const pendingClosure = `If your request/issue is resolved, you can simply ignore this email. If you need further assistance, please reply or <a href='${guest}'>re-open</a> to let us know! <br><br>`;

  let mailSubject: string;
  let body: string;
  const resolvedByReply = kind === 'reply' && ticket.status === 4;
  if (kind === 'closed') {
    mailSubject = `Ticket closed - [${ref}] - ${subject} | (do not reply)`;
    body = `Hello ${contactName},<br><br>Your ticket regarding "${subject}" has been closed. <br><br> We hope the request/issue was resolved to your satisfaction, please provide your feedback <a href='${guest}'>here</a>. <br>If you need further assistance, please raise a new ticket using the below details. Please do not reply to this email. <br><br>Ticket: ${ref}<br>Subject: ${subject}<br>Portal: https://${base}/client/ticket.php?id=${ticket.id}${signOff}`;
  } else if (kind === 'resolved' || resolvedByReply) {
    mailSubject = `Ticket resolved - [${ref}] - ${subject} | (pending closure)`;
    body = `${prompt}Hello ${contactName},<br><br>Your ticket regarding ${subject} has been marked as solved and is pending closure.${
      kind === 'reply' ? quoted : ''
    }<br><br>${pendingClosure}${details}${signOff}`;
  } else {
    mailSubject = `Ticket update - [${ref}] - ${subject}`;
    body = `${prompt}Hello ${contactName},<br><br>Your ticket regarding ${subject} has been updated.${quoted}<br><br>${details}${signOff}`;
  }

  const row = (recipient: string, name: string, content: string) => [
    cut(recipient, 255),
    cut(name, 255),
    cut(from, 255),
    cut(settings.mail.fromName, 255),
    // ITFlow's insert fails, and the mail is lost, on a subject over 255 characters; here it is cut.
    cut(mailSubject, 255),
    content,
    now,
    '',
  ];
  const rows: unknown[][] = [];
  if (isValidEmail(contactEmail)) rows.push(row(contactEmail, contactName, body));
  for (const watcher of mailbox.watchers) {
    const email = sanitize(watcher.email);
    // ITFlow's API checks each watcher's address and names them; its agent UI does neither.
    if (kind === 'apiReply') {
      if (isValidEmail(email)) rows.push(row(email, sanitize(watcher.name), body + COLLABORATOR));
    } else rows.push(row(email, email, body + COLLABORATOR));
  }
  return rows;
}

function cut(text: string, max: number): string {
  return [...text].slice(0, max).join('');
}

/** The INSERT of a batch's mail; ITFlow ≥ 2.6 also writes an empty attachment manifest. */
export function mailStatement(rows: unknown[][], withAttachments: boolean): { sql: string; params: unknown[] } {
  const columns = `email_recipient, email_recipient_name, email_from, email_from_name, email_subject, email_content,
                   email_queued_at, email_cal_str${withAttachments ? ', email_attachments' : ''}`;
  return { sql: `INSERT INTO email_queue (${columns}) VALUES ?`, params: [withAttachments ? rows.map((r) => [...r, '']) : rows] };
}
