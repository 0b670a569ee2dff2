// `npm run conformance -- --itflow <dir> [--itflow <dir2>] [--json FILE] [--tolerance S] [--keep]`
//
// Does the service write the same rows ITFlow's own handlers write? For each ITFlow checkout
// given (its real PHP source, any schema generation), this serves a scratch copy with PHP's
// built-in server, goes through ITFlow's setup wizard into a scratch MariaDB database, prepares
// agents, a client, SLA, mail and an API key through ITFlow's own pages, starts the service
// against the same database, and then, action by action (see actions.ts for the contract), does
// the action through ITFlow on one ticket and through the service on its twin, and prints every
// row and column that differs. Differences are the output: the exit code is 0 whenever the run
// could be made, and non-zero, with one line saying why, when it could not.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import mysql, { type Connection } from 'mysql2/promise';
import { wallClock } from '../src/itflow/clock.js';
import { ACTIONS, type Action, type ActionContext, CLOSED, NotServed } from './actions.js';
import { HandlerError } from './browser.js';
import { highWater, presentTables, snapshot, touched } from './capture.js';
import { diffTables, type TableRows, type TwinIdentity } from './diff.js';
import { markDocumented } from './documented.js';
import { addTicket, ItflowUi, prepareWorld, type World } from './itflow.js';
import { CannotRun, checkCheckout, checkPhp, freePort, removeCopy, servePhp } from './php.js';
import { type ActionResult, type GenerationResult, renderGeneration } from './report.js';
import { startServiceUnderTest } from './service.js';

interface Options {
  itflow: string[];
  json?: string;
  tolerance: number;
  keep: boolean;
  timeZone: string;
  serverZone: 'itflow' | 'server';
  mysqlUrl: string;
  redisUrl: string;
  serviceRoot: string;
}

const ADMIN_EMAIL = 'admin@conformance.example';
const PASSWORD = 'Conformance-Passw0rd';

function contractLines(): string[] {
  return [
    '| action | service request (POST /api/v1/tickets/replies/create.php unless said) | ITFlow reference |',
    '|---|---|---|',
    ...ACTIONS.map((a) => `| ${a.title} | ${a.serviceRequest} | ${a.reference} |`),
  ];
}

function label(twin: TwinIdentity): string {
  return `${twin.prefix}${twin.number}`;
}

async function runAction(
  ctx: ActionContext,
  action: Action,
  index: number,
  tables: string[],
  tolerance: number,
): Promise<ActionResult> {
  const result: ActionResult = {
    title: action.title,
    serviceRequest: action.serviceRequest,
    reference: action.reference,
    status: 'compared',
    itflowAnswers: [],
    serviceAnswers: [],
    differences: [],
  };
  const note = action.note?.(ctx.world);
  if (note) result.note = note;
  const skip = action.skip(ctx.world);
  if (skip) return { ...result, status: 'skipped', reason: skip };
  try {
    const a = await addTicket(ctx.ui, ctx.db, ctx.world, `Printer offline (conformance ${index + 1}A)`);
    const b = await addTicket(ctx.ui, ctx.db, ctx.world, `Printer offline (conformance ${index + 1}B)`);
    result.twins = { itflow: label(a), service: label(b) };
    if (action.prepare) {
      await action.prepare(ctx, a);
      await action.prepare(ctx, b);
    }
    // One side at a time, so every row added while a side acts is that side's.
    let notServed = false;
    const side = async (twin: TwinIdentity, act: () => Promise<string[]>, answers: string[]): Promise<TableRows[]> => {
      const marks = await highWater(ctx.db, tables);
      const before = await snapshot(ctx.db, tables, twin, marks);
      try {
        answers.push(...(await act()));
      } catch (error) {
        if (!(error instanceof NotServed)) throw error;
        notServed = true;
        answers.push(error.message);
      }
      return touched(before, await snapshot(ctx.db, tables, twin, marks), twin);
    };
    const itflowRows = await side(a, () => action.itflow(ctx, a), result.itflowAnswers);
    const serviceRows = await side(b, () => action.service(ctx, b), result.serviceAnswers);
    const closed =
      serviceRows.find((t) => t.table === 'tickets')?.rows.some((row) => Number(row.ticket_status) === CLOSED) ?? false;
    result.differences = markDocumented(
      diffTables(itflowRows, serviceRows, [a, b], { toleranceSeconds: tolerance }),
      ctx.world,
      closed,
    );
    if (notServed) {
      return {
        ...result,
        status: 'not served',
        reason: 'the service does not answer this path (404); the rows below are what ITFlow wrote',
      };
    }
    return result;
  } catch (error) {
    if (error instanceof HandlerError) return { ...result, status: 'failed', reason: error.message };
    throw error;
  }
}

async function runGeneration(checkout: string, options: Options, php: string): Promise<GenerationResult> {
  checkCheckout(checkout);
  const database = `itflow_conformance_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: options.mysqlUrl }).catch((error: Error) => {
    throw new CannotRun(`cannot reach MariaDB/MySQL at ${options.mysqlUrl}: ${error.message}`);
  });
  const cleanups: Array<() => Promise<unknown>> = [() => admin.end()];
  const cleanUp = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {});
  };
  try {
    const serverZone = await useServerZone(admin, options, cleanups);
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    if (!options.keep) cleanups.push(() => admin.query(`DROP DATABASE \`${database}\``));
    const server = await servePhp(checkout, await freePort(), options.serverZone === 'itflow' ? options.timeZone : null);
    if (!options.keep) cleanups.push(async () => removeCopy(server.root));
    cleanups.push(() => server.stop());

    const ui = new ItflowUi(server.url, server.errorLog);
    await ui.runSetupWizard({ database, timeZone: options.timeZone, adminEmail: ADMIN_EMAIL, password: PASSWORD });
    await ui.logIn(ADMIN_EMAIL, PASSWORD);
    const databaseUrl = `${options.mysqlUrl.replace(/\/+$/, '')}/${database}`;
    const db: Connection = await mysql.createConnection({ uri: databaseUrl, dateStrings: true });
    cleanups.push(() => db.end());
    const world: World = await prepareWorld(ui, db, PASSWORD);

    const service = await startServiceUnderTest({
      databaseUrl,
      redisUrl: options.redisUrl,
      port: await freePort(),
      queuePrefix: `conformance_${randomBytes(4).toString('hex')}`,
      logFile: join(server.root, 'service.log'),
      serviceRoot: options.serviceRoot,
      itflowBaseUrl: configBaseUrl(server.root),
    });
    cleanups.push(() => service.stop());

    const ctx: ActionContext = { ui, db, world, phpUrl: server.url, serviceUrl: service.url };
    const tables = await presentTables(db);
    const actions: ActionResult[] = [];
    for (const [index, action] of ACTIONS.entries()) {
      actions.push(await runAction(ctx, action, index, tables, options.tolerance));
    }
    if (options.keep) process.stderr.write(`kept: database ${database}, ITFlow copy ${server.root} (${server.url} stops now)\n`);
    return {
      checkout,
      itflowDatabaseVersion: world.databaseVersion,
      keyModel: world.keysRunAsUser ? 'api_key_user_id' : 'api_key_client_id',
      sla: world.hasSla,
      php,
      timeZone: options.timeZone,
      serverZone,
      database,
      toleranceSeconds: options.tolerance,
      actions,
    };
  } finally {
    await cleanUp();
  }
}

/** $config_base_url from the config.php ITFlow's setup wizard wrote (the host its links use). */
function configBaseUrl(root: string): string {
  const config = readFileSync(join(root, 'config.php'), 'utf8');
  const match = /\$config_base_url\s*=\s*'((?:[^'\\]|\\.)*)'/.exec(config);
  if (!match) throw new CannotRun(`ITFlow's setup wrote no $config_base_url in ${join(root, 'config.php')}`);
  return (match[1] as string).replace(/\\(.)/g, '$1');
}

/**
 * ITFlow's agent pages set PHP's and their MySQL session's zone to ITFlow's; its v1 API sets
 * neither, so its times are the database server's NOW() and its SLA arithmetic runs in PHP's
 * date.timezone. With `--server-zone itflow` (the default) both are ITFlow's zone for the run —
 * PHP's through -d date.timezone, the database server's as the current UTC offset of
 * --time-zone, put back at the end — as on an install whose servers run in ITFlow's zone, so
 * the API's rows can be compared at all; `server` leaves both as they are.
 */
async function useServerZone(admin: Connection, options: Options, cleanups: Array<() => Promise<unknown>>): Promise<string> {
  const [rows] = (await admin.query('SELECT @@GLOBAL.time_zone AS zone')) as unknown as [Array<{ zone: string }>];
  const previous = String(rows[0]?.zone);
  if (options.serverZone === 'server') return `database ${previous}, PHP's php.ini`;
  const now = Date.now();
  const minutes = Math.round((Date.parse(`${wallClock(now, options.timeZone).replace(' ', 'T')}Z`) - now) / 60_000);
  const offset = `${minutes < 0 ? '-' : '+'}${String(Math.floor(Math.abs(minutes) / 60)).padStart(2, '0')}:${String(Math.abs(minutes) % 60).padStart(2, '0')}`;
  await admin.query('SET GLOBAL time_zone = ?', [offset]);
  cleanups.push(() => admin.query('SET GLOBAL time_zone = ?', [previous]));
  return `ITFlow's (PHP ${options.timeZone}, database ${offset}; the database's own ${previous} is put back at the end)`;
}

function parseOptions(argv: string[]): Options {
  const program = new Command('conformance')
    .description('Compares the rows the service writes with the rows ITFlow’s own handlers write.')
    .requiredOption(
      '--itflow <dir>',
      'an ITFlow checkout (repeat for several generations)',
      (v, all: string[]) => [...all, v],
      [],
    )
    .option('--json <file>', 'also write the results as JSON')
    .option(
      '--tolerance <seconds>',
      'timestamps this close count as equal',
      (v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds ≥ 0');
        return n;
      },
      5,
    )
    .option('--keep', 'keep the scratch database and ITFlow copy', false)
    .option('--time-zone <zone>', 'ITFlow’s time zone (set in its setup wizard)', 'America/New_York')
    .addOption(
      new Option('--server-zone <which>', 'PHP’s and the database server’s time zone during the run: ITFlow’s, or their own')
        .choices(['itflow', 'server'])
        .default('itflow'),
    )
    .option('--mysql-url <url>', 'MariaDB/MySQL server to create the scratch database on', 'mysql://root@127.0.0.1:3306')
    .option('--redis-url <url>', 'Redis for the service', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option('--service-root <dir>', 'where the built service is (its dist/workers/service.js)', process.cwd());
  program.parse(argv);
  const options = program.opts<Options>();
  if (options.itflow.length === 0) program.error('--itflow <dir> is required');
  return options;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const php = checkPhp();
  const results: GenerationResult[] = [];
  for (const checkout of options.itflow) {
    const result = await runGeneration(checkout, options, php);
    results.push(result);
    process.stdout.write(`${renderGeneration(result, contractLines())}\n`);
  }
  if (options.json)
    writeFileSync(
      options.json,
      `${JSON.stringify({ contract: ACTIONS.map(({ title, serviceRequest, reference }) => ({ title, serviceRequest, reference })), generations: results }, null, 2)}\n`,
    );
}

main().catch((error: unknown) => {
  const message =
    error instanceof CannotRun || error instanceof HandlerError ? error.message : String((error as Error)?.stack ?? error);
  process.stderr.write(`conformance could not run: ${message.split('\n')[0]}\n`);
  if (!(error instanceof CannotRun || error instanceof HandlerError)) process.stderr.write(`${message}\n`);
  process.exitCode = 1;
});
