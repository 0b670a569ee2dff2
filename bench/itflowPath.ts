// The itflow scenario: ITFlow's own synchronous reply endpoint, POST
// /api/v1/ticket_replies/create.php, answered by ITFlow's PHP and by the service on the same
// ITFlow database, the same tickets and the same requests, in one run. The figure is answers/s
// (2xx a second, each answered after its reply was written) of the service ÷ ITFlow's PHP.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from 'mysql2/promise';
import { CannotRun } from '../conformance/php.js';
import { ITFLOW_REPLY_PATH, type ItflowInstall, installItflow } from './itflowInstall.js';
import { type BodyBuilder, hasWrk, type LoadResult, runLoad } from './load.js';
import { fmt } from './results.js';
import { clearRedisPrefix, startBenchService } from './service.js';
import { BENCH_MYSQL, BENCH_REDIS, benchServiceEnv } from './setup.js';

export interface ItflowPathOptions {
  checkout: string;
  phpWorkers: number;
  spreadTickets: number;
  hotTickets: number;
  connections: number[];
  seconds: number;
  /** The service's port (its worker answers /readyz on the next one). */
  port: number;
  keep: boolean;
  log: (line: string) => void;
}

/** Did every 2xx answer write exactly one reply? Counted in ticket_replies after the load. */
export interface ReplyCheck {
  /** 2xx answers, warm-up included. */
  answered: number;
  /** Of those, answers carrying an insert_id; the rest are the service's 202 (applied later) or ITFlow's `success: False`. */
  withInsertId: number;
  accepted202: number;
  /** Distinct insert_ids answered that are rows of this load in ticket_replies. */
  repliesOfAnswers: number;
  /** Rows this load added to ticket_replies. */
  written: number;
  /** Rows whose text another row of this load also has (one request written twice). */
  duplicates: number;
  /** Replies written for requests cut off unanswered when the load stopped (≤ connections per load). */
  cutOff: number;
  problem: string | null;
}

export interface SideRun {
  result: LoadResult;
  answersPerSecond: number;
  check: ReplyCheck;
}

export interface ItflowPathRow {
  tickets: string;
  connections: number;
  php: SideRun;
  service: SideRun;
  /** Service answers/s ÷ ITFlow's PHP answers/s. */
  serviceVsPhp: number;
}

export interface ItflowPathResult {
  php: string;
  phpWorkers: number;
  database: string;
  rows: ItflowPathRow[];
}

const USER_AGENT = 'itflow-reply-queue-bench';
const PREFIX = 'rqbenchitflow';

/** ITFlow's create.php body (api/v1/ticket_replies/create.php): the key in the body, an Internal reply with time worked. */
function replyBody(install: ItflowInstall, tag: string): BodyBuilder {
  return (ticket, n) => ({
    api_key: install.apiKey,
    client_id: install.clientId,
    ticket_id: ticket,
    ticket_reply: `Bench ${tag} reply ${n}`,
    ticket_reply_type: 'Internal',
    ticket_reply_time_worked: '00:01:00',
  });
}

export async function itflowPathScenario(o: ItflowPathOptions): Promise<ItflowPathResult> {
  // autocannon sends nothing to a server that closes every connection, as PHP's built-in one does.
  if (!(await hasWrk())) throw new CannotRun('the itflow scenario needs wrk (apt-get install wrk)');
  const install = await installItflow({
    checkout: o.checkout,
    mysqlUrl: BENCH_MYSQL,
    phpWorkers: o.phpWorkers,
    hotTickets: o.hotTickets,
    spreadTickets: o.spreadTickets,
    keep: o.keep,
    log: o.log,
  });
  try {
    await clearRedisPrefix(BENCH_REDIS, PREFIX);
    const service = await startBenchService('start', benchServiceEnv(install.database, PREFIX, String(o.port)));
    try {
      o.log(
        `ITFlow's PHP: php -S with PHP_CLI_SERVER_WORKERS=${o.phpWorkers} at ${install.phpUrl}; the service: npm start (dist/workers/service.js) at ${service.url}`,
      );
      const rows = await measureCells(install, service.url, o);
      return { php: install.php, phpWorkers: o.phpWorkers, database: install.database, rows };
    } finally {
      await service.stop();
      await clearRedisPrefix(BENCH_REDIS, PREFIX);
    }
  } finally {
    await install.cleanUp();
  }
}

/** Each cell (spread and hot tickets, each connection count): ITFlow's PHP, then the service. */
async function measureCells(install: ItflowInstall, serviceUrl: string, o: ItflowPathOptions): Promise<ItflowPathRow[]> {
  const shapes = [
    { name: 'spread', label: `spread: ${fmt(install.spreadTickets.length)} tickets`, ids: install.spreadTickets },
    { name: 'hot', label: `hot: ${install.hotTickets.length} tickets`, ids: install.hotTickets },
  ];
  const rows: ItflowPathRow[] = [];
  for (const shape of shapes) {
    for (const connections of o.connections) {
      const side = async (name: string, base: string) => {
        o.log(`itflow: ${shape.label}, c=${connections}: ${name}…`);
        const tag = `${name}-${shape.name}-c${connections}`;
        return sideRun(install, `${base}${ITFLOW_REPLY_PATH}`, shape.ids, connections, o.seconds, tag);
      };
      // One after the other on the same tickets; both stay up, the one not measured idle.
      const php = await side('php', install.phpUrl);
      const service = await side('service', serviceUrl);
      rows.push({
        tickets: shape.label,
        connections,
        php,
        service,
        serviceVsPhp: service.answersPerSecond / php.answersPerSecond,
      });
    }
  }
  return rows;
}

/** A 2 s warm-up, then `seconds` of load; the check counts the replies of both. */
async function sideRun(
  install: ItflowInstall,
  url: string,
  tickets: readonly number[],
  connections: number,
  seconds: number,
  tag: string,
): Promise<SideRun> {
  const before = await maxReplyId(install.db);
  const load = (phase: string, forSeconds: number) =>
    runLoad({
      url,
      connections,
      seconds: forSeconds,
      tickets,
      body: replyBody(install, `${tag}-${phase}`),
      headers: { 'User-Agent': USER_AGENT },
      insertIds: true,
    });
  const warmup = await load('warmup', 2);
  const result = await load('run', seconds);
  const check = await checkReplies(install.db, before, [warmup, result], connections);
  return { result, answersPerSecond: result.ok / result.seconds, check };
}

async function maxReplyId(db: Connection): Promise<number> {
  const [[row]] = (await db.query('SELECT COALESCE(MAX(ticket_reply_id), 0) AS id FROM ticket_replies')) as unknown as [
    Array<{ id: number }>,
  ];
  return Number(row?.id);
}

async function countWritten(db: Connection, after: number): Promise<{ written: number; texts: number }> {
  const [[row]] = (await db.query(
    'SELECT COUNT(*) AS written, COUNT(DISTINCT ticket_reply) AS texts FROM ticket_replies WHERE ticket_reply_id > ?',
    [after],
  )) as unknown as [Array<{ written: number; texts: number }>];
  return { written: Number(row?.written), texts: Number(row?.texts) };
}

/**
 * Counts what the loads wrote once writing has stopped (a request cut off when the load ended
 * may still finish; a 202 is applied after its answer): every 2xx answer must carry an insert_id
 * of a row this load wrote (or be a 202, applied later), no insert_id twice, no reply text twice,
 * and the rows beyond the answers at most the requests cut off.
 */
async function checkReplies(db: Connection, before: number, loads: LoadResult[], connections: number): Promise<ReplyCheck> {
  const ids = loads.flatMap((load) => load.insertIds ?? []);
  const answers = loads.reduce((sum, load) => sum + load.ok, 0);
  const accepted202 = loads.reduce((sum, load) => sum + (load.statuses?.['202'] ?? 0), 0);
  let counted = await countWritten(db, before);
  const deadline = Date.now() + 60_000;
  for (;;) {
    await sleep(300);
    const again = await countWritten(db, before);
    const settled = again.written === counted.written && again.written >= ids.length + accepted202;
    counted = again;
    if (settled || Date.now() > deadline) break;
  }
  const distinct = [...new Set(ids)];
  let repliesOfAnswers = 0;
  for (let i = 0; i < distinct.length; i += 10_000) {
    const [[row]] = (await db.query(
      'SELECT COUNT(*) AS n FROM ticket_replies WHERE ticket_reply_id > ? AND ticket_reply_id IN (?)',
      [before, distinct.slice(i, i + 10_000)],
    )) as unknown as [Array<{ n: number }>];
    repliesOfAnswers += Number(row?.n);
  }
  const check = {
    answered: answers,
    withInsertId: ids.length,
    accepted202,
    repliesOfAnswers,
    written: counted.written,
    duplicates: counted.written - counted.texts,
    cutOff: counted.written - answers,
  };
  const problems = [
    ids.length + accepted202 < answers ? `${fmt(answers - ids.length - accepted202)} 2xx answers without an insert_id` : '',
    distinct.length < ids.length ? `${fmt(ids.length - distinct.length)} insert_ids answered twice` : '',
    repliesOfAnswers < distinct.length ? `${fmt(distinct.length - repliesOfAnswers)} answered insert_ids not written` : '',
    check.duplicates > 0 ? `${fmt(check.duplicates)} replies written twice` : '',
    check.cutOff < 0 ? `${fmt(-check.cutOff)} answers without a reply` : '',
    check.cutOff > connections * loads.length ? `${fmt(check.cutOff)} replies beyond the answers` : '',
  ].filter(Boolean);
  return { ...check, problem: problems.length > 0 ? problems.join(', ') : null };
}

const pair = (a: number, b: number) => `${fmt(a, 1)} / ${fmt(b, 1)}`;

function checkText(side: SideRun): string {
  const c = side.check;
  if (c.problem) return `NOT OK: ${c.problem}`;
  const extra = [c.accepted202 ? `${fmt(c.accepted202)} were 202` : '', c.cutOff ? `+${c.cutOff} cut off at the end` : '']
    .filter(Boolean)
    .join(', ');
  return `ok, ${fmt(c.answered)} answers, ${fmt(c.written)} replies${extra ? ` (${extra})` : ''}`;
}

function problemsOf(result: LoadResult): string {
  const other = Object.entries(result.statuses ?? {}).filter(([status]) => !status.startsWith('2'));
  const notAnswered = result.requests - Object.values(result.statuses ?? {}).reduce((sum, n) => sum + n, 0);
  return [...other.map(([status, n]) => `${fmt(n)}× ${status}`), notAnswered > 0 ? `${fmt(notAnswered)} unanswered` : '']
    .filter(Boolean)
    .join(', ');
}

/** The printed columns, the ratio first. */
export function itflowTableRow(row: ItflowPathRow): Record<string, string> {
  return {
    tickets: row.tickets,
    c: String(row.connections),
    'service ÷ ITFlow PHP': `${fmt(row.serviceVsPhp, 2)}×`,
    'service answers/s': fmt(row.service.answersPerSecond),
    'ITFlow PHP answers/s': fmt(row.php.answersPerSecond),
    'service p50 / p99 ms': pair(row.service.result.p50, row.service.result.p99),
    'ITFlow PHP p50 / p99 ms': pair(row.php.result.p50, row.php.result.p99),
    'service: one reply per 2xx': checkText(row.service),
    'ITFlow PHP: one reply per 2xx': checkText(row.php),
    'non-2xx': [problemsOf(row.service.result), problemsOf(row.php.result)]
      .map((p, i) => (p ? `${i === 0 ? 'service' : 'PHP'}: ${p}` : ''))
      .filter(Boolean)
      .join('; '),
  };
}

/** The result in JSON, insert ids left out. */
export function itflowJson(result: ItflowPathResult): unknown {
  const side = ({ result: { insertIds: _ids, ...load }, ...rest }: SideRun) => ({ ...rest, load });
  return { ...result, rows: result.rows.map((row) => ({ ...row, php: side(row.php), service: side(row.service) })) };
}
