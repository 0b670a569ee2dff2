/**
 * Which clients' tickets a key may touch, in both ITFlow generations.
 *
 * `allow: null` means every client (including tickets with no client, client 0).
 * A restricted user's allow list includes 0, as ITFlow's clientScopeSql() does: a ticket
 * with no client belongs to nobody, so restricted users keep seeing it.
 */
export interface ClientScope {
  allow: number[] | null;
  deny: number[];
}

export const ALL_CLIENTS: ClientScope = { allow: null, deny: [] };

export function scopeAllows(scope: ClientScope, clientId: number): boolean {
  if (scope.deny.includes(clientId)) return false;
  return scope.allow === null || scope.allow.includes(clientId);
}

/** A request's optional `client_id` narrows the key's scope to that one client. */
export function narrowScope(scope: ClientScope, clientId: number | undefined): ClientScope {
  if (clientId === undefined || clientId === 0) return scope;
  return { allow: scopeAllows(scope, clientId) ? [clientId] : [], deny: [] };
}

/**
 * The scope as a SQL condition on a client-id column, with its parameters. The column
 * name is a trusted constant from the caller, never user input.
 */
export function scopeSql(scope: ClientScope, column: string): { sql: string; params: number[] } {
  const parts: string[] = [];
  const params: number[] = [];
  if (scope.allow !== null) {
    if (scope.allow.length === 0) return { sql: 'FALSE', params: [] };
    parts.push(`${column} IN (${scope.allow.map(() => '?').join(',')})`);
    params.push(...scope.allow);
  }
  if (scope.deny.length > 0) {
    parts.push(`${column} NOT IN (${scope.deny.map(() => '?').join(',')})`);
    params.push(...scope.deny);
  }
  return { sql: parts.length > 0 ? parts.join(' AND ') : 'TRUE', params };
}
