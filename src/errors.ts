/**
 * Errors that carry their HTTP status and the message a client sees. The intake turns them
 * into v1 envelopes in one place (src/http/errors.ts); the worker decides retry vs. fail in
 * one place (src/apply/classify.ts). Nothing else catches and translates errors.
 */
export abstract class ServiceError extends Error {
  abstract readonly status: number;
  /** Extra response headers (Retry-After, Allow, …). */
  readonly headers: Record<string, string> = {};

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400: the request is not a valid command. Nothing was written. */
export class Invalid extends ServiceError {
  readonly status = 400;
}

/** 401: missing, unknown or expired API key. */
export class Unauthorized extends ServiceError {
  readonly status = 401;
  constructor() {
    super('Authentication failed. API key is invalid or has expired.');
  }
}

/** 403: the key is valid but may not do this. */
export class Forbidden extends ServiceError {
  readonly status = 403;
}

/** 404: no such ticket or reply within the key's scope. */
export class NotFound extends ServiceError {
  readonly status = 404;
}

export class MethodNotAllowed extends ServiceError {
  readonly status = 405;
  constructor(allowed: string) {
    super(`Can only send ${allowed} requests to this endpoint.`);
    this.headers.Allow = allowed;
  }
}

/**
 * 409: the ticket's state forbids the command (a reply to a closed ticket), or a request with
 * the same idempotency key is still being accepted (with Retry-After).
 */
export class Conflict extends ServiceError {
  readonly status = 409;
  constructor(message: string, retryAfterSeconds?: number) {
    super(message);
    if (retryAfterSeconds !== undefined) this.headers['Retry-After'] = String(retryAfterSeconds);
  }
}

export class PayloadTooLarge extends ServiceError {
  readonly status = 413;
}

export class UnsupportedMediaType extends ServiceError {
  readonly status = 415;
}

/** 422: an idempotency key reused with a different request body. */
export class IdempotencyMismatch extends ServiceError {
  readonly status = 422;
  constructor(idempotencyKey: string, holderCommandId: string) {
    super(`Idempotency key '${idempotencyKey}' was already used for a different request (command ${holderCommandId}).`);
  }
}

/** 422: an external_id already used (by this API key) for a different request. */
export class ExternalIdMismatch extends ServiceError {
  readonly status = 422;
  constructor(externalId: string, holderCommandId: string) {
    super(`external_id '${externalId}' was already used for a different request (command ${holderCommandId}).`);
  }
}

export class TooManyRequests extends ServiceError {
  readonly status = 429;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}

/** 503: MySQL or Redis is unreachable; the client should retry after a pause. */
export class Unavailable extends ServiceError {
  readonly status = 503;
  constructor(message = 'The service is temporarily unavailable. Please retry shortly.', retryAfterSeconds = 5) {
    super(message);
    this.headers['Retry-After'] = String(retryAfterSeconds);
  }
}

/**
 * 503: the command was queued, but Redis could not confirm it on REDIS_MIN_REPLICAS_ACK replicas
 * in time, so it is not acknowledged. It may still be applied: a retry with the same idempotency
 * key answers as that command, never a second one.
 */
export class NotReplicated extends Unavailable {
  constructor() {
    super(
      'The command was not acknowledged: Redis could not confirm it on enough replicas in time. ' +
        'Retry with the same idempotency key; it will be applied once.',
      2,
    );
  }
}

/**
 * A MySQL error worth retrying: deadlock, lock wait timeout, lost or refused connection.
 * Raised by the worker's classifier, never shown to a client as such.
 */
export class TransientDbError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'TransientDbError';
  }
}

/** The shape a finished command's failure is stored in and reported as. */
export interface FailureRecord {
  status: number;
  message: string;
}

export function toFailureRecord(error: ServiceError): FailureRecord {
  return { status: error.status, message: error.message };
}

/** Node's codes for a server that cannot be reached or a connection that broke (MySQL or Redis). */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
