// What the service sees of a running import: the import CLI (src/import/run.ts) names its file in
// every bulk.php request (X-Import-Id — the prefix of its lines' idempotency keys —, the file's
// name and line count), and the intake adds each answered request to that import's record here:
// requests, commands queued, items answered as already had (a resumed import), items refused,
// and the furthest line received. How many lines have been applied is the ledger's to say
// (src/read/importProgress.ts). Records live in Redis, shared by every intake process, for
// KEEP_MS after an import's latest request.
import { keyLayoutOf } from './cluster.js';
import { redisKeys } from './keys.js';
import type { RedisClient } from './redis.js';
import { runScript } from './scripts.js';

const KEEP_MS = 7 * 86_400_000;

/** The import a bulk.php request belongs to, as its client named it. */
export interface ImportSource {
  /** 16 hex digits: the file's content digest, as in its lines' idempotency keys `import:<id>:<line>`. */
  id: string;
  file: string | null;
  lines: number | null;
}

/** One bulk.php answer, counted. */
export interface ImportAnswer {
  queued: number;
  duplicates: number;
  refused: number;
  /** The highest file line the request carried; 0 when none is known. */
  highestLine: number;
}

export interface ImportRecord {
  importId: string;
  apiKeyId: number;
  keyName: string;
  file: string | null;
  lines: number | null;
  requests: number;
  queued: number;
  duplicates: number;
  refused: number;
  highestLine: number;
  firstAt: string;
  lastAt: string;
}

export class ImportTraffic {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    // On a cluster an import's record and the index share the hash tag `{imports}` (keys.ts).
    this.keys = redisKeys(prefix, keyLayoutOf(redis));
  }

  async record(
    key: { keyId: number; keyName: string },
    source: ImportSource,
    answer: ImportAnswer,
    now = Date.now(),
  ): Promise<void> {
    await runScript(
      this.redis,
      'recordImportTraffic',
      [this.keys.importTraffic(key.keyId, source.id), this.keys.imports],
      [
        now,
        KEEP_MS,
        `${key.keyId}:${source.id}`,
        answer.queued,
        answer.duplicates,
        answer.refused,
        answer.highestLine,
        key.keyName,
        source.file ?? '',
        source.lines ?? '',
      ],
    );
  }

  /** The `limit` imports with the latest requests, latest first. */
  async recent(limit: number): Promise<ImportRecord[]> {
    const members = await this.redis.zrevrange(this.keys.imports, 0, limit - 1);
    if (members.length === 0) return [];
    const pipeline = this.redis.pipeline();
    const ids = members.map((member) => {
      const [keyId = '', importId = ''] = member.split(':');
      pipeline.hgetall(this.keys.importTraffic(Number(keyId), importId));
      return { apiKeyId: Number(keyId), importId };
    });
    const answers = (await pipeline.exec()) ?? [];
    return ids.flatMap(({ apiKeyId, importId }, i) => {
      const [error, hash] = answers[i] ?? [];
      const h = (error ? {} : hash) as Record<string, string>;
      if (!h.last_at) return []; // expired since the index was read
      const count = (field: string) => Number(h[field] ?? 0);
      return [
        {
          importId,
          apiKeyId,
          keyName: h.key_name ?? '',
          file: h.file ?? null,
          lines: h.lines === undefined ? null : Number(h.lines),
          requests: count('requests'),
          queued: count('queued'),
          duplicates: count('duplicates'),
          refused: count('refused'),
          highestLine: count('highest_line'),
          firstAt: new Date(count('first_at')).toISOString(),
          lastAt: new Date(count('last_at')).toISOString(),
        },
      ];
    });
  }
}
