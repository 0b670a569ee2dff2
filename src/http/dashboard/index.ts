// The operator dashboard at /dashboard: a static page (./public, plain HTML and JavaScript, no
// build step, nothing from the network) and the JSON it reads under /dashboard/api/, for ITFlow
// administrators only. It shows what the CLI's `queues` and `dead-letters` show — through the
// same code: readQueues, DeadLetters — plus what a command line cannot keep in view: the commands
// inside a lane's chunks, recent failures from the ledger, imports in progress, and webhooks.
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ttlMemo } from '../../cache.js';
import { Forbidden, Invalid, NotFound } from '../../errors.js';
import type { Principal } from '../../itflow/apiKeys.js';
import { keyLayoutOf } from '../../queue/cluster.js';
import { DeadLetters } from '../../queue/deadLetters.js';
import { ImportTraffic } from '../../queue/imports.js';
import { laneJobs } from '../../queue/inspect.js';
import { laneNames, laneQueues } from '../../queue/lanes.js';
import { readQueues } from '../../queue/overview.js';
import { finishedImportLines } from '../../read/importProgress.js';
import { recentFailures } from '../../read/recentFailures.js';
import { keyBeforeBody, principalOf } from '../auth.js';
import type { RouteDeps } from '../server.js';
import { trackImportTraffic } from './importTraffic.js';
import { registerKeysPanel } from './keys.js';
import { registerProjectionPanel } from './projection.js';
import { registerWebhooksApi } from './webhooks.js';

export const DASHBOARD_PATH = '/dashboard';

/** Most dead letters one answer lists (the total is always given). */
const DEAD_LETTERS_LISTED = 200;
/** Jobs of each state a lane's view reads (whole payloads: a chunk may carry thousands of commands). */
const LANE_JOBS_PER_STATE = 10;
const FAILURES_LISTED = 50;
/** Reads of the ledger are shared by every open dashboard for this long (see src/read/*). */
const FAILURES_CACHE_MS = 15_000;
const IMPORT_COUNT_CACHE_MS = 30_000;
const IMPORTS_LISTED = 20;
const MAX_HOURS = 24 * 31;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The page's files, served from memory with their types. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/**
 * The page may run only its own script and style, talk only to this service, and not be framed
 * (its buttons replay commands).
 */
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

type DashboardDeps = Pick<RouteDeps, 'auth' | 'read' | 'bulk' | 'metrics' | 'health'>;

export function registerDashboard(app: FastifyInstance, deps: DashboardDeps): void {
  const { redis, prefix } = deps.auth;
  const lanes = deps.bulk.lanes;
  const imports = new ImportTraffic(redis, prefix);
  trackImportTraffic(app, imports);

  const files = new Map(
    Object.entries(FILES).map(([name, type]) => [
      name,
      { type, body: readFileSync(new URL(`./public/${name}`, import.meta.url)) },
    ]),
  );
  const serve = (name: string) => async (_request: FastifyRequest, reply: FastifyReply) => {
    const file = files.get(name);
    if (!file) throw new NotFound('Unknown endpoint.');
    return reply.headers(PAGE_HEADERS).type(file.type).send(file.body);
  };
  // Relative links from /dashboard/ keep working behind a proxy that mounts the service under a path.
  app.get(DASHBOARD_PATH, async (_request, reply) => reply.redirect('dashboard/', 302));
  app.get(`${DASHBOARD_PATH}/`, serve('index.html'));
  app.get(`${DASHBOARD_PATH}/dashboard.js`, serve('dashboard.js'));
  app.get(`${DASHBOARD_PATH}/dashboard.css`, serve('dashboard.css'));

  void app.register(
    async (api) => {
      const letters = new DeadLetters(redis, prefix, lanes);
      const queues = new Map(laneQueues(redis, prefix, lanes, { readOnly: true }).map((queue) => [queue.name, queue]));
      api.addHook('onClose', async () => {
        await letters.close();
        await Promise.all([...queues.values()].map((queue) => queue.close()));
      });
      api.addHook('onRequest', async (request) => {
        request.principal = await requireAdmin(deps, request);
      });
      api.addHook('onSend', async (_request, reply) => {
        reply.header('Cache-Control', 'no-store');
      });

      const failures = ttlMemo(FAILURES_CACHE_MS, 50, (hours: number) =>
        recentFailures(deps.read.pool, deps.read.tables, { hours, limit: FAILURES_LISTED }),
      );
      const finished = ttlMemo(IMPORT_COUNT_CACHE_MS, 1000, async (member: string) => {
        const [keyId = '', importId = ''] = member.split(':');
        return { lines: await finishedImportLines(deps.read.pool, deps.read.tables, Number(keyId), importId), at: Date.now() };
      });

      api.get('/session', async (request) => {
        const principal = request.principal as Principal;
        return { keyName: principal.keyName, user: principal.actorName, prefix, lanes };
      });

      api.get('/queues', async () => {
        const view = await readQueues(redis, prefix, lanes, { top: 'all' });
        const now = Date.parse(view.at);
        return {
          ...view,
          deepest: view.deepest.map((lane) => ({
            ...lane,
            oldestWaitingSeconds:
              lane.oldestWaitingAt === null ? null : Math.max(0, Math.floor((now - Date.parse(lane.oldestWaitingAt)) / 1000)),
          })),
        };
      });

      api.get<{ Params: { lane: string } }>('/lanes/:lane', async (request) => {
        const queue = queues.get(request.params.lane);
        const names = laneNames(lanes, keyLayoutOf(redis));
        if (!queue) throw new NotFound(`No lane ${request.params.lane}: lanes are ${names.at(0)} to ${names.at(-1)}.`);
        return { lane: queue.name, perState: LANE_JOBS_PER_STATE, jobs: await laneJobs(queue, LANE_JOBS_PER_STATE) };
      });

      api.get('/dead-letters', async () => {
        const list = await letters.list();
        return { total: list.length, letters: list.slice(0, DEAD_LETTERS_LISTED) };
      });

      api.get<{ Params: { commandId: string } }>('/dead-letters/:commandId', async (request) => {
        const found = UUID.test(request.params.commandId) ? await letters.show(request.params.commandId) : null;
        if (!found) throw new NotFound(`No dead letter ${request.params.commandId}.`);
        return found;
      });

      // The CLI's replay (`dead-letters replay`): the same DeadLetters.replay, so the same rules —
      // the job goes to the end of its lane, a chunk goes whole, the ledger keeps it exactly once.
      api.post<{ Params: { commandId: string } }>('/dead-letters/:commandId/replay', async (request) => {
        const { commandId } = request.params;
        const replayed = UUID.test(commandId) ? await letters.replay(commandId) : [];
        if (replayed.length === 0) throw new NotFound(`No dead letter ${commandId} (already replayed, applied, or unknown).`);
        request.log.info({ commandIds: replayed, by: request.principal?.keyName }, 'dead letter replayed from the dashboard');
        return { replayed };
      });

      api.post('/dead-letters/replay-all', async (request) => {
        const replayed = await letters.replayAll();
        request.log.info({ commands: replayed, by: request.principal?.keyName }, 'every dead letter replayed from the dashboard');
        return { replayed };
      });

      api.get<{ Querystring: { hours?: string } }>('/failures', async (request) => {
        const hours = Number(request.query.hours ?? 1);
        if (!Number.isInteger(hours) || hours < 1 || hours > MAX_HOURS) {
          throw new Invalid(`hours must be a whole number from 1 to ${MAX_HOURS}.`);
        }
        return failures.get(hours);
      });

      registerWebhooksApi(api, deps.read.pool, deps.read.tables);

      api.get('/imports', async () => {
        const records = await imports.recent(IMPORTS_LISTED);
        const counts = await Promise.all(records.map((r) => finished.get(`${r.apiKeyId}:${r.importId}`)));
        return {
          imports: records.map((record, i) => ({
            ...record,
            finished: counts[i]?.lines ?? 0,
            finishedCountedAt: new Date(counts[i]?.at ?? Date.now()).toISOString(),
          })),
        };
      });

      registerProjectionPanel(api, { ...deps.read, metrics: deps.metrics });
      registerKeysPanel(api, { ...deps.read, schema: deps.health.schema });
    },
    { prefix: `${DASHBOARD_PATH}/api` },
  );
}

/**
 * The dashboard takes the key in the X-API-Key header (or as the API does before a body: a
 * Bearer token, the query's api_key) and checks it as the API does — a wrong key is 401 and
 * leaves ITFlow's failed-login `logs` row — then asks for an administrator: an admin role's user
 * (ITFlow ≥ 2.4.7), or a key for every client (≤ 2.4.6).
 */
async function requireAdmin(deps: DashboardDeps, request: FastifyRequest): Promise<Principal> {
  const principal = await principalOf(deps.auth, request, { api_key: keyBeforeBody(request) });
  if (!principal.isAdmin) {
    throw new Forbidden(
      principal.keyModel === 'per-key-scope'
        ? 'The dashboard is for administrators: this API key is for one client only; use a key for every client.'
        : "The dashboard is for administrators: this API key's user does not have an admin role.",
    );
  }
  return principal;
}
