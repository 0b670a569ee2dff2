import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import { type ApplyDeps, applyBatch, applySessionSql } from './apply/applyBatch.js';
import { type Config, redactConnectionUrl } from './config.js';
import { MysqlAvailability, mysqlProbe } from './db/availability.js';
import { MissingGrants } from './db/grants.js';
import { migrate } from './db/migrate.js';
import { createPool, databaseName, withQueryDeadline } from './db/pool.js';
import { purgeLedgerHourly } from './db/retention.js';
import { serviceTables } from './db/tables.js';
import { buildOperationsServer, buildServer } from './http/server.js';
import { KeyResolver } from './itflow/apiKeys.js';
import { createItflowClock } from './itflow/clock.js';
import { People } from './itflow/people.js';
import { detectSchema, type ItflowSchema, NotAnItflowDatabase } from './itflow/schema.js';
import { ItflowSettingsReader, whyNoClientMail } from './itflow/settings.js';
import { TicketDirectory } from './itflow/tickets.js';
import { watchPools } from './metrics/pool.js';
import { watchProjectionLag } from './metrics/projectionLag.js';
import { watchQueueDepth } from './metrics/queueDepth.js';
import { ServiceMetrics } from './metrics/registry.js';
import { Batcher } from './queue/batcher.js';
import { keyLayoutOf } from './queue/cluster.js';
import { CompletionWaiter } from './queue/completion.js';
import { CommandConsumer } from './queue/consumer.js';
import { ParkedDrainer } from './queue/drainParked.js';
import { CommandEvents } from './queue/events.js';
import { ExternalIdClaims } from './queue/externalIds.js';
import { IdempotencyClaims } from './queue/idempotency.js';
import { ImportTraffic } from './queue/imports.js';
import { redisKeys } from './queue/keys.js';
import { prepareLanes } from './queue/lanes.js';
import { announceCompletions, countCommandEvents, forgetPending, logCommandEvents } from './queue/observers.js';
import { ParkedCommands } from './queue/parked.js';
import { PendingCommands } from './queue/pending.js';
import { CommandQueue } from './queue/producer.js';
import { createRedis, describeRedis, type RedisClient, RedisDatabaseRefused, redisReady, watchRedis } from './queue/redis.js';
import { onlineReplicas, ReplicaAcks, watchReplicas } from './queue/replication.js';
import { ListPlanner } from './read/planner.js';
import { followProjection } from './read/projection/follower.js';
import { supervisedAs } from './supervision.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { countWebhookAttempts } from './webhooks/metrics.js';
import { sealingKey } from './webhooks/secrets.js';
import { WebhookSubscriptions } from './webhooks/subscriptions.js';

export interface Roles {
  intake: boolean;
  worker: boolean;
}

export interface RunningService {
  /** Base URL of the intake (or of a worker's health endpoints), or null when not listening. */
  url: string | null;
  schema: ItflowSchema;
  /** This process's metrics (what /metrics shows, or its share of it under `npm start`'s supervisor). */
  metrics: ServiceMetrics;
  /** Graceful stop: no new work, in-flight work finished or handed back, connections closed. */
  close(): Promise<void>;
}

/** How often a worker looks for parked tickets due for a try, and how soon a locked one is tried again (ms). */
const PARKED_POLL_MS = 200;
const PARKED_RETRY_MS = 500;
/** How often a worker's webhook dispatcher looks for due deliveries when no transaction of its own wakes it. */
const WEBHOOK_POLL_MS = 1_000;

/** A problem found while starting, told to the operator in one line. */
export class StartupError extends Error {}

/**
 * Builds and starts the service from its configuration: the intake, the worker, or both
 * (the all-in-one default). Every process detects ITFlow's schema and applies the service's
 * own migration first, so any of them can be started first.
 */
export async function startService(config: Config, roles: Roles, logger: Logger): Promise<RunningService> {
  const lookupPool = createPool(config.DATABASE_URL, config.INTAKE_DB_POOL_SIZE);
  const closers: Array<() => Promise<unknown>> = [() => lookupPool.end()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    const schema = await detect(config, lookupPool);
    const tables = serviceTables(config);
    const migration = await migrate(lookupPool, tables).catch((error: Error) => {
      throw error instanceof MissingGrants ? new StartupError(error.message) : error;
    });
    if (migration.applied.length > 0) logger.info({ applied: migration.applied }, 'service tables migrated');
    logger.info(
      { database: schema.database, keyModel: schema.keyModel, itflowVersion: schema.databaseVersion, sla: schema.hasSla },
      'ITFlow schema detected',
    );

    if (!Object.values(schema.replyIndexes).some((columns) => columns[0] === 'ticket_reply_ticket_id')) {
      // Never added silently: ITFlow's tables are ITFlow's. ITFlow's own 2.6.3 update adds it.
      logger.info(
        'ticket_replies has no index on ticket_reply_ticket_id (ITFlow adds it in its 2.6.3 database update): ' +
          'read.php finds one ticket’s replies through the service’s read projection, and reads the whole table only ' +
          'while the projection is being built or more than PROJECTION_MAX_LAG_SECONDS behind',
      );
    }

    // What requests and commands wait on goes through a deadline: a silent network to MySQL
    // becomes a 503 (or a retry) after LOOKUP_TIMEOUT_MS rather than a request that hangs.
    const lookups = withQueryDeadline(lookupPool, config.LOOKUP_TIMEOUT_MS);
    const cacheMs = config.AUTH_CACHE_SECONDS * 1000;
    const clock = createItflowClock(lookups, (zone) =>
      logger.warn({ zone }, 'settings.config_timezone is not a valid time zone; using UTC'),
    );
    const keys = new KeyResolver(lookups, schema, clock, cacheMs);
    const tickets = new TicketDirectory(lookups, cacheMs);
    const people = new People(lookups, cacheMs);
    const settings = new ItflowSettingsReader(lookups, schema, config.ITFLOW_BASE_URL, cacheMs);

    // One connection for the requests' and batches' own calls: 32 requests in flight make one
    // pipeline of their commands rather than a socket write and a read each (docs/benchmarks.md).
    const redis = createRedis(config, 'command', 'replyqueue', { pipelineTurns: true });
    closers.push(() => redis.quit());
    await redisReady(redis).catch((error: Error) => {
      throw new StartupError(
        error instanceof RedisDatabaseRefused
          ? error.message
          : `Cannot reach Redis at ${describeRedis(config)}: ${error.message}`,
      );
    });
    await prepareLanes(redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS);
    closers.push(keepLanesPrepared(redis, config, logger));
    watchRedis(redis, logger);

    // This process's own metrics; the worker's pool joins `pools` below when there is one.
    const metrics = new ServiceMetrics();
    // Whether MySQL is there, judged once for the whole process (worker retries, intake 503s).
    const availability = new MysqlAvailability(mysqlProbe(config.DATABASE_URL, 2_000), logger);
    closers.push(async () => availability.stop());
    metrics.scrapedGauge(
      'replyqueue_mysql_up',
      'Whether MySQL answers and takes writes (0 during an outage this process noticed).',
      [],
      (g) => g.set(availability.down ? 0 : 1),
      'min',
    );
    const pools: Record<string, Pool> = { lookup: lookupPool };
    watchPools(metrics, pools);
    // Queue depths are read from Redis at each scrape. Under npm start's supervisor the intake's
    // /metrics answers for every process, so its workers leave that read to the intake.
    if (roles.intake || supervisedAs() === undefined) {
      closers.push(watchQueueDepth(metrics, redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS));
      watchProjectionLag(metrics, lookups, tables);
    }

    let consumer: CommandConsumer | null = null;
    let drainer: ParkedDrainer | null = null;
    let dispatcher: WebhookDispatcher | null = null;
    if (roles.worker) {
      // Batches send several statements per round trip; only this pool allows that, and
      // every value in them is still a bound parameter.
      const applyPool = createPool(config.DATABASE_URL, config.WORKER_CONCURRENCY + 1, {
        sessionSql: applySessionSql(config.APPLY_LOCK_WAIT_SECONDS),
        multipleStatements: true,
      });
      closers.push(() => applyPool.end());
      pools.apply = applyPool;
      const blocking = createRedis(config, 'blocking', 'replyqueue-worker');
      closers.push(() => blocking.quit());
      const parked = new ParkedCommands(redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS);
      const deps: ApplyDeps = {
        pool: applyPool,
        tables,
        schema,
        clock,
        tickets,
        people,
        settings,
        parkedAmong: (ids) => parked.parkedAmong(ids),
        webhooks: new WebhookSubscriptions(lookups, tables, cacheMs),
      };
      const events = new CommandEvents(logger);
      logCommandEvents(events, logger);
      countCommandEvents(events, metrics);
      announceCompletions(events, redis, config.QUEUE_PREFIX);
      forgetPending(events, new PendingCommands(redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS));
      const batcher = new Batcher(
        async (batch) => {
          const started = performance.now();
          let committed = false;
          try {
            const results = await applyBatch(deps, batch);
            committed = true;
            return results;
          } finally {
            metrics.transactionFinished((performance.now() - started) / 1000, committed);
          }
        },
        { maxCommands: config.BATCH_MAX_COMMANDS, maxInFlight: config.WORKER_CONCURRENCY, lingerMs: config.BATCH_LINGER_MS },
        (size) => metrics.batchStarted(size),
      );
      consumer = new CommandConsumer(blocking, redis, batcher, parked, availability, events, {
        prefix: config.QUEUE_PREFIX,
        lanes: config.QUEUE_PARTITIONS,
        lockMs: config.WORKER_LOCK_SECONDS * 1000,
        maxAttempts: config.APPLY_MAX_ATTEMPTS,
        backoffMs: config.APPLY_BACKOFF_MS,
        maxBackoffMs: config.APPLY_MAX_BACKOFF_MS,
        sliceSize: config.BATCH_MAX_COMMANDS,
        lookahead: config.BATCH_MAX_COMMANDS - 1,
        parkedRetryMs: PARKED_RETRY_MS,
        logger,
      });
      drainer = new ParkedDrainer(parked, batcher, availability, events, {
        pollMs: PARKED_POLL_MS,
        retryMs: PARKED_RETRY_MS,
        maxCommands: config.BATCH_MAX_COMMANDS,
        leaseMs: config.WORKER_LOCK_SECONDS * 1000,
        concurrency: 16,
        logger,
      });
      drainer.start();
      if (config.WEBHOOK_DISPATCHER && deps.webhooks) {
        dispatcher = new WebhookDispatcher(lookups, tables, deps.webhooks, {
          concurrency: config.WEBHOOK_CONCURRENCY,
          timeoutMs: config.WEBHOOK_TIMEOUT_MS,
          backoffMs: config.WEBHOOK_BACKOFF_MS,
          maxBackoffMs: config.WEBHOOK_MAX_BACKOFF_MS,
          retryForMs: config.WEBHOOK_RETRY_SECONDS * 1000,
          allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
          secretKey: sealingKey(config.WEBHOOK_SECRET_KEY),
          skipLocked: schema.skipLocked,
          pollMs: WEBHOOK_POLL_MS,
          retentionDays: config.COMMAND_RETENTION_DAYS,
          imports: new ImportTraffic(redis, config.QUEUE_PREFIX),
          logger,
          availability,
          onAttempt: countWebhookAttempts(metrics.registry),
        });
        dispatcher.start();
      }
      closers.push(purgeLedgerHourly(lookupPool, tables, config.COMMAND_RETENTION_DAYS, logger, availability));
      closers.push(
        followProjection(lookupPool, tables, {
          pollMs: config.PROJECTION_POLL_MS,
          sweepRows: config.PROJECTION_SWEEP_ROWS,
          logger,
          availability,
          onRound: (round) => metrics.projectionRepaired(round.changes, round.moved),
        }),
      );
    }

    let url: string | null = null;
    let stopIntake = async () => {};
    const serverOptions = {
      logger,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      trustProxy: config.TRUST_PROXY,
      corsOrigins: config.CORS_ORIGINS,
      requestTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
      onMysqlOutage: (error: Error) => availability.notice(error),
    };
    const listen = async (app: ReturnType<typeof buildServer>, port: number) => {
      url = await app.listen({ host: config.HOST, port }).catch((error: Error) => {
        throw new StartupError(`Cannot listen on ${config.HOST}:${port}: ${error.message}`);
      });
      stopIntake = async () => {
        // Requests in flight when the close begins finish normally; their keep-alive sockets
        // are closed as soon as they go idle instead of lingering for the keep-alive timeout.
        const reaper = setInterval(() => app.server.closeIdleConnections(), 100);
        try {
          await app.close();
        } finally {
          clearInterval(reaper);
        }
      };
    };
    if (!roles.intake && config.WORKER_PORT !== undefined) {
      await listen(
        buildOperationsServer({ health: { pool: lookupPool, redis, schema }, metrics }, serverOptions),
        config.WORKER_PORT,
      );
    }
    if (roles.intake) {
      const queue = new CommandQueue(redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS, config.COMMAND_RETENTION_DAYS * 86_400);
      closers.push(() => queue.close());
      const subscriber = createRedis(config, 'blocking', 'replyqueue-waiter');
      closers.push(() => subscriber.quit());
      // WAIT blocks the connection it runs on: it gets one of its own (src/queue/replication.ts).
      const waits = config.REDIS_MIN_REPLICAS_ACK > 0 ? createRedis(config, 'command', 'replyqueue-replicas') : redis;
      if (waits !== redis) closers.push(() => waits.quit());
      const replicas = new ReplicaAcks(redis, waits, config.QUEUE_PREFIX, {
        replicas: config.REDIS_MIN_REPLICAS_ACK,
        timeoutMs: config.REDIS_MIN_REPLICAS_TIMEOUT_MS,
        onRefused: (requests) => metrics.commandsNotReplicated(requests),
      });
      watchReplicas(metrics, redis, config.REDIS_MIN_REPLICAS_ACK);
      const online = config.REDIS_MIN_REPLICAS_ACK > 0 ? await onlineReplicas(redis) : null;
      if (online !== null && online < config.REDIS_MIN_REPLICAS_ACK) {
        logger.warn(
          { online, required: config.REDIS_MIN_REPLICAS_ACK },
          'Redis has fewer replicas online than REDIS_MIN_REPLICAS_ACK: commands are answered 503 until enough are',
        );
      }
      const accept = {
        tickets,
        queue,
        waiter: new CompletionWaiter(subscriber, config.QUEUE_PREFIX),
        claims: new IdempotencyClaims(redis, lookups, tables, config.QUEUE_PREFIX, config.COMMAND_RETENTION_DAYS * 86_400),
        externalIds: new ExternalIdClaims(redis, lookups, tables, config.QUEUE_PREFIX, config.COMMAND_RETENTION_DAYS * 86_400),
        pool: lookups,
        tables,
        accepted: metrics.acceptedVia('create'),
        clientMail: async () => whyNoClientMail(schema, await settings.get()),
        replicas,
      };
      const app = buildServer(
        {
          auth: {
            keys,
            pool: lookups,
            clock,
            redis,
            prefix: config.QUEUE_PREFIX,
            failureLogsPerMinute: config.AUTH_FAILURE_LOGS_PER_MINUTE,
            logger,
          },
          accept,
          bulk: {
            ...accept,
            accepted: metrics.acceptedVia('bulk'),
            clock,
            people,
            lanes: config.QUEUE_PARTITIONS,
            chunkSize: config.BULK_CHUNK_SIZE,
          },
          bulkMaxItems: config.BULK_MAX_ITEMS,
          bulkBodyLimitBytes: config.BULK_BODY_LIMIT_BYTES,
          read: {
            pool: lookups,
            tables,
            planner: new ListPlanner(lookups, schema),
            pending: new PendingCommands(redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS),
            timeoutMs: config.LOOKUP_TIMEOUT_MS,
            maxLagSeconds: config.PROJECTION_MAX_LAG_SECONDS,
            onListing: (source, reason) => metrics.listingServed(source, reason),
            onRepair: (changes) => metrics.projectionRepaired(changes),
          },
          health: { pool: lookupPool, redis, schema, replicasRequired: config.REDIS_MIN_REPLICAS_ACK },
          metrics,
          preferWaitMaxSeconds: config.PREFER_WAIT_MAX_SECONDS,
          docsApiKey: config.docsApiKey,
          rateLimits: {
            redis,
            prefix: config.QUEUE_PREFIX,
            perKeyPerMinute: config.RATE_LIMIT_PER_KEY_PER_MINUTE,
            perIpPerMinute: config.RATE_LIMIT_PER_IP_PER_MINUTE,
          },
        },
        serverOptions,
      );
      await listen(app, config.PORT);
    }

    return {
      url,
      schema,
      metrics,
      async close() {
        await stopIntake();
        await drainer?.stop();
        // Deliveries in flight get the same bound as commands in flight; one left unfinished is sent again later.
        await Promise.all([
          consumer ? stopConsumer(consumer, config.SHUTDOWN_TIMEOUT_SECONDS * 1000, logger) : undefined,
          dispatcher?.stop(config.SHUTDOWN_TIMEOUT_SECONDS * 1000),
        ]);
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** ITFlow's schema at DATABASE_URL, or a StartupError saying in one line why not (also for `migrate`). */
export async function detect(config: Config, pool: Pool): Promise<ItflowSchema> {
  const database = databaseName(config.DATABASE_URL);
  try {
    return await detectSchema(pool, database);
  } catch (error) {
    if (error instanceof NotAnItflowDatabase || error instanceof MissingGrants) throw new StartupError(error.message);
    const e = error as { code?: string; message?: string };
    const where = redactConnectionUrl(config.DATABASE_URL);
    if (e.code === 'ER_BAD_DB_ERROR') {
      throw new StartupError(
        `Database '${database}' does not exist (${where}). Point DATABASE_URL at your ITFlow database, or run \`npm run demo\`.`,
      );
    }
    throw new StartupError(`Cannot reach MySQL at ${where}: ${e.message ?? e.code}`);
  }
}

/**
 * Redis can lose the lanes' settings while the service runs: a restart without persistence, a
 * FLUSHDB, a failover to a replica that came up empty. Without the global concurrency of 1, two
 * worker processes could apply one lane's commands at once and reorder a ticket's. So they are
 * set again on every reconnect, and a check every LANE_CHECK_MS restores them when they vanish
 * under a connection that stayed up.
 */
const LANE_CHECK_MS = 2_000;

function keepLanesPrepared(redis: RedisClient, config: Config, logger: Logger): () => Promise<void> {
  const prepare = (why: string) =>
    prepareLanes(redis, config.QUEUE_PREFIX, config.QUEUE_PARTITIONS).then(
      () =>
        why === 'lost' && logger.warn('Redis had lost the queue lanes’ settings (FLUSHDB, or an empty replica?); restored them'),
      (error: Error) => logger.error({ err: error.message }, 'could not prepare the queue lanes'),
    );
  redis.on('ready', () => void prepare('reconnected'));
  const lanesKey = redisKeys(config.QUEUE_PREFIX, keyLayoutOf(redis)).lanes;
  const timer = setInterval(() => {
    if (redis.status !== 'ready') return;
    redis.exists(lanesKey).then(
      (exists) => exists === 0 && prepare('lost'),
      () => {},
    );
  }, LANE_CHECK_MS);
  timer.unref();
  return async () => clearInterval(timer);
}

async function stopConsumer(consumer: CommandConsumer, timeoutMs: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([consumer.close().then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (result === 'timeout') {
    logger.warn({ timeoutMs }, 'in-flight commands did not finish in time; their locks will lapse and they will be re-delivered');
    await consumer.forceClose();
  }
}
