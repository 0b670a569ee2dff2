import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { buildOpenApiDocument } from '../openapi.js';
import type { RouteDeps } from '../server.js';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

/**
 * GET /openapi.json: the OpenAPI 3.1 document, generated once from the request schemas.
 * GET /docs: Swagger UI, served from the package's own files (works offline), showing the same
 * document (which it loads from /docs/json). Neither needs an API key.
 */
export function registerDocs(app: FastifyInstance, deps: Pick<RouteDeps, 'bulkMaxItems' | 'preferWaitMaxSeconds'>): void {
  const document = buildOpenApiDocument({ bulkMaxItems: deps.bulkMaxItems, preferWaitMaxSeconds: deps.preferWaitMaxSeconds });
  app.get(OPENAPI_PATH, async () => document);
  void app.register(swagger, { mode: 'static', specification: { document: document as never } });
  void app.register(swaggerUi, { routePrefix: DOCS_PATH, theme: { title: 'ITFlow Reply Queue API' } });
}
