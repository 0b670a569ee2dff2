// Import progress as the intake sees it: each bulk.php answer to a request that names its import
// (the import CLI sends X-Import-Id, X-Import-File and X-Import-Lines, src/import/run.ts) is
// counted into that import's record (src/queue/imports.ts) after it is answered, without holding
// the answer up. Requests without the headers (other integrations, curl) are not tracked.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ImportAnswer, ImportSource, ImportTraffic } from '../../queue/imports.js';
import type { ItemResult } from '../bulkAccept.js';
import { BULK_PATH } from '../routes/bulk.js';

const IMPORT_ID = /^[0-9a-f]{16}$/;
const MAX_FILE_NAME = 200;
const MAX_LINES = 1_000_000_000;

export function trackImportTraffic(app: FastifyInstance, traffic: ImportTraffic): void {
  app.addHook('preSerialization', async (request, reply, payload) => {
    if (request.routeOptions.url !== BULK_PATH || request.principal === null || reply.statusCode >= 500) return payload;
    const source = importSourceOf(request);
    const answer = source ? countAnswer(request.body, (payload as { data?: unknown }).data, source.id) : null;
    if (source && answer) {
      void traffic
        .record(request.principal, source, answer)
        .catch((error: Error) => request.log.warn({ err: error.message }, 'could not record import progress'));
    }
    return payload;
  });
}

/** The import a request names, or null (no X-Import-Id, or not one the CLI would send). */
export function importSourceOf(request: FastifyRequest): ImportSource | null {
  const id = request.headers['x-import-id'];
  if (typeof id !== 'string' || !IMPORT_ID.test(id)) return null;
  const lines = Number(request.headers['x-import-lines']);
  return {
    id,
    file: fileName(request.headers['x-import-file']),
    lines: Number.isInteger(lines) && lines > 0 && lines <= MAX_LINES ? lines : null,
  };
}

/** The file's name as sent (percent-encoded, so any name fits in a header), or null. */
function fileName(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string' || header === '') return null;
  try {
    return decodeURIComponent(header).slice(0, MAX_FILE_NAME);
  } catch {
    return null;
  }
}

/**
 * An answer's items counted (null for a dry run, which queues nothing, or an answer without
 * items), with the highest file line among the request's idempotency keys `import:<id>:<line>`.
 */
function countAnswer(body: unknown, data: unknown, importId: string): ImportAnswer | null {
  if (!Array.isArray(data) || data.length === 0) return null;
  const results = data as ItemResult[];
  if (results.some((r) => 'status' in r && r.status === 'valid')) return null;
  const answer: ImportAnswer = { queued: 0, duplicates: 0, refused: 0, highestLine: 0 };
  for (const result of results) {
    if ('command_id' in result) answer[result.replayed ? 'duplicates' : 'queued']++;
    else answer.refused++;
  }
  const prefix = `import:${importId}:`;
  for (const item of Array.isArray(body) ? body : []) {
    const key = (item as { idempotency_key?: unknown } | null)?.idempotency_key;
    if (typeof key !== 'string' || !key.startsWith(prefix)) continue;
    const line = Number(key.slice(prefix.length));
    if (Number.isInteger(line) && line > answer.highestLine) answer.highestLine = line;
  }
  return answer;
}
