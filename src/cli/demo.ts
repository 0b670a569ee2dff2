import { createServer } from 'node:net';
import type { Config } from '../config.js';
import { databaseName } from '../db/pool.js';
import { createItflowDatabase, withDatabase } from '../demo/itflowDatabase.js';
import { DEMO_KEYS, seedDemoData } from '../demo/seed.js';
import { createRedis, deleteKeysUnder, redisReady } from '../queue/redis.js';
import { DEMO_DATABASE } from './demoDatabase.js';

/**
 * `demo`: creates a demo ITFlow database (newest schema, a few clients, tickets and API keys)
 * on the MySQL server of DATABASE_URL, unless it already holds ITFlow's tables (or `reset`
 * rebuilds it, and empties the queue under QUEUE_PREFIX — the demo's own, see demoQueuePrefix),
 * and returns the configuration that points the service at it.
 */
export async function prepareDemo(
  config: Config,
  { reset, database = DEMO_DATABASE }: { reset: boolean; database?: string },
): Promise<{ config: Config; created: boolean }> {
  const demoUrl = withDatabase(config.DATABASE_URL, database);
  const created = await createItflowDatabase(config.DATABASE_URL, database, '2.6.7', { reset });
  if (reset) {
    // Queued commands and idempotency keys belong to the database that was just dropped.
    const redis = createRedis(config, 'blocking', 'replyqueue-demo');
    try {
      await redisReady(redis);
      await deleteKeysUnder(redis, config.QUEUE_PREFIX);
    } finally {
      redis.disconnect();
    }
  }
  if (created) await seedDemoData(demoUrl);
  // The host the demo's client mail links to (ITFlow's $config_base_url); nothing is sent.
  // The demo is read by a person: pretty logs even when piped, unless LOG_FORMAT says otherwise.
  const LOG_FORMAT = config.LOG_FORMAT === 'auto' ? 'pretty' : config.LOG_FORMAT;
  return {
    config: {
      ...config,
      DATABASE_URL: demoUrl,
      ITFLOW_BASE_URL: config.ITFLOW_BASE_URL ?? DEMO_BASE_URL,
      LOG_FORMAT,
      docsApiKey: DEMO_KEYS.admin,
    },
    created,
  };
}

export const DEMO_BASE_URL = 'itflow.demo.example';

/**
 * The demo's queue prefix unless QUEUE_PREFIX is set: one per demo database (`rq_itflow_demo`),
 * so a demo never shares a service's `rq` queue on the same Redis — its reset would empty it,
 * its worker would apply the service's commands to the demo database — nor another demo's.
 */
export function demoQueuePrefix(database: string): string {
  return `rq_${database.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 48);
}

/**
 * Why the demo could not listen on host:port right now (in one line), or null if it can: asked
 * before anything is created or reset, so a second `npm run demo -- --reset` beside a running
 * one changes nothing. Port 0 (any free port) always can.
 */
export async function whyPortUnavailable(host: string, port: number): Promise<string | null> {
  if (port === 0) return null;
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      resolve(
        error.code === 'EADDRINUSE'
          ? `${host}:${port} is already in use (another demo, or the service?). Stop it, or set PORT to a free port.`
          : `cannot listen on ${host}:${port} (${error.message}). Set HOST and PORT to an address this machine can use.`,
      ),
    );
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** Ready-to-paste commands for a service listening at baseUrl. */
export function demoInstructions(baseUrl: string, config: Config, created: boolean): string {
  const create = `${baseUrl}/api/v1/tickets/replies/create.php`;
  const key = DEMO_KEYS.admin;
  return [
    '',
    `ITFlow Reply Queue is running on the demo database '${databaseName(config.DATABASE_URL)}'` +
      (created ? ' (just created).' : ' (kept from an earlier run; `npm run demo -- --reset` rebuilds it).'),
    '',
    `API keys: ${DEMO_KEYS.admin} (admin, every client), ${DEMO_KEYS.acmeTechnician} (technician, Acme only),`,
    `          ${DEMO_KEYS.readOnly} (read-only user). Tickets 1-6; ticket 5 is closed, ticket 6 has no client.`,
    '',
    'Add a Public reply with 15 minutes worked, and wait up to 5 s for it to be applied:',
    `  curl -s -X POST '${create}' -H 'Content-Type: application/json' -H 'X-API-Key: ${key}' -H 'Prefer: wait=5' \\`,
    `    -d '{"ticket_id": 1, "ticket_reply": "Freed space on the backup volume; tonight\\u0027s job should pass.", "public_reply_type": 1, "minutes": 15}'`,
    '',
    'Resolve a ticket without a comment (queued: answers 202 with a command_id at once):',
    `  curl -s -X POST '${create}' -H 'Content-Type: application/json' -H 'X-API-Key: ${key}' \\`,
    `    -d '{"ticket_id": 3, "status": 4}'`,
    '',
    'Try a reply to the closed ticket 5, or the Acme-only key on a Globex ticket (3), to see the errors.',
    '',
    'In a browser:',
    `  ${baseUrl}/docs       every endpoint in Swagger UI, ready to try with ${key}`,
    `  ${baseUrl}/dashboard  the operator dashboard: queues, dead letters, imports (sign in with the admin key ${key})`,
    `  ${baseUrl}/metrics    Prometheus metrics`,
    '',
    `Queue: Redis keys under '${config.QUEUE_PREFIX}:' (QUEUE_PREFIX), apart from a service's on the same Redis.`,
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}
