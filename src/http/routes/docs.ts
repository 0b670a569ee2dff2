import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { buildOpenApiDocument } from '../openapi.js';
import { INDEX } from '../openapiExamples.js';
import type { RouteDeps } from '../server.js';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

type DocsDeps = Pick<RouteDeps, 'bulkMaxItems' | 'bulkBodyLimitBytes' | 'preferWaitMaxSeconds' | 'rateLimits' | 'docsApiKey'>;

/**
 * GET /openapi.json: the OpenAPI 3.1 document, generated once from the request schemas and this
 * install's limits. GET /docs: Swagger UI, served from the package's own files (works offline),
 * showing the same document (which it loads from /docs/json), its operations grouped by tag.
 * GET /: a browser is sent on to /docs, anyone else gets the links as JSON. None needs a key.
 */
export function registerDocs(app: FastifyInstance, deps: DocsDeps): void {
  const document = buildOpenApiDocument({
    bulkMaxItems: deps.bulkMaxItems,
    preferWaitMaxSeconds: deps.preferWaitMaxSeconds,
    bodyLimitBytes: app.initialConfig.bodyLimit ?? 1024 * 1024,
    bulkBodyLimitBytes: deps.bulkBodyLimitBytes,
    perKeyPerMinute: deps.rateLimits.perKeyPerMinute,
    perIpPerMinute: deps.rateLimits.perIpPerMinute,
  });
  app.get(OPENAPI_PATH, async () => document);
  app.get('/', async (request, reply) =>
    /\btext\/html\b/i.test(request.headers.accept ?? '') ? reply.redirect(DOCS_PATH) : INDEX,
  );
  void app.register(swagger, { mode: 'static', specification: { document: document as never } });
  void app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    theme: { title: 'ITFlow Reply Queue API' },
    uiConfig: {
      // Without the top bar: its box loads other documents, which this page has no use for.
      layout: 'BaseLayout',
      docExpansion: 'list',
      displayRequestDuration: true,
      // Swagger UI's own validator would send the document to validator.swagger.io.
      validatorUrl: null,
      ...(deps.docsApiKey ? { initialState: authorizedWith(deps.docsApiKey) } : {}),
    },
  });
}

/**
 * Swagger UI's state with the X-API-Key scheme already authorized, so "Try it out" works at
 * once. Only the demo passes a key (its admin key, printed in the README anyway): the page's
 * script carries it to anyone who opens /docs.
 */
function authorizedWith(key: string) {
  return {
    auth: {
      authorized: {
        ApiKeyHeader: { name: 'ApiKeyHeader', value: key, schema: { type: 'apiKey', in: 'header', name: 'X-API-Key' } },
      },
    },
  };
}
