// ITFlow's audit tables as a batch writes them: its `logs`, the ticket's `ticket_history`, and the
// agents' `notifications`, gathered by the handlers (itflowHandlers.ts) and written with one
// INSERT each.

/** Where the request came from, for ITFlow's logs.log_ip / log_user_agent. */
export interface Origin {
  ip: string;
  userAgent: string;
}

export interface AuditRows {
  logs: unknown[][];
  history: unknown[][];
  notifications: unknown[][];
}

/** The INSERT statements for gathered audit rows (none when there is nothing to write). */
export function auditStatements(rows: AuditRows): Array<{ sql: string; params: unknown[] }> {
  const statements: Array<{ sql: string; params: unknown[] }> = [];
  if (rows.logs.length > 0) {
    statements.push({
      sql: `INSERT INTO logs (log_type, log_action, log_description, log_ip, log_user_agent, log_created_at,
                             log_client_id, log_user_id, log_entity_id) VALUES ?`,
      params: [rows.logs],
    });
  }
  if (rows.history.length > 0) {
    statements.push({
      sql: `INSERT INTO ticket_history (ticket_history_status, ticket_history_description, ticket_history_created_at,
                                       ticket_history_ticket_id) VALUES ?`,
      params: [rows.history],
    });
  }
  if (rows.notifications.length > 0) {
    // notification_entity_id keeps its default, as ITFlow's reply handler leaves it.
    statements.push({
      sql: `INSERT INTO notifications (notification_type, notification, notification_action, notification_timestamp,
                                      notification_client_id, notification_user_id) VALUES ?`,
      params: [rows.notifications],
    });
  }
  return statements;
}
