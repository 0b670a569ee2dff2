import mysql from 'mysql2/promise';
import { parseReadReplies } from '../src/commands/readReplies.js';
import { databaseName } from '../src/db/pool.js';
import type { Generation } from '../src/demo/itflowDatabase.js';
import { detectSchema } from '../src/itflow/schema.js';
import { ALL_CLIENTS, type ClientScope } from '../src/itflow/scope.js';
import { listQuery } from '../src/read/listReplies.js';
import { ListPlanner } from '../src/read/planner.js';
import { type ReadKeys, SPARSE_CLIENT, seedReadDatabase } from './readSeed.js';
import { startBenchService } from './service.js';
import { percentile } from './setup.js';

/**
 * The read scenario: read.php against 1,000,000 replies, page 1 and a page 100,000 rows deep,
 * timed over HTTP through the service, with MariaDB's ANALYZE of the exact SQL the service
 * runs (r_rows = rows actually read).
 */
export interface ReadRow {
  case: string;
  p50: number;
  p95: number;
  plan: string;
}

interface Case {
  name: string;
  key: keyof ReadKeys;
  query: string;
}

export async function readScenario(serverUrl: string, redisUrl: string, generation: Generation, log: (line: string) => void) {
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

  const service = await startBenchService('intake', {
    DATABASE_URL: url,
    REDIS_URL: redisUrl,
    PORT: '18183',
    QUEUE_PREFIX: 'rqbenchread',
    LOG_LEVEL: 'warn',
  });
  const rows: ReadRow[] = [];
  const pool = mysql.createPool({ uri: url, connectionLimit: 2, dateStrings: true });
  const planner = new ListPlanner(pool, await detectSchema(pool, databaseName(url)));
  try {
    for (const c of cases) {
      const times: number[] = [];
      for (let i = 0; i < 33; i++) {
        const started = performance.now();
        const response = await fetch(`${service.url}/api/v1/tickets/replies/read.php?${c.query}`, {
          headers: { 'X-API-Key': keys[c.key] },
        });
        const body = (await response.json()) as { count?: number };
        if (response.status !== 200 || !body.count) throw new Error(`${c.name}: ${response.status} ${JSON.stringify(body)}`);
        if (i >= 3) times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      const query = parseReadReplies(Object.fromEntries(new URLSearchParams(c.query)));
      const { sql, params } = listQuery(scopes[c.key], query, 'replies', await planner.startFromTickets(scopes[c.key], query));
      const [plan] = await conn.query<mysql.RowDataPacket[]>(`ANALYZE ${sql}`, params);
      rows.push({
        case: c.name,
        p50: percentile(times, 50),
        p95: percentile(times, 95),
        plan: plan
          .map(
            (p) =>
              `${p.table}: ${p.type}${p.key ? ` ${p.key}` : ''}, r_rows ${Math.round(Number(p.r_rows))}${p.Extra ? `, ${p.Extra}` : ''}`,
          )
          .join(' | '),
      });
    }
  } finally {
    await service.stop();
    await conn.end();
    await pool.end();
  }
  return rows;
}
