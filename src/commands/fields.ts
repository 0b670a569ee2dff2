import { z } from 'zod';
import { Invalid } from '../errors.js';

/**
 * Field types shared by the request schemas. v1 clients send integers both as JSON numbers
 * and as decimal strings, and send null or "" for "not given"; every field accepts those and
 * reports a problem with a message that names the field.
 */

const DECIMAL = /^\s*-?\d+\s*$/;
export const MAX_INT = 2_147_483_647;

/**
 * Annotations the OpenAPI document is generated from (src/http/openapi.ts): zod sees these
 * fields as "number, string or null" and checks the rest in transforms, so each carries what
 * the transform enforces. `x-integer-like`: a JSON number or a decimal string within bounds.
 * `x-required`: the field must be present and not null or "" (missing gets "… is required.").
 */
export const INTEGER_LIKE = 'x-integer-like';
export const REQUIRED = 'x-required';

export interface IntegerBounds {
  minimum: number;
  maximum: number;
}

interface IntegerOptions {
  min?: number;
  max?: number;
  required?: boolean;
}

function integerLike(field: string, { min = 0, max = MAX_INT, required = false }: IntegerOptions) {
  return z
    .union([z.number(), z.string(), z.null()], { error: `${field} must be an integer.` })
    .optional()
    .transform((value, ctx): number | undefined => {
      if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
        if (required) ctx.addIssue({ code: 'custom', message: `${field} is required.` });
        return undefined;
      }
      const n = typeof value === 'number' ? value : DECIMAL.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(n)) {
        ctx.addIssue({ code: 'custom', message: `${field} must be an integer.` });
        return undefined;
      }
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `${field} must be between ${min} and ${max}.` });
        return undefined;
      }
      return n;
    })
    .meta({ [INTEGER_LIKE]: { minimum: min, maximum: max } satisfies IntegerBounds, ...(required ? { [REQUIRED]: true } : {}) });
}

export const optionalInteger = (field: string, options: Omit<IntegerOptions, 'required'> = {}) =>
  integerLike(field, { ...options, required: false });

export const requiredInteger = (field: string, options: Omit<IntegerOptions, 'required'> = {}) =>
  integerLike(field, { ...options, required: true }).transform((n) => n as number);

/**
 * An unpaired UTF-16 surrogate: JSON can carry one (a lone "\ud800" escape) but UTF-8, Redis
 * and MySQL cannot, so it would be stored as U+FFFD — a silent change of what was sent.
 */
const LONE_SURROGATE = /\p{Cs}/u;

export const optionalString = (field: string, maxLength?: number) =>
  z
    .union([z.string(), z.null()], { error: `${field} must be a string.` })
    .optional()
    .transform((value, ctx): string | undefined => {
      if (value === undefined || value === null) return undefined;
      if (maxLength !== undefined && value.length > maxLength) {
        ctx.addIssue({ code: 'custom', message: `${field} must be at most ${maxLength} characters.` });
      }
      if (LONE_SURROGATE.test(value)) {
        ctx.addIssue({
          code: 'custom',
          message: `${field} contains an unpaired surrogate (a lone \\uD800-\\uDFFF escape), which is not valid Unicode and cannot be stored.`,
        });
      }
      return value;
    })
    .meta(maxLength === undefined ? {} : { maxLength });

export const MAX_IDEMPOTENCY_KEY = 255;

/**
 * An idempotency key; null or "" means none (as for every other field). It may not end with a
 * space: the ledger's unique index compares keys as MySQL does, ignoring trailing spaces, so
 * 'k' and 'k ' would be two keys to the intake but one to the ledger.
 */
export const idempotencyKey = (field: string) =>
  optionalString(field, MAX_IDEMPOTENCY_KEY)
    .transform((value, ctx): string | undefined => {
      if (value === undefined || value === '') return undefined;
      if (value.endsWith(' ')) ctx.addIssue({ code: 'custom', message: `${field} must not end with a space.` });
      return value;
    })
    .meta({
      maxLength: MAX_IDEMPOTENCY_KEY,
      pattern: '(^|[^ ])$',
      description: 'At most 255 characters, not ending with a space.',
    });

export const MAX_EXTERNAL_ID = 255;

/**
 * An integration's own id for a reply (external_id); null or "" means none. Not ending with a
 * space, for the same reason as an idempotency key: the unique index that keeps it unique per
 * API key compares as MySQL does, ignoring trailing spaces.
 */
export const externalId = (field: string) =>
  optionalString(field, MAX_EXTERNAL_ID)
    .transform((value, ctx): string | undefined => {
      if (value === undefined || value === '') return undefined;
      if (value.endsWith(' ')) ctx.addIssue({ code: 'custom', message: `${field} must not end with a space.` });
      return value;
    })
    .meta({
      maxLength: MAX_EXTERNAL_ID,
      pattern: '(^|[^ ])$',
      description:
        "Your own id for this reply (a chat message id, an RMM alert id, the source system's comment id), at most 255 characters, " +
        'not ending with a space. Unique per API key and kept for good: a later command with the same external_id answers as the ' +
        'one that made the reply (the same request) or 422 (a different one). read.php returns it and finds a reply by it.',
    });

/** A JSON boolean; null means not given. */
export const optionalBoolean = (field: string) =>
  z
    .union([z.boolean(), z.null()], { error: `${field} must be true or false.` })
    .optional()
    .transform((value): boolean | undefined => (value === null ? undefined : value));

/** The first problem, as the one-line message a v1 client gets. */
export function firstMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'Invalid request.';
  if (issue.code === 'custom' || issue.path.length === 0) return issue.message;
  const field = issue.path.join('.');
  return issue.message.includes(field) ? issue.message : `${field}: ${issue.message}`;
}

/** A request body must be a JSON object (not an array, string or number). */
export function requireObject(body: unknown): asserts body is Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Invalid('The request body must be a JSON object.');
  }
}
