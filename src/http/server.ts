import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { CorsOrigins } from '../config.js';
import { MethodNotAllowed, NotFound, UnsupportedMediaType } from '../errors.js';
import type { ServiceMetrics } from '../metrics/registry.js';
import type { PendingCommands } from '../queue/pending.js';
import type { ProjectionReadDeps } from '../read/projection/serve.js';
import type { AcceptDeps } from './accept.js';
import { type AuthDeps, registerAuthentication } from './auth.js';
import { refuseContentEncoding, utf8Body } from './body.js';
import type { BulkDeps } from './bulkAccept.js';
import { connectionOptions, registerConnectionHandling } from './connection.js';
import { registerCors } from './cors.js';
import { registerDashboard } from './dashboard/index.js';
import { fail } from './envelope.js';
import { errorHandlerFor } from './errors.js';
import { type RateLimitDeps, registerRateLimits } from './rateLimits.js';
import { registerRequestIdEcho, requestIdOf } from './requestId.js';
import { RequestLog, registerRequestLog } from './requestLog.js';
import { registerBulk } from './routes/bulk.js';
import { registerCommandStatus } from './routes/commandStatus.js';
import { registerCreateReply } from './routes/createReply.js';
import { registerDocs } from './routes/docs.js';
import { type HealthDeps, registerHealth } from './routes/health.js';
import { registerMetrics } from './routes/metrics.js';
import { registerReadReplies } from './routes/readReplies.js';

export interface RouteDeps {
  auth: AuthDeps;
  accept: AcceptDeps;
  bulk: BulkDeps;
  bulkMaxItems: number;
  bulkBodyLimitBytes: number;
  read: ProjectionReadDeps & {
    pending: PendingCommands;
    /** LOOKUP_TIMEOUT_MS: how long a read's own transaction may take. */
    timeoutMs: number;
  };
  health: HealthDeps;
  metrics: ServiceMetrics;
  preferWaitMaxSeconds: number;
  rateLimits: RateLimitDeps;
  /** The key Swagger UI at /docs comes authorized with: the demo's, never set otherwise. */
  docsApiKey?: string;
}

export interface ServerOptions {
  logger: Logger;
  bodyLimitBytes: number;
  /** Whose X-Forwarded-For to believe: nobody (false), or the proxies at these addresses. */
  trustProxy: false | string[];
  /** How long a request, head and body, may take to arrive. */
  requestTimeoutMs: number;
  /** Told of an error that looks like MySQL going away (src/db/availability.ts `notice`). */
  onMysqlOutage?: (error: Error) => void;
  /** Browser origins allowed to call the API (CORS_ORIGINS); false: no CORS. */
  corsOrigins?: CorsOrigins;
}

/** The intake: routes, JSON body handling, and the v1 envelope on every answer. */
export function buildServer(deps: RouteDeps, options: ServerOptions): FastifyInstance {
  const app = baseServer(options);
  // CORS before the limits and the key check, so their refusals are readable by a browser page.
  registerCors(app, options.corsOrigins ?? false);
  // Limits first, so a flood of wrong keys costs a Redis call each, not a key look-up.
  registerRateLimits(app, deps.rateLimits);
  registerAuthentication(app, deps.auth);
  registerCreateReply(app, deps);
  registerBulk(app, deps);
  registerReadReplies(app, deps);
  registerCommandStatus(app, deps);
  registerHealth(app, deps.health);
  registerMetrics(app, deps.metrics);
  registerDocs(app, deps);
  registerDashboard(app, deps);
  return app;
}

/** A worker-only process's HTTP face: health, readiness and metrics, nothing that takes commands. */
export function buildOperationsServer(
  deps: { health: HealthDeps; metrics: ServiceMetrics },
  options: ServerOptions,
): FastifyInstance {
  const app = baseServer(options);
  registerHealth(app, deps.health);
  registerMetrics(app, deps.metrics);
  return app;
}

function baseServer(options: ServerOptions): FastifyInstance {
  const errorHandler = errorHandlerFor(options.onMysqlOutage);
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    // The client's X-Request-Id when sane, else a UUID; echoed on every answer (requestId.ts).
    genReqId: requestIdOf,
    // Requests that still arrive while the server drains are served (queue and Redis stay open
    // until it has drained), then their connection is closed.
    return503OnClosing: false,
    // One line per answered request, with its route and outcome (requestLog.ts).
    logController: new RequestLog(),
    // A URL that is not valid percent-encoding gets the v1 envelope like every other answer.
    frameworkErrors: errorHandler,
    ...connectionOptions(options.requestTimeoutMs),
  });

  registerConnectionHandling(app);
  registerRequestIdEcho(app);
  registerRequestLog(app);
  app.addHook('onRequest', async (request) => refuseContentEncoding(request));

  // JSON only. An empty body is an empty object, so a call that carries everything in the
  // query string gets a field error rather than a parser error.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  const json = (request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
    let text: string;
    try {
      text = utf8Body(request, body);
    } catch (error) {
      return done(error as Error);
    }
    return text === '' ? done(null, {}) : parseJson(request, text, done);
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, json);
  app.addContentTypeParser(/^application\/[a-z0-9.+-]*\+json$/i, { parseAs: 'buffer' }, json);
  // A body sent with no Content-Type at all is read as JSON (some HTTP clients omit it);
  // any other declared type is refused with 415.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) =>
    request.headers['content-type'] === undefined
      ? json(request, body as Buffer, done)
      : done(new UnsupportedMediaType('Send the request body as JSON, with Content-Type: application/json.')),
  );

  app.setErrorHandler(errorHandler);
  // A known path asked with the wrong method is a 405 naming the right one; anything else 404.
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.split('?')[0] ?? '';
    const allowed = (['GET', 'POST'] as const).filter((method) => app.hasRoute({ method, url }));
    const error = allowed.length > 0 ? new MethodNotAllowed(allowed.join(', ')) : new NotFound('Unknown endpoint.');
    void reply.code(error.status).headers(error.headers).send(fail(error.message));
  });
  return app;
}
