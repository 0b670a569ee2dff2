// The conformance tool's comparison rules, without PHP or a database: what counts as the same row
// for two twin tickets, and which kind each difference is.
import { describe, expect, it } from 'vitest';
import { compareValue, diffTables, normalise, type TableRows, type TwinIdentity } from '../../conformance/diff.js';
import { DOCUMENTED, markDocumented } from '../../conformance/documented.js';
import type { World } from '../../conformance/itflow.js';

const A: TwinIdentity = { id: 7, number: 7, prefix: 'TCK-', subject: 'Printer offline (conformance 1A)', urlKey: 'keyA' };
const B: TwinIdentity = { id: 8, number: 8, prefix: 'TCK-', subject: 'Printer offline (conformance 1B)', urlKey: 'keyB' };
const options = { toleranceSeconds: 5 };

function ticket(twin: TwinIdentity, extra: Record<string, unknown> = {}): TableRows {
  return {
    table: 'tickets',
    primaryKey: 'ticket_id',
    rows: [
      {
        ticket_id: twin.id,
        ticket_number: twin.number,
        ticket_subject: twin.subject,
        ticket_url_key: twin.urlKey,
        ticket_status: 4,
        ticket_resolved_at: '2026-11-27 15:47:34',
        ...extra,
      },
    ],
  };
}

function logs(...rows: Array<Record<string, unknown>>): TableRows {
  return { table: 'logs', primaryKey: 'log_id', rows };
}

describe('normalise', () => {
  it('replaces what differs between twins by placeholders', () => {
    expect(normalise('ticket_reply_ticket_id', 7, A)).toBe('<ticket_id>');
    expect(normalise('notification_entity_id', 7, A)).toBe('<ticket_id>');
    expect(normalise('ticket_number', 7, A)).toBe('<ticket_number>');
    expect(normalise('notification_action', '/agent/ticket.php?ticket_id=7&client_id=1', A)).toBe(
      '/agent/ticket.php?ticket_id=<ticket_id>&client_id=1',
    );
    expect(normalise('log_description', 'Admin resolved ticket TCK-7 (ID: 7) - Printer offline (conformance 1A)', A)).toBe(
      'Admin resolved ticket <ticket> (ID: <ticket_id>) - <subject>',
    );
    expect(normalise('email_content', 'url_key=keyA', A)).toBe('url_key=<url_key>');
    expect(normalise('email_content', 'Portal: https://itflow/client/ticket.php?id=7<br>', A)).toBe(
      'Portal: https://itflow/client/ticket.php?id=<ticket_id><br>',
    );
    expect(normalise('email_content', 'client/ticket.php?id=77', A)).toBe('client/ticket.php?id=77');
  });

  it('leaves other numbers alone', () => {
    expect(normalise('ticket_reply_ticket_id', 70, A)).toBe('70');
    expect(normalise('log_description', 'ticket TCK-71', A)).toBe('ticket TCK-71');
    expect(normalise('ticket_client_id', 7, A)).toBe('7');
    expect(normalise('ticket_resolved_at', null, A)).toBe('NULL');
  });
});

describe('compareValue', () => {
  it('counts timestamps within the tolerance as equal, and names a whole-hour offset', () => {
    expect(compareValue('ticket_resolved_at', '2026-11-27 15:47:34', '2026-11-27 15:47:38', options)).toEqual({
      kind: 'within tolerance',
      note: 'service +4 s',
    });
    const zone = compareValue('ticket_updated_at', '2026-11-27 20:48:45', '2026-11-27 15:48:46', options);
    expect(zone?.kind).toBe('real');
    expect(zone?.note).toContain('time-zone');
    expect(compareValue('ticket_resolved_at', '2026-11-27 15:47:34', '2026-11-27 15:47:40', options)?.kind).toBe('real');
  });

  it('tells wording from data', () => {
    expect(compareValue('log_description', 'Admin resolved the ticket', 'Resolved via API', options)?.kind).toBe('wording');
    expect(compareValue('log_ip', '127.0.0.1', '::1', options)?.kind).toBe('wording');
    expect(compareValue('log_action', 'Reply', 'Edit', options)?.kind).toBe('real');
    expect(compareValue('ticket_status', '4', '4', options)).toBeNull();
  });
});

describe('diffTables', () => {
  it('finds nothing between twins that differ only in id, number, subject and url key', () => {
    expect(diffTables([ticket(A)], [ticket(B)], [A, B], options)).toEqual([]);
  });

  it('reports each differing column of the ticket row', () => {
    const differences = diffTables([ticket(A)], [ticket(B, { ticket_status: 2, ticket_resolved_at: null })], [A, B], options);
    expect(differences.map((d) => [d.column, d.itflow, d.service, d.kind])).toEqual([
      ['ticket_status', '4', '2', 'real'],
      ['ticket_resolved_at', '2026-11-27 15:47:34', 'NULL', 'real'],
    ]);
  });

  it('counts a missing row and an extra row as real differences, with the row’s values', () => {
    const resolved = {
      log_id: 31,
      log_type: 'Ticket',
      log_action: 'Resolved',
      log_entity_id: 7,
      log_description: 'resolved TCK-7',
    };
    const edit = { log_id: 40, log_type: 'Ticket', log_action: 'Edit', log_entity_id: 8, log_description: 'edited TCK-8' };
    const differences = diffTables([logs(resolved)], [logs()], [A, B], options);
    expect(differences).toHaveLength(1);
    expect(differences[0]).toMatchObject({ column: '(row)', service: '(none)', kind: 'real' });
    expect(differences[0]?.values).toMatchObject({
      log_action: 'Resolved',
      log_entity_id: '<ticket_id>',
      log_description: 'resolved <ticket>',
    });
    const extra = diffTables([logs()], [logs(edit)], [A, B], options);
    expect(extra[0]).toMatchObject({ column: '(row)', itflow: '(none)', kind: 'real' });
  });

  it('pairs rows written in another order by their content, never by auto-increment id', () => {
    const reply = { log_type: 'Ticket', log_action: 'Reply', log_entity_id: 7, log_description: 'reply' };
    const resolved = { log_type: 'Ticket', log_action: 'Resolved', log_entity_id: 7, log_description: 'resolved' };
    const itflow = logs({ log_id: 1, ...resolved }, { log_id: 2, ...reply });
    const service = logs({ log_id: 9, ...reply, log_entity_id: 8 }, { log_id: 10, ...resolved, log_entity_id: 8 });
    expect(diffTables([itflow], [service], [A, B], options)).toEqual([]);
  });
});

describe('markDocumented', () => {
  const world = (keysRunAsUser: boolean): World => ({
    adminId: 1,
    agentId: 2,
    clientId: 1,
    contactId: 1,
    customStatusId: 6,
    apiKey: 'k',
    clientApiKey: null,
    hasSla: keysRunAsUser,
    keysRunAsUser,
    databaseVersion: keysRunAsUser ? '2.6.7' : '2.4.4',
  });
  const resolvedAt = (itflow: string) => diffTables([ticket(A, { ticket_resolved_at: itflow })], [ticket(B)], [A, B], options);

  it('marks the close that stamps ticket_resolved_at, only when the ticket ended closed', () => {
    expect(markDocumented(resolvedAt('NULL'), world(true), true)).toEqual([
      expect.objectContaining({ column: 'ticket_resolved_at', kind: 'documented', note: DOCUMENTED.closeStampsResolved }),
    ]);
    expect(markDocumented(resolvedAt('NULL'), world(true), false)[0]?.kind).toBe('real');
  });

  it('marks user 0 only where keys have no user, and only against the acting agent', () => {
    const byUser = (by: number) =>
      diffTables(
        [
          {
            table: 'ticket_replies',
            primaryKey: 'ticket_reply_id',
            rows: [{ ticket_reply_ticket_id: A.id, ticket_reply_by: by }],
          },
        ],
        [
          {
            table: 'ticket_replies',
            primaryKey: 'ticket_reply_id',
            rows: [{ ticket_reply_ticket_id: B.id, ticket_reply_by: 0 }],
          },
        ],
        [A, B],
        options,
      );
    expect(markDocumented(byUser(1), world(false), false)[0]).toMatchObject({
      kind: 'documented',
      note: DOCUMENTED.keyHasNoUser,
    });
    expect(markDocumented(byUser(1), world(true), false)[0]?.kind).toBe('real');
    expect(markDocumented(byUser(2), world(false), false)[0]?.kind).toBe('real');
  });

  it('leaves every other difference as it was', () => {
    const status = diffTables([ticket(A, { ticket_status: 5 })], [ticket(B)], [A, B], options);
    expect(markDocumented(status, world(false), true)).toEqual(status);
  });
});
