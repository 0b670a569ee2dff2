// The differences docs/api.md lists as deliberate or inherent ("What the worker writes"), each
// recognised by what it is, never by the action it shows up in; anything else stays `real`.
import type { Difference } from './diff.js';
import type { World } from './itflow.js';

/** Columns naming the acting user. */
const ACTOR_COLUMNS = new Set(['ticket_reply_by', 'log_user_id', 'ticket_closed_by']);

export const DOCUMENTED = {
  closeStampsResolved:
    "closing a ticket that was never resolved stamps ticket_resolved_at (ITFlow's close leaves it NULL, which keeps the closed ticket in its Open list)",
  keyHasNoUser: 'ITFlow ≤ 2.4.6 keys belong to no user: the service writes user 0 where the logged-in agent wrote their own id',
  creatorNotified:
    "ITFlow ≤ 2.4.6: the key is not the ticket's creator, so the creator is notified (ITFlow's UI skips the agent who acts)",
} as const;

/**
 * The differences of one action, those docs/api.md documents marked `documented` with the reason.
 * `closed`: the service's twin ended the action closed.
 */
export function markDocumented(differences: Difference[], world: World, closed: boolean): Difference[] {
  return differences.map((d) => {
    const reason = documentedReason(d, world, closed);
    return reason && d.kind === 'real' ? { ...d, kind: 'documented', note: reason } : d;
  });
}

function documentedReason(d: Difference, world: World, closed: boolean): string | null {
  if (closed && d.table === 'tickets' && d.column === 'ticket_resolved_at' && d.itflow === 'NULL' && d.service !== 'NULL') {
    return DOCUMENTED.closeStampsResolved;
  }
  if (world.keysRunAsUser) return null;
  if (ACTOR_COLUMNS.has(d.column) && d.service === '0' && d.itflow === String(world.adminId)) return DOCUMENTED.keyHasNoUser;
  if (
    d.table === 'notifications' &&
    d.column === '(row)' &&
    d.itflow === '(none)' &&
    d.values?.notification_user_id === String(world.adminId) &&
    / that you opened$/.test(d.values?.notification ?? '')
  ) {
    return DOCUMENTED.creatorNotified;
  }
  return null;
}
