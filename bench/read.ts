import mysql from 'mysql2/promise';
import { parseReadReplies } from '../src/commands/readReplies.js';
import { migrate } from '../src/db/migrate.js';
import { createPool, databaseName } from '../src/db/pool.js';
import { serviceTables } from '../src/db/tables.js';
import type { Generation } from '../src/demo/itflowDatabase.js';
import { detectSchema } from '../src/itflow/schema.js';
import { ALL_CLIENTS, type ClientScope } from '../src/itflow/scope.js';
import { listQuery } from '../src/read/listReplies.js';
import { ListPlanner } from '../src/read/planner.js';
import { followOnce, rebuildProjection } from '../src/read/projection/follower.js';
import { CHECKED_SKIPPED, projectedIdsQuery } from '../src/read/projection/serve.js';
import { readProjectionView } from '../src/read/projection/state.js';
import { type ReadKeys, SPARSE_CLIENT, seedReadDatabase } from './readSeed.js';
import { type BenchService, startBenchService } from './service.js';
import { percentile } from './setup.js';

/**
 * The read scenario: read.php against 1,000,000 replies, page 1 and a page 100,000 rows deep,
 * timed over HTTP through two services on the same database: one reading ITFlow's tables as
 * before (PROJECTION_MAX_LAG_SECONDS=0), one serving from the read projection (an intake and a
 * worker whose follower keeps the projection in step, as `npm start` runs them). Every answer of
 * the second is checked byte for byte against the first. With MariaDB's ANALYZE of the exact SQL
 * each runs to find the page (r_rows = rows actually read); the projection's page is then read
 * from ticket_replies by primary key.
 */
export interface Timing {
  p50: number;
  p95: number;
}

export interface ReadRow {
  case: string;
  direct: Timing;
  projection: Timing;
  /** What answered on the projection's service (X-Read-Source). */
  source: string;
  plan: string;
  projectionPlan: string;
}

export interface ReadReport {
  rows: ReadRow[];
  /** `projection rebuild` over the seeded database, from an empty projection: seconds, replies. */
  rebuild: { seconds: number; replies: number };
  /** One follower round with nothing new (the catch-up, the newest 1,000 again, a 2,000-row sweep of each table). */
  round: Timing;
}

interface Case {
  name: string;
  key: keyof ReadKeys;
  query: string;
}

const REQUESTS = 33;
const WARM_UP = 3;
/** The worker's defaults (PROJECTION_SWEEP_ROWS). */
const SWEEP_ROWS = 2000;

export async function readScenario(
  serverUrl: string,
  redisUrl: string,
  generation: Generation,
  log: (line: string) => void,
): Promise<ReadReport> {
  const { url, keys } = await seedReadDatabase(serverUrl, generation, log);
  const conn = await mysql.createConnection({ uri: url, dateStrings: true });
  const [[deepAll]] = (await conn.query(
    'SELECT ticket_reply_id AS id FROM ticket_replies WHERE ticket_reply_archived_at IS NULL ORDER BY ticket_reply_id DESC LIMIT 1 OFFSET 99999',
  )) as unknown as [[{ id: number }]];
  const [[deepOne]] = (await conn.query(
    `SELECT tr.ticket_reply_id AS id FROM ticket_replies tr JOIN tickets t ON t.ticket_id = tr.ticket_reply_ticket_id
     WHERE t.ticket_client_id = 1 AND tr.ticket_reply_archived_at IS NULL ORDER BY tr.ticket_reply_id DESC LIMIT 1 OFFSET 99999`,
  )) as unknown as [[{ id: number }]];
  const cases: Case[] = [
    { name: 'one reply by reply_id', key: 'all', query: `reply_id=${deepAll.id}` },
    { name: 'all clients: newest page (limit 50)', key: 'all', query: 'limit=50' },
    { name: 'all clients: 100,000 rows deep via before_id', key: 'all', query: `limit=50&before_id=${deepAll.id}` },
    { name: 'all clients: 100,000 rows deep via offset (contrast)', key: 'all', query: 'limit=50&offset=100000' },
    { name: 'one ticket (~100 replies): newest page', key: 'all', query: 'ticket_id=5000' },
    { name: 'one ticket, a client-scoped key', key: 'clientOne', query: 'ticket_id=5005' },
    { name: 'client-scoped key (11 % of replies): newest page', key: 'clientOne', query: 'limit=50' },
    { name: 'client-scoped key: 100,000 rows deep via before_id', key: 'clientOne', query: `limit=50&before_id=${deepOne.id}` },
    { name: 'sparse client (0.1 % of replies): newest page', key: 'sparse', query: 'limit=50' },
  ];
  // The scopes the service derives for these keys (restricted users also see client 0).
  const restricted = (client: number): ClientScope => ({ allow: generation === '2.4.4' ? [client] : [0, client], deny: [] });
  const scopes: Record<keyof ReadKeys, ClientScope> = {
    all: ALL_CLIENTS,
    clientOne: restricted(1),
    sparse: restricted(SPARSE_CLIENT),
  };

  // The service's tables and the projection, as `npm run cli -- projection rebuild` builds them.
  const pool = createPool(url, 2);
  const tables = serviceTables({ DATABASE_URL: url, TABLE_PREFIX: 'rq_', SERVICE_SCHEMA: undefined });
  await migrate(pool, tables);
  // From empty, as a first build after upgrading makes it (the bench's root may TRUNCATE; the service never does).
  await pool.query(`TRUNCATE TABLE ${tables.projectionReplies}`);
  await pool.query(`TRUNCATE TABLE ${tables.projectionTickets}`);
  log(`Building the read projection of ${databaseName(url)} from empty (projection rebuild)…`);
  const started = performance.now();
  const rebuilt = await rebuildProjection(pool, tables);
  const rebuild = { seconds: (performance.now() - started) / 1000, replies: rebuilt?.replies ?? 0 };
  const rounds: number[] = [];
  const follower = await pool.getConnection();
  try {
    for (let i = 0; i < 12; i++) {
      const t = performance.now();
      await followOnce(follower, tables, SWEEP_ROWS);
      if (i >= 2) rounds.push(performance.now() - t);
    }
  } finally {
    follower.release();
  }
  rounds.sort((a, b) => a - b);

  const env = { DATABASE_URL: url, REDIS_URL: redisUrl, QUEUE_PREFIX: 'rqbenchread', LOG_LEVEL: 'warn' };
  const services: BenchService[] = [];
  const rows: ReadRow[] = [];
  const planner = new ListPlanner(pool, await detectSchema(pool, databaseName(url)));
  try {
    const direct = await startBenchService('intake', { ...env, PORT: '18183', PROJECTION_MAX_LAG_SECONDS: '0' });
    services.push(direct);
    const projected = await startBenchService('split', { ...env, PORT: '18186' });
    services.push(projected);
    for (const c of cases) {
      const path = `/api/v1/tickets/replies/read.php?${c.query}`;
      const headers = { 'X-API-Key': keys[c.key] };
      const [mine, theirs] = await Promise.all(
        [projected, direct].map((s) => fetch(`${s.url}${path}`, { headers }).then(async (r) => ({ r, text: await r.text() }))),
      );
      if (!mine || !theirs || theirs.r.status !== 200 || mine.text !== theirs.text) {
        throw new Error(
          `${c.name}: the projection's answer differs from ITFlow's tables' (${mine?.r.status} / ${theirs?.r.status})`,
        );
      }
      const source = mine.r.headers.get('x-read-source') ?? '?';
      const query = parseReadReplies(Object.fromEntries(new URLSearchParams(c.query)));
      const { sql, params } = listQuery(scopes[c.key], query, 'replies', await planner.startFromTickets(scopes[c.key], query));
      const view = await readProjectionView(pool, tables);
      const checked = query.offset <= CHECKED_SKIPPED;
      const ids = projectedIdsQuery(
        tables,
        scopes[c.key],
        query,
        view.watermark,
        checked ? query.offset + query.limit : query.limit,
        checked ? 0 : query.offset,
      );
      rows.push({
        case: c.name,
        direct: await time(`${direct.url}${path}`, headers),
        projection: await time(`${projected.url}${path}`, headers),
        source,
        plan: await analyze(conn, sql, params),
        projectionPlan: source === 'projection' && ids ? await analyze(conn, ids.sql, ids.params) : '(ITFlow’s tables)',
      });
    }
  } finally {
    for (const service of services) await service.stop();
    await conn.end();
    await pool.end();
  }
  return { rows, rebuild, round: { p50: percentile(rounds, 50), p95: percentile(rounds, 95) } };
}

async function time(url: string, headers: Record<string, string>): Promise<Timing> {
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const started = performance.now();
    const response = await fetch(url, { headers });
    const body = (await response.json()) as { count?: number };
    if (response.status !== 200 || !body.count) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
    if (i >= WARM_UP) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p95: percentile(times, 95) };
}

async function analyze(conn: mysql.Connection, sql: string, params: unknown[]): Promise<string> {
  const [plan] = await conn.query<mysql.RowDataPacket[]>(`ANALYZE ${sql}`, params);
  return plan
    .map(
      (p) =>
        `${p.table}: ${p.type}${p.key ? ` ${p.key}` : ''}, r_rows ${Math.round(Number(p.r_rows))}${p.Extra ? `, ${p.Extra}` : ''}`,
    )
    .join(' | ');
}
