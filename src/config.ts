// Every setting the service reads from the environment. One schema, validated once at
// start-up; a bad value stops the process with one line naming the variable.
import { isIP } from 'node:net';
import { z } from 'zod';

const intFrom = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const PROXY_EXAMPLES = 'e.g. 10.0.0.5,10.0.1.0/24, loopback for a proxy on this host, uniquelocal for private networks';
const TRUST_EVERY_HOP =
  'must not be true: trusting every hop lets any client choose its IP address with X-Forwarded-For. ' +
  `List the addresses of the proxies in front of the service instead (${PROXY_EXAMPLES})`;
const TRUST_HOP_COUNT =
  'must list the proxies’ addresses, not a number of hops: a hop count cannot tell a proxy from a client that ' +
  `connects directly and writes its own X-Forwarded-For (${PROXY_EXAMPLES})`;
const TRUST_PROXY_FORMAT = `must be false or a comma-separated list of proxy addresses or CIDR ranges (${PROXY_EXAMPLES})`;
/** proxy-addr's names for address ranges, which Fastify's trustProxy accepts beside addresses. */
const NAMED_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

/** An IP address, an address/prefix-length range, or a named range. */
function isProxyAddress(entry: string): boolean {
  if (NAMED_RANGES.includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}

/**
 * Whose X-Forwarded-For entries are believed: nobody's (false), or those of proxies at the
 * listed addresses (Fastify's trustProxy, through proxy-addr): the client is the address the
 * nearest untrusted hop was seen from. It is what the per-IP limit counts and what failed-key
 * `logs` rows record, so neither `true` nor a hop count is accepted: with either, a client
 * that reaches the service directly chooses its own address.
 */
const trustProxy = z
  .string()
  .trim()
  .transform((value, ctx): false | string[] => {
    const lower = value.toLowerCase();
    if (['false', 'no', 'off', '0'].includes(lower)) return false;
    const problem = ['true', 'yes', 'on'].includes(lower)
      ? TRUST_EVERY_HOP
      : /^\d+$/.test(value)
        ? TRUST_HOP_COUNT
        : value.split(',').every((entry) => isProxyAddress(entry.trim()))
          ? null
          : TRUST_PROXY_FORMAT;
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    return problem === null ? value.split(',').map((entry) => entry.trim()) : false;
  });

const CORS_FORMAT =
  'must be * or a comma-separated list of origins, each a scheme, host and optional port as a browser sends it ' +
  '(e.g. https://app.example.com,http://localhost:5173: no path, no trailing slash, host in lower case)';

/** Whether an entry is an origin exactly as a browser's Origin header would carry it. */
function isOrigin(entry: string): boolean {
  try {
    const url = new URL(entry);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === entry;
  } catch {
    return false;
  }
}

export type CorsOrigins = false | '*' | string[];

/**
 * The web apps whose pages may call the API from a browser (CORS): false (the default, no CORS
 * headers at all), '*' for every origin, or the listed origins. Keys travel in headers, never
 * cookies, so '*' lets no page act with anyone's credentials but its own user's.
 */
const corsOrigins = z
  .string()
  .trim()
  .transform((value, ctx): CorsOrigins => {
    if (value === '*') return '*';
    const entries = value
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    const wrong = entries.find((entry) => !isOrigin(entry));
    if (wrong === undefined) return entries.length > 0 ? entries : false;
    ctx.addIssue({
      code: 'custom',
      message: wrong === '*' ? `${CORS_FORMAT}; * stands alone` : `${CORS_FORMAT}; '${wrong}' is not one`,
    });
    return false;
  });

const urlWithScheme = (schemes: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (v) => {
        try {
          return schemes.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      },
      { message: `must be a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')}` },
    );

/** A yes/no setting: true/false, yes/no, on/off or 1/0. */
const flag = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', 'yes', 'no', 'on', 'off', '1', '0'].includes(v), {
    message: 'must be true or false',
  })
  .transform((v) => ['true', 'yes', 'on', '1'].includes(v));

const HOST_PORT_LIST = 'must be a comma-separated list of host:port (e.g. 10.0.0.5:26379,10.0.0.6:26379)';

/** Why one entry of a host:port list is not one, or null when it is. */
function hostPortProblem(part: string): string | null {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(part)) {
    return /^[^\s:[\]]+$/.test(part) ? `'${part}' has no port` : `'${part}' is not one`;
  }
  return Number(part.slice(part.lastIndexOf(':') + 1)) > 65535 ? `'${part}' has a port above 65535` : null;
}

/** host:port,host:port,… (at least one); an IPv6 address in brackets. */
const hostPortList = z
  .string()
  .trim()
  .transform((v) =>
    v
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== ''),
  )
  .superRefine((parts, ctx) => {
    const problem = parts.length === 0 ? 'none is given' : parts.map(hostPortProblem).find((p) => p !== null);
    if (problem) ctx.addIssue({ code: 'custom', message: `${HOST_PORT_LIST}; ${problem}` });
  })
  .transform((parts) =>
    parts.map((part) => {
      const colon = part.lastIndexOf(':');
      return { host: part.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(part.slice(colon + 1)) };
    }),
  );

const identifier = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9_]{1,48}$/, 'may only contain letters, digits and underscores (1-48 characters)');

export const configSchema = z.object({
  DATABASE_URL: urlWithScheme(['mysql:', 'mariadb:']).default('mysql://root@127.0.0.1:3306/itflow'),
  REDIS_URL: urlWithScheme(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  /**
   * Redis Cluster mode: some of the cluster's nodes (host:port,…; the rest are found from them).
   * REDIS_URL then gives only the nodes' credentials and TLS; the service's keys are hash-tagged
   * (docs/operations.md, "Redis Cluster").
   */
  REDIS_CLUSTER_NODES: hostPortList.optional(),
  /**
   * Sentinel mode: the sentinels to ask where the primary is (host:port,host:port,…), and the
   * name they know it by. REDIS_URL then gives only the data nodes' credentials, db and TLS.
   */
  REDIS_SENTINELS: hostPortList.optional(),
  REDIS_SENTINEL_NAME: z.string().trim().min(1, 'must not be empty').optional(),
  /** Password of the sentinels themselves, when they have one (requirepass in sentinel.conf). */
  REDIS_SENTINEL_PASSWORD: z.string().min(1, 'must not be empty').optional(),
  /**
   * Redis replicas that must hold an accepted command before the intake acknowledges it
   * (202/201): a Redis WAIT after the enqueue. Fewer within REDIS_MIN_REPLICAS_TIMEOUT_MS: 503,
   * and the client retries with its idempotency key. 0: off — Redis replicates asynchronously,
   * so a primary lost just after a 202 may take that command with it (docs/operations.md).
   */
  REDIS_MIN_REPLICAS_ACK: intFrom(0, 16).default(0),
  REDIS_MIN_REPLICAS_TIMEOUT_MS: intFrom(10, 60_000).default(1000),
  HOST: z.string().trim().min(1, 'must not be empty').default('127.0.0.1'),
  PORT: intFrom(0, 65535).default(8080),
  /** A worker-only process serves /healthz and /readyz here when set (unset: no HTTP at all). */
  WORKER_PORT: intFrom(0, 65535).optional(),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
  /** Log lines as JSON, or pretty for reading; auto: pretty when stdout is a terminal (and in the demo). */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty'], { error: 'must be one of auto, json, pretty' }).default('auto'),
  /**
   * Worker processes `npm start` runs beside the intake's, each in a process of its own under one
   * supervisor (src/supervisor.ts); 0: intake and worker in one process, for the smallest installs.
   */
  SERVICE_WORKERS: intFrom(0, 16).default(1),
  /**
   * How much lower the CPU priority (nice value) of `npm start`'s worker processes is than the
   * intake's, so a busy machine answers requests first while the worker's batches grow (group
   * commit), and ITFlow's own PHP and MariaDB on the same machine are not crowded out by the
   * queue's background work; 0: the same priority.
   */
  WORKER_NICE: intFrom(0, 19).default(10),
  /** Transactions one worker process runs at once; each applies a batch of commands. */
  WORKER_CONCURRENCY: intFrom(1, 64).default(2),
  /** Most commands applied in one transaction. */
  BATCH_MAX_COMMANDS: intFrom(1, 5000).default(250),
  /** How long a batch may wait for more commands before it starts, in ms (0: start at once). */
  BATCH_LINGER_MS: intFrom(0, 1000).default(0),
  /** Connections the intake may use for key, ticket and status look-ups. */
  INTAKE_DB_POOL_SIZE: intFrom(1, 256).default(8),
  /**
   * Longest a key, ticket, status, idempotency or listing look-up may take, in ms; past it the
   * request answers 503 (a worker retries) and the connection is dropped, so a silent network
   * to MySQL cannot hang requests.
   */
  LOOKUP_TIMEOUT_MS: intFrom(100, 600_000).default(10_000),
  /**
   * The host ITFlow is served on, as its config.php has it ($config_base_url, e.g.
   * itflow.example.com): the links in the client emails the service queues. Without it no client
   * mail is queued, and public_reply_type 2 is refused with a message saying so.
   */
  ITFLOW_BASE_URL: z
    .string()
    .trim()
    .regex(
      /^[^\s/'"<>]+(\/[^\s'"<>]*)?$/,
      "must be ITFlow's host as in its config.php (e.g. itflow.example.com), without https://",
    )
    .optional(),
  /** Prefix of every Redis key the service writes; lets several installs share one Redis. */
  QUEUE_PREFIX: identifier.default('rq'),
  /**
   * Tickets are spread over this many ordered lanes; one command per lane is applied at a
   * time, which is what keeps each ticket's commands in acceptance order.
   */
  QUEUE_PARTITIONS: intFrom(1, 1024).default(32),
  /** Prefix of the service's own tables, so they never collide with ITFlow's. */
  TABLE_PREFIX: identifier.default('rq_'),
  /** Optional schema for the service's own tables (default: the ITFlow database itself). */
  SERVICE_SCHEMA: identifier.optional(),
  /** How long a resolved API key, ticket scope or status list is reused, in seconds. */
  AUTH_CACHE_SECONDS: intFrom(0, 300).default(5),
  /**
   * Longest a request, head and body, may take to arrive, in seconds; past it the intake
   * answers 408 and closes the connection, so a client that stalls or dribbles a body cannot
   * hold a connection and what it sent for ever. The default lets a 32 MiB bulk body through a
   * link of about 1 Mbit/s.
   */
  REQUEST_TIMEOUT_SECONDS: intFrom(1, 3600).default(300),
  /** Largest request body accepted, in bytes. */
  BODY_LIMIT_BYTES: intFrom(1024, 256 * 1024 * 1024).default(2 * 1024 * 1024),
  /** Most commands in one bulk.php request (more: 413). */
  BULK_MAX_ITEMS: intFrom(1, 100_000).default(1000),
  /** Largest bulk.php body, in bytes. */
  BULK_BODY_LIMIT_BYTES: intFrom(1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  /** Bulk commands per queue job (chunk); one BullMQ job per chunk instead of per command. */
  BULK_CHUNK_SIZE: intFrom(1, 4095).default(250),
  /** Longest `Prefer: wait=N` honoured, in seconds. */
  PREFER_WAIT_MAX_SECONDS: intFrom(0, 30).default(30),
  /** How long command outcomes are kept for commands.php, in days. */
  COMMAND_RETENTION_DAYS: intFrom(1, 3650).default(7),
  /** Tries for a command that meets transient MySQL errors before it becomes a dead letter. */
  APPLY_MAX_ATTEMPTS: intFrom(1, 100).default(10),
  /** First retry delay in ms; doubles each attempt (with jitter) up to APPLY_MAX_BACKOFF_MS. */
  APPLY_BACKOFF_MS: intFrom(1, 600_000).default(200),
  APPLY_MAX_BACKOFF_MS: intFrom(1, 3_600_000).default(30_000),
  /**
   * Longest a worker waits for a row or table lock someone else holds (a backup's LOCK TABLES,
   * an ALTER; on servers without SKIP LOCKED also a ticket row) before the batch is retried
   * later. A ticket row held elsewhere is passed over where the server has SKIP LOCKED: its
   * commands are parked and everything else goes on.
   */
  APPLY_LOCK_WAIT_SECONDS: intFrom(1, 3600).default(5),
  /** Seconds a worker may be silent before its command is handed to another worker. */
  WORKER_LOCK_SECONDS: intFrom(2, 3600).default(30),
  /** Upper bound for a graceful shutdown, in seconds; in-flight work is released after it. */
  SHUTDOWN_TIMEOUT_SECONDS: intFrom(1, 600).default(20),
  /** Failed-authentication rows written to ITFlow's `logs` per client IP per minute. */
  AUTH_FAILURE_LOGS_PER_MINUTE: intFrom(0, 10_000).default(10),
  /**
   * Requests to the /api/ endpoints per API key (as presented, valid or not) and per client IP
   * per minute, counted in Redis so they hold across every intake process; past them, 429 with
   * Retry-After. 0 turns a limit off. The defaults stop a runaway loop or a flood, not an
   * integration: 60,000 a minute is 1,000 single commands/s from one key, the order of what
   * ITFlow's own reply endpoint manages on a small machine (~1,650/s); through bulk.php (1,000
   * commands a request) it is far beyond what any install applies. An integration sending more
   * single commands than that should batch them (bulk.php) or raise the limit (load tests: set
   * both to 0). The per-IP limit is twice the per-key one, so a few
   * busy keys behind one NAT or proxy still fit, while one address cannot take a whole intake
   * (~8,500 requests/s).
   */
  RATE_LIMIT_PER_KEY_PER_MINUTE: intFrom(0, 100_000_000).default(60_000),
  RATE_LIMIT_PER_IP_PER_MINUTE: intFrom(0, 100_000_000).default(120_000),
  /**
   * read.php answers from the service's read projection while its follower is at most this many
   * seconds behind ticket_replies, else from ITFlow's tables (0: always from ITFlow's tables).
   */
  PROJECTION_MAX_LAG_SECONDS: intFrom(0, 86_400).default(30),
  /** How often a worker's follower looks for replies written elsewhere, in ms. */
  PROJECTION_POLL_MS: intFrom(50, 60_000).default(500),
  /** Older replies, and tickets, the follower looks at again each round (see docs/operations.md). */
  PROJECTION_SWEEP_ROWS: intFrom(100, 1_000_000).default(2000),
  TRUST_PROXY: trustProxy.default(false),
  CORS_ORIGINS: corsOrigins.default(false),
  // Completion webhooks (docs/webhooks.md).
  /** Whether this worker process delivers webhook events (every worker process does by default). */
  WEBHOOK_DISPATCHER: flag.default(true),
  /** Deliveries one worker process has in flight at once. */
  WEBHOOK_CONCURRENCY: intFrom(1, 256).default(8),
  /**
   * Whether webhook targets may be private, loopback or link-local addresses (ITFlow installs
   * usually live on private networks); false for hosted setups. Checked on the address each
   * delivery connects to, not only when the webhook is added.
   */
  WEBHOOK_ALLOW_PRIVATE: flag.default(true),
  /** Longest a delivery may take, connecting included, before it counts as a failed attempt. */
  WEBHOOK_TIMEOUT_MS: intFrom(100, 60_000).default(10_000),
  /** First retry delay of a failed delivery; doubles each attempt (with jitter) up to WEBHOOK_MAX_BACKOFF_MS. */
  WEBHOOK_BACKOFF_MS: intFrom(100, 3_600_000).default(5_000),
  WEBHOOK_MAX_BACKOFF_MS: intFrom(100, 86_400_000).default(3_600_000),
  /** How long a delivery is retried before it is marked failed (replayable from the CLI and the dashboard). */
  WEBHOOK_RETRY_SECONDS: intFrom(1, 30 * 86_400).default(86_400),
  /**
   * Optional key that seals webhook secrets in the database (AES-256-GCM): 64 hex digits. Unset:
   * secrets are stored as they are, as ITFlow stores its API keys' secrets.
   */
  WEBHOOK_SECRET_KEY: z
    .string()
    .trim()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (32 random bytes, e.g. from `openssl rand -hex 32`)')
    .optional(),
});

export type Config = z.infer<typeof configSchema> & {
  /**
   * Set by `npm run demo` alone, never read from the environment: the key /docs comes
   * authorized with (the demo's admin key), so Swagger UI's "Try it out" works at once.
   */
  docsApiKey?: string;
};

export class ConfigError extends Error {}

/** Settings whose value is never repeated in an error message. */
const SECRET_SETTINGS = new Set(['WEBHOOK_SECRET_KEY', 'REDIS_SENTINEL_PASSWORD']);

/** Reads and validates the configuration; throws ConfigError with one line per bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = configSchema.safeParse(input);
  if (parsed.success) {
    const together = settingsTogether(parsed.data);
    if (together.length === 0) return parsed.data;
    throw new ConfigError(together.map((line) => `Invalid configuration: ${line}`).join('\n'));
  }
  const lines = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'configuration');
    const shown = name in input && !SECRET_SETTINGS.has(name) ? ` (got '${hidePassword(input[name] as string)}')` : '';
    return `Invalid configuration: ${name} ${issue.message}${shown}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/** Settings that are valid one by one but not together. */
function settingsTogether(config: z.infer<typeof configSchema>): string[] {
  const problems: string[] = [];
  if (config.REDIS_SENTINELS !== undefined && config.REDIS_SENTINEL_NAME === undefined) {
    problems.push(
      "REDIS_SENTINEL_NAME must name the primary the sentinels watch (sentinel.conf's `sentinel monitor <name> …`) when REDIS_SENTINELS is set",
    );
  }
  if (config.REDIS_SENTINELS === undefined && config.REDIS_SENTINEL_NAME !== undefined) {
    problems.push('REDIS_SENTINEL_NAME is set but REDIS_SENTINELS is not: list the sentinels (host:port,…) too');
  }
  if (config.REDIS_CLUSTER_NODES !== undefined && config.REDIS_SENTINELS !== undefined) {
    problems.push('REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: a Redis Cluster fails over by itself, set only one');
  }
  if (config.REDIS_CLUSTER_NODES !== undefined && !['', '/', '/0'].includes(new URL(config.REDIS_URL).pathname)) {
    problems.push(
      'REDIS_URL names a database, but a Redis Cluster has database 0 only: leave the path off REDIS_URL when REDIS_CLUSTER_NODES is set',
    );
  }
  if (config.REDIS_CLUSTER_NODES !== undefined && config.REDIS_MIN_REPLICAS_ACK > 0) {
    problems.push(
      "REDIS_MIN_REPLICAS_ACK works with one primary (REDIS_URL or REDIS_SENTINELS), not yet with REDIS_CLUSTER_NODES: a command's writes spread over shards that one WAIT cannot speak for. Leave it at 0",
    );
  }
  if (config.REDIS_SENTINELS === undefined && config.REDIS_SENTINEL_PASSWORD !== undefined) {
    problems.push(
      "REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not: it is the sentinels' own password (the data nodes' goes in REDIS_URL)",
    );
  }
  return problems;
}

/** Any `//user:password@` in a value shown back to the operator, even one that is not a valid URL. */
function hidePassword(value: string): string {
  return value.replace(/(\/\/[^/:@\s]*:)[^\s/]*@/g, '$1***@');
}

/** A connection URL with any password replaced, for logs and error messages. */
export function redactConnectionUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
