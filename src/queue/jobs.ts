import { z } from 'zod';
import { commandSchema } from '../commands/command.js';

/**
 * What a queued job carries: the command plus what the worker needs to apply it exactly
 * once and audit it as ITFlow would. Validated again when a worker takes the job, so a job
 * left in Redis by an older version is refused clearly instead of half-applied.
 */
export const commandJobSchema = z.preprocess(
  legacyAnnounce,
  z.object({
    v: z.literal(1),
    commandId: z.uuid(),
    /** When the intake accepted the command (ms since the epoch); becomes the reply's time. */
    acceptedAt: z.number().int().positive(),
    apiKeyId: z.number().int().positive(),
    idempotencyKey: z.string().max(255).nullable(),
    fingerprint: z.string().length(64),
    command: commandSchema,
    origin: z.object({ ip: z.string(), userAgent: z.string() }),
    /** A client is (or may be) waiting (Prefer: wait, an idempotency key): publish the outcome when done. */
    announce: z.boolean(),
  }),
);

/**
 * Jobs queued before `announce` had its name carry it as `notify`, which now means something
 * else (a command's own `notify`, inside `command`): read as `announce` so they still apply.
 */
function legacyAnnounce(data: unknown): unknown {
  if (typeof data !== 'object' || data === null || 'announce' in data || !('notify' in data)) return data;
  const { notify, ...job } = data as Record<string, unknown>;
  return { ...job, announce: notify };
}

export type CommandJob = z.infer<typeof commandJobSchema>;

/** Progress a worker reports while a command meets transient errors (for commands.php). */
export const retryProgressSchema = z.object({
  attempts: z.number().int(),
  nextTryAt: z.number().int(),
  lastError: z.string(),
});
export type RetryProgress = z.infer<typeof retryProgressSchema>;
