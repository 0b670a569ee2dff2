import type { FastifyInstance } from 'fastify';
import { parseCommandStatus, parseCommandStatusMany } from '../../commands/readReplies.js';
import { NotFound } from '../../errors.js';
import { READ, requireLevel } from '../../itflow/apiKeys.js';
import { commandStatus, commandStatusMany } from '../../read/commandStatus.js';
import { COMMANDS_PATH } from '../accept.js';
import { principalOf } from '../auth.js';
import { ok } from '../envelope.js';
import type { RouteDeps } from '../server.js';

/**
 * GET commands.php?command_id=…: where an accepted command is, for the key that sent it.
 * POST commands.php {"command_ids": [...]}: many at once (up to 1,000) — each finished one
 * with its outcome, the rest `unfinished` (queued, applying or retrying — or unknown to this
 * key), and an id that is no UUID `invalid`. Meant for importers waiting on large batches.
 * Ids are taken in any letter case, with or without dashes, and answered in canonical form.
 */
export function registerCommandStatus(app: FastifyInstance, deps: RouteDeps): void {
  app.post(COMMANDS_PATH, { config: { keyInBody: true } }, async (request) => {
    const body = (request.body ?? {}) as { command_ids?: unknown };
    const principal = await principalOf(deps.auth, request, body);
    requireLevel(principal, READ);
    const requested = parseCommandStatusMany(body);
    const ids = requested.flatMap((r) => (r.id === null ? [] : [r.id]));
    const finished = await commandStatusMany(deps.read.pool, deps.read.tables, ids, principal.keyId);
    return ok(
      requested.map((r) =>
        r.id === null
          ? { command_id: r.sent, status: 'invalid', message: r.problem }
          : (finished.get(r.id) ?? { command_id: r.id, status: 'unfinished' }),
      ),
    );
  });

  app.get(COMMANDS_PATH, async (request) => {
    const principal = await principalOf(deps.auth, request, null);
    requireLevel(principal, READ);
    const commandId = parseCommandStatus(request.query);
    const status = await commandStatus(
      deps.read.pool,
      deps.read.tables,
      deps.accept.queue,
      commandId,
      principal.keyId,
      deps.auth.clock.zone,
    );
    if (!status) throw new NotFound(`No command ${commandId} for this API key (unknown, or older than the retention).`);
    return ok([status]);
  });
}
