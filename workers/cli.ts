// The command-line tool: `migrate`, `demo`, `import FILE`, `queues`, `projection rebuild|status`,
// `dead-letters list|show|replay`, `keys list|quiet|notify`, `webhooks add|list|remove|test|deliveries|replay`.
// Each verb loads only what it uses (import never loads the service, the queue or MySQL),
// which keeps a long import's memory small.
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import type { Pool } from 'mysql2/promise';
import { DEMO_DATABASE } from '../src/cli/demoDatabase.js';
import { type Config, ConfigError, loadConfig } from '../src/config.js';
import type { ServiceTables } from '../src/db/tables.js';
import type { DeadLetters } from '../src/queue/deadLetters.js';
import type { RedisClient } from '../src/queue/redis.js';

function config() {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const program = new Command('itflow-reply-queue').description('ITFlow Reply Queue command-line tool');

program
  .command('migrate')
  .description("create or upgrade the service's own tables in the ITFlow database")
  .action(async () => {
    const { migrateCommand } = await import('../src/cli/migrate.js');
    const { MissingGrants } = await import('../src/db/grants.js');
    const { StartupError } = await import('../src/service.js');
    // One line, as `npm start` tells a start-up refusal.
    const refusal = (error: Error) =>
      error instanceof StartupError || error instanceof MissingGrants ? error.message : `Could not migrate: ${error.message}`;
    console.log(await migrateCommand(config()).catch((error: Error) => fail(refusal(error).split('\n')[0] as string)));
  });

program
  .command('demo')
  .description('create a demo ITFlow database in the local MySQL and run the service on it')
  .option('--reset', 'rebuild the demo database even if it exists')
  .option('--database <name>', 'name of the demo database', DEMO_DATABASE)
  .option('--no-start', 'only create the demo database, then exit')
  .action(async (options: { reset?: boolean; database: string; start: boolean }) => {
    const { demoInstructions, demoQueuePrefix, prepareDemo, whyPortUnavailable } = await import('../src/cli/demo.js');
    const { processLogger } = await import('../src/logger.js');
    const { StartupError, startService } = await import('../src/service.js');
    const { stopOnSignal } = await import('../src/signals.js');
    const settings = config();
    // The demo's own queue unless the user named one (an empty QUEUE_PREFIX is unset, as loadConfig reads it).
    const base = {
      ...settings,
      QUEUE_PREFIX: process.env.QUEUE_PREFIX ? settings.QUEUE_PREFIX : demoQueuePrefix(options.database),
    };
    // Before anything is created or reset: a demo that cannot listen must leave everything as it was.
    const unavailable = options.start ? await whyPortUnavailable(base.HOST, base.PORT) : null;
    if (unavailable) fail(`Cannot start the demo: ${unavailable}`);
    const { config: demo, created } = await prepareDemo(base, {
      reset: Boolean(options.reset),
      database: options.database,
    }).catch((error: Error) => fail(`Could not create the demo database: ${error.message}`));
    if (!options.start) {
      console.log(`Demo database '${options.database}' ${created ? 'created' : 'already has ITFlow tables; left as it is'}.`);
      return;
    }
    const logger = processLogger(demo.LOG_LEVEL, demo.LOG_FORMAT);
    const service = await startService(demo, { intake: true, worker: true }, logger).catch((error: Error) =>
      fail(error instanceof StartupError ? error.message : `Could not start: ${error.message}`),
    );
    // Ctrl-C is handled before the instructions say to press it.
    stopOnSignal(service, logger);
    process.stdout.write(demoInstructions(service.url ?? '', demo, created));
  });

program
  .command('import <file>')
  .description('import an NDJSON or CSV file of commands through bulk.php (resumable)')
  .option('--url <url>', 'the service (default: http://HOST:PORT from the environment)')
  .option('--api-key <key>', 'the API key to import with (default: $IMPORT_API_KEY)')
  .option('--format <format>', 'ndjson or csv (default: from the file name)')
  .option('--batch-size <n>', 'lines per bulk request', '1000')
  .option('--concurrency <n>', 'bulk requests in flight', '4')
  .option('--dry-run', 'validate every line, queue nothing')
  .option('--no-wait', 'return once every line is queued, without waiting for it to be applied')
  .option('--json', 'print the summary as JSON')
  .option(
    '--external-id <column>',
    "the column (CSV) or field (NDJSON) holding each line's external_id, e.g. the source's comment id",
  )
  .action(async (file: string, options: ImportCliOptions) => {
    const { progressReporter, summaryText } = await import('../src/import/progress.js');
    const { runImport } = await import('../src/import/run.js');
    const { formatOf } = await import('../src/import/source.js');
    const { HOST, PORT } = config();
    const apiKey = options.apiKey ?? process.env.IMPORT_API_KEY;
    if (!apiKey) fail('Give the API key to import with: --api-key KEY, or IMPORT_API_KEY in the environment.');
    if (!existsSync(file)) fail(`No file ${file}.`);
    let stopping = false;
    process.on('SIGINT', () => {
      if (stopping) process.exit(130);
      stopping = true;
      process.stderr.write(
        '\nStopping: finishing the requests in flight and saving where the import got to (Ctrl-C again to quit now)…\n',
      );
    });
    const progress = progressReporter(process.stderr);
    const summary = await runImport({
      file,
      format: formatOf(file, options.format),
      url: (options.url ?? `http://${HOST}:${PORT}`).replace(/\/$/, ''),
      apiKey,
      batchSize: positive(options.batchSize, '--batch-size'),
      concurrency: positive(options.concurrency, '--concurrency'),
      wait: options.wait,
      dryRun: Boolean(options.dryRun),
      maxPending: 50_000,
      report: (p) => progress.report(p),
      stopped: () => stopping,
      externalIdFrom: options.externalId,
    }).catch((error: Error) => {
      progress.stop();
      return fail(error.message);
    });
    progress.stop();
    console.log(options.json ? JSON.stringify(summary) : summaryText(summary));
    process.exitCode = summary.interrupted ? 130 : summary.rejected > 0 ? 3 : 0;
  });

interface ImportCliOptions {
  url?: string;
  apiKey?: string;
  format?: string;
  batchSize: string;
  concurrency: string;
  dryRun?: boolean;
  wait: boolean;
  json?: boolean;
  externalId?: string;
}

function positive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a whole number above 0.`);
  return n;
}

program
  .command('queues')
  .description('what waits in the lanes: totals by state, the deepest lanes, the oldest waiting command, dead letters')
  .option('--top <n>', 'how many of the deepest lanes to list', '10')
  .option('--all', 'list every lane')
  .option('--json', 'print the overview as JSON')
  .action(async (options: { top: string; all?: boolean; json?: boolean }) => {
    const { queuesText } = await import('../src/cli/queues.js');
    const { readQueues } = await import('../src/queue/overview.js');
    const top = options.all ? 'all' : positive(options.top, '--top');
    await withRedis(async (redis, { QUEUE_PREFIX, QUEUE_PARTITIONS }) => {
      const view = await readQueues(redis, QUEUE_PREFIX, QUEUE_PARTITIONS, { top });
      process.stdout.write(options.json ? `${JSON.stringify(view)}\n` : queuesText(view, { top }));
      if (options.json && view.recordedLanes === null) {
        // Beside the JSON (recordedLanes: null), for whoever runs it by hand.
        process.stderr.write(`No service has used the prefix '${QUEUE_PREFIX}' on this Redis yet: check QUEUE_PREFIX.\n`);
      }
    });
  });

/** Runs `use` with a connection to the queue's Redis (stopping with a clear line if it does not answer). */
async function withRedis<T>(use: (redis: RedisClient, settings: Config) => Promise<T>): Promise<T> {
  const { createRedis, RedisDatabaseRefused, redisReady } = await import('../src/queue/redis.js');
  const settings = config();
  const redis = createRedis(settings, 'blocking', 'replyqueue-cli');
  try {
    await redisReady(redis).catch((error: Error) =>
      fail(error instanceof RedisDatabaseRefused ? error.message : `Cannot reach Redis: ${error.message}`),
    );
    return await use(redis, settings);
  } finally {
    redis.disconnect();
  }
}

const keys = program
  .command('keys')
  .description("ITFlow's API keys and their quiet default: a quiet key's commands notify no one unless they say notify: true");

keys
  .command('list')
  .description("list ITFlow's API keys, each with whether it is quiet by default")
  .option('--json', 'one JSON object per line')
  .action(async (options: { json?: boolean }) => {
    const { keysText, listKeys, withKeySettings } = await import('../src/cli/keys.js');
    const list = await withKeySettings(config(), listKeys).catch((error: Error) => fail(error.message));
    if (options.json) for (const key of list) console.log(JSON.stringify(key));
    else process.stdout.write(keysText(list));
  });

for (const [verb, quiet, description] of [
  [
    'quiet',
    true,
    'make keys quiet by default: their commands write no notifications rows and queue no client email unless a command says notify: true (audit rows stay)',
  ],
  ['notify', false, 'make keys notify again by default (the default for every key)'],
] as const) {
  keys
    .command(`${verb} <api_key_ids...>`)
    .description(description)
    .action(async (ids: string[]) => {
      const { setQuiet, withKeySettings } = await import('../src/cli/keys.js');
      const numbers = ids.map((id) => Number(id));
      if (numbers.some((n) => !Number.isInteger(n) || n < 1))
        fail('Name keys by their api_key_id (a whole number; see `keys list`).');
      const unknown = await withKeySettings(config(), (pool, tables) => setQuiet(pool, tables, numbers, quiet)).catch(
        (error: Error) => fail(error.message),
      );
      const set = numbers.filter((n) => !unknown.includes(n));
      if (set.length > 0)
        console.log(`${quiet ? 'Quiet' : 'Notifying'} by default: key${set.length > 1 ? 's' : ''} ${set.join(', ')}.`);
      if (unknown.length > 0) {
        process.stderr.write(`No API key ${unknown.join(', ')} in ITFlow (see \`keys list\`).\n`);
        process.exitCode = 2;
      }
    });
}
const projection = program.command('projection').description("read.php's read projection of ticket_replies: status, rebuild");

projection
  .command('rebuild')
  .description("derive the read projection again from ITFlow's tables (read.php reads ITFlow's tables meanwhile)")
  .action(async () => {
    const { rebuildCommand } = await import('../src/cli/projection.js');
    const { MissingGrants } = await import('../src/db/grants.js');
    const { StartupError } = await import('../src/service.js');
    const refusal = (error: Error) =>
      error instanceof StartupError || error instanceof MissingGrants ? error.message : `Could not rebuild: ${error.message}`;
    console.log(
      await rebuildCommand(config(), (line) => process.stderr.write(`${line}\n`)).catch((error: Error) =>
        fail(refusal(error).split('\n')[0] as string),
      ),
    );
  });

projection
  .command('status')
  .description('how far behind ticket_replies the projection is, and whether read.php serves from it')
  .action(async () => {
    const { statusCommand } = await import('../src/cli/projection.js');
    console.log(
      await statusCommand(config()).catch((error: Error) =>
        fail(`Could not read the projection: ${error.message.split('\n')[0]}`),
      ),
    );
  });

const deadLetters = program.command('dead-letters').description('commands that exhausted their attempts: list, show, replay');

async function withDeadLetters<T>(use: (letters: DeadLetters) => Promise<T>): Promise<T> {
  const { DeadLetters } = await import('../src/queue/deadLetters.js');
  const { redisKeys } = await import('../src/queue/keys.js');
  const { keyLayoutOf } = await import('../src/queue/cluster.js');
  return withRedis(async (redis, { QUEUE_PREFIX, QUEUE_PARTITIONS }) => {
    // A mistyped prefix is told, not read as "no dead letters" (nor made into a queue).
    if ((await redis.exists(redisKeys(QUEUE_PREFIX, keyLayoutOf(redis)).lanes)) === 0) {
      process.stderr.write(
        `No service has used the prefix '${QUEUE_PREFIX}' on this Redis yet: check QUEUE_PREFIX (and REDIS_URL).\n`,
      );
      process.exit(2);
    }
    const letters = new DeadLetters(redis, QUEUE_PREFIX, QUEUE_PARTITIONS);
    try {
      return await use(letters);
    } finally {
      await letters.close();
    }
  });
}

deadLetters
  .command('list')
  .description('list dead letters, oldest first')
  .option('--json', 'one JSON object per line')
  .action((options: { json?: boolean }) =>
    withDeadLetters(async (letters) => {
      const list = await letters.list();
      if (options.json) for (const letter of list) console.log(JSON.stringify(letter));
      else if (list.length === 0) console.log('No dead letters.');
      else console.table(list.map((l) => ({ ...l, reason: l.reason.slice(0, 80) })));
    }),
  );

deadLetters
  .command('show <command_id>')
  .description('show one dead letter and the command it carries')
  .action((commandId: string) =>
    withDeadLetters(async (letters) => {
      const found = await letters.show(commandId);
      if (!found) fail(`No dead letter ${commandId}.`);
      console.log(JSON.stringify(found, null, 2));
    }),
  );

deadLetters
  .command('replay [command_ids...]')
  .description('put dead letters back in their lanes (already-applied commands stay a no-op)')
  .option('--all', 'replay every dead letter')
  .action((commandIds: string[], options: { all?: boolean }) =>
    withDeadLetters(async (letters) => {
      if (options.all) {
        console.log(`Replayed ${await letters.replayAll()} dead letter(s).`);
        return;
      }
      if (commandIds.length === 0) fail('Name the command ids to replay, or pass --all.');
      let missing = 0;
      // Replaying a command replays the chunk it travelled in, chunk-mates included.
      const replayed = new Set<string>();
      for (const id of commandIds) {
        if (replayed.has(id)) {
          console.log(`Replayed ${id} (with its chunk).`);
          continue;
        }
        const commands = await letters.replay(id);
        for (const command of commands) replayed.add(command);
        const mates = commands.length - 1;
        if (commands.length === 0) {
          console.log(`No dead letter ${id} (already replayed, applied, or unknown).`);
          missing++;
        } else console.log(`Replayed ${id}.${mates > 0 ? ` Its chunk's ${mates} other command(s) went with it.` : ''}`);
      }
      if (missing > 0) process.exitCode = 2;
    }),
  );

const webhooks = program
  .command('webhooks')
  .description('completion webhooks of API keys: add, list, remove, test, deliveries, replay (docs/webhooks.md)');

/** Runs `use` with a pool on the service's database and its tables, migrated (as `npm start` would). */
async function withServiceTables<T>(use: (pool: Pool, tables: ServiceTables, settings: Config) => Promise<T>): Promise<T> {
  const { createPool } = await import('../src/db/pool.js');
  const { migrate } = await import('../src/db/migrate.js');
  const { serviceTables } = await import('../src/db/tables.js');
  const { WebhookCliError } = await import('../src/cli/webhooks.js');
  const settings = config();
  const pool = createPool(settings.DATABASE_URL, 2);
  try {
    const tables = serviceTables(settings);
    await migrate(pool, tables).catch((error: Error) => fail(`Cannot use the service's tables: ${error.message}`));
    return await use(pool, tables, settings);
  } catch (error) {
    if (error instanceof WebhookCliError) fail(error.message);
    throw error;
  } finally {
    await pool.end();
  }
}

webhooks
  .command('add <api_key_id> <url>')
  .description("send the events of an ITFlow API key's commands to a URL; prints the signing secret once")
  .option(
    '--events <list>',
    'comma-separated: command.applied, command.failed, import.finished',
    'command.applied,command.failed,import.finished',
  )
  .option('--json', 'print the new webhook (with its secret) as JSON')
  .action((apiKeyId: string, url: string, options: { events: string; json?: boolean }) =>
    withServiceTables(async (pool, tables, settings) => {
      const { addWebhook, addedText, parseEvents } = await import('../src/cli/webhooks.js');
      const added = await addWebhook(pool, tables, settings, {
        apiKeyId: positive(apiKeyId, 'api_key_id'),
        url,
        events: parseEvents(options.events),
      });
      process.stdout.write(options.json ? `${JSON.stringify(added)}\n` : addedText(added, settings));
    }),
  );

webhooks
  .command('list')
  .description('every webhook, with its deliveries by state (secrets are never shown again)')
  .option('--json', 'print the list as JSON')
  .action((options: { json?: boolean }) =>
    withServiceTables(async (pool, tables) => {
      const { webhooksText } = await import('../src/cli/webhooks.js');
      const { listWebhooks } = await import('../src/webhooks/overview.js');
      const list = await listWebhooks(pool, tables);
      process.stdout.write(options.json ? `${JSON.stringify(list)}\n` : webhooksText(list));
    }),
  );

webhooks
  .command('remove <webhook_id>')
  .description('remove a webhook and its deliveries, delivered or not')
  .action((webhookId: string) =>
    withServiceTables(async (pool, tables, settings) => {
      const { removeSubscription } = await import('../src/webhooks/subscriptions.js');
      if (!(await removeSubscription(pool, tables, positive(webhookId, 'webhook_id')))) fail(`No webhook ${webhookId}.`);
      console.log(`Webhook ${webhookId} removed; workers stop sending to it within ${settings.AUTH_CACHE_SECONDS} s.`);
    }),
  );

webhooks
  .command('test <webhook_id>')
  .description('send a signed webhook.test event to a webhook now and show what it answered')
  .action((webhookId: string) =>
    withServiceTables(async (pool, tables, settings) => {
      const { testWebhook, testedText } = await import('../src/cli/webhooks.js');
      const tested = await testWebhook(pool, tables, settings, positive(webhookId, 'webhook_id'));
      process.stdout.write(testedText(tested));
      if (!tested.result.ok) process.exitCode = 1;
    }),
  );

webhooks
  .command('deliveries')
  .description('deliveries newest first: pending (with their next attempt), delivered, failed (with the last answer)')
  .option('--state <state>', 'pending, delivered or failed')
  .option('--webhook <webhook_id>', "one webhook's")
  .option('--limit <n>', 'how many', '50')
  .option('--json', 'one JSON object per line')
  .action((options: { state?: string; webhook?: string; limit: string; json?: boolean }) =>
    withServiceTables(async (pool, tables) => {
      const { deliveriesText, parseState } = await import('../src/cli/webhooks.js');
      const { listDeliveries } = await import('../src/webhooks/deliveries.js');
      const rows = await listDeliveries(pool, tables, {
        state: parseState(options.state),
        webhookId: options.webhook === undefined ? undefined : positive(options.webhook, '--webhook'),
        limit: positive(options.limit, '--limit'),
      });
      if (options.json) for (const row of rows) console.log(JSON.stringify(row));
      else process.stdout.write(deliveriesText(rows));
    }),
  );

webhooks
  .command('replay [event_ids...]')
  .description('send events again now, with a new retry window (the receiver sees the same event id)')
  .option('--all-failed', 'replay every failed delivery')
  .action((eventIds: string[], options: { allFailed?: boolean }) =>
    withServiceTables(async (pool, tables) => {
      const { replayEvent, replayFailed } = await import('../src/webhooks/deliveries.js');
      if (options.allFailed) {
        console.log(`Replaying ${await replayFailed(pool, tables)} failed delivery(ies).`);
        return;
      }
      if (eventIds.length === 0) fail('Name the event ids to replay, or pass --all-failed.');
      for (const id of eventIds) {
        const count = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)
          ? await replayEvent(pool, tables, id)
          : 0;
        if (count === 0) {
          console.log(`No delivery of event ${id}.`);
          process.exitCode = 2;
        } else console.log(`Replaying event ${id} (${count} delivery(ies)).`);
      }
    }),
  );

await program.parseAsync();
